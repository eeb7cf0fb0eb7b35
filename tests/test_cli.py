"""The `listener` command through click's runner, against real files and a loopback feed server."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from click.testing import CliRunner

from listener.cli import cli
from tests.test_pipeline import DUTCH_ITEMS, NEWS_ITEMS, rss


def recent_feeds() -> tuple[bytes, bytes]:
    """The pipeline tests' news and Dutch feeds, published minutes ago: the CLI runs on the real clock,
    and a first fetch keeps only what is newer than the backfill (2d)."""
    published = datetime.now(timezone.utc) - timedelta(minutes=5)
    return rss(NEWS_ITEMS, published=published), rss(DUTCH_ITEMS, language="nl", published=published)


@pytest.fixture
def runner():
    return CliRunner()


def write_config(tmp_path, server) -> str:
    path = tmp_path / "config.toml"
    path.write_text(f"""
[database]
path = "listener.db"

[[topics]]
name = "acme"
query = 'acme OR #acmefail'

[[sources]]
name = "news"
kind = "rss"
url = "{server.url('/news.xml')}?token=s3cr3t-token"

[[sources]]
name = "blog"
kind = "rss"
url = "{server.url('/nl.xml')}"
""")
    return str(path)


def test_init_writes_a_working_config_and_database(runner, tmp_path):
    cfg = tmp_path / "config.toml"
    result = runner.invoke(cli, ["--config", str(cfg), "init"])
    assert result.exit_code == 0, result.output
    assert cfg.exists() and (tmp_path / "data" / "mentions.db").exists()
    # the repository ships config.toml as the unedited starter: init keeps it and goes on
    again = runner.invoke(cli, ["--config", str(cfg), "init"])
    assert again.exit_code == 0 and again.output.startswith(f"kept the starter {cfg} and created "), again.output
    cfg.write_text(cfg.read_text() + "# my own edit\n")
    edited = runner.invoke(cli, ["--config", str(cfg), "init"])
    assert edited.exit_code == 1 and "already exists and is not the unedited starter config" in edited.output
    assert cfg.read_text().endswith("# my own edit\n")
    check = runner.invoke(cli, ["--config", str(cfg), "check-config"])
    assert check.exit_code == 0 and ": OK (" in check.output


def test_check_config_reports_every_problem_on_its_own_line(runner, tmp_path):
    cfg = tmp_path / "config.toml"
    cfg.write_text('[[sources]]\nname = "a"\nkind = "rss"\nurl = "x"\nevery = "10 min"\n[[topics]]\nname = "t"\nquery = "(a"\n')
    result = runner.invoke(cli, ["--config", str(cfg), "check-config"])
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert lines[0] == f"Error: {cfg}: 3 problems:"
    assert sorted(line.split(":")[0] for line in lines[1:]) == ["  sources[0].every", "  sources[0].url", "  topics[0].query"]
    assert '  sources[0].every: "10 min" is not a duration like 30s, 10m, 1h, 7d' in lines


def test_missing_config_is_a_clear_error(runner, tmp_path):
    result = runner.invoke(cli, ["--config", str(tmp_path / "nope.toml"), "sources"])
    assert result.exit_code == 1 and "listener init" in result.output


def test_dump_redacts_secrets(runner, tmp_path, http_server):
    cfg = write_config(tmp_path, http_server)
    result = runner.invoke(cli, ["--config", cfg, "check-config", "--dump"])
    assert result.exit_code == 0, result.output
    assert "s3cr3t-token" not in result.output and "REDACTED" in result.output


def test_fetch_sources_search_and_sql(runner, tmp_path, http_server, bundled_model, monkeypatch):
    news, dutch = recent_feeds()
    http_server.route("/news.xml", body=news)
    http_server.route("/nl.xml", body=dutch)
    cfg = write_config(tmp_path, http_server)
    result = runner.invoke(cli, ["--config", cfg, "fetch"])
    assert result.exit_code == 0, result.output
    assert "2 sources fetched (2 ok, 0 failed), 2 new mentions, 2 scored" in result.output

    result = runner.invoke(cli, ["--config", cfg, "sources", "--json"])
    rows = {r["name"]: r for r in map(json.loads, result.output.splitlines())}
    assert rows["news"]["mentions"] == 1 and rows["blog"]["mentions"] == 1 and rows["news"]["consecutive_errors"] == 0

    result = runner.invoke(cli, ["--config", cfg, "search", "--json", "soep OR #acmefail"])
    found = sorted(json.loads(line)["source_id"] for line in result.output.splitlines() if line.startswith("{"))
    assert found == ["d1", "n1"]
    result = runner.invoke(cli, ["--config", cfg, "search", "--json", "soep -heerlijk"])
    assert [line for line in result.output.splitlines() if line.startswith("{")] == []

    result = runner.invoke(cli, ["--config", cfg, "sql", "--json", "select source_id, sentiment from mentions "
                                 "where language = :lang", "--param", "lang=nl"])
    assert json.loads(result.output) == [{"source_id": "d1", "sentiment": "positive"}]
    result = runner.invoke(cli, ["--config", cfg, "sql", "--csv", "select count(*) as n from mentions"])
    assert result.output.splitlines() == ["n", "2"]
    result = runner.invoke(cli, ["--config", cfg, "sql", "delete from mentions"])
    assert result.exit_code == 1 and "read-only" in result.output


def test_fetch_exits_1_and_names_the_failing_source(runner, tmp_path, http_server):
    http_server.route("/news.xml", status=503, headers={"Retry-After": "120"})
    http_server.route("/nl.xml", body=recent_feeds()[1])
    cfg = write_config(tmp_path, http_server)
    result = runner.invoke(cli, ["--config", cfg, "fetch", "--no-score"])
    assert result.exit_code == 1
    assert "1 new mention" in result.output and "news: service unavailable (503)" in result.output
    result = runner.invoke(cli, ["--config", cfg, "sources", "--json"])
    news = [json.loads(line) for line in result.output.splitlines() if '"news"' in line][0]
    assert news["consecutive_errors"] == 1 and "503" in news["last_error"]
    result = runner.invoke(cli, ["--config", cfg, "fetch", "--source", "nope"])
    assert result.exit_code == 1 and "no source named 'nope'" in result.output


def test_search_syntax_error_names_the_position(runner, tmp_path, http_server):
    cfg = write_config(tmp_path, http_server)
    result = runner.invoke(cli, ["--config", cfg, "search", "acme OR"])
    assert result.exit_code == 1 and "position" in result.output


def test_score_command(runner, tmp_path, bundled_model):
    result = runner.invoke(cli, ["--config", str(tmp_path / "none.toml"), "score", "--json",
                                 "I love this so much!", "Dit is echt verschrikkelijk slecht."])
    assert result.exit_code == 0, result.output
    labels = [json.loads(line)["sentiment"] for line in result.output.splitlines() if line.startswith("{")]
    assert labels == ["positive", "negative"]


@pytest.mark.parametrize("rule, message", [
    ('kind = "spike"\ntopic = "acme"', "alerts[0].kind (rule 'bad'): unknown kind 'spike'"),
    ('kind = "backlash"\ntopic = "acme"\nwindow = "1 hour"', 'alerts[0].window (rule \'bad\'): "1 hour" is not a duration'),
    ('kind = "sql"\nsql = "select nope from mentions"', "alerts[0].sql (rule 'bad'): no such column: nope"),
    ('kind = "sql"\nsql = "select * from mentionz"', "alerts[0].sql (rule 'bad'): no such table: mentionz"),
    ('kind = "keyword"\ntopic = "acme"\nquery = "recall OR"', "alerts[0].query (rule 'bad'): 'OR' needs a term after it"),
])
def test_bad_rules_are_one_clear_error_naming_the_rule(runner, tmp_path, rule, message):
    cfg = tmp_path / "config.toml"
    cfg.write_text(f'[[topics]]\nname = "acme"\nquery = "acme"\n[[alerts]]\nname = "bad"\n{rule}\n')
    result = runner.invoke(cli, ["--config", str(cfg), "check-config"])
    assert result.exit_code == 1
    assert message in result.output and len(result.output.strip().splitlines()) == 1, result.output

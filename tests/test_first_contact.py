"""First contact: the commands a new user types, as typed, read well in a terminal and in a log."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timedelta, timezone

from click.testing import CliRunner

from listener.cli import cli
from tests.test_pipeline import rss

NOW = datetime.now(timezone.utc) - timedelta(minutes=5)
LONG_URL = "https://news.example/" + "a-very-long-path-segment/" * 8 + "acme-recall"


def write_config(tmp_path, server) -> str:
    path = tmp_path / "config.toml"
    path.write_text(f"""
[database]
path = "m.db"
[[topics]]
name = "acme"
query = 'acme'
[digest]
timezone = "Europe/Amsterdam"
[[sources]]
name = "news"
kind = "rss"
url = "{server.url('/news.xml')}"
[[sources]]
name = "down"
kind = "rss"
url = "{server.url('/down.xml')}"
""")
    return str(path)


def serve(server) -> None:
    feed = rss([("n1", LONG_URL, "Acme recalls soup", "Acme Foods recalls its tomato soup."),
                ("n2", "https://news.example/2", "We are hiring", "Acme: we are hiring engineers")], published=NOW)
    server.route("/news.xml", body=feed, headers={"Content-Type": "application/rss+xml"})
    server.route("/down.xml", status=503, body=b"maintenance")


def test_config_after_the_command_and_a_repeated_fetch_that_says_what_waits(tmp_path, http_server):
    serve(http_server)
    cfg = write_config(tmp_path, http_server)
    runner = CliRunner()
    first = runner.invoke(cli, ["fetch", "--no-score", "--config", cfg])  # --config after the command
    assert first.exit_code == 1 and "down: service unavailable (503)" in first.output, first.output
    again = runner.invoke(cli, ["fetch", "--no-score", "--config", cfg])
    lines = again.output.splitlines()
    assert again.exit_code == 1  # a source is failing
    assert lines[0] == "no source was due; 0 scored. Next checks:"
    assert lines[1].startswith("  news: ") and lines[1].endswith(("CET", "CEST"))
    assert lines[2].startswith("  down: backed off until ") and "after 1 failure in a row (last: service unavailable (503)" in lines[2]
    assert lines[3] == "`listener fetch --source NAME` fetches one now, due or not."
    now = runner.invoke(cli, ["fetch", "--no-score", "--source", "news", "--config", cfg])
    assert now.exit_code == 0 and "1 source fetched (1 ok, 0 failed)" in now.output


def test_search_starts_with_an_exclusion_and_keeps_links_whole(tmp_path, http_server):
    serve(http_server)
    cfg = write_config(tmp_path, http_server)
    runner = CliRunner()
    runner.invoke(cli, ["--config", cfg, "fetch", "--no-score"])
    result = runner.invoke(cli, ["search", '-"we are hiring" acme', "--config", cfg])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "  " + LONG_URL in lines  # the link whole, on a line of its own, never wrapped or cut
    assert "hiring" not in result.output
    assert lines[0].split("  ")[0].endswith(("CET", "CEST"))  # in [digest] timezone, named
    assert lines[-1] == "1 mention (times in Europe/Amsterdam)"


def test_sources_json_is_for_machines(tmp_path, http_server):
    serve(http_server)
    cfg = write_config(tmp_path, http_server)
    CliRunner().invoke(cli, ["--config", cfg, "fetch", "--no-score"])
    rows = [json.loads(line) for line in CliRunner().invoke(cli, ["--config", cfg, "sources", "--json"]).output.splitlines()]
    news, down = rows
    assert news["every_seconds"] == 900 and news["last_error"] is None and news["last_error_at"] is None
    assert news["last_success_at"].endswith("Z") and down["last_success_at"] is None
    assert down["consecutive_errors"] == 1 and down["last_error"].startswith("service unavailable (503)")
    table = CliRunner().invoke(cli, ["--config", cfg, "sources"])
    assert "down: 1 failed in a row, last at " in table.output and "service unavailable (503)" in table.output


def test_usage_errors_are_one_line_and_sql_shows_no_minus_zero(tmp_path, http_server):
    serve(http_server)
    cfg = write_config(tmp_path, http_server)
    bad = CliRunner().invoke(cli, ["sources", "--bogus"], prog_name="listener")
    assert bad.exit_code == 2
    assert bad.output == "Error: No such option '--bogus' (see `listener sources --help`)\n"
    CliRunner().invoke(cli, ["--config", cfg, "fetch", "--no-score"])
    out = CliRunner().invoke(cli, ["--config", cfg, "sql", "--csv", "select round(-0.001, 2) as x, 0.5 as y"])
    assert out.output.splitlines() == ["x,y", "0.0,0.5"]


def test_piped_output_never_wraps(tmp_path, http_server):
    """Through a real pipe (not click's runner): log lines and tables as a log or a file gets them."""
    serve(http_server)
    cfg = write_config(tmp_path, http_server)
    env = {"COLUMNS": "80", "PATH": "/usr/bin:/bin"}
    run = subprocess.run([sys.executable, "-m", "listener.cli", "--config", cfg, "fetch", "--no-score"],
                         capture_output=True, text=True, env=env, cwd=tmp_path)
    assert "down: service unavailable (503)" in run.stderr
    failure = next(line for line in run.stderr.splitlines() if "down:" in line)
    assert failure.strip().startswith("down: service unavailable (503)")  # one line however long
    sql = subprocess.run([sys.executable, "-m", "listener.cli", "--config", cfg, "sql",
                          "select url from mentions where url like '%recall%'"],
                         capture_output=True, text=True, env=env, cwd=tmp_path)
    assert sql.returncode == 0, sql.stderr
    assert any(LONG_URL in line for line in sql.stdout.splitlines())  # the table is as wide as its link

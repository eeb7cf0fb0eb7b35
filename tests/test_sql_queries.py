"""The ready queries and the views, against a real database with known data."""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner

from listener.cli import cli
from listener.store.queries import QUERIES, queries_markdown
from listener.store import Store, run_readonly
from listener.sources import SourceState
from tests.test_digest import Writer, make_config

UTC = timezone.utc
NOW = "2026-11-22T08:00:00Z"

# (published_at, sentiment, topics, source, hashtags, author, engagement)
DATA = [
    ("2026-11-20T10:00", "negative", ("acme",), "feed", ("fail",), "alice", {"likes": 10}),
    ("2026-11-20T11:00", "negative", ("acme",), "feed", ("fail",), "alice", {"likes": 2, "replies": 1}),
    ("2026-11-21T09:00", "negative", ("acme",), "feed", ("fail", "slow"), "bob", {"likes": 30}),
    ("2026-11-21T12:00", "positive", ("acme",), "feed", ("fail",), "alice", {}),
    ("2026-11-19T08:00", "negative", ("acme",), "forum", ("slow",), "carol", {}),
    ("2026-11-18T10:00", "positive", ("acme",), "feed", ("launch",), "bob", {}),
    ("2026-11-18T11:00", "positive", ("acme",), "feed", ("launch",), "bob", {}),
    ("2026-11-18T12:00", "positive", ("acme",), "feed", ("launch",), "dave", {}),
    ("2026-11-10T10:00", "negative", ("acme",), "feed", ("ancient",), "eve", {}),  # 12 days before
    ("2026-11-22T09:00", "negative", ("acme",), "feed", ("future",), "alice", {}),  # after :now
    ("2026-10-01T10:00", "neutral", ("acme",), "feed", (), "frank", {}),  # 52 days before
    ("2026-11-21T15:00", "negative", ("globex",), "blog", ("fail",), "gina", {"likes": 5}),
    ("2026-11-21T16:00", "neutral", ("globex",), "blog", (), "gina", {}),
    ("2026-10-02T10:00", "neutral", ("acme", "globex"), "feed", ("b", "a"), "hank", {}),
]


def fill(store) -> None:
    """DATA and a few failed fetches, stored through the store's interface (any engine)."""
    w = Writer(store)
    for at, sentiment, topics, source, tags, author, engagement in DATA:
        w.add(datetime.fromisoformat(at).replace(tzinfo=UTC), sentiment, topics=topics, source=source,
              hashtags=tags, author=author, **engagement)

    def fail(source: str, at: str, error: str = "HTTP 500") -> None:
        t = datetime.fromisoformat(at).replace(tzinfo=UTC)
        store.record_failure(source, "rss", error, started_at=t, now=t, next_check_at=t)

    fail("forum", "2026-11-22T07:00")
    fail("blog", "2026-11-20T07:00", "timed out")
    fail("blog", "2026-11-21T12:00", "timed out")
    fail("feed", "2026-11-21T10:00")
    ok = datetime(2026, 11, 21, 11, tzinfo=UTC)
    store.save_fetch("feed", "rss", [], SourceState(), started_at=ok, now=ok, next_check_at=ok, items=0, requests=1)


@pytest.fixture
def db(tmp_path):
    config = make_config(tmp_path)
    with Store(config.database.path) as store:
        fill(store)
    return config.database.path


def ask(path, name: str) -> list[tuple]:
    return run_readonly(path, QUERIES[name].sql, {"now": NOW}).rows


def test_angry_this_week(db):
    assert ask(db, "angry-this-week") == [("acme", "fail", 3, 4, 0.75), ("acme", "slow", 2, 2, 1.0),
                                          ("globex", "fail", 1, 1, 1.0)]


def test_loudest_complaints(db):
    rows = run_readonly(db, QUERIES["loudest-complaints"].sql, {"now": NOW})
    assert rows.columns == ["topic", "published_at", "source", "author", "engagement", "text", "url"]
    assert [(r[0], r[3], r[4], r[1]) for r in rows.rows] == [
        ("acme", "bob", 30, "2026-11-21T09:00:00Z"), ("acme", "alice", 10, "2026-11-20T10:00:00Z"),
        ("globex", "gina", 5, "2026-11-21T15:00:00Z"), ("acme", "alice", 3, "2026-11-20T11:00:00Z"),
        ("acme", "carol", 0, "2026-11-19T08:00:00Z")]
    assert rows.rows[0][5] == "acme post 3" and rows.rows[0][6] == "https://example.org/3"


def test_share_of_voice(db):
    assert ask(db, "share-of-voice") == [("acme", 9, 81.8, -0.11), ("globex", 2, 18.2, -1.0)]


def test_top_authors(db):
    assert ask(db, "top-authors") == [
        ("acme", "bob", "feed", 3, 1, 2, 30), ("acme", "alice", "feed", 3, 2, 1, 13),
        ("globex", "gina", "blog", 2, 1, 0, 5), ("acme", "carol", "forum", 1, 1, 0, 0),
        ("acme", "dave", "feed", 1, 0, 1, 0), ("acme", "eve", "feed", 1, 1, 0, 0)]


def test_sentiment_trend(db):
    assert ask(db, "sentiment-trend") == [
        ("acme", "2026-11-10", 1, 1, 0, 0, -1.0), ("acme", "2026-11-18", 3, 0, 0, 3, 1.0),
        ("acme", "2026-11-19", 1, 1, 0, 0, -1.0), ("acme", "2026-11-20", 2, 2, 0, 0, -1.0),
        ("acme", "2026-11-21", 2, 1, 0, 1, 0.0), ("acme", "2026-11-22", 1, 1, 0, 0, -1.0),
        ("globex", "2026-11-21", 2, 1, 1, 0, -1.0)]


def test_failing_sources(db):
    assert [r[:4] for r in ask(db, "failing-sources")] == [
        ("blog", "rss", 2, 1), ("forum", "rss", 1, 1), ("feed", "rss", 0, 1)]
    blog = ask(db, "failing-sources")[0]
    assert blog[4:] == ("timed out", "2026-11-21T12:00:00Z", "2026-11-01T00:00:00Z")


def test_every_ready_query_is_tested_here():
    tested = {name.removeprefix("test_").replace("_", "-") for name in globals() if name.startswith("test_")}
    assert set(QUERIES) <= tested


def test_views(db):
    assert run_readonly(db, "select * from hashtag_daily where topic = 'acme' and hashtag = 'fail' order by day").rows == [
        ("acme", "fail", "2026-11-20", 2, 2, 0, 0, -1.0), ("acme", "fail", "2026-11-21", 2, 1, 0, 1, 0.0)]
    assert run_readonly(db, "select * from topic_daily where topic = 'globex' order by day").rows == [
        ("globex", "2026-10-02", 1, 0, 1, 0, None), ("globex", "2026-11-21", 2, 1, 1, 0, -1.0)]
    rows = run_readonly(db, "select source_id, topics, hashtags, engagement, sentiment from mention_details "
                            "where source_id in ('m2', 'm3', 'm14', 'm11') order by id").rows
    assert rows == [("m2", "acme", "fail", 3, "negative"), ("m3", "acme", "fail slow", 30, "negative"),
                    ("m11", "acme", None, 0, "neutral"), ("m14", "acme globex", "a b", 0, "neutral")]


def test_sql_command_runs_ready_queries(db, tmp_path):
    runner = CliRunner()
    base = ["--config", str(tmp_path / "config.toml"), "sql"]
    result = runner.invoke(cli, [*base, "--query", "angry-this-week", "--param", f"now={NOW}", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)[0] == {"topic": "acme", "hashtag": "fail", "negative": 3, "mentions": 4,
                                            "negative_share": 0.75}
    result = runner.invoke(cli, [*base, "--query", "nope"])
    assert result.exit_code == 1 and "no ready query named 'nope' (known: angry-this-week, " in result.output
    result = runner.invoke(cli, base)
    assert result.exit_code == 1 and "give either SQL or --query NAME" in result.output
    result = runner.invoke(cli, [*base, "--csv", "select :now as now"])  # :now is bound to the current time
    stamp = result.output.splitlines()[1]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", stamp)
    assert abs(datetime.fromisoformat(stamp.replace("Z", "+00:00")) - datetime.now(UTC)).total_seconds() < 60


def test_readme_shows_the_ready_queries():
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert queries_markdown() in readme, "paste listener.store.queries.queries_markdown() into the README"

"""`listener import`: an export loaded into a fresh database is the same data, once, scored."""

from __future__ import annotations

import json
from datetime import datetime, timezone

from click.testing import CliRunner

from listener.cli import cli
from listener.tools.importer import import_jsonl
from listener.store import MentionStore, open_store
from tests.test_digest import Writer, make_config
from tests.test_sql_queries import DATA
from tests.test_store_contract import link_counts as counts

UTC = timezone.utc
NOW = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)


def same(store: MentionStore) -> list[tuple]:
    """What an export and an import must keep of every mention: its fields, topics and hashtags (by source, id)."""
    return sorted((m["source"], m["source_id"], m["url"], m["author"], m["title"], m["text"], m["language"],
                   m["published_at"], m["likes"], m["reposts"], m["replies"], m["score"], sorted(m["topic_list"].split()),
                   sorted((m["hashtag_list"] or "").split())) for m in store.iter_mentions())


def rolled_up(store: MentionStore) -> int:
    """Scored mentions in the hourly rollups, over every topic and hour."""
    topics = {t for m in store.iter_mentions() for t in m["topic_list"].split()}
    return sum(h.mentions for t in topics for h in store.topic_hours(t, datetime(2000, 1, 1, tzinfo=UTC),
                                                                       datetime(2100, 1, 1, tzinfo=UTC)).values())


def export(tmp_path, database) -> tuple:
    """A database with known mentions, exported with `listener export`; returns (file, rows, counts)."""
    config = make_config(tmp_path, database)
    with open_store(config.database.location) as store:
        w = Writer(store)
        for at, sentiment, topics, source, tags, author, engagement in DATA:
            w.add(datetime.fromisoformat(at).replace(tzinfo=UTC), sentiment, topics=topics, source=source,
                  hashtags=tags, author=author, **engagement)
        rows, original = same(store), counts(store)
    result = CliRunner().invoke(cli, ["--config", str(tmp_path / "config.toml"), "export", "--format", "jsonl"])
    assert result.exit_code == 0, result.output
    stray = {"source": "feed", "id": "x1", "published_at": "2026-11-21T10:00:00Z", "text": "nothing to see here"}
    path = tmp_path / "export.jsonl"
    path.write_text(result.output + json.dumps(stray) + "\n")
    return path, rows, original


def test_export_then_import_into_a_fresh_database(tmp_path, database, bundled_model):
    path, rows, original = export(tmp_path, database)
    assert len(path.read_text().splitlines()) == len(DATA) + 1
    fresh = make_config(tmp_path / "fresh", database)
    with open_store(fresh.database.location) as store:
        report = import_jsonl(fresh, store, path, lambda: bundled_model, NOW)
        assert report.summary() == f"{len(DATA) + 1} lines read: {len(DATA)} new, 0 already stored, 1 matching no topic; " \
                                   f"{len(DATA)} scored"
        assert counts(store) == original == (14, 15, 14)
        assert same(store) == rows  # topics matched again, hashtags, engagement, times
        assert store.count_unscored() == 0
        assert len({m["model"] for m in store.iter_mentions()}) == 1
        assert store.source_health() == {}  # no source state touched
        assert rolled_up(store) == 15  # rollups follow
        again = import_jsonl(fresh, store, path, lambda: bundled_model, NOW)
        assert (again.new, again.duplicates, again.unmatched, again.scored) == (0, len(DATA), 1, 0)
        assert counts(store) == original


def test_import_command(tmp_path, database):
    path, _, original = export(tmp_path, database)
    other = tmp_path / "other"
    make_config(other, database)
    runner = CliRunner()
    args = ["--config", str(other / "config.toml"), "import", str(path), "--no-score"]
    result = runner.invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert result.output == "15 lines read: 14 new, 0 already stored, 1 matching no topic; 0 scored\n"
    result = runner.invoke(cli, args)
    assert result.output == "15 lines read: 0 new, 14 already stored, 1 matching no topic; 0 scored\n"
    with database.open(other) as store:
        assert counts(store) == original and store.count_unscored() == 14
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"source": "feed", "id": "1", "published_at": "2026-11-21T10:00:00Z", "text": "acme"}\nnot json\n')
    result = runner.invoke(cli, ["--config", str(other / "config.toml"), "import", str(bad), "--no-score"])
    assert result.exit_code == 1 and f"{bad}:2: not JSON" in result.output

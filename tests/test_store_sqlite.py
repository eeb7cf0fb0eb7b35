"""The SQLite engine's own specifics, beyond the contract every engine passes (test_store_contract.py):
the migrations and their table, WAL, one transaction per batch even when the process is killed, the
indexes, read-only SQL on the file, FTS5, a corrupt or full file, processes migrating at once, the
triggers that keep the rollups and the upgrade of files from before a migration, pruning in batches
that let other writers in. These may read the file with `conn`; nothing else may."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from datetime import datetime, timedelta, timezone

import pytest

from listener.errors import StoreError
from listener.store import MIGRATIONS, MentionRow, Store, iso, run_readonly
from listener.models import Sentiment
from listener.sources import SourceState


def row(now, source="feed", sid="1", url=None, topics=("acme",), hashtags=(), text="Acme is great", **kw):
    return MentionRow(source=source, source_id=sid, text=text, published_at=now - timedelta(minutes=5),
                      fetched_at=now, topics=topics, hashtags=hashtags, url=url, **kw)


def save(store, now, rows, source="feed", state=SourceState()):
    return store.save_fetch(source, "rss", rows, state, started_at=now, now=now,
                            next_check_at=now + timedelta(minutes=15), items=len(rows), requests=1)


def test_migrations_are_recorded_and_run_once(tmp_path):
    path = tmp_path / "m.db"
    with Store(path) as store:
        names = [r[0] for r in store.conn.execute("SELECT name FROM _migrations ORDER BY rowid")]
        assert names == [name for name, _ in MIGRATIONS]
        assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    with Store(path) as store:
        assert store.migrate() == []


def test_a_topic_link_carries_the_publish_time_the_series_read(tmp_path, now):
    """mention_topics copies published_at: the per-topic series and the rollup triggers read it there."""
    with Store(tmp_path / "m.db") as store:
        save(store, now, [row(now, sid="a", hashtags=("acmefail",))])
        assert store.conn.execute("SELECT published_at FROM mention_topics LIMIT 1").fetchone()[0] == iso(now - timedelta(minutes=5))
        assert store.conn.execute("SELECT hashtag, published_at FROM hashtags").fetchall() == [
            ("acmefail", iso(now - timedelta(minutes=5)))]


def test_a_killed_writer_leaves_all_or_nothing(tmp_path, now):
    """A process killed in the middle of a batch leaves none of it: the batch is one transaction."""
    path = tmp_path / "m.db"
    Store(path).close()
    script = textwrap.dedent(f"""
        import os, signal
        from datetime import datetime, timedelta, timezone
        from listener.store import Store, MentionRow
        from listener.sources import SourceState
        now = datetime(2026, 11, 20, 12, tzinfo=timezone.utc)
        store = Store({str(path)!r})
        rows = [MentionRow("feed", str(i), "text", now, now, ("acme",)) for i in range(100)]
        inserts = 0
        def trace(statement):  # SQLite's own statement trace: die at the 50th insert
            global inserts
            if statement.startswith("INSERT INTO mentions"):
                inserts += 1
                if inserts == 50:
                    os.kill(os.getpid(), signal.SIGKILL)
        store.conn.set_trace_callback(trace)
        store.save_fetch("feed", "rss", rows, SourceState(cursor="100"), started_at=now, now=now,
                         next_check_at=now, items=100, requests=1)
    """)
    proc = subprocess.run([sys.executable, "-c", script], cwd=str(tmp_path), env={"PYTHONPATH": str(_repo())})
    assert proc.returncode == -9
    with Store(path) as store:
        assert store.conn.execute("SELECT count(*) FROM mentions").fetchone()[0] == 0
        assert store.source_state("feed") == SourceState()  # the cursor was not saved either


def _repo():
    from pathlib import Path

    return Path(__file__).resolve().parents[1]


def test_indexes_make_topic_and_hashtag_series_cheap(tmp_path):
    with Store(tmp_path / "m.db") as store:
        plan = " ".join(str(r) for r in store.conn.execute(
            "EXPLAIN QUERY PLAN SELECT substr(published_at, 1, 13), count(*) FROM mention_topics "
            "WHERE topic = ? AND published_at >= ? GROUP BY 1", ("acme", "2026-11-01")))
        assert "mention_topics_topic_time" in plan
        plan = " ".join(str(r) for r in store.conn.execute(
            "EXPLAIN QUERY PLAN SELECT substr(published_at, 1, 13), count(*) FROM hashtags "
            "WHERE hashtag = ? AND published_at >= ? GROUP BY 1", ("acmefail", "2026-11-01")))
        assert "hashtags_tag_time" in plan


def test_readonly_sql(tmp_path, now):
    path = tmp_path / "m.db"
    with Store(path) as store:
        save(store, now, [row(now, sid="1"), row(now, sid="2", text="Acme is awful")])
    result = run_readonly(path, "SELECT source_id, text FROM mentions WHERE text LIKE :pat ORDER BY source_id",
                          {"pat": "%awful%"})
    assert result.columns == ["source_id", "text"] and result.rows == [("2", "Acme is awful")]
    with pytest.raises(StoreError, match="read-only"):
        run_readonly(path, "DELETE FROM mentions")
    with pytest.raises(StoreError, match="SQL error"):
        run_readonly(path, "SELEC nonsense")
    with pytest.raises(StoreError, match="time limit"):
        run_readonly(path, "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c",
                     time_limit=0.2)
    with pytest.raises(StoreError, match="does not exist"):
        run_readonly(tmp_path / "nope.db", "SELECT 1")
    with Store(path) as store:
        assert store.conn.execute("SELECT count(*) FROM mentions").fetchone()[0] == 2


def test_fts_index_follows_the_table(tmp_path, now):
    with Store(tmp_path / "m.db") as store:
        save(store, now, [row(now, sid="1", text="Een geweldige café ervaring"), row(now, sid="2", text="nothing")])
        hits = store.conn.execute("SELECT rowid FROM mentions_fts WHERE mentions_fts MATCH 'cafe'").fetchall()
        assert len(hits) == 1


def test_corrupt_database_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match="cannot open database"):
        Store(bad)


def test_wal_lets_a_reader_run_during_a_write(tmp_path, now):
    path = tmp_path / "m.db"
    with Store(path) as store:
        save(store, now, [row(now, sid="1")])
        with store.transaction():
            store.conn.execute("UPDATE mentions SET likes = 5")
            # a reader (e.g. `listener sql`) is not blocked by the open write transaction
            assert run_readonly(path, "SELECT count(*) FROM mentions").rows == [(1,)]
    sqlite3.connect(path).close()


def test_processes_opening_a_new_database_at_once_migrate_it_once(tmp_path):
    path = tmp_path / "race.db"
    code = f"from listener.store import Store; Store({str(path)!r}).close()"
    procs = [subprocess.Popen([sys.executable, "-c", code], env={"PYTHONPATH": str(_repo())}, stderr=subprocess.PIPE)
             for _ in range(4)]
    assert [p.wait(timeout=60) for p in procs] == [0, 0, 0, 0], [p.stderr.read() for p in procs]
    with Store(path) as store:
        names = [n for (n,) in store.conn.execute("SELECT name FROM _migrations")]
        assert names == [name for name, _ in MIGRATIONS]


def test_a_full_disk_is_a_clear_error_and_leaves_nothing_half_written(tmp_path, now):
    """SQLite's max_page_count makes the file 'full' exactly as a full disk does (SQLITE_FULL)."""
    with Store(tmp_path / "m.db") as store:
        save(store, now, [row(now, sid="0")], state=SourceState(cursor="0"))
        pages = store.conn.execute("PRAGMA page_count").fetchone()[0]
        store.conn.execute(f"PRAGMA max_page_count = {pages + 2}")
        big = [row(now, sid=str(i), text="acme " + "x" * 4000, url=f"https://e.example/{i}") for i in range(1, 50)]
        with pytest.raises(StoreError, match=r"cannot write to the database \(nothing of this batch was saved\): "
                                             r"database or disk is full"):
            save(store, now, big, state=SourceState(cursor="49"))
        assert store.conn.execute("SELECT count(*) FROM mentions").fetchone()[0] == 1
        assert store.source_state("feed").cursor == "0"  # the next fetch reads the batch again
        assert not store.conn.in_transaction
        store.conn.execute("PRAGMA max_page_count = 1073741823")  # space again: the same batch goes in
        assert len(save(store, now, big, state=SourceState(cursor="49")).new_ids) == 49


def test_the_topic_rollup_sums_squares_of_p_negative_through_rescores_topic_links_and_upgrades(tmp_path):
    """p_negative_sq follows scoring, re-scoring and a topic linked later, and is filled in on upgrade."""
    import sqlite3

    at = datetime(2026, 11, 20, 10, 5, tzinfo=timezone.utc)
    with Store(tmp_path / "s.db") as store:
        rows = [MentionRow("feed", str(i), f"acme {i}", at, at, ("acme",), ()) for i in range(2)]
        ids = store.save_mentions(rows).new_ids
        store.save_scores([(ids[0], Sentiment.from_probs(0.9, 0.05, 0.05)), (ids[1], Sentiment.from_probs(0.2, 0.7, 0.1))], "m", at)
        store.save_scores([(ids[0], Sentiment.from_probs(0.6, 0.3, 0.1))], "m", at)  # re-scored
        # the same mention fetched again under a second topic: its scores count there at once
        store.save_mentions([MentionRow("feed", "0", "acme 0", at, at, ("acme", "globex"), ())])
        hours = {t: store.topic_hours(t, at - timedelta(hours=1), at + timedelta(hours=1)) for t in ("acme", "globex")}
    [acme], [globex] = hours["acme"].values(), hours["globex"].values()
    assert acme.p_negative == pytest.approx(0.8) and acme.p_negative_sq == pytest.approx(0.36 + 0.04)
    assert globex.mentions == 1 and globex.p_negative_sq == pytest.approx(0.36)
    # a database from before the column (and so before m007 and m008, whose triggers read it): the
    # migration fills it in from the mentions
    with sqlite3.connect(tmp_path / "s.db") as conn:
        undo_m008(conn)
        conn.execute("DROP TRIGGER mention_topic_not_relevant")
        conn.execute("DROP TRIGGER mention_topic_kept_out")
        conn.execute("DROP TABLE corrections")
        conn.execute("DELETE FROM _migrations WHERE name = 'm007_corrections'")
        conn.execute("UPDATE topic_hourly SET p_negative_sq = 0")
        conn.execute("DELETE FROM _migrations WHERE name = 'm006_topic_negative_spread'")
        conn.execute("DROP TRIGGER mentions_scored_spread")
        conn.execute("DROP TRIGGER mention_topic_added_spread")
        conn.execute("ALTER TABLE topic_hourly DROP COLUMN p_negative_sq")
    with Store(tmp_path / "s.db") as store:
        [again] = store.topic_hours("acme", at - timedelta(hours=1), at + timedelta(hours=1)).values()
    assert again.p_negative_sq == pytest.approx(0.40)


def undo_m008(conn: sqlite3.Connection) -> None:
    """Take a database back to before m008 (its triggers, table and columns, its record)."""
    for trigger in ("mentions_engagement", "mention_topic_added_engagement", "mention_topic_not_relevant_engagement"):
        conn.execute(f"DROP TRIGGER {trigger}")
    conn.execute("DROP TABLE topic_author_daily")
    for sentiment in ("negative", "neutral", "positive"):
        conn.execute(f"ALTER TABLE topic_hourly DROP COLUMN {sentiment}_engagement")
    conn.execute("DELETE FROM _migrations WHERE name = 'm008_engagement_author_rollups'")


def test_m008_fills_engagement_and_authors_of_mentions_stored_before_it(tmp_path):
    at = datetime(2026, 11, 21, 10, 15, tzinfo=timezone.utc)
    path, span = tmp_path / "e.db", (at - timedelta(days=3), at + timedelta(hours=1))
    with Store(path) as store:
        ids = store.save_mentions([MentionRow("feed", str(i), "acme", at - timedelta(hours=5 * i), at,
                                              ("acme",) if i % 2 else ("acme", "globex"), (), author=f"u{i % 3}",
                                              likes=i, score=1) for i in range(12)]).new_ids
        store.save_scores([(m, Sentiment.from_probs(0.8, 0.1, 0.1) if k % 2 else Sentiment.from_probs(0.1, 0.1, 0.8))
                           for k, m in enumerate(ids[:10])], "m", at)  # two not scored
        figures = [(store.topic_engagement(t, *span), store.top_authors(t, *span)) for t in ("acme", "globex")]
        rollups = [store.conn.execute(f"SELECT * FROM {t} ORDER BY 1, 2, 3").fetchall()
                   for t in ("topic_hourly", "topic_author_daily")]
    assert figures[0][0] and figures[0][1] and figures[1][1]
    with sqlite3.connect(path) as conn:  # a database from before m008
        undo_m008(conn)
    with Store(path) as store:
        assert [(store.topic_engagement(t, *span), store.top_authors(t, *span)) for t in ("acme", "globex")] == figures
        assert [store.conn.execute(f"SELECT * FROM {t} ORDER BY 1, 2, 3").fetchall()
                for t in ("topic_hourly", "topic_author_daily")] == rollups


def old_database(path, migrations: int) -> sqlite3.Connection:
    """A database file as its first `migrations` migrations left it (an upgrade's starting point), open."""
    import sqlite_utils

    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE _migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
    for name, fn in MIGRATIONS[:migrations]:
        fn(sqlite_utils.Database(conn))
        conn.execute("INSERT INTO _migrations VALUES (?, '2026-11-01T00:00:00Z')", (name,))
    return conn


def test_migration_fills_the_breakdown_of_mentions_stored_before_it(tmp_path):
    from tests.test_digest import Writer

    path = tmp_path / "old.db"
    conn = old_database(path, 2)  # a database from before m003
    for i, (source, language, sentiment) in enumerate([("feed", "en", "negative"), ("feed", None, "positive"),
                                                        ("forum", "en", "negative")], 1):
        conn.execute("INSERT INTO mentions (id, source, source_id, text, language, published_at, fetched_at) "
                     "VALUES (?, ?, ?, 'acme', ?, '2026-11-21T10:15:00Z', '2026-11-21T10:15:00Z')",
                     (i, source, str(i), language))
        conn.execute("INSERT INTO mention_topics VALUES (?, 'acme', '2026-11-21T10:15:00Z')", (i,))
        conn.execute("UPDATE mentions SET sentiment = ? WHERE id = ?", (sentiment, i))
    conn.commit()
    conn.close()
    with Store(path) as store:
        assert store.conn.execute("SELECT * FROM topic_breakdown_hourly ORDER BY source, language").fetchall() == [
            ("acme", "2026-11-21T10:00:00Z", "feed", "", 1, 0, 0, 1),
            ("acme", "2026-11-21T10:00:00Z", "feed", "en", 1, 1, 0, 0),
            ("acme", "2026-11-21T10:00:00Z", "forum", "en", 1, 1, 0, 0)]
        w = Writer(store)  # and the triggers keep it up from then on
        w.add(datetime(2026, 11, 21, 10, 30, tzinfo=timezone.utc), "negative", source="forum")
        assert store.conn.execute("SELECT mentions, negative FROM topic_breakdown_hourly WHERE source = 'forum'"
                                  ).fetchall() == [(2, 2)]


def _tables(store: Store) -> tuple[int, int, int]:
    return tuple(store.conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                 for t in ("mentions", "mention_topics", "hashtags"))


def _rollup_rows(store: Store) -> list[tuple]:
    return store.conn.execute(
        "SELECT 'topic', topic, hour, mentions FROM topic_hourly UNION ALL "
        "SELECT 'hashtag', hashtag, hour, mentions FROM hashtag_hourly UNION ALL "
        "SELECT 'breakdown', source || '/' || language, hour, mentions FROM topic_breakdown_hourly ORDER BY 1, 2, 3").fetchall()


def test_prune_deletes_in_batches_that_let_other_writers_in_with_topics_hashtags_and_search_index(tmp_path):
    from tests.test_digest import make_config
    from tests.test_retention import NOW, fill

    config = make_config(tmp_path)
    with Store(config.database.path) as store:
        fill(store)
        before_rollups = _rollup_rows(store)
        assert _tables(store) == (40, 80, 40)
        batches = []

        def between_batches(n: int) -> None:
            batches.append(n)
            other = sqlite3.connect(str(config.database.path), timeout=0)  # would fail if a batch held the lock
            other.execute("BEGIN IMMEDIATE")
            other.execute("ROLLBACK")
            other.close()

        # older than 30 days: days 30..39 (published at NOW - 30d - 1h and older)
        deleted = store.prune(NOW - timedelta(days=30), batch=4, on_batch=between_batches)
        assert deleted == 10 and batches == [4, 4, 2]
        assert _tables(store) == (30, 60, 30)  # ON DELETE CASCADE
        oldest = store.conn.execute("SELECT min(published_at) FROM mentions").fetchone()[0]
        assert oldest == "2026-10-24T02:00:00Z"  # 29 days and an hour before NOW
        search = "SELECT count(*) FROM mentions_fts WHERE mentions_fts MATCH ?"
        assert store.conn.execute(search, ("zebra35",)).fetchone()[0] == 0
        assert store.conn.execute(search, ("zebra29",)).fetchone()[0] == 1
        assert _rollup_rows(store) == before_rollups  # counts of the past stay
        assert store.conn.execute("SELECT sum(mentions) FROM topic_daily WHERE topic = 'acme'").fetchone()[0] == 40
        assert store.prune(NOW - timedelta(days=30)) == 0


def test_prune_logs_deletes_in_batches_until_none_are_left(tmp_path):
    from tests.test_retention import NOW

    with Store(tmp_path / "l.db") as store:
        for day in range(1, 8):  # seven old fetch attempts, one recent
            at = NOW - timedelta(days=30 + day)
            store.record_failure("feed", "rss", "HTTP 500", started_at=at, now=at, next_check_at=at)
        store.record_failure("feed", "rss", "HTTP 500", started_at=NOW, now=NOW, next_check_at=NOW)
        statements = []
        store.conn.set_trace_callback(lambda sql: statements.append(sql) if sql.startswith("DELETE FROM fetches") else None)
        assert store.prune_logs(NOW - timedelta(days=30), batch=3) == {"fetches": 7, "alert_events": 0, "incidents": 0, "outbox": 0}
        store.conn.set_trace_callback(None)
        assert len(statements) == 3  # 3 + 3 + 1
        assert store.conn.execute("SELECT count(*) FROM fetches").fetchone()[0] == 1


def test_an_old_file_gains_the_corrections_table_and_its_triggers_leave_pruning_alone(tmp_path):
    """m007 on a database from before it: the mentions there can be corrected at once; the trigger
    that takes a not-relevant mention out of the rollups fires for that removal only, never for the
    topic links pruning deletes."""
    path = tmp_path / "old.db"
    conn = old_database(path, 6)  # a database from before m007
    conn.commit()
    conn.close()
    at = datetime(2026, 11, 21, 10, 15, tzinfo=timezone.utc)
    with Store(path) as store:
        assert [n for n, in store.conn.execute("SELECT name FROM _migrations WHERE name LIKE 'm007%'")] == [
            "m007_corrections"]
        ids = store.save_mentions([MentionRow("feed", str(i), "acme", at - timedelta(days=i), at, ("acme", "globex"), ())
                                   for i in (0, 40)]).new_ids
        store.save_scores([(i, Sentiment.from_probs(0.8, 0.1, 0.1)) for i in ids], "m", at)
        store.mark_not_relevant(ids[0], topic="globex", by="ann", at=at)
        store.correct_sentiment(ids[1], "positive", by="ann", at=at)
        counted = _rollup_rows(store)
        assert store.prune(at - timedelta(days=30)) == 1  # the corrected one: its links go, its counts stay
        assert _rollup_rows(store) == counted and _tables(store) == (1, 1, 0)
        assert store.conn.execute("SELECT count(*) FROM corrections").fetchone()[0] == 1
    result = run_readonly(path, "SELECT mention_id, topic, label, model_sentiment, corrected_by FROM corrections")
    assert result.rows == [(ids[0], "globex", "not relevant", "negative", "ann")]

"""The mention database: migrations, dedup, one-transaction batches, source state, read-only SQL."""

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


def test_mentions_are_stored_once_per_source_id_and_per_url(tmp_path, now):
    with Store(tmp_path / "m.db") as store:
        first = save(store, now, [row(now, sid="a", url="https://news.example/x", hashtags=("acmefail",), likes=3),
                                  row(now, sid="b", url=None)])
        assert len(first.new_ids) == 2
        # the same item again, with more likes: refreshed, not duplicated
        again = save(store, now, [row(now, sid="a", url="https://news.example/x", likes=10)])
        assert again.new_ids == [] and again.updated == 1
        # the same URL through another source, for another topic: one mention, two topics
        other = save(store, now, [row(now, source="other", sid="zz", url="https://news.example/x", topics=("globex",))],
                     source="other")
        assert other.new_ids == [] and other.updated == 1
        c = store.conn
        assert c.execute("SELECT count(*) FROM mentions").fetchone()[0] == 2
        assert c.execute("SELECT likes FROM mentions WHERE source_id = 'a'").fetchone()[0] == 10
        topics = c.execute("SELECT topic FROM mention_topics mt JOIN mentions m ON m.id = mt.mention_id "
                           "WHERE m.source_id = 'a' ORDER BY topic").fetchall()
        assert [t for (t,) in topics] == ["acme", "globex"]
        assert c.execute("SELECT hashtag FROM hashtags").fetchall() == [("acmefail",)]
        assert c.execute("SELECT published_at FROM mention_topics LIMIT 1").fetchone()[0] == iso(now - timedelta(minutes=5))


def test_source_state_and_failures(tmp_path, now):
    with Store(tmp_path / "m.db") as store:
        save(store, now, [], state=SourceState(etag='"v1"', last_modified="Fri, 20 Nov 2026 11:00:00 GMT"))
        assert store.source_state("feed") == SourceState('"v1"', "Fri, 20 Nov 2026 11:00:00 GMT", None)
        n1 = store.record_failure("feed", "rss", "HTTP 500 from example.org", started_at=now, now=now,
                                  next_check_at=now + timedelta(minutes=30))
        n2 = store.record_failure("feed", "rss", "HTTP 500 from example.org", started_at=now, now=now,
                                  next_check_at=now + timedelta(hours=1))
        assert (n1, n2) == (1, 2)
        h = store.source_health()["feed"]
        assert h.consecutive_errors == 2 and h.last_error == "HTTP 500 from example.org"
        assert h.last_success_at == now and h.next_check_at == now + timedelta(hours=1)
        assert h.state.etag == '"v1"'  # a failure keeps the validators
        statuses = [s for (s,) in store.conn.execute("SELECT status FROM fetches ORDER BY id")]
        assert statuses == ["ok", "error", "error"]  # a failure is a failure, never "zero mentions"
        save(store, now, [row(now)])
        assert store.source_health()["feed"].consecutive_errors == 0


def test_scores_are_saved(tmp_path, now):
    with Store(tmp_path / "m.db") as store:
        ids = save(store, now, [row(now, sid=str(i)) for i in range(3)]).new_ids
        assert [r[0] for r in store.unscored()] == ids
        store.save_scores([(ids[0], Sentiment.from_probs(0.8, 0.1, 0.1))], "test-model", now)
        assert store.count_unscored() == 2
        r = store.conn.execute("SELECT sentiment, p_negative, sentiment_score, model, scored_at FROM mentions "
                               "WHERE id = ?", (ids[0],)).fetchone()
        assert r[0] == "negative" and r[1] == pytest.approx(0.8) and r[2] == pytest.approx(-0.7)
        assert r[3] == "test-model" and r[4] == iso(now)


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


def test_rollups_follow_a_rescore_that_keeps_the_label(tmp_path):
    """The hourly rollups sum P(negative): re-scoring a mention with the same label moves the sum too."""

    at = datetime(2026, 11, 20, 10, 5, tzinfo=timezone.utc)
    with Store(tmp_path / "r.db") as store:
        rows = [MentionRow("feed", str(i), f"acme {i}", at, at, ("acme",), ("tag",)) for i in range(2)]
        ids = store.save_mentions(rows).new_ids
        store.save_scores([(ids[0], Sentiment.from_probs(0.9, 0.05, 0.05)), (ids[1], Sentiment.from_probs(0.9, 0.05, 0.05))], "m", at)
        store.save_scores([(ids[0], Sentiment.from_probs(0.6, 0.3, 0.1))], "m", at)  # still negative, less sure
        store.save_scores([(ids[1], Sentiment.from_probs(0.1, 0.8, 0.1))], "m", at)  # now neutral
        topic = store.conn.execute("SELECT mentions, negative, p_negative FROM topic_hourly").fetchone()
        tag = store.conn.execute("SELECT mentions, negative, p_negative FROM hashtag_hourly").fetchone()
    assert topic[:2] == tag[:2] == (2, 1)
    assert topic[2] == pytest.approx(0.7) and tag[2] == pytest.approx(0.7)


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
    # a database from before the column: the migration fills it in from the mentions
    with sqlite3.connect(tmp_path / "s.db") as conn:
        conn.execute("UPDATE topic_hourly SET p_negative_sq = 0")
        conn.execute("DELETE FROM _migrations WHERE name = 'm006_topic_negative_spread'")
        conn.execute("DROP TRIGGER mentions_scored_spread")
        conn.execute("DROP TRIGGER mention_topic_added_spread")
        conn.execute("ALTER TABLE topic_hourly DROP COLUMN p_negative_sq")
    with Store(tmp_path / "s.db") as store:
        [again] = store.topic_hours("acme", at - timedelta(hours=1), at + timedelta(hours=1)).values()
    assert again.p_negative_sq == pytest.approx(0.40)

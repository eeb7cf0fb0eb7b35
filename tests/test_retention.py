"""Retention on a real database: prune in batches, cascade, FTS in step, rollups kept, once a day."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from datetime import datetime, timedelta, timezone

from listener.store.retention import prune_if_due
from listener.store import Store
from tests.test_digest import Writer, make_config

UTC = timezone.utc
NOW = datetime(2026, 11, 22, 3, 0, tzinfo=UTC)


def counts(store: Store) -> tuple[int, int, int]:
    return tuple(store.conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                 for t in ("mentions", "mention_topics", "hashtags"))


def rollups(store: Store) -> list[tuple]:
    return store.conn.execute(
        "SELECT 'topic', topic, hour, mentions FROM topic_hourly UNION ALL "
        "SELECT 'hashtag', hashtag, hour, mentions FROM hashtag_hourly UNION ALL "
        "SELECT 'breakdown', source || '/' || language, hour, mentions FROM topic_breakdown_hourly ORDER BY 1, 2, 3").fetchall()


def fill(store: Store) -> None:
    w = Writer(store)
    for days_ago in range(40):  # one mention a day for 40 days, with a hashtag and a searchable word
        w.add(NOW - timedelta(days=days_ago, hours=1), "negative" if days_ago % 2 else "positive",
              topics=("acme", "globex"), hashtags=("daily",), text=f"acme globex zebra{days_ago}")


def test_prune_deletes_in_batches_with_topics_hashtags_and_search_index(tmp_path):
    config = make_config(tmp_path)
    with Store(config.database.path) as store:
        fill(store)
        before_rollups = rollups(store)
        assert counts(store) == (40, 80, 40)
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
        assert counts(store) == (30, 60, 30)
        oldest = store.conn.execute("SELECT min(published_at) FROM mentions").fetchone()[0]
        assert oldest == "2026-10-24T02:00:00Z"  # 29 days and an hour before NOW
        search = "SELECT count(*) FROM mentions_fts WHERE mentions_fts MATCH ?"
        assert store.conn.execute(search, ("zebra35",)).fetchone()[0] == 0
        assert store.conn.execute(search, ("zebra29",)).fetchone()[0] == 1
        assert rollups(store) == before_rollups  # counts of the past stay
        assert store.conn.execute("SELECT sum(mentions) FROM topic_daily WHERE topic = 'acme'").fetchone()[0] == 40
        assert store.prune(NOW - timedelta(days=30)) == 0


def test_prune_if_due_runs_once_a_day_and_survives_a_restart(tmp_path):
    config = make_config(tmp_path)
    assert config.database.keep is None
    store = Store(config.database.path)
    fill(store)
    assert prune_if_due(config, store, NOW) is None  # keep not set: kept forever
    assert counts(store)[0] == 40
    config = replace(config, database=replace(config.database, keep=timedelta(days=30)))
    assert prune_if_due(config, store, NOW) == 10
    assert prune_if_due(config, store, NOW + timedelta(hours=1)) is None  # done today
    store.close()
    store = Store(config.database.path)  # a restart does not prune again within the day
    assert prune_if_due(config, store, NOW + timedelta(hours=23, minutes=59)) is None
    assert counts(store)[0] == 30
    assert prune_if_due(config, store, NOW + timedelta(days=1)) == 1  # a day later: the next day's oldest
    assert store.last_job_run("prune") == NOW + timedelta(days=1)
    detail = store.conn.execute("SELECT detail FROM job_runs WHERE job = 'prune'").fetchone()[0]
    assert detail == "deleted 1 mentions published before 2026-10-24T03:00:00Z"
    store.close()


def test_prune_if_due_deletes_old_logs_but_never_a_queued_notification(tmp_path):
    config = make_config(tmp_path)
    config = replace(config, database=replace(config.database, keep=timedelta(days=30)))
    old, recent = NOW - timedelta(days=31), NOW - timedelta(days=1)
    with Store(config.database.path) as store:
        for at in (old, recent):
            store.record_failure("feed", "rss", "HTTP 500", started_at=at, now=at, next_check_at=at)
            with store.transaction():
                store.add_alert_event("backlash", "{}", "firing", at, 1.0, "summary", None)
                for sent in ("sent", "queued"):
                    store.enqueue(message_id=f"{sent}-{at:%d}", channel="email", kind="alert", recipients=["a@b"],
                                  subject="s", body_text="b", body_html=None, payload=None, now=at)
            sent_id = store.conn.execute("SELECT id FROM outbox WHERE message_id = ?", (f"sent-{at:%d}",)).fetchone()[0]
            store.mark_sent(sent_id, at)
        assert prune_if_due(config, store, NOW) == 0
        left = {t: [r[0] for r in store.conn.execute(f"SELECT {c} FROM {t} ORDER BY 1")]
                for t, c in (("fetches", "started_at"), ("alert_events", "at"), ("outbox", "message_id"))}
        assert left == {"fetches": ["2026-11-21T03:00:00Z"], "alert_events": ["2026-11-21T03:00:00Z"],
                        "outbox": sorted([f"queued-{old:%d}", f"queued-{recent:%d}", f"sent-{recent:%d}"])}
        detail = store.conn.execute("SELECT detail FROM job_runs WHERE job = 'prune'").fetchone()[0]
        assert detail == ("deleted 0 mentions published before 2026-10-23T03:00:00Z "
                          "(and 1 fetches, 1 alert_events, 1 outbox rows)")


def test_prune_logs_deletes_in_batches_until_none_are_left(tmp_path):
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

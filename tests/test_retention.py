"""Retention, the daily job: prune once a day (also after a restart), old logs with the mentions,
never a queued notification. (How an engine prunes is in the contract and in test_store_sqlite.py.)"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone

from listener.store.retention import prune_if_due
from listener.store import MentionStore, open_store
from tests.test_digest import Writer, make_config
from tests.test_store_contract import log_a_day

UTC = timezone.utc
NOW = datetime(2026, 11, 22, 3, 0, tzinfo=UTC)


def stored(store: MentionStore) -> int:
    return sum(store.count_by_sentiment().values())


def fill(store: MentionStore) -> None:
    w = Writer(store)
    for days_ago in range(40):  # one mention a day for 40 days, with a hashtag and a searchable word
        w.add(NOW - timedelta(days=days_ago, hours=1), "negative" if days_ago % 2 else "positive",
              topics=("acme", "globex"), hashtags=("daily",), text=f"acme globex zebra{days_ago}")


def test_prune_if_due_runs_once_a_day_and_survives_a_restart(tmp_path, database):
    config = make_config(tmp_path, database)
    assert config.database.keep is None
    store = open_store(config.database.location)
    fill(store)
    assert prune_if_due(config, store, NOW) is None  # keep not set: kept forever
    assert stored(store) == 40
    config = replace(config, database=replace(config.database, keep=timedelta(days=30)))
    assert prune_if_due(config, store, NOW) == 10
    assert prune_if_due(config, store, NOW + timedelta(hours=1)) is None  # done today
    store.close()
    store = open_store(config.database.location)  # a restart does not prune again within the day
    assert prune_if_due(config, store, NOW + timedelta(hours=23, minutes=59)) is None
    assert stored(store) == 30
    assert prune_if_due(config, store, NOW + timedelta(days=1)) == 1  # a day later: the next day's oldest
    assert store.last_job_run("prune") == NOW + timedelta(days=1)
    assert store.job_runs()["prune"].detail == "deleted 1 mentions published before 2026-10-24T03:00:00Z"
    store.close()


def test_prune_if_due_deletes_old_logs_but_never_a_queued_notification(tmp_path, database):
    config = make_config(tmp_path, database)
    config = replace(config, database=replace(config.database, keep=timedelta(days=30)))
    old, recent = NOW - timedelta(days=31), NOW - timedelta(days=1)
    with open_store(config.database.location) as store:
        for at in (old, recent):
            log_a_day(store, at)
        assert prune_if_due(config, store, NOW) == 0
        left = {"fetches": sorted(f["started_at"] for f in store.fetch_log()),
                "alert_events": sorted(e["at"] for e in store.alert_events(old - timedelta(days=1))),
                "outbox": sorted(n["message_id"] for n in store.notifications())}
        assert left == {"fetches": ["2026-11-21T03:00:00Z"], "alert_events": ["2026-11-21T03:00:00Z"],
                        "outbox": sorted([f"queued-{old:%d}", f"queued-{recent:%d}", f"sent-{recent:%d}"])}
        assert store.job_runs()["prune"].detail == ("deleted 0 mentions published before 2026-10-23T03:00:00Z "
                                                    "(and 1 fetches, 1 alert_events, 1 outbox rows)")

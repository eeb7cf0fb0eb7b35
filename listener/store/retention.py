"""Retention: with `[database] keep`, mentions older than that are deleted once a day, and so
are the logs of the same age (fetch attempts, alert events, notifications already delivered;
notifications still queued are never deleted).

`prune_if_due` is the daemon's job (run it as often as you like: it prunes when the last prune is
a day old or more, recorded in `job_runs`, so a restart does not prune again). Deleting goes in
batches, each its own short transaction, so fetching and scoring are never blocked for long.
Topics, hashtags and the search index of a deleted mention go with it; the hourly rollups (and
the daily views built on them) keep their counts, so trends outlive the mentions themselves.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Callable

from listener.config import Config
from listener.store import MentionStore, iso

PRUNE_JOB = "prune"
PRUNE_EVERY = timedelta(days=1)


def prune_if_due(config: Config, store: MentionStore, now: datetime, *,
                 on_batch: Callable[[int], None] | None = None) -> int | None:
    """Delete mentions published before `now - keep` if a day has passed since the last prune.

    Returns how many were deleted, or None when nothing was due (or `keep` is not set).
    """
    keep = config.database.keep
    if keep is None:
        return None
    last = store.last_job_run(PRUNE_JOB)
    if last is not None and now - last < PRUNE_EVERY:
        return None
    before = now - keep
    deleted = store.prune(before, on_batch=on_batch)
    logs = store.prune_logs(before)
    detail = f"deleted {deleted} mentions published before {iso(before)}"
    if any(logs.values()):
        detail += " (and " + ", ".join(f"{n} {table}" for table, n in logs.items() if n) + " rows)"
    store.record_job_run(PRUNE_JOB, now, detail)
    return deleted

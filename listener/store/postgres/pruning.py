"""Retention of mentions on PostgreSQL: whole months dropped as partitions, the rest of the boundary
month deleted in short batches, with their keys and corrections; the rollups keep their counts."""

from __future__ import annotations

from datetime import datetime
from typing import Callable

from listener.store.postgres.partitions import PostgresPartitions, month_bounds
from listener.store.types import iso

# the oldest `batch` keys before the cut, and everything of theirs (a key whose month was dropped
# has nothing left but its corrections); how many keys and how many mentions went
_BATCH = """WITH doomed AS (
        SELECT id, published_at FROM mention_keys WHERE published_at < %(before)s
        ORDER BY published_at, id LIMIT %(batch)s),
    m AS (DELETE FROM mentions m USING doomed d WHERE m.id = d.id AND m.published_at = d.published_at
          AND m.published_at < %(before)s RETURNING m.id),
    t AS (DELETE FROM mention_topics t USING doomed d WHERE t.mention_id = d.id AND t.published_at = d.published_at
          AND t.published_at < %(before)s),
    h AS (DELETE FROM hashtags h USING doomed d WHERE h.mention_id = d.id AND h.published_at = d.published_at
          AND h.published_at < %(before)s),
    c AS (DELETE FROM corrections c USING doomed d WHERE c.mention_id = d.id),
    k AS (DELETE FROM mention_keys k USING doomed d WHERE k.id = d.id RETURNING k.id)
    SELECT (SELECT count(*) FROM k) AS keys, (SELECT count(*) FROM m) AS mentions"""


class PostgresPruning(PostgresPartitions):
    """`interface.Retention.prune` on PostgreSQL (the logs and the job log are `logs`')."""

    def prune(self, before: datetime, *, batch: int = 5000, on_batch: Callable[[int], None] | None = None) -> int:
        """(A month wholly before `before` goes as partitions, detached without blocking anyone; its keys
        and corrections, and the boundary month's mentions before `before`, go `batch` at a time.)"""
        total = 0
        for month in self._partition_months():
            if month_bounds(month)[1] <= before:
                held = self._drop_month(month)
                total += held
                if on_batch and held:
                    on_batch(held)
        while True:
            with self.transaction() as conn:
                # planned for this cut and batch each time: a kept plan could read a partition whole per batch
                gone = conn.execute(_BATCH, {"before": iso(before), "batch": batch}, prepare=False).fetchone()
            total += gone["mentions"]
            if on_batch and gone["mentions"]:
                on_batch(gone["mentions"])
            if gone["keys"] < batch:
                return total

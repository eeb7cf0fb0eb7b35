"""`listener db copy`: a whole mention database moved to another engine (SQLite to PostgreSQL, and
back), with its ids, then checked table by table.

Order matters: sources and their fetch log, then the mentions with their topics, hashtags and
corrections (each engine keeps its own search index, dedup keys and partitions as they land), then
the rollups: the destination's triggers rebuilt them from the scored mentions it received, but the
source's rollups also hold the counts of mentions pruned long ago (trends outlive mentions), so
they replace what was rebuilt. Then the alert history, the outbox and the job log. Leases and
claims are not copied: they belong to running workers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from listener.errors import StoreError
from listener.store.interface import MentionStore

MENTION_TABLES = ("sources", "fetches", "mentions", "mention_topics", "hashtags", "corrections")
ROLLUP_TABLES = ("topic_hourly", "hashtag_hourly", "topic_breakdown_hourly", "topic_author_daily")
STATE_TABLES = ("alert_state", "alert_events", "rule_evaluations", "incidents", "outbox", "job_runs")
TABLES = MENTION_TABLES + ROLLUP_TABLES + STATE_TABLES


@dataclass
class CopyReport:
    """What a copy moved: rows per table, the same on both sides (checked)."""

    rows: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        return (f"copied {self.rows.get('mentions', 0):,} mentions and {sum(self.rows.values()):,} rows in "
                f"{len(self.rows)} tables; every table's count checked on both sides")


def copy_database(source: MentionStore, target: MentionStore, *, batch: int = 5000,
                  progress: Callable[[str, int], None] | None = None) -> CopyReport:
    """Copy every documented table of `source` into `target`, which must hold no mentions, alert
    history or notifications yet (a fresh database); StoreError naming the table whose counts
    differ at the end. `progress(table, rows so far)` after each batch."""
    for table in ("mentions", "alert_events", "outbox"):
        if target.count_rows(table):
            raise StoreError(f"the destination already holds {table} ({target.count_rows(table):,} rows): "
                             "copy into a new, empty database")
    report = CopyReport()
    for table in TABLES:
        if table in ROLLUP_TABLES or table in ("sources", "job_runs", "rule_evaluations"):
            target.clear_table(table)  # rebuilt by the destination's triggers, or made by its first open
        columns = [c for c in source.table_columns(table) if c in set(target.table_columns(table))]
        done = 0
        for rows in source.read_table(table, batch=batch):
            target.write_rows(table, [{c: r[c] for c in columns} for r in rows])
            done += len(rows)
            if progress:
                progress(table, done)
        report.rows[table] = done
    target.finish_copy()
    for table in TABLES:
        have, want = target.count_rows(table), source.count_rows(table)
        if have != want:
            raise StoreError(f"copy incomplete: {table} has {have:,} rows in the destination, {want:,} in the source")
    return report

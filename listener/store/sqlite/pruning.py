"""Retention on SQLite: deleting old mentions and logs in short batches, and the job log that
says when it last ran."""

from __future__ import annotations

from datetime import datetime
from typing import Callable

from listener.store.rows import LogsPruned
from listener.store.sqlite.connection import SQLiteBase
from listener.store.types import JobRun, iso, parse_iso


class SQLitePruning(SQLiteBase):
    """`interface.Retention` on SQLite."""

    def prune(self, before: datetime, *, batch: int = 5000, on_batch: Callable[[int], None] | None = None) -> int:
        """(Topics and hashtags go by ON DELETE CASCADE, the FTS index by trigger; the rollups have no
        trigger on delete, so they keep their counts.)"""
        return self._delete_batched("mentions", "published_at < ?", (iso(before),), batch, on_batch,
                                    order_by="published_at")

    def prune_logs(self, before: datetime, *, batch: int = 5000) -> LogsPruned:
        cutoff = (iso(before),)
        return {
            "fetches": self._delete_batched("fetches", "started_at < ?", cutoff, batch),
            "alert_events": self._delete_batched("alert_events", "at < ?", cutoff, batch),
            "incidents": self._delete_batched("incidents", "state = 'closed' AND closed_at < ?", cutoff, batch),
            "outbox": self._delete_batched("outbox", "coalesce(sent_at, given_up_at) < ?", cutoff, batch),
        }

    def _delete_batched(self, table: str, where: str, params: tuple, batch: int,
                        on_batch: Callable[[int], None] | None = None, order_by: str = "id") -> int:
        """DELETE the rows of `table` matching `where`, `batch` per transaction (oldest first by
        `order_by`); the total."""
        total = 0
        select = f"SELECT id FROM {table} WHERE {where} ORDER BY {order_by} LIMIT ?"
        while True:
            with self.transaction():
                n = self.conn.execute(f"DELETE FROM {table} WHERE id IN ({select})", (*params, batch)).rowcount
            total += n
            if on_batch and n:
                on_batch(n)
            if n < batch:
                return total

    def last_job_run(self, job: str) -> datetime | None:
        r = self.conn.execute("SELECT last_run_at FROM job_runs WHERE job = ?", (job,)).fetchone()
        return parse_iso(r[0]) if r else None

    def record_job_run(self, job: str, at: datetime, detail: str | None = None) -> None:
        with self.transaction():
            self.conn.execute(
                """INSERT INTO job_runs (job, last_run_at, detail) VALUES (?, ?, ?)
                   ON CONFLICT(job) DO UPDATE SET last_run_at = excluded.last_run_at, detail = excluded.detail""",
                (job, iso(at), detail))

    def job_runs(self) -> dict[str, JobRun]:
        return {job: JobRun(job, parse_iso(at), detail)
                for job, at, detail in self.conn.execute("SELECT job, last_run_at, detail FROM job_runs ORDER BY job")}

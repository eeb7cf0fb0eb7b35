"""The logs' retention and the job log on PostgreSQL: fetch attempts, alert events, closed incidents and
finished notifications deleted in short batches, and when each job last ran. (Mentions are pruned by
whole partitions, in `pruning`.)"""

from __future__ import annotations

from datetime import datetime

from listener.store.postgres.connection import PostgresBase
from listener.store.rows import LogsPruned
from listener.store.types import JobRun, iso, parse_iso

# table -> which of its rows are old (the cutoff bound as %(before)s)
_OLD_LOGS = {
    "fetches": "started_at < %(before)s",
    "alert_events": "at < %(before)s",
    "incidents": "state = 'closed' AND closed_at < %(before)s",
    "outbox": "coalesce(sent_at, given_up_at) < %(before)s",  # queued ones stay, whatever their age
}


class PostgresLogs(PostgresBase):
    """`interface.Retention`'s logs and job log on PostgreSQL."""

    def prune_logs(self, before: datetime, *, batch: int = 5000) -> LogsPruned:
        return {table: self._delete_log_rows(table, where, iso(before), batch)  # type: ignore[return-value]
                for table, where in _OLD_LOGS.items()}

    def _delete_log_rows(self, table: str, where: str, before: str, batch: int) -> int:
        """DELETE the rows of `table` matching `where`, `batch` per transaction, oldest first by id; how many."""
        total = 0
        while True:
            with self.transaction() as conn:
                n = conn.execute(f"DELETE FROM {table} WHERE id IN (SELECT id FROM {table} WHERE {where} "
                                 "ORDER BY id LIMIT %(batch)s)", {"before": before, "batch": batch}).rowcount
            total += n
            if n < batch:
                return total

    def last_job_run(self, job: str) -> datetime | None:
        r = self._one("SELECT last_run_at FROM job_runs WHERE job = %s", (job,))
        return parse_iso(r["last_run_at"]) if r else None

    def record_job_run(self, job: str, at: datetime, detail: str | None = None) -> None:
        with self.transaction() as conn:
            conn.execute(
                """INSERT INTO job_runs (job, last_run_at, detail) VALUES (%s, %s, %s)
                   ON CONFLICT (job) DO UPDATE SET last_run_at = excluded.last_run_at, detail = excluded.detail""",
                (job, iso(at), detail))

    def job_runs(self) -> dict[str, JobRun]:
        return {r["job"]: JobRun(r["job"], parse_iso(r["last_run_at"]), r["detail"])
                for r in self._dicts('SELECT job, last_run_at, detail FROM job_runs ORDER BY job COLLATE "C"')}

"""Alert state on PostgreSQL: the instances, their transitions, incidents and rule evaluations, and one
evaluation written with its notifications in one transaction."""

from __future__ import annotations

from datetime import datetime
from typing import Mapping, Sequence

from psycopg import sql

from listener.store.postgres.outbox import PostgresOutbox
from listener.store.rows import (AlertEventRow, AlertStateRow, IncidentRecord, IncidentRow, NewAlertEvent,
                                 Notification, RuleEvaluation, RuleEvaluationRow)
from listener.store.types import iso
from listener.store.decode import incident_record

_EVENT = """INSERT INTO alert_events (rule, labels, state, at, value, summary, details, incident_id)
            VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"""


class PostgresAlertState(PostgresOutbox):
    """`interface.AlertState` on PostgreSQL (an evaluation queues its notifications through the outbox)."""

    def alert_states(self, rule: str | None = None) -> list[AlertStateRow]:
        return self._dicts("SELECT * FROM alert_state" + (" WHERE rule = %s" if rule else "")
                           + ' ORDER BY rule COLLATE "C", labels COLLATE "C"', (rule,) if rule else ())  # type: ignore[return-value]

    def alert_events(self, since: datetime, until: datetime | None = None) -> list[AlertEventRow]:
        return self._dicts("SELECT * FROM alert_events WHERE at >= %s" + (" AND at < %s" if until else "")
                           + " ORDER BY at, id", (iso(since), iso(until)) if until else (iso(since),))  # type: ignore[return-value]

    def add_alert_event(self, rule: str, labels: str, state: str, at: datetime, value: float | None,
                        summary: str, details: str | None, incident_id: int | None = None) -> None:
        with self.transaction() as conn:
            conn.execute(_EVENT, (rule, labels, state, iso(at), value, summary, details, incident_id))

    def open_incidents(self) -> list[IncidentRow]:
        return self._dicts("SELECT * FROM incidents WHERE state = 'open' ORDER BY id")  # type: ignore[return-value]

    def incidents(self, since: datetime, until: datetime | None = None) -> list[IncidentRecord]:
        rows = self._dicts("SELECT * FROM incidents WHERE (closed_at IS NULL OR closed_at >= %s)"
                           + (" AND opened_at < %s" if until else "") + " ORDER BY opened_at, id",
                           (iso(since), iso(until)) if until else (iso(since),))
        return [incident_record(r) for r in rows]

    def rule_evaluations(self) -> dict[str, RuleEvaluationRow]:
        return {r["rule"]: r for r in self._dicts("SELECT * FROM rule_evaluations")}  # type: ignore[misc]

    def save_alert_evaluation(self, *, states: Mapping[str, Mapping[str, AlertStateRow]],
                              events: Sequence[NewAlertEvent], incidents: Sequence[IncidentRow],
                              outbox: Sequence[Notification], evaluations: Sequence[RuleEvaluation]) -> dict[str, int]:
        ids: dict[str, int] = {}
        with self.transaction() as conn:
            for rule, rows in states.items():
                conn.execute("DELETE FROM alert_state WHERE rule = %s", (rule,))
                if rows:
                    conn.cursor().executemany(
                        """INSERT INTO alert_state (rule, labels, state, active_since, fired_at, last_active_at,
                               last_notified_at, value, details)
                           VALUES (%(rule)s, %(labels)s, %(state)s, %(active_since)s, %(fired_at)s, %(last_active_at)s,
                                   %(last_notified_at)s, %(value)s, %(details)s)""", list(rows.values()))
            for row in self.open_incidents():
                ids[row["topic"]] = row["id"]  # type: ignore[assignment]
            for inc in incidents:
                columns = [k for k in inc if k != "id"]
                if inc["id"] is None:
                    statement = sql.SQL("INSERT INTO incidents ({}) VALUES ({}) RETURNING id").format(
                        sql.SQL(", ").join(map(sql.Identifier, columns)),
                        sql.SQL(", ").join(map(sql.Placeholder, columns)))
                    ids[inc["topic"]] = conn.execute(statement, inc).fetchone()["id"]
                else:
                    statement = sql.SQL("UPDATE incidents SET {} WHERE id = %(id)s").format(
                        sql.SQL(", ").join(sql.SQL("{} = {}").format(sql.Identifier(k), sql.Placeholder(k))
                                           for k in columns))
                    conn.execute(statement, inc)
                    ids[inc["topic"]] = inc["id"]
            if events:
                conn.cursor().executemany(_EVENT, [
                    (e["rule"], e["labels"], e["state"], iso(e["at"]), e["value"], e["summary"], e["details"],
                     ids.get(e["topic"]) if e.get("topic") else None) for e in events])  # type: ignore[arg-type]
            for note in outbox:
                row = dict(note)
                topic = row.pop("incident_topic", None)
                if topic is not None and row["payload"] is not None and row["payload"].get("incident") is None:
                    row["payload"] = {**row["payload"], "incident": ids.get(topic)}  # a new incident's id
                self.enqueue(**row)
            for e in evaluations:
                conn.execute(
                    """INSERT INTO rule_evaluations (rule, last_evaluated_at, last_error, instances, status)
                       VALUES (%s, %s, %s, %s, %s)
                       ON CONFLICT (rule) DO UPDATE SET last_evaluated_at = excluded.last_evaluated_at,
                         last_error = excluded.last_error, instances = excluded.instances, status = excluded.status""",
                    (e["rule"], iso(e["now"]), e["error"], e["instances"], e["status"]))
        return ids

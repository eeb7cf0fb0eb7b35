"""Alert state on SQLite: the instances, their transitions, incidents and rule evaluations, and one
evaluation written with its notifications in one transaction."""

from __future__ import annotations

from datetime import datetime
from typing import Mapping, Sequence

from listener.store.rows import (AlertEventRow, AlertStateRow, IncidentRecord, IncidentRow, NewAlertEvent,
                                 Notification, RuleEvaluation, RuleEvaluationRow)
from listener.store.sqlite.outbox import SQLiteOutbox
from listener.store.types import iso
from listener.store.decode import incident_record



class SQLiteAlertState(SQLiteOutbox):
    """`interface.AlertState` on SQLite (an evaluation queues its notifications through the outbox)."""

    def alert_states(self, rule: str | None = None) -> list[AlertStateRow]:
        return list(self._dicts("SELECT * FROM alert_state" + (" WHERE rule = ?" if rule else "") + " ORDER BY rule, labels",
                                (rule,) if rule else ()))

    def alert_events(self, since: datetime, until: datetime | None = None) -> list[AlertEventRow]:
        return list(self._dicts("SELECT * FROM alert_events WHERE at >= ? AND at < ? ORDER BY at, id",
                                (iso(since), iso(until) if until else "9999")))

    def add_alert_event(self, rule: str, labels: str, state: str, at: datetime, value: float | None,
                        summary: str, details: str | None, incident_id: int | None = None) -> None:
        with self.transaction():
            self.conn.execute(
                """INSERT INTO alert_events (rule, labels, state, at, value, summary, details, incident_id)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?)""", (rule, labels, state, iso(at), value, summary, details, incident_id))

    def open_incidents(self) -> list[IncidentRow]:
        return list(self._dicts("SELECT * FROM incidents WHERE state = 'open' ORDER BY id"))

    def incidents(self, since: datetime, until: datetime | None = None) -> list[IncidentRecord]:
        rows = list(self._dicts(
            "SELECT * FROM incidents WHERE opened_at < ? AND (closed_at IS NULL OR closed_at >= ?) ORDER BY opened_at, id",
            (iso(until) if until else "9999", iso(since))))
        return [incident_record(r) for r in rows]

    def rule_evaluations(self) -> dict[str, RuleEvaluationRow]:
        return {r["rule"]: r for r in self._dicts("SELECT * FROM rule_evaluations")}

    def save_alert_evaluation(self, *, states: Mapping[str, Mapping[str, AlertStateRow]],
                              events: Sequence[NewAlertEvent], incidents: Sequence[IncidentRow],
                              outbox: Sequence[Notification], evaluations: Sequence[RuleEvaluation]) -> dict[str, int]:
        ids: dict[str, int] = {}
        with self.transaction():
            for rule, rows in states.items():
                self.conn.execute("DELETE FROM alert_state WHERE rule = ?", (rule,))
                self.conn.executemany(
                    """INSERT INTO alert_state (rule, labels, state, active_since, fired_at, last_active_at,
                           last_notified_at, value, details)
                       VALUES (:rule, :labels, :state, :active_since, :fired_at, :last_active_at, :last_notified_at,
                               :value, :details)""", list(rows.values()))
            for row in self.open_incidents():
                ids[row["topic"]] = row["id"]
            for inc in incidents:
                columns = [k for k in inc if k != "id"]
                if inc["id"] is None:
                    cur = self.conn.execute(f"INSERT INTO incidents ({', '.join(columns)}) "
                                            f"VALUES ({', '.join(':' + k for k in columns)})", inc)
                    ids[inc["topic"]] = cur.lastrowid
                else:
                    self.conn.execute(f"UPDATE incidents SET {', '.join(f'{k} = :{k}' for k in columns)} WHERE id = :id",
                                      inc)
                    ids[inc["topic"]] = inc["id"]
            self.conn.executemany(
                """INSERT INTO alert_events (rule, labels, state, at, value, summary, details, incident_id)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?)""",
                [(e["rule"], e["labels"], e["state"], iso(e["at"]), e["value"], e["summary"], e["details"],
                  ids.get(e["topic"]) if e.get("topic") else None) for e in events])
            for note in outbox:
                row = dict(note)
                topic = row.pop("incident_topic", None)
                if topic is not None and row["payload"] is not None and row["payload"].get("incident") is None:
                    row["payload"] = {**row["payload"], "incident": ids.get(topic)}  # a new incident's id
                self.enqueue(**row)
            for e in evaluations:
                self.conn.execute(
                    """INSERT INTO rule_evaluations (rule, last_evaluated_at, last_error, instances, status)
                       VALUES (?, ?, ?, ?, ?)
                       ON CONFLICT(rule) DO UPDATE SET last_evaluated_at = excluded.last_evaluated_at,
                         last_error = excluded.last_error, instances = excluded.instances, status = excluded.status""",
                    (e["rule"], iso(e["now"]), e["error"], e["instances"], e["status"]))
        return ids

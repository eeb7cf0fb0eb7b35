"""`sql`: a read-only SELECT returns rows; each row is an instance (its columns are its labels)."""

from __future__ import annotations

from listener.alerts.kinds import AlertKind, Observation, Scope
from listener.store import iso


class Sql(AlertKind):
    kind = "sql"
    rank = 4

    def observe(self, scope: Scope) -> list[Observation]:
        rule = self.rule
        result = scope.store.read_only_query(rule.sql,
                                             {"now": iso(scope.now), "window_start": iso(scope.now - rule.window)},
                                             time_limit=10.0, max_rows=1000)
        out = []
        for row in result.rows:
            record = dict(zip(result.columns, row))
            value = record.pop("value", None)
            labels = {k: "" if v is None else str(v) for k, v in record.items()}
            summary = f"value {value}" if value is not None else ""
            out.append(Observation(labels, True, float(value) if isinstance(value, (int, float)) else None, summary,
                                   {"row": dict(zip(result.columns, row))}))
        return out

    def explain(self, obs: Observation) -> list[str]:
        return ["Row: " + ", ".join(f"{k} = {v}" for k, v in obs.details.get("row", {}).items())]

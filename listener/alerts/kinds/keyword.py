"""`keyword`: a mention in the window matches the rule's query (`recall OR lawsuit`)."""

from __future__ import annotations

from listener.alerts.kinds import AlertKind, Observation, Scope
from listener.alerts.wording import format_window
from listener.config import format_duration


class Keyword(AlertKind):
    kind = "keyword"
    urgent = True
    rank = 1

    def observe(self, scope: Scope) -> list[Observation]:
        rule = self.rule
        rows = scope.store.mentions_in(rule.topic, scope.now - rule.window, scope.now)
        hits = [r["id"] for r in rows if rule.matcher.matches_stored(r)]
        n = len(hits)
        summary = f"{n} mention{'s' if n != 1 else ''} in the last {format_window(rule.window)} matching {rule.query}"
        details = {"count": n, "query": rule.query, "window": format_duration(rule.window), "mention_ids": hits[:50]}
        return [Observation({"topic": rule.topic}, n >= max(rule.min_count, 1), n, summary, details)]

    def explain(self, obs: Observation) -> list[str]:
        n = obs.details["count"]
        return [f"{n} mention{'s' if n != 1 else ''} in the last {format_window(self.rule.window)} "
                f"match{'es' if n == 1 else ''} the query {obs.details['query']}."]

"""The state of an install as people look at it: each source's health, each alert rule's state,
the incidents and alerts of the last days, and the outbox. `listener sources` and `listener
alerts` print these (the dashboard shows the same); every value is JSON-ready (times UTC ISO-8601).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta

from listener.config import Config
from listener.store import MentionStore, iso


@dataclass(frozen=True)
class SourceStatus:
    name: str
    kind: str
    enabled: bool
    every_seconds: int
    last_success_at: str | None
    last_error: str | None
    last_error_at: str | None
    consecutive_errors: int
    next_check_at: str | None  # None: due now
    mentions: int | None  # stored mentions (None: not counted)
    worker: str | None = None  # the worker that fetched it last (host:pid), when a daemon did

    def as_json(self) -> dict:
        return asdict(self)


def source_statuses(config: Config, store: MentionStore, *, counts: bool = True) -> list[SourceStatus]:
    """Every configured source's health, in the config's order (never fetched: all empty); `counts`
    False leaves its mentions uncounted (counting them reads them all)."""
    health = store.source_health(with_counts=counts)
    leases = store.leases("fetch:")
    out = []
    for src in config.sources:
        h = health.get(src.name)
        out.append(SourceStatus(
            name=src.name, kind=src.kind, enabled=src.enabled, every_seconds=int(src.every.total_seconds()),
            last_success_at=iso(h.last_success_at) if h else None, last_error=(h.last_error or None) if h else None,
            last_error_at=iso(h.last_error_at) if h else None, consecutive_errors=h.consecutive_errors if h else 0,
            next_check_at=iso(h.next_check_at) if h else None, mentions=(h.mentions if h else 0) if counts else None,
            worker=leases[f"fetch:{src.name}"]["worker"] if f"fetch:{src.name}" in leases else None))
    return out


@dataclass(frozen=True)
class RuleStatus:
    rule: str
    kind: str
    topic: str | None
    last_evaluated_at: str | None
    last_error: str | None
    status: str | None  # what the rule cannot do yet, in words ("learning: 2 of 7 days")
    instances: list[dict]  # {labels, state, since} of each pending or firing instance

    def as_json(self) -> dict:
        return asdict(self)

    @property
    def state_words(self) -> str:
        """`firing topic=acme, pending topic=globex`, or `inactive`."""
        return ", ".join(f"{i['state']} {labels_words(i['labels'])}" for i in self.instances) or "inactive"

    @property
    def status_words(self) -> str:
        """Its last error (`error: ...`), else what it cannot do yet, else nothing."""
        return f"error: {self.last_error}" if self.last_error else (self.status or "")


@dataclass(frozen=True)
class AlertOverview:
    rules: list[RuleStatus]
    incidents: list[dict]
    events: list[dict]  # {rule, labels, state, at, summary, incident}
    outbox: dict[str, int]  # queued, sent, given_up
    outbox_problems: list[dict] = field(default_factory=list)  # per channel: why notifications wait
    leader: dict | None = None  # {worker, since, until}: the worker that evaluates the rules (or did last)

    def records(self) -> list[dict]:
        """Every rule, then every incident, then every event, JSON-ready (`listener alerts --json`)."""
        return [r.as_json() for r in self.rules] + [*self.incidents, *self.events]


def alert_overview(config: Config, store: MentionStore, now: datetime, days: int) -> AlertOverview:
    """Every rule (and the built-in source-down) with its state, and what happened in the last `days`."""
    since = now - timedelta(days=days)
    evals, states = store.rule_evaluations(), store.alert_states()
    rules = [(r.name, r.kind, r.topic) for r in config.alerts] + [("source-down", "built-in", None)]
    statuses = []
    for name, kind, topic in rules:
        ev = evals.get(name, {})
        instances = [{"labels": json.loads(s["labels"]), "state": s["state"], "since": s["active_since"]}
                     for s in states if s["rule"] == name]
        statuses.append(RuleStatus(name, kind, topic, ev.get("last_evaluated_at"), ev.get("last_error"),
                                   ev.get("status"), instances))
    events = [{"rule": e["rule"], "labels": json.loads(e["labels"]), "state": e["state"], "at": e["at"],
               "summary": e["summary"], "incident": e["incident_id"]} for e in store.alert_events(since)]
    incidents = [{"incident": i["id"], "topic": i["topic"], "state": i["state"], "opened_at": i["opened_at"],
                  "closed_at": i["closed_at"], "peak": i["peak"], "hashtags": i["hashtags"], "rules": i["rules"],
                  "summary": i["summary"], "notifications": i["notifications"]} for i in store.incidents(since)]
    lease = store.leases("leader").get("leader")
    leader = {"worker": lease["worker"], "since": lease["acquired_at"],
              "until": lease["released_at"] or lease["expires_at"]} if lease else None
    return AlertOverview(statuses, incidents, events, store.outbox_counts(), store.outbox_problems(), leader)


def labels_words(labels: dict) -> str:
    """`topic=acme, hashtag=fail`."""
    return ", ".join(f"{k}={v}" for k, v in labels.items())

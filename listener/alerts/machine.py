"""The alert state machine, pure: (previous instances, observations, now) -> new instances, transitions.

An instance (a rule and its labels) goes inactive -> pending when its condition holds, pending ->
firing once it has held for `for`, and firing -> resolved once its evidence has been clearly gone
for `keep_firing_for` (hysteresis: while firing, the weaker `sustained` test of the observation
keeps it alive, so a share dipping from 60% to 59% does not resolve it). When `hold` is set the
data is incomplete (a source feeding the topic is down): nothing resolves or clears, what is
observed active still goes pending and fires. Nothing here reads or writes the database.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Iterable, Mapping

from listener.alerts.kinds import Observation
from listener.store import iso


@dataclass(frozen=True)
class RuleSpec:
    """What the state machine and the notifications need of a rule."""

    name: str
    kind: str
    for_: timedelta
    keep_firing_for: timedelta
    repeat: timedelta | None
    send_resolved: bool
    channels: tuple[str, ...]
    severity: str
    labels: dict[str, str]
    topic: str | None = None
    window: timedelta = timedelta(hours=1)


@dataclass(frozen=True)
class Instance:
    """A pending or firing alert instance, as kept in `alert_state`."""

    rule: str
    labels: dict[str, str]
    state: str  # pending / firing
    active_since: datetime
    fired_at: datetime | None
    last_active_at: datetime
    value: float | None
    summary: str
    details: dict
    rate: float | None = None
    announced: bool = False  # notified by listener before incidents existed (an upgraded database)

    @property
    def key(self) -> str:
        return labels_key(self.labels)


@dataclass(frozen=True)
class Transition:
    rule: str
    labels: dict[str, str]
    state: str  # pending / firing / resolved / inactive
    at: datetime
    value: float | None
    summary: str
    details: dict = field(default_factory=dict, compare=False, repr=False)

    def line(self) -> str:
        labels = ", ".join(f"{k}={v}" for k, v in sorted(self.labels.items(), key=label_order))
        return f"{iso(self.at)} {self.state.upper():8} {self.rule} {{{labels}}} {self.summary}".rstrip()

    def as_json(self) -> dict:
        return {"type": "transition", "rule": self.rule, "labels": self.labels, "state": self.state,
                "at": iso(self.at), "value": self.value, "summary": self.summary}


@dataclass(frozen=True)
class Step:
    instances: dict[str, Instance]  # every pending or firing instance after the step, by labels key
    transitions: list[Transition]


def advance(spec: RuleSpec, previous: Mapping[str, Instance], observations: Iterable[Observation], now: datetime,
            *, hold: bool = False) -> Step:
    """Apply one evaluation of a rule to its instances."""
    instances = dict(previous)
    transitions: list[Transition] = []
    seen: set[str] = set()

    def record(state: str, inst_labels: dict, value, summary: str, details: dict) -> None:
        transitions.append(Transition(spec.name, inst_labels, state, now, value, summary, details))

    for obs in observations:
        key = labels_key(obs.labels)
        seen.add(key)
        prev = instances.get(key)
        if obs.active:
            if prev is None:
                prev = Instance(spec.name, obs.labels, "pending", now, None, now, obs.value, obs.summary, obs.details, obs.rate)
                record("pending", obs.labels, obs.value, obs.summary, obs.details)
            current = replace(prev, last_active_at=now, value=obs.value, summary=obs.summary, details=obs.details,
                              rate=obs.rate)
            if current.state == "pending" and now - current.active_since >= spec.for_:
                current = replace(current, state="firing", fired_at=now)
                record("firing", obs.labels, obs.value, obs.summary, obs.details)
            instances[key] = current
        elif prev is not None:
            _keep(instances, key, _inactive(spec, prev, obs, now, hold, record))
    for key, prev in previous.items():
        if key not in seen:
            _keep(instances, key, _inactive(spec, prev, None, now, hold, record))
    return Step(instances, transitions)


def _keep(instances: dict[str, Instance], key: str, instance: Instance | None) -> None:
    if instance is None:
        instances.pop(key, None)
    else:
        instances[key] = instance


def _inactive(spec: RuleSpec, prev: Instance, obs: Observation | None, now: datetime, hold: bool, record) -> Instance | None:
    """An instance whose condition does not hold now: the instance it becomes, or None when it ends."""
    if prev.state == "pending":
        if hold:
            return prev
        record("inactive", prev.labels, obs.value if obs else None, "condition cleared", {})
        return None
    # firing
    if obs is not None and obs.sustained:
        return replace(prev, last_active_at=now, value=obs.value, summary=obs.summary, details=obs.details,
                       rate=obs.rate)
    if obs is not None:
        prev = replace(prev, value=obs.value, rate=obs.rate)  # details stay those of its last active evaluation
    if hold or now - prev.last_active_at < spec.keep_firing_for:
        return prev
    summary = obs.summary if obs and obs.summary else "back to normal"
    record("resolved", prev.labels, obs.value if obs else prev.value, summary, {**prev.details, "resolved": True})
    return None


def labels_key(labels: Mapping[str, str]) -> str:
    return json.dumps(dict(labels), sort_keys=True, ensure_ascii=False)


def label_order(item: tuple[str, str]) -> tuple:
    """topic first, then hashtag, then the rest alphabetically."""
    return (item[0] != "topic", item[0] != "hashtag", item[0])



"""Incidents, pure: the alerts firing on one topic at overlapping times are one incident.

Like Alertmanager's grouping (group_by topic, group_wait, group_interval) and inhibit rules:
- an incident opens when the first alert of its topic fires, and is announced at once when an
  urgent kind (backlash, keyword) is in it, else after GROUP_WAIT (so that a backlash found some
  minutes after a volume spike leads the first message instead of following it);
- alerts that fire while it is open join it silently; an update goes out only when it grows
  materially: a keyword alert not named yet joins (a recall), or a backlash with at least MATERIAL
  of the incident's peak volume (a second hijacked hashtag), at most once per GROUP_INTERVAL;
- a firing backlash inhibits its topic's volume and negative spikes: they are listed as agreeing,
  never lead, never notify;
- it closes when none of its alerts fires any more, with one closing message.
Nothing here reads or writes the database.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Mapping

from listener.alerts.machine import labels_key

GROUP_WAIT = timedelta(minutes=30)
GROUP_INTERVAL = timedelta(hours=1)
MATERIAL = 0.5
INHIBITED_BY_BACKLASH = ("volume_spike", "negative_spike")


@dataclass(frozen=True)
class Member:
    """A firing alert instance of the incident's topic."""

    rule: str
    kind: str
    labels: dict[str, str]
    rank: int  # lowest leads
    urgent: bool
    rate: float | None  # mentions/h
    summary: str
    details: dict = field(default_factory=dict, compare=False)
    inhibited: bool = False
    announced: bool = False  # already notified by an earlier version of listener

    @property
    def key(self) -> str:
        return member_key(self.rule, self.labels)

    @property
    def hashtag(self) -> str | None:
        return self.labels.get("hashtag")

    def snapshot(self) -> dict:
        return {"rule": self.rule, "kind": self.kind, "rank": self.rank, "labels": self.labels, "summary": self.summary,
                "rate": self.rate, "details": self.details}


@dataclass(frozen=True)
class Incident:
    id: int | None  # None until stored
    topic: str
    state: str  # open / closed
    opened_at: datetime
    notified_at: datetime | None = None
    last_notified_at: datetime | None = None
    closed_at: datetime | None = None
    lead: dict | None = None  # Member.snapshot() of the alert its messages are about
    peak: float = 0.0
    peak_at: datetime | None = None
    hashtags: tuple[str, ...] = ()
    rules: tuple[str, ...] = ()
    members: tuple[str, ...] = ()  # Member.key of every alert that fired in it
    announced: tuple[str, ...] = ()  # the members its messages have named
    notifications: int = 0


@dataclass(frozen=True)
class Notice:
    """A message to send about an incident."""

    incident: Incident  # as it is after this evaluation
    state: str  # firing (opened) / update / repeat / resolved
    at: datetime
    members: tuple[Member, ...] = ()  # firing now (empty when resolved)
    new: tuple[Member, ...] = ()  # for an update: what grew


def member_key(rule: str, labels: Mapping[str, str]) -> str:
    return f"{rule}|{labels_key(labels)}"


def group(open_incidents: Mapping[str, Incident], firing: Mapping[str, list[Member]], now: datetime, *,
          repeat: Mapping[str, timedelta | None] | None = None,
          send_resolved: Mapping[str, bool] | None = None) -> tuple[list[Incident], list[Notice]]:
    """One evaluation's incidents: (incidents changed or opened, messages to send)."""
    changed: list[Incident] = []
    notices: list[Notice] = []
    for topic in sorted(set(open_incidents) | {t for t, m in firing.items() if m}):
        incident = open_incidents.get(topic)
        members = _inhibit(firing.get(topic, []))
        if not members:
            if incident is None:
                continue
            incident = replace(incident, state="closed", closed_at=now)
            if incident.notified_at is not None and (send_resolved or {}).get(topic, True):
                incident = replace(incident, last_notified_at=now, notifications=incident.notifications + 1)
                notices.append(Notice(incident, "resolved", now))
            changed.append(incident)
            continue
        if incident is None:
            incident = Incident(None, topic, "open", now)
            told = [m.key for m in members if m.announced]
            if told:  # an upgraded database: these were notified before incidents existed, not again
                incident = replace(incident, notified_at=now, last_notified_at=now, announced=tuple(told))
        lead = _lead(incident.lead, members)
        peak_rate = max([m.rate or 0 for m in members if not m.inhibited], default=0)
        incident = replace(
            incident, lead=lead,
            hashtags=_union(incident.hashtags, [m.hashtag for m in members if m.hashtag]),
            rules=_union(incident.rules, [m.rule for m in members]),
            members=_union(incident.members, [m.key for m in members]))
        if peak_rate > incident.peak:
            incident = replace(incident, peak=peak_rate, peak_at=now)
        state = None
        new: tuple[Member, ...] = ()
        if incident.notified_at is None:
            if any(m.urgent for m in members) or now - incident.opened_at >= GROUP_WAIT:
                state = "firing"
        else:
            new = tuple(m for m in members if m.key not in incident.announced and _material(m, lead, incident.peak))
            since_last = now - (incident.last_notified_at or incident.notified_at)
            every = (repeat or {}).get(topic)
            if new and since_last >= GROUP_INTERVAL:
                state = "update"
            elif every and since_last >= every:
                state = "repeat"
        if state is not None:
            incident = replace(incident, notified_at=incident.notified_at or now, last_notified_at=now,
                               announced=_union(incident.announced,
                                                [m.key for m in members if m.urgent or _same(m, lead)]),
                               notifications=incident.notifications + 1)
            notices.append(Notice(incident, state, now, tuple(members), new))
        changed.append(incident)
    return changed, notices


def _inhibit(members: list[Member]) -> list[Member]:
    """A firing backlash inhibits the topic's volume and negative spikes."""
    if not any(m.kind == "backlash" for m in members):
        return list(members)
    return [replace(m, inhibited=True) if m.kind in INHIBITED_BY_BACKLASH else m for m in members]


def _lead(kept: dict | None, members: list[Member]) -> dict:
    """What the incident's messages are about: its first strongest alert, kept while it fires and
    after it resolves (one title from the first message to the last), unless a stronger kind joins."""
    best = min(members, key=lambda m: (m.rank, -(m.rate or 0), m.key))
    if kept is None or best.rank < kept.get("rank", 99):
        return best.snapshot()
    same = next((m for m in members if _same(m, kept)), None)
    return same.snapshot() if same else kept


def _same(member: Member, snapshot: dict) -> bool:
    return member.rule == snapshot.get("rule") and member.labels == snapshot.get("labels")


def _material(member: Member, lead: dict, peak: float) -> bool:
    """A keyword alert (a recall is news whatever its volume), or a backlash that leads or has at
    least MATERIAL of the incident's peak volume."""
    if not member.urgent or member.inhibited:
        return False
    if member.kind == "keyword":
        return True
    return _same(member, lead) or (member.rate or 0) >= MATERIAL * max(lead.get("rate") or 0, peak)


def _union(old: tuple[str, ...], new) -> tuple[str, ...]:
    return tuple(dict.fromkeys([*old, *new]))

"""One evaluation of every alert rule: read, decide (pure), render, then write it all at once.

    evaluate(config, store, now) -> list[Transition]          # what the daemon logs
    evaluate_all(config, store, now) -> Evaluation            # transitions and the notices queued

Order of one evaluation:
1. source health: a source whose last SOURCE_DOWN_AFTER fetches failed is down; a notice goes
   out, and the topics it feeds are held (a gap in the data is not a quiet period);
2. the scoring watermark: while stored mentions wait to be scored, topic rules are not evaluated
   at all (unscored mentions are missing data, never a quiet period: after a restart nothing
   resolves before the model has caught up);
3. each rule's kind observes (reads only); the state machine (`machine.advance`) moves its
   instances; the firing ones of each topic are grouped into incidents (`incidents.group`);
4. the messages are rendered, and states, events, incidents and outbox rows are written in one
   transaction (`MentionStore.save_alert_evaluation`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Iterable

from listener.alerts.incidents import Incident, Member, Notice, group
from listener.alerts.kinds import AlertKind, Observation, Scope, kind_class
from listener.alerts.kinds.backlash import LOOKBACK
from listener.alerts.machine import Instance, RuleSpec, Transition, advance, labels_key
from listener.alerts.messages import incident_message, instance_message, outbox_rows
from listener.config import AlertRule, Config
from listener.errors import ListenerError
from listener.query import normalise
from listener.store import MentionStore, iso, parse_iso

SOURCE_DOWN_AFTER = 3  # consecutive failed fetches before a source counts as down
SOURCE_DOWN_RULE = "source-down"
SOURCE_DOWN_SPEC = RuleSpec(SOURCE_DOWN_RULE, "source_down", timedelta(0), timedelta(0), None, True, ("email",),
                            "warning", {})


@dataclass(frozen=True)
class NoticeRecord:
    """A notification queued (or, without channels, that would be sent)."""

    at: datetime
    subject: str
    incident: int | None  # (a topic, while the incident is not stored yet)
    rules: tuple[str, ...]
    state: str
    channels: tuple[str, ...] = ()

    def line(self) -> str:
        return f"{iso(self.at)} NOTICE   {self.subject}"

    def as_json(self) -> dict:
        return {"type": "notification", "at": iso(self.at), "subject": self.subject, "incident": self.incident,
                "rules": list(self.rules), "state": self.state, "channels": list(self.channels)}


@dataclass
class Evaluation:
    transitions: list[Transition] = field(default_factory=list)
    notices: list[NoticeRecord] = field(default_factory=list)


def spec_of(rule: AlertRule) -> RuleSpec:
    return RuleSpec(rule.name, rule.kind, rule.for_, rule.keep_firing_for, rule.repeat or None, rule.send_resolved,
                    tuple(rule.channels), rule.severity, dict(rule.labels), rule.topic, rule.window)


def evaluate(config: Config, store: MentionStore, now: datetime, *, rules: Iterable[AlertRule] | None = None) -> list[Transition]:
    """Evaluate every rule (and source health) at `now`; returns the transitions in order."""
    return evaluate_all(config, store, now, rules=rules).transitions


def evaluate_all(config: Config, store: MentionStore, now: datetime, *,
                 rules: Iterable[AlertRule] | None = None) -> Evaluation:
    rules_all = rules is None
    rules = list(config.alerts if rules is None else rules)
    states = _load_states(store)
    out = Evaluation()
    new_states: dict[str, dict[str, Instance]] = {}
    events: list[dict] = []
    outbox: list[dict] = []
    evaluations: list[dict] = []

    # 1. source health
    down = down_sources(config, store)
    held = config.topics_fed_by(down)
    source_obs = [Observation({"source": name}, True, None, f"failing: {error}", {"error": error, "source": name})
                  for name, error in sorted(down.items())]
    step = advance(SOURCE_DOWN_SPEC, states.get(SOURCE_DOWN_RULE, {}), source_obs, now)
    new_states[SOURCE_DOWN_RULE] = step.instances
    _instance_notices(config, SOURCE_DOWN_SPEC, None, step.transitions, now, out, events, outbox)

    # 2. the scoring watermark, per topic
    waiting = _waiting(store, rules, now)

    # 3. rules
    scopes: dict[str, Scope] = {}
    kinds: dict[str, AlertKind] = {}
    specs: dict[str, RuleSpec] = {}
    for rule in rules:
        spec = spec_of(rule)
        kind = kinds[rule.name] = kind_class(rule.kind)(rule)
        specs[rule.name] = spec
        if rule.topic in waiting:
            evaluations.append({"rule": rule.name, "now": now, "instances": len(states.get(rule.name, {})),
                                "error": None, "status": f"waiting: {waiting[rule.topic]} mentions to be scored"})
            continue
        scope = _scope(scopes, config, store, rule.topic, now)
        try:
            observations = kind.observe(scope)
            status = kind.learning(scope)
        except ListenerError as exc:
            evaluations.append({"rule": rule.name, "now": now, "instances": 0, "error": str(exc), "status": None})
            continue
        step = advance(spec, states.get(rule.name, {}), observations, now, hold=rule.topic in held)
        new_states[rule.name] = step.instances
        evaluations.append({"rule": rule.name, "now": now, "instances": len(observations), "error": None,
                            "status": status})
        if rule.topic is None:
            _instance_notices(config, spec, kind, step.transitions, now, out, events, outbox)
        else:
            out.transitions += step.transitions
            events += [_event(t, rule.topic) for t in step.transitions]

    # 4. incidents of the topics whose rules were evaluated (not those waiting for the model)
    topic_rules = [r for r in rules if r.topic is not None and r.topic not in waiting]
    firing: dict[str, list[Member]] = {}
    for r in topic_rules:
        for inst in new_states.get(r.name, states.get(r.name, {})).values():
            if inst.state == "firing":
                kind = kinds[r.name]
                firing.setdefault(r.topic, []).append(Member(r.name, r.kind, inst.labels, kind.rank, kind.urgent,
                                                             inst.rate, inst.summary, inst.details,
                                                             announced=inst.announced))
    watched = {r.topic for r in topic_rules}
    all_open = [_incident(row) for row in store.open_incidents()]
    open_incidents = {i.topic: i for i in all_open if i.topic in watched}
    if rules_all:  # an incident of a topic no rule watches any more closes
        open_incidents.update({i.topic: i for i in all_open if i.topic not in {r.topic for r in rules}})
    repeat = {t: min((r.repeat for r in topic_rules if r.topic == t and r.repeat), default=None) for t in watched}
    resolved = {t: any(r.send_resolved for r in topic_rules if r.topic == t) for t in watched}
    incidents, notices = group(open_incidents, firing, now, repeat=repeat, send_resolved=resolved)
    for notice in notices:
        _incident_notice(config, store, notice, specs, kinds, now, out, outbox)
    if rules_all:  # the instances of rules no longer in the config end with them
        for gone in set(states) - {r.name for r in rules} - {SOURCE_DOWN_RULE}:
            new_states[gone] = {}

    ids = store.save_alert_evaluation(
        states={rule: {k: _state_row(i) for k, i in insts.items()} for rule, insts in new_states.items()},
        events=events, incidents=[_incident_row(i) for i in incidents], outbox=outbox, evaluations=evaluations)
    out.notices = [replace(n, incident=ids.get(n.incident)) if isinstance(n.incident, str) else n for n in out.notices]
    return out


def _waiting(store: MentionStore, rules: list[AlertRule], now: datetime) -> dict[str, int]:
    """Topics with stored mentions not scored yet among those the rules read (the last LOOKBACK and
    the window): topic -> how many. Their rules wait: unscored mentions are missing data."""
    out = {}
    for topic in {r.topic for r in rules if r.topic is not None}:
        horizon = max((max(r.window, LOOKBACK) for r in rules if r.topic == topic), default=LOOKBACK)
        n = store.count_unscored(topic=topic, since=now - horizon)
        if n:
            out[topic] = n
    return out


# ---------------------------------------------------------------- reading
def _scope(scopes: dict[str, Scope], config: Config, store: MentionStore, topic: str | None, now: datetime) -> Scope:
    key = topic or ""
    if key not in scopes:
        since = None
        own: frozenset[str] = frozenset()
        if topic is not None:
            feeding = [s.name for s in config.sources if s.enabled and (not s.topics or topic in s.topics)]
            since = store.topic_data_since(topic, feeding if config.sources else None)
            t = next((t for t in config.topics if t.name == topic), None)
            if t is not None and t.matcher is not None:
                own = frozenset(normalise(n) for n in t.matcher.names())
        scopes[key] = Scope(store, now, since, own)
    return scopes[key]


def _load_states(store: MentionStore) -> dict[str, dict[str, Instance]]:
    """Pending and firing instances by rule and labels key. Rows written before incidents existed
    (no "observation" in their details) keep their times, not their numbers, and count as
    announced when they had been notified."""
    out: dict[str, dict[str, Instance]] = {}
    for r in store.alert_states():
        details = json.loads(r["details"]) if r["details"] else {}
        inst = Instance(r["rule"], json.loads(r["labels"]), r["state"], parse_iso(r["active_since"]),
                        parse_iso(r["fired_at"]), parse_iso(r["last_active_at"]), r["value"],
                        details.get("summary", ""), details.get("observation", {}), details.get("rate"),
                        announced=r["last_notified_at"] is not None)
        out.setdefault(r["rule"], {})[r["labels"]] = inst
    return out


def _state_row(i: Instance) -> dict:
    return {"rule": i.rule, "labels": labels_key(i.labels), "state": i.state, "active_since": iso(i.active_since),
            "fired_at": iso(i.fired_at), "last_active_at": iso(i.last_active_at), "last_notified_at": None,
            "value": i.value,
            "details": json.dumps({"summary": i.summary, "rate": i.rate, "observation": i.details}, default=str)}


def _event(t: Transition, topic: str | None) -> dict:
    details = json.dumps(t.details, default=str) if t.state in ("firing", "resolved") and t.details else None
    return {"rule": t.rule, "labels": labels_key(t.labels), "state": t.state, "at": t.at, "value": t.value,
            "summary": t.summary, "details": details, "topic": topic}


def _incident(row: dict) -> Incident:
    return Incident(row["id"], row["topic"], row["state"], parse_iso(row["opened_at"]), parse_iso(row["notified_at"]),
                    parse_iso(row["last_notified_at"]), parse_iso(row["closed_at"]),
                    json.loads(row["lead"]) if row.get("lead") else None, row["peak"] or 0.0, parse_iso(row["peak_at"]),
                    tuple(json.loads(row["hashtags"])), tuple(json.loads(row["rules"])),
                    tuple(json.loads(row["members"])), tuple(json.loads(row["announced"])), row["notifications"])


def _incident_row(i: Incident) -> dict:
    lead = i.lead or {}
    return {"id": i.id, "topic": i.topic, "state": i.state, "opened_at": iso(i.opened_at),
            "notified_at": iso(i.notified_at), "last_notified_at": iso(i.last_notified_at),
            "closed_at": iso(i.closed_at), "lead_rule": lead.get("rule"),
            "lead_labels": labels_key(lead["labels"]) if lead.get("labels") else None,
            "lead": json.dumps(lead, default=str), "summary": lead.get("summary"), "peak": i.peak,
            "peak_at": iso(i.peak_at), "hashtags": json.dumps(list(i.hashtags), ensure_ascii=False),
            "rules": json.dumps(list(i.rules)), "members": json.dumps(list(i.members), ensure_ascii=False),
            "announced": json.dumps(list(i.announced), ensure_ascii=False), "notifications": i.notifications}


# ---------------------------------------------------------------- notices

def _incident_notice(config: Config, store: MentionStore, notice: Notice, specs: dict[str, RuleSpec],
                     kinds: dict[str, AlertKind], now: datetime, out: Evaluation, outbox: list[dict]) -> None:
    incident = notice.incident
    member_specs = [specs[r] for r in incident.rules if r in specs]
    if notice.state == "resolved" and not any(s.send_resolved for s in member_specs):
        return
    lead = incident.lead or {}
    examples = [] if notice.state == "resolved" else _examples(store, specs.get(lead.get("rule")), lead, now)
    message = incident_message(config, notice, specs, kinds, examples)
    channels = tuple(dict.fromkeys(c for s in member_specs for c in s.channels))
    rows = outbox_rows(config, channels, message, "alert", ("incident", incident.topic, iso(incident.opened_at),
                                                             notice.state), now)
    outbox += [{**row, "incident_topic": incident.topic} for row in rows]
    # a new incident is named by its topic until it is stored
    out.notices.append(NoticeRecord(now, message.subject, incident.id if incident.id is not None else incident.topic,
                                    incident.rules, notice.state, channels))


def _instance_notices(config: Config, spec: RuleSpec, kind: AlertKind | None,
                      transitions: list[Transition], now: datetime, out: Evaluation, events: list[dict],
                      outbox: list[dict]) -> None:
    out.transitions += transitions
    events += [_event(t, None) for t in transitions]
    for t in transitions:
        if t.state not in ("firing", "resolved") or (t.state == "resolved" and not spec.send_resolved):
            continue
        message = instance_message(config, spec, kind, t, [])
        kind_name = "source_down" if spec.kind == "source_down" else "alert"
        outbox += outbox_rows(config, spec.channels, message, kind_name,
                              (spec.name, labels_key(t.labels), t.state), now)
        out.notices.append(NoticeRecord(now, message.subject, None, (spec.name,), t.state, spec.channels))


def _examples(store: MentionStore, spec: RuleSpec | None, lead: dict, now: datetime) -> list[dict]:
    if spec is None or not spec.topic:
        return []
    details = lead.get("details") or {}
    if spec.kind == "keyword":
        ids = details.get("mention_ids") or []
        return store.examples(None, now - spec.window, now, sentiment=None, ids=ids, limit=5) if ids else []
    sentiment = None if spec.kind == "volume_spike" else "negative"
    return store.examples(spec.topic, now - spec.window, now, sentiment=sentiment,
                          hashtag=(lead.get("labels") or {}).get("hashtag"), limit=5)


# ---------------------------------------------------------------- source health
def down_sources(config: Config, store: MentionStore) -> dict[str, str]:
    """Enabled sources whose last SOURCE_DOWN_AFTER fetches (or more) failed: name -> last error."""
    health = store.source_health()
    return {s.name: health[s.name].last_error or "" for s in config.sources
            if s.enabled and s.name in health and health[s.name].consecutive_errors >= SOURCE_DOWN_AFTER}


def check_rules(config: Config) -> None:
    """Problems config parsing cannot see: SQL that does not compile against the schema."""
    from listener.errors import ConfigError
    from listener.store import check_select

    problems = []
    for i, rule in enumerate(config.alerts):
        if rule.kind == "sql":
            error = check_select(rule.sql, ("now", "window_start"), location=config.database.location)
            if error:
                problems.append(f"alerts[{i}].sql (rule '{rule.name}'): {error}")
    if problems:
        raise ConfigError(problems, file=str(config.path) if config.path else None)

"""Alert rules: evaluate, move instances through pending -> firing -> resolved, queue notifications.

Each rule yields observations, one per alert instance (its labels: topic, hashtag, ...). An
instance whose condition holds goes pending, then firing once it has held for `for`; it resolves
when the condition has been false for `keep_firing_for`. State lives in the database
(`alert_state`), so a restart neither resets `for` nor re-sends; every transition is recorded in
`alert_events`, and its notifications are queued in the outbox in the same transaction.

Detection (see the README, "How alerts decide"):
- counts are compared with a rhythmic baseline: the median of the same clock window on each
  earlier day of the baseline period, from hourly rollups (cost does not grow with history);
- a count is a spike when it is at least `ratio` x the baseline (a floor of 1 per hour for a
  brand-new hashtag) AND the Poisson test says it is unlikely (p < 0.001) AND it reaches
  `min_count`;
- a negative share is unusual when it reaches `negative_share` AND a binomial test against the
  topic's usual share says it is unlikely (p < 0.001);
- a topic fed by a failing source does not read the gap as quiet: its alerts are held (none
  resolves while data is missing), and a "source down" notice goes out instead (once, and once
  when it recovers).
"""

from __future__ import annotations

import hashlib
import html
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Callable, Iterable

from listener.config import AlertRule, Config, format_duration
from listener.errors import ListenerError
from listener.query import prepare
from listener.stats import HOUR, binom_sf, poisson_sf, rhythmic_expectation
from listener.store import Store, iso, parse_iso, run_readonly

ALPHA = 0.001  # significance of the Poisson and binomial tests
NEW_TAG_FLOOR_PER_HOUR = 1.0  # expected rate of a hashtag with no history
SOURCE_DOWN_AFTER = 3  # consecutive failed fetches before a source counts as down
SOURCE_DOWN_RULE = "source-down"


@dataclass(frozen=True)
class Observation:
    labels: dict[str, str]
    active: bool
    value: float | None = None
    summary: str = ""
    details: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Transition:
    rule: str
    labels: dict[str, str]
    state: str  # pending / firing / resolved / inactive / repeat
    at: datetime
    value: float | None
    summary: str

    def line(self) -> str:
        labels = ", ".join(f"{k}={v}" for k, v in sorted(self.labels.items(), key=label_order))
        return f"{iso(self.at)} {self.state.upper():8} {self.rule} {{{labels}}} {self.summary}".rstrip()


def label_order(item: tuple[str, str]) -> tuple:
    """topic first, then hashtag, then the rest alphabetically."""
    return (item[0] != "topic", item[0] != "hashtag", item[0])


def labels_key(labels: dict[str, str]) -> str:
    return json.dumps(labels, sort_keys=True, ensure_ascii=False)


def percent(x: float) -> str:
    return f"{100 * x:.0f}%"


def per_hour(count: float, window: timedelta) -> float:
    return count * (HOUR / window)


def fmt_rate(rate: float) -> str:
    return f"{rate:.0f}" if rate >= 10 else f"{rate:.1f}"


# ---------------------------------------------------------------- observations per kind
def observe_volume(rule: AlertRule, store: Store, now: datetime) -> list[Observation]:
    start = now - rule.window
    counts = store.topic_window(rule.topic, start, now)
    hourly = store.topic_hours(rule.topic, now - rule.window - rule.baseline - HOUR, now)
    expected, samples = rhythmic_expectation(hourly, now, rule.window, rule.baseline)
    floor = NEW_TAG_FLOOR_PER_HOUR * (rule.window / HOUR)
    lam = max(expected, floor)
    n = counts["mentions"]
    p = poisson_sf(n, lam)
    ratio = n / lam
    active = n >= rule.min_count and ratio >= rule.ratio and p < ALPHA
    summary = (f"{fmt_rate(per_hour(n, rule.window))} mentions/h, {ratio:.0f}x usual"
               if ratio >= 2 else f"{fmt_rate(per_hour(n, rule.window))} mentions/h, {ratio:.1f}x usual")
    details = {"count": n, "window": format_duration(rule.window), "expected": round(expected, 2), "baseline_samples": [round(s, 2) for s in samples],
               "ratio": round(ratio, 2), "poisson_p": p, **_shares(counts)}
    return [Observation({"topic": rule.topic}, active, n, summary, details)]


def _shares(counts: dict[str, int]) -> dict:
    n = counts["mentions"] or 1
    return {"negative_share": round(counts["negative"] / n, 3), "positive_share": round(counts["positive"] / n, 3)}


def usual_negative_share(hourly: dict[str, tuple[int, int]]) -> tuple[float, int]:
    """(share, mentions) over the baseline, smoothed towards 1/3 for small counts, floored at 5%."""
    n = sum(v[0] for v in hourly.values())
    neg = sum(v[1] for v in hourly.values())
    return max(0.05, (neg + 1) / (n + 3)), n


def observe_negative(rule: AlertRule, store: Store, now: datetime) -> list[Observation]:
    counts = store.topic_window(rule.topic, now - rule.window, now)
    baseline = store.topic_hours(rule.topic, now - rule.window - rule.baseline, now - rule.window)
    usual, _ = usual_negative_share(baseline)
    n, neg = counts["mentions"], counts["negative"]
    share = neg / n if n else 0.0
    p = binom_sf(neg, n, usual)
    needed = max(rule.negative_share, min(rule.ratio * usual, 0.95))
    active = n >= rule.min_count and share >= needed and p < ALPHA
    summary = f"{fmt_rate(per_hour(n, rule.window))} mentions/h, {percent(share)} negative (usually {percent(usual)})"
    details = {"count": n, "negative": neg, "window": format_duration(rule.window), "negative_share": round(share, 3),
               "usual_negative_share": round(usual, 3), "needed_share": round(needed, 3), "binomial_p": p}
    return [Observation({"topic": rule.topic}, active, share, summary, details)]


def observe_backlash(rule: AlertRule, store: Store, now: datetime) -> list[Observation]:
    """One observation per hashtag seen in the window (new ones included)."""
    start = now - rule.window
    tags = store.hashtag_window(rule.topic, start, now)
    topic_base = store.topic_hours(rule.topic, start - rule.baseline, start)
    usual, _ = usual_negative_share(topic_base)
    floor = NEW_TAG_FLOOR_PER_HOUR * (rule.window / HOUR)
    out = []
    for tag, counts in sorted(tags.items()):
        n, neg = counts["mentions"], counts["negative"]
        if n < rule.min_count:
            out.append(Observation({"topic": rule.topic, "hashtag": tag}, False, n))
            continue
        hourly = store.hashtag_hours(rule.topic, tag, start - rule.baseline - HOUR, now)
        expected, samples = rhythmic_expectation(hourly, now, rule.window, rule.baseline)
        lam = max(expected, floor)
        ratio = n / lam
        share = neg / n
        p_volume = poisson_sf(n, lam)
        p_share = binom_sf(neg, n, usual)
        active = ratio >= rule.ratio and p_volume < ALPHA and share >= rule.negative_share and p_share < ALPHA
        summary = (f"{fmt_rate(per_hour(n, rule.window))} mentions/h, {percent(share)} negative, "
                   f"{ratio:.0f}x usual")
        details = {"hashtag": tag, "count": n, "negative": neg, "window": format_duration(rule.window),
                   "expected": round(expected, 2), "floor": floor, "baseline_samples": [round(s, 2) for s in samples],
                   "ratio": round(ratio, 2), "negative_share": round(share, 3), "usual_negative_share": round(usual, 3),
                   "poisson_p": p_volume, "binomial_p": p_share, "new_hashtag": expected == 0}
        out.append(Observation({"topic": rule.topic, "hashtag": tag}, active, n, summary, details))
    return out


def observe_keyword(rule: AlertRule, store: Store, now: datetime) -> list[Observation]:
    rows = store.mentions_in(rule.topic, now - rule.window, now)
    hits = [r["id"] for r in rows
            if rule.matcher.matches(prepare(r["text"], title=r["title"], author=r["author"],
                                            hashtags=(r["hashtag_list"] or "").split()))]
    n = len(hits)
    summary = f"{n} mention{'s' if n != 1 else ''} matching {rule.query} in {format_duration(rule.window)}"
    details = {"count": n, "query": rule.query, "window": format_duration(rule.window), "mention_ids": hits[:50]}
    return [Observation({"topic": rule.topic}, n >= max(rule.min_count, 1), n, summary, details)]


def observe_sql(rule: AlertRule, store: Store, now: datetime) -> list[Observation]:
    result = run_readonly(store.path, rule.sql, {"now": iso(now), "window_start": iso(now - rule.window)},
                          time_limit=10.0, max_rows=1000)
    out = []
    for row in result.rows:
        record = dict(zip(result.columns, row))
        value = record.pop("value", None)
        labels = {k: "" if v is None else str(v) for k, v in record.items()}
        summary = f"value {value}" if value is not None else ""
        out.append(Observation(labels, True, float(value) if isinstance(value, (int, float)) else None, summary,
                               {"row": {k: v for k, v in zip(result.columns, row)}}))
    return out


OBSERVERS: dict[str, Callable[[AlertRule, Store, datetime], list[Observation]]] = {
    "volume_spike": observe_volume,
    "negative_spike": observe_negative,
    "backlash": observe_backlash,
    "keyword": observe_keyword,
    "sql": observe_sql,
}


# ---------------------------------------------------------------- source health
def down_sources(config: Config, store: Store) -> dict[str, str]:
    """Enabled sources whose last SOURCE_DOWN_AFTER fetches (or more) failed: name -> last error."""
    health = store.source_health()
    return {s.name: health[s.name].last_error or "" for s in config.sources
            if s.enabled and s.name in health and health[s.name].consecutive_errors >= SOURCE_DOWN_AFTER}


def topics_fed_by(config: Config, sources: Iterable[str]) -> set[str]:
    """Topics that the named sources feed (a source without `topics` feeds every topic)."""
    out: set[str] = set()
    for name in sources:
        src = config.source(name)
        out |= set(src.topics) if src.topics else {t.name for t in config.topics}
    return out


# ---------------------------------------------------------------- the state machine
@dataclass(frozen=True)
class RuleSpec:
    """What the state machine needs of a rule (AlertRule, or the built-in source-down rule)."""

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


def spec_of(rule: AlertRule) -> RuleSpec:
    return RuleSpec(rule.name, rule.kind, rule.for_, rule.keep_firing_for, rule.repeat or None, rule.send_resolved,
                    tuple(rule.channels), rule.severity, dict(rule.labels), rule.topic)


SOURCE_DOWN_SPEC = RuleSpec(SOURCE_DOWN_RULE, "source_down", timedelta(0), timedelta(0), None, True, ("email",),
                            "warning", {})


def step(spec: RuleSpec, observations: list[Observation], store: Store, now: datetime, config: Config, *,
         hold: bool = False) -> list[Transition]:
    """Apply one evaluation to a rule's instances; writes state, events and notifications.

    `hold`: the rule's data is incomplete (a source feeding its topic is down): what looks like a
    quiet period may be missing data, so pending and firing instances are kept as they are
    (nothing resolves); what is observed active still goes pending and fires.
    """
    transitions: list[Transition] = []
    previous = {r["labels"]: r for r in store.alert_states(spec.name)}
    seen = set()
    with store.transaction():
        for obs in observations:
            key = labels_key(obs.labels)
            seen.add(key)
            prev = previous.get(key)
            if obs.active:
                transitions += _active(spec, obs, key, prev, store, now, config)
            elif prev is not None:
                transitions += _inactive(spec, key, prev, store, now, config, hold=hold, obs=obs)
        for key, prev in previous.items():
            if key not in seen:
                transitions += _inactive(spec, key, prev, store, now, config, hold=hold, obs=None)
    return transitions


def _state_row(spec: RuleSpec, key: str, state: str, active_since: datetime, fired_at, last_active_at,
               last_notified_at, obs: Observation | None) -> dict:
    return {"rule": spec.name, "labels": key, "state": state, "active_since": iso(active_since),
            "fired_at": iso(fired_at) if isinstance(fired_at, datetime) else fired_at,
            "last_active_at": iso(last_active_at) if isinstance(last_active_at, datetime) else last_active_at,
            "last_notified_at": iso(last_notified_at) if isinstance(last_notified_at, datetime) else last_notified_at,
            "value": obs.value if obs else None,
            "details": json.dumps({"summary": obs.summary, **obs.details}, default=str) if obs else None}


def _active(spec, obs, key, prev, store, now, config) -> list[Transition]:
    out = []
    if prev is None:
        store.add_alert_event(spec.name, key, "pending", now, obs.value, obs.summary, None)
        out.append(Transition(spec.name, obs.labels, "pending", now, obs.value, obs.summary))
        active_since, state, fired_at, notified = now, "pending", None, None
    else:
        active_since, state = parse_iso(prev["active_since"]), prev["state"]
        fired_at, notified = prev["fired_at"], prev["last_notified_at"]
    if state == "pending" and now - active_since >= spec.for_:
        state, fired_at, notified = "firing", now, now
        out.append(_notify(spec, obs, "firing", store, now, config, active_since=active_since))
    elif state == "firing" and spec.repeat and notified and now - parse_iso(notified) >= spec.repeat:
        notified = now
        out.append(_notify(spec, obs, "repeat", store, now, config, active_since=active_since))
    store.put_alert_state(_state_row(spec, key, state, active_since, fired_at, now, notified, obs))
    return out


def _inactive(spec, key, prev, store, now, config, *, hold: bool, obs: Observation | None) -> list[Transition]:
    labels = dict(sorted(json.loads(key).items(), key=label_order))
    if prev["state"] == "pending":
        if hold:
            return []
        store.delete_alert_state(spec.name, key)
        store.add_alert_event(spec.name, key, "inactive", now, obs.value if obs else None, "condition cleared", None)
        return [Transition(spec.name, labels, "inactive", now, obs.value if obs else None, "condition cleared")]
    # firing
    if hold or now - parse_iso(prev["last_active_at"]) < spec.keep_firing_for:
        return []
    store.delete_alert_state(spec.name, key)
    details = json.loads(prev["details"]) if prev["details"] else {}
    last = Observation(labels, False, obs.value if obs else prev["value"],
                       (obs.summary if obs and obs.summary else "back to normal"), {**details, "resolved": True})
    if spec.send_resolved:
        return [_notify(spec, last, "resolved", store, now, config, active_since=parse_iso(prev["active_since"]))]
    store.add_alert_event(spec.name, key, "resolved", now, last.value, last.summary, None)
    return [Transition(spec.name, labels, "resolved", now, last.value, last.summary)]


def _notify(spec: RuleSpec, obs: Observation, state: str, store: Store, now: datetime, config: Config, *,
            active_since: datetime) -> Transition:
    """Record the event and queue its notification on every channel, in the caller's transaction."""
    from listener.notify import queue_alert

    key = labels_key(obs.labels)
    store.add_alert_event(spec.name, key, state, now, obs.value, obs.summary, json.dumps(obs.details, default=str))
    queue_alert(store, config, spec, obs, state, now, active_since=active_since)
    return Transition(spec.name, obs.labels, state, now, obs.value, obs.summary)


def check_rules(config: Config) -> None:
    """Problems config parsing cannot see: SQL that does not compile against the schema."""
    from listener.errors import ConfigError
    from listener.store import check_select

    problems = []
    for i, rule in enumerate(config.alerts):
        if rule.kind == "sql":
            error = check_select(rule.sql, ("now", "window_start"))
            if error:
                problems.append(f"alerts[{i}].sql (rule '{rule.name}'): {error}")
    if problems:
        raise ConfigError(problems, file=str(config.path) if config.path else None)


# ---------------------------------------------------------------- one evaluation of everything
def evaluate(config: Config, store: Store, now: datetime, *, rules: Iterable[AlertRule] | None = None) -> list[Transition]:
    """Evaluate every rule (and source health) at `now`; returns the transitions in order."""
    transitions: list[Transition] = []
    down = down_sources(config, store)
    held_topics = topics_fed_by(config, down)
    source_obs = [Observation({"source": name}, True, None, f"failing: {error}", {"error": error, "source": name})
                  for name, error in sorted(down.items())]
    transitions += step(SOURCE_DOWN_SPEC, source_obs, store, now, config)
    for rule in (config.alerts if rules is None else rules):
        try:
            observations = OBSERVERS[rule.kind](rule, store, now)
        except ListenerError as exc:
            store.record_evaluation(rule.name, now, 0, str(exc))
            continue
        hold = rule.topic is not None and rule.topic in held_topics
        transitions += step(spec_of(rule), observations, store, now, config, hold=hold)
        store.record_evaluation(rule.name, now, len(observations), None)
    return transitions


def message_id(spec_name: str, labels: dict[str, str], state: str, now: datetime, channel: str) -> str:
    digest = hashlib.sha1(f"{spec_name}|{labels_key(labels)}|{state}|{iso(now)}|{channel}".encode()).hexdigest()[:20]
    return f"<{digest}.{state}@listener>"


def describe(spec: RuleSpec, labels: dict[str, str]) -> str:
    """`#mcdstories (mcdonalds)`, `(acme)`, `source news-nl`, or `k=v, ...`."""
    if spec.kind == "source_down":
        return f"source {labels.get('source')}"
    if "hashtag" in labels:
        return f"#{labels['hashtag']} ({labels.get('topic')})"
    if set(labels) == {"topic"}:
        return f"({labels['topic']})"
    return ", ".join(f"{k}={v}" for k, v in labels.items())


def escape(text: str) -> str:
    return html.escape(text, quote=True)

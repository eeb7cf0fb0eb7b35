"""Alert kinds: one class per `kind = "..."` of an `[[alerts]]` rule, behind one small contract.

    class AlertKind:
        kind: ClassVar[str]                 # the `kind` in config.toml
        urgent: ClassVar[bool]              # its incident is announced at once (else after GROUP_WAIT)
        rank: ClassVar[int]                 # which member leads an incident (lowest first)
        def __init__(self, rule: AlertRule): ...
        def observe(self, scope: Scope) -> list[Observation]   # one per alert instance, pure reads
        def explain(self, obs: Observation) -> list[str]        # the statistics, one sentence a line
        def learning(self, scope: Scope) -> str | None          # "learning: 2 of 7 days", or None

A kind only reads (through the `Scope`): the state machine, incidents and notifications are the
same for every kind. Kinds are registered by name in KINDS and imported on first use.
"""

from __future__ import annotations

import importlib
import math
from statistics import median
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, ClassVar

from listener.query import normalise
from listener.alerts.stats import DAY, HOUR, prorated_sums, rhythmic_expectation

if TYPE_CHECKING:  # pragma: no cover
    from listener.config import AlertRule
    from listener.store import HourCounts, MentionStore

# Shares are measured as the model's expected negatives (the sum of P(negative)) rather than
# the count of mentions labelled negative: less sensitive to where the model puts its threshold.
SHARE_INDEX = 2  # HourCounts.p_negative (1, the labelled count, separates no better and depends on a threshold)
SPREAD_WEIGHT = 50.0  # posts: how much the default spread counts against a topic's own
SHARE_SD = 0.35  # spread of one post's P(negative) around its group's mean (measured 0.29-0.37 on en/nl validation mixes)
PRIOR_SHARE, PRIOR_WEIGHT = 0.3, 20  # a topic's negative share before it has history
WEEK = 7  # with two weeks of history (a baseline of 14d or more), the same weekday is the baseline


@dataclass(frozen=True)
class Observation:
    """What a rule sees of one alert instance at one evaluation."""

    labels: dict[str, str]
    active: bool  # the condition holds: pending, then firing after `for`
    value: float | None = None
    summary: str = ""
    details: dict = field(default_factory=dict)
    sustained: bool | None = None  # while firing, the evidence is not clearly gone (None: = active)
    rate: float | None = None  # mentions/h this instance is about (an incident's peak)


@dataclass
class Scope:
    """What one evaluation of one rule reads: the store, as of `now`, and the topic's history."""

    store: "MentionStore"
    now: datetime
    since: datetime | None  # when the topic's data begins (None: no data yet)
    own_names: frozenset[str] = frozenset()  # the topic query's own words and handles, folded
    _cache: dict = field(default_factory=dict, repr=False)

    def history_days(self, window: timedelta, baseline: timedelta) -> int:
        """Whole earlier days (at most the baseline's) whose same clock window lies after `since`."""
        if self.since is None:
            return 0
        have = (self.now - window - self.since) // DAY
        return max(0, min(int(baseline / DAY), int(have)))

    def history_hours(self, window: timedelta, baseline: timedelta) -> tuple[datetime, float]:
        """Start and length (hours) of the history before the window, since the data began."""
        end = self.now - window
        start = min(max(self.since or end, end - baseline), end)  # data that began inside the window: none
        return start, (end - start) / HOUR

    def topic_hours(self, topic: str, start: datetime) -> dict[str, "HourCounts"]:
        key = ("topic_hours", topic, start)
        if key not in self._cache:
            self._cache[key] = self.store.topic_hours(topic, start, self.now)
        return self._cache[key]

    def topic_window(self, topic: str, window: timedelta) -> dict[str, float]:
        key = ("topic_window", topic, window)
        if key not in self._cache:
            self._cache[key] = self.store.topic_window(topic, self.now - window, self.now)
        return self._cache[key]


@dataclass(frozen=True)
class TopicBaseline:
    """A topic's usual traffic before the window, from the hourly rollups since its data began.

    Shares leave out the last day once there are two (a launch or a hijack earlier today does
    not become "usual" by the afternoon).
    """

    days: int  # whole days of same-clock samples
    needed: int  # the baseline's days
    expected: float  # usual count in a window like this at this time of day (0 without a day)
    samples: list[float]
    hours: float  # hours of history
    mentions: float  # in the hours the shares come from
    negative: float  # expected negatives in those hours
    usual_negative: float  # the negative share, smoothed towards PRIOR_SHARE
    negative_upper: float  # the most the usual negative share plausibly is
    usual_positive: float  # the share labelled positive
    rate: float  # mean mentions per hour over the history
    window_hours: float
    spread: float = SHARE_SD  # of one post's P(negative) on this topic, shrunk towards SHARE_SD

    @property
    def rhythm(self) -> float:
        """How much busier this time of day is than the day's average (>= 1; 2 without a day)."""
        if self.days == 0 or self.rate <= 0:
            return 2.0
        return min(max(self.expected / self.window_hours / self.rate, 1.0), 4.0)


def topic_baseline(scope: Scope, topic: str, window: timedelta, baseline: timedelta) -> TopicBaseline:
    """The topic's baseline for rules with this window and baseline (read once per evaluation)."""
    key = ("baseline", topic, window, baseline)
    if key not in scope._cache:
        scope._cache[key] = _topic_baseline(scope, topic, window, baseline)
    return scope._cache[key]


def _topic_baseline(scope: Scope, topic: str, window: timedelta, baseline: timedelta) -> TopicBaseline:
    days = scope.history_days(window, baseline)
    start, hours = scope.history_hours(window, baseline)
    first = min(scope.now - window - days * DAY - HOUR, start - HOUR)
    hourly = scope.topic_hours(topic, first)
    expected, samples = rhythmic_expectation(hourly, scope.now, window, days)
    weekly = samples[WEEK - 1::WEEK]  # the same weekday (d = 7, 14, ...), once there are weeks
    if len(weekly) >= 2:
        expected, samples = float(median(weekly)), weekly
    end = scope.now - window
    rate = (prorated_sums(hourly, start, end) or [0.0])[0] / hours if hours > 0 else 0.0
    if hours >= 48:
        end -= DAY
    sums = prorated_sums(hourly, start, end) or [0.0] * 4
    mentions, negative, positive = sums[0], sums[SHARE_INDEX], sums[3]
    usual = (negative + PRIOR_SHARE * PRIOR_WEIGHT) / (mentions + PRIOR_WEIGHT)
    sd = spread(mentions, negative, sums[4] if len(sums) > 4 else 0.0)
    upper = min(usual + 1.64 * sd / math.sqrt(mentions + PRIOR_WEIGHT), 0.99)
    return TopicBaseline(days, int(baseline / DAY), expected, samples, hours, mentions, negative, usual, upper,
                         (positive + 1) / (mentions + 3), rate, window / HOUR, sd)


def spread(n: float, total: float, squares: float) -> float:
    """The spread of one post's P(negative) on a topic, from n posts' sum and sum of squares, shrunk
    towards SHARE_SD with the weight of SPREAD_WEIGHT posts. Measured 0.29 on a Dutch topic (the model
    hedges), 0.31 on an ordinary English one, 0.36 on one that is always criticised: the same shift in
    share is stronger evidence where the model is surer."""
    if n <= 0:
        return SHARE_SD
    variance = max(squares / n - (total / n) ** 2, 0.0)
    return math.sqrt((variance * n + SHARE_SD ** 2 * SPREAD_WEIGHT) / (n + SPREAD_WEIGHT))


def window_negatives(counts: dict[str, float]) -> float:
    """The window's negatives in the unit shares are measured in: the sum of P(negative)."""
    return counts["p_negative"]


def learning_text(days: int, needed: int) -> str | None:
    return f"learning: {days} of {needed} days" if days < needed else None


def is_own_hashtag(scope: Scope, topic: str, tag: str, window: timedelta, baseline: timedelta) -> bool:
    """A hashtag that is the topic itself: one of its query's words (#acme for `acme`), or carried
    by most of its mentions before the window (30% or more of at least 30), leaving out the last
    day once there are two, as the baseline's shares do: a hijack at 300/h carries a third of the
    topic's mentions within two hours, and does not become the topic's own hashtag by doing so."""
    if normalise(tag) in scope.own_names:
        return True
    start, hours = scope.history_hours(window, baseline)
    if hours <= 0:
        return False
    end = scope.now - window - (DAY if hours >= 48 else timedelta(0))
    tagged, total = scope.store.hashtag_share(topic, tag, start, end)
    return total >= 30 and tagged >= 0.3 * total


class AlertKind:
    """The base of every kind: holds the rule; subclasses observe and explain."""

    kind: ClassVar[str]
    urgent: ClassVar[bool] = False
    rank: ClassVar[int] = 5

    def __init__(self, rule: "AlertRule"):
        self.rule = rule

    def observe(self, scope: Scope) -> list[Observation]:
        raise NotImplementedError

    def explain(self, obs: Observation) -> list[str]:
        return []

    def learning(self, scope: Scope) -> str | None:
        return None


# kind -> "module:Class". Modules are imported on first use.
KINDS: dict[str, str] = {
    "volume_spike": "listener.alerts.kinds.volume_spike:VolumeSpike",
    "negative_spike": "listener.alerts.kinds.negative_spike:NegativeSpike",
    "backlash": "listener.alerts.kinds.backlash:Backlash",
    "keyword": "listener.alerts.kinds.keyword:Keyword",
    "sql": "listener.alerts.kinds.sql:Sql",
}


def kind_class(kind: str) -> type[AlertKind]:
    """The class implementing an alert kind; KeyError for an unknown kind."""
    module_name, _, class_name = KINDS[kind].partition(":")
    return getattr(importlib.import_module(module_name), class_name)

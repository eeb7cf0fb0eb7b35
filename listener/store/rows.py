"""The rows the store gives and takes as dicts, typed: their keys are the columns of the documented
tables (README, "The database"), their times ISO-8601 text as `iso` writes it. Every engine
returns exactly these keys."""

from __future__ import annotations

from datetime import datetime
from typing import Any, NotRequired, TypedDict


class StoredMention(TypedDict):
    """A stored mention as `search` finds it: every column of `mentions`, and its hashtags."""

    id: int
    source: str
    source_id: str
    url: str | None
    author: str | None
    title: str | None
    text: str
    language: str | None
    language_detected: int  # 1 when detected, 0 when the source said
    published_at: str
    fetched_at: str
    likes: int | None
    reposts: int | None
    replies: int | None
    score: int | None
    sentiment: str | None  # negative / neutral / positive; None until scored
    p_negative: float | None
    p_neutral: float | None
    p_positive: float | None
    sentiment_score: float | None
    model: str | None
    scored_at: str | None
    hashtag_list: str | None  # space-separated, in no particular order


class ExportedMention(StoredMention):
    """A stored mention as `iter_mentions` streams it: with its topics too."""

    topic_list: str | None  # space-separated, in no particular order


class CorrectionRow(TypedDict):
    """A team member's correction of the model (`corrections`), with the words of its mention: for a
    list of corrections, an evaluation of the model and a training file."""

    id: int
    mention_id: int
    topic: str | None  # not relevant to this topic; None: to all of its topics (or a sentiment)
    label: str  # the corrected sentiment (negative / neutral / positive) or "not relevant"
    model_sentiment: str | None  # the model's label before; None: it was not scored yet
    model_p_negative: float | None
    model_p_neutral: float | None
    model_p_positive: float | None
    model: str | None  # the model that gave it
    corrected_by: str
    corrected_at: str
    source: str  # the mention's
    url: str | None
    title: str | None
    text: str
    language: str | None


class EngagedMention(TypedDict):
    """A mention shown as an example (alerts) or a top mention (digest), with its engagement."""

    id: int
    source: str
    url: str | None
    author: str | None
    title: str | None
    text: str
    published_at: str
    sentiment: str | None
    likes: int | None
    reposts: int | None
    replies: int | None
    score: int | None
    engagement: int  # likes + reposts + replies + score


class ExampleMention(EngagedMention):
    """An example for an alert message: one of the most engaged mentions of a window."""

    p_negative: float | None


class TopMention(EngagedMention):
    """One of the day's most engaged mentions of a sentiment, for the digest."""

    language: str | None
    sentiment_score: float | None


class MentionText(TypedDict):
    """What a keyword rule reads of a scored mention."""

    id: int
    text: str
    title: str | None
    author: str | None
    hashtag_list: str | None


class TopicWindow(TypedDict):
    """Scored mentions of a topic in a window: counts per sentiment and the sum of P(negative)."""

    mentions: int
    negative: int
    neutral: int
    positive: int
    p_negative: float


class FetchRecord(TypedDict):
    """One fetch attempt of a source, from the fetch log."""

    id: int
    source: str
    started_at: str
    finished_at: str
    status: str  # ok / not_modified / error
    items: int  # items the source returned
    new_mentions: int
    requests: int
    error: str | None


class SourceFailures(TypedDict):
    """A source's failed and good fetches in a period and its current error streak (the digest)."""

    source: str
    kind: str
    consecutive_errors: int
    last_error: str | None
    last_error_at: str | None
    last_success_at: str | None
    errors: int  # failed fetches in the period
    ok: int  # good ones
    error: str | None  # the period's last error
    failing_since: str | None  # the first failed fetch of the current streak; None when not failing now


class AlertStateRow(TypedDict):
    """The current state of one alert instance (rule + labels)."""

    rule: str
    labels: str  # JSON object, keys sorted: the instance's identity
    state: str  # pending / firing
    active_since: str
    fired_at: str | None
    last_active_at: str
    last_notified_at: str | None
    value: float | None
    details: str | None  # JSON


class AlertEventRow(TypedDict):
    """One recorded transition of an alert instance."""

    id: int
    rule: str
    labels: str
    state: str  # pending / firing / resolved / inactive / repeat
    at: str
    value: float | None
    summary: str | None
    details: str | None
    incident_id: int | None


class NewAlertEvent(TypedDict):
    """A transition to record (`save_alert_evaluation`); `topic` links it to that topic's incident."""

    rule: str
    labels: str
    state: str
    at: datetime
    value: float | None
    summary: str
    details: str | None
    topic: NotRequired[str | None]


class IncidentFields(TypedDict):
    """What an incident is, stored or read (alerts on one topic that overlap in time)."""

    topic: str
    state: str  # open / closed
    opened_at: str  # when its first alert fired
    notified_at: str | None  # when the opening notice was queued
    last_notified_at: str | None
    closed_at: str | None
    lead_rule: str | None  # the alert its notices are about
    lead_labels: str | None
    summary: str | None
    peak: float | None  # highest mentions/h seen by its alerts
    peak_at: str | None
    notifications: int


class IncidentRow(IncidentFields):
    """An incident as stored (its lists and lead as JSON text); `id` None for one not stored yet."""

    id: int | None
    lead: str | None
    hashtags: str
    rules: str
    members: str
    announced: str


class IncidentRecord(IncidentFields):
    """An incident as the history reads it: its lists and its lead decoded."""

    id: int
    lead: dict[str, Any] | None
    hashtags: list[str]
    rules: list[str]
    members: list[str]  # "rule|labels" of every alert instance in it
    announced: list[str]


class RuleEvaluation(TypedDict):
    """What one evaluation of a rule came to (`save_alert_evaluation`)."""

    rule: str
    now: datetime
    error: str | None
    instances: int
    status: str | None  # what the rule could not do yet, in words ("learning: 2 of 7 days")


class RuleEvaluationRow(TypedDict):
    """A rule's last evaluation, as stored."""

    rule: str
    last_evaluated_at: str
    last_error: str | None
    instances: int
    status: str | None


class Notification(TypedDict):
    """A notification to queue (the arguments of `enqueue`); `incident_topic` (evaluations only)
    puts the id of that topic's incident, once stored, into the payload's `incident`."""

    message_id: str
    channel: str  # email / webhook:NAME
    kind: str  # alert / source_down / digest
    recipients: list[str]
    subject: str
    body_text: str
    body_html: str | None
    payload: dict[str, Any] | None
    now: datetime
    incident_topic: NotRequired[str]


class OutboxRow(TypedDict):
    """A queued notification with its delivery state (recipients and payload decoded)."""

    id: int
    message_id: str
    channel: str
    kind: str
    recipients: list[str]
    subject: str
    body_text: str
    body_html: str | None
    payload: dict[str, Any] | None
    created_at: str
    attempts: int
    next_attempt_at: str
    sent_at: str | None
    last_error: str | None
    given_up_at: str | None


class OutboxStatus(TypedDict):
    """Where one queued notification stands."""

    created_at: str
    attempts: int
    sent_at: str | None
    last_error: str | None


class OutboxCounts(TypedDict):
    queued: int
    sent: int
    given_up: int


class OutboxProblem(TypedDict):
    """Why notifications of a channel are not going out: the failing queued ones, or the given-up ones."""

    channel: str
    given_up: bool
    count: int
    oldest: str  # created_at of the oldest
    next_attempt_at: str
    last_error: str | None


class LogsPruned(TypedDict):
    """Log rows deleted by `prune_logs`, per table."""

    fetches: int
    alert_events: int
    incidents: int
    outbox: int


class AuthorRow(TypedDict):
    """An author's scored mentions of a topic in a period: how many, their engagement, per sentiment."""

    author: str
    mentions: int
    engagement: int
    negative: int
    neutral: int
    positive: int


class Outage(TypedDict):
    """A run of failed fetches of one source: from its first failure to the next good fetch (None: still failing)."""

    source: str
    start: str
    end: str | None
    errors: int
    error: str | None  # the last error of the run


class LeaseRow(TypedDict):
    """A lease as stored: who holds it (or held it last) and until when."""

    name: str  # fetch:SOURCE, leader
    worker: str
    acquired_at: str
    expires_at: str
    released_at: str | None

"""What the rest of listener asks of the mention database, in its own words: the interface every
storage engine implements (`SQLiteStore` today), grouped by who asks.

Callers take a `MentionStore` and use nothing else: no connection, no file path, no SQL of their
own, no transactions (each write below is one transaction, all or nothing). The contract suite
`tests/test_store_contract.py` runs against every engine.

Conventions: times given are aware datetimes; rows given back are typed dicts (`listener.store.rows`)
whose times are UTC ISO-8601 text (`iso`), as in the documented tables.

The rollups are part of the contract. `topic_hourly`, `hashtag_hourly` (scored mentions per
topic, and per topic and hashtag, per hour: counts per sentiment, the sum of P(negative), and for
topics the sum of its square and their engagement per sentiment), `topic_breakdown_hourly` (per
topic, hour, source and language) and `topic_author_daily` (per topic, UTC day and author: counts per
sentiment and engagement) must follow every change of a mention's score (`save_scores`, a re-score
moves its counts; a `correct_sentiment` too), every refresh of a stored mention's engagement (a
duplicate in `save_fetch`, `save_mentions`), every topic linked to an already scored mention (the
same) and every topic a mention is no longer in (`mark_not_relevant` takes it out), and must keep
their counts when mentions are pruned (`prune`): trends outlive the mentions. What depends on
them: `topic_hours`, `hashtag_hours`, `hashtag_share`, `hashtag_first_seen`, `topic_data_since`
(`AlertWindows`); `rollup_counts`, `topic_hourly_counts` (`DigestRollups`); `topic_engagement`,
`top_authors` (`DashboardReads`); and users' SQL over the rollups and the daily views built on them
(`read_only_query`). SQLite keeps them with the triggers of migrations m002, m003, m004, m006, m007
and m008; another engine must keep them the same way.
"""

from __future__ import annotations


from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Mapping, Protocol, Sequence, runtime_checkable

from listener.sources import SourceState
from listener.store.rows import (AlertEventRow, AlertStateRow, AuthorRow, CorrectionRow, ExampleMention,
                                 ExportedMention, FetchRecord, IncidentRecord, IncidentRow, LeaseRow, LogsPruned, MentionText,
                                 NewAlertEvent, Notification, Outage, OutboxCounts, OutboxProblem, OutboxRow,
                                 OutboxStatus, RuleEvaluation,
                                 RuleEvaluationRow, SourceFailures, StoredMention, TopicWindow, TopMention)
from listener.store.types import (Counts, Fetched, HourCounts, JobRun, MentionFilter, MentionRow, QueryResult, SaveResult,
                                  SourceHealth)

if TYPE_CHECKING:  # pragma: no cover
    from listener.query import Query


class Ingest(Protocol):
    """The pipeline (a fetch) and the importer: storing mentions, once each, with the source's state."""

    def save_fetch(self, source: str, kind: str, rows: Sequence[MentionRow], state: SourceState, *,
                   started_at: datetime, now: datetime, next_check_at: datetime, items: int,
                   requests: int, not_modified: bool = False) -> SaveResult:
        """Store a successful fetch at once: its mentions, their topics and hashtags, the source's new
        state and a line in its fetch log. A mention stored before under the same (source, source id),
        or under the same canonical URL from another source, is refreshed (engagement) and linked to
        the new topics (not to one it was marked not relevant to), not stored twice."""
        ...

    def save_fetches(self, fetches: Sequence[Fetched]) -> list[SaveResult]:
        """Store several successful fetches in one transaction, each as `save_fetch` stores it, in
        order (a mention of a later one that an earlier one stored is a repeat): every one of them, or
        none when any fails (the error is raised, as StoreError or the engine's own). One commit for
        many sources is what lets a busy fetch cycle store in bulk."""
        ...

    def save_mentions(self, rows: Sequence[MentionRow]) -> SaveResult:
        """Store mentions at once, deduplicated like a fetch, touching no source's state or log (imports)."""
        ...

    def record_failure(self, source: str, kind: str, error: str, *, started_at: datetime, now: datetime,
                       next_check_at: datetime, requests: int = 1) -> int:
        """Record a failed fetch (never as "zero mentions"), keeping the source's state; the error streak."""
        ...

    def source_state(self, name: str) -> SourceState:
        """What the source's next fetch starts from (ETag, Last-Modified, cursor); empty for a new source."""
        ...


class SourceReads(Protocol):
    """The scheduler, `listener sources`, source-down alerts, the digest and a status page: how sources fare."""

    def source_health(self, name: str | None = None, *, with_counts: bool = False) -> dict[str, SourceHealth]:
        """Health of every recorded source (or just `name`); its mentions counted only when asked (a scan)."""
        ...

    def source_failures(self, start: datetime, end: datetime) -> list[SourceFailures]:
        """Every recorded source with its failed and good fetches in [start, end) and its current streak."""
        ...

    def collected_between(self, start: datetime, end: datetime) -> bool:
        """Whether anything was collected in [start, end): a fetch attempt, or a mention stored."""
        ...

    def fetch_log(self, source: str | None = None) -> list[FetchRecord]:
        """The fetch attempts of `source` (None: of every source), oldest first."""
        ...


class Scoring(Protocol):
    """The scoring step, and the alerts' watermark (rules wait while their topic has mentions to score)."""

    def unscored(self, limit: int = 1000) -> list[tuple[int, str, str | None]]:
        """Mentions without a sentiment yet, oldest first: (id, text, title)."""
        ...

    def count_unscored(self, *, topic: str | None = None, since: datetime | None = None) -> int:
        """How many mentions wait to be scored (of `topic`, published since `since`, when given)."""
        ...

    def save_scores(self, scores: Iterable[tuple[int, Any]], model: str, now: datetime) -> int:
        """Write the sentiment of (mention id, models.Sentiment) pairs at once (the rollups follow), except
        over a team's correction (`Corrections`); how many were written."""
        ...


class MentionReads(Protocol):
    """`listener search` and `export`, the demo and a dashboard: the stored mentions themselves."""

    def search(self, query: Query | None, *, limit: int = 50, topic: str | None = None) -> list[StoredMention]:
        """Mentions matching `query` (all, when None), newest first, at most `limit`; `topic` keeps
        that topic's only. The engine narrows with its own full-text index (FTS5: `Query.to_fts5`)
        and decides with `Query.matches_stored`, so every engine finds exactly the same mentions."""
        ...

    def iter_mentions(self, *, since: datetime | None = None, topic: str | None = None) -> Iterator[ExportedMention]:
        """Every stored mention oldest first, with its topics and hashtags (published since `since`, of
        `topic`), streamed: an export of millions holds few in memory."""
        ...

    def count_by_sentiment(self) -> dict[str | None, int]:
        """How many mentions are stored, per sentiment (None: not scored yet), in the order None,
        negative, neutral, positive (those there are)."""
        ...


class ReadOnlySQL(Protocol):
    """`sql` alert rules (and `listener sql`, by the database's location: `run_readonly`): users' own SQL.

    The tables and views documented in the README are part of the contract: users' queries and the
    ready ones (`listener.store.queries`) read them by name.
    """

    def read_only_query(self, sql: str, params: Mapping[str, Any] | Sequence[Any] | None = None, *,
                        time_limit: float = 30.0, max_rows: int | None = None) -> QueryResult:
        """Run a user's SELECT read-only, stopped after `time_limit` seconds; StoreError in one line when
        it fails, writes or runs out of time."""
        ...


class AlertWindows(Protocol):
    """Alert kinds: scored mentions in a window, and the hourly rollups behind every baseline."""

    def topic_data_since(self, topic: str, sources: Sequence[str] | None = None) -> datetime | None:
        """When `topic`'s history begins: its first scored data (rollups), and not before the first good
        fetch of `sources` (None: of any source). Before that, no data is not zero."""
        ...

    def topic_window(self, topic: str, start: datetime, end: datetime) -> TopicWindow:
        """Scored mentions of `topic` published in [start, end): counts per sentiment, sum of P(negative)."""
        ...

    def hashtag_posts(self, topic: str, start: datetime, end: datetime, *,
                      hashtag: str | None = None) -> dict[str, list[tuple[datetime, float, bool]]]:
        """Per hashtag of `topic` (or just `hashtag`), its scored mentions published in [start, end), oldest
        first: (published at, P(negative), labelled negative)."""
        ...

    def hashtag_pairs(self, topic: str, start: datetime, end: datetime) -> dict[tuple[str, str], int]:
        """Scored mentions of `topic` published in [start, end) that carry both of two hashtags, per
        pair (the two as Python sorts them, whatever the database's collation); pairs that never meet
        are left out."""
        ...

    def topic_hours(self, topic: str, start: datetime, end: datetime) -> dict[str, HourCounts]:
        """The hourly rollup of `topic` for the hours in [start, end), by hour (ISO text)."""
        ...

    def hashtag_hours(self, topic: str, hashtag: str, start: datetime, end: datetime) -> dict[str, HourCounts]:
        """The hourly rollup of one hashtag within `topic` for the hours in [start, end) (no squares)."""
        ...

    def hashtag_first_seen(self, topic: str, hashtag: str) -> datetime | None:
        """When `hashtag` was first seen in `topic` (its first rollup hour once the mention is pruned)."""
        ...

    def hashtag_share(self, topic: str, hashtag: str, start: datetime, end: datetime) -> tuple[int, int]:
        """(scored mentions of `hashtag`, of `topic`) in the rollup hours [start, end)."""
        ...

    def examples(self, topic: str | None, start: datetime, end: datetime, *, sentiment: str | None = "negative",
                 hashtag: str | None = None, ids: Sequence[int] | None = None, limit: int = 5) -> list[ExampleMention]:
        """The most engaged mentions published in [start, end) of `topic`, `sentiment`, `hashtag` and
        `ids` (None: any), for an alert's message."""
        ...

    def mentions_in(self, topic: str, start: datetime, end: datetime) -> list[MentionText]:
        """Scored mentions of `topic` published in [start, end), their words (for keyword rules)."""
        ...


class DigestRollups(Protocol):
    """The digest: a day's counts from the rollups, and its most engaged mentions."""

    def rollup_counts(self, kind: str, topic: str, bounds: Sequence[datetime],
                      keys: Sequence[str] | None = None) -> list[dict[str, Counts]]:
        """Scored mentions of `topic` in each period [bounds[i], bounds[i+1]), per key: `kind` is `topic`
        (one key, ''), `source`, `language` ('' when unknown) or `hashtag`; `keys` keeps those only.
        Whole hours come from the rollups (they outlive pruned mentions); an hour a bound cuts (a time
        zone such as Asia/Kolkata) is counted from the mentions."""
        ...

    def topic_hourly_counts(self, topic: str, start: datetime, end: datetime) -> dict[str, Counts]:
        """The hourly rollup of `topic` for the hours that start in [start, end): hour -> counts."""
        ...

    def top_mentions(self, topic: str, start: datetime, end: datetime,
                     sentiments: Sequence[str] = ("positive", "negative"),
                     per_sentiment: int = 3) -> dict[str, list[TopMention]]:
        """The most engaged mentions of `topic` published in [start, end), per sentiment; ties go to the
        stronger sentiment, then the oldest."""
        ...


class AlertState(Protocol):
    """The alert engine (state restored after a restart), `listener alerts`, the digest and imports of history."""

    def alert_states(self, rule: str | None = None) -> list[AlertStateRow]:
        """The pending and firing instances (of `rule`), by rule and labels."""
        ...

    def alert_events(self, since: datetime, until: datetime | None = None) -> list[AlertEventRow]:
        """Transitions recorded in [since, until), oldest first."""
        ...

    def add_alert_event(self, rule: str, labels: str, state: str, at: datetime, value: float | None,
                        summary: str, details: str | None, incident_id: int | None = None) -> None:
        """Record one transition on its own (imports of history; evaluations use `save_alert_evaluation`)."""
        ...

    def open_incidents(self) -> list[IncidentRow]:
        """The open incidents, as stored."""
        ...

    def incidents(self, since: datetime, until: datetime | None = None) -> list[IncidentRecord]:
        """Incidents open at some time in [since, until), oldest first, their lists decoded."""
        ...

    def rule_evaluations(self) -> dict[str, RuleEvaluationRow]:
        """Every rule's last evaluation, by rule."""
        ...

    def save_alert_evaluation(self, *, states: Mapping[str, Mapping[str, AlertStateRow]],
                              events: Sequence[NewAlertEvent], incidents: Sequence[IncidentRow],
                              outbox: Sequence[Notification], evaluations: Sequence[RuleEvaluation]) -> dict[str, int]:
        """Write one evaluation at once: the instances of every rule in `states` (replacing its old ones),
        the transitions, the incidents opened or changed, their notifications and the rules' evaluation
        records. Topic -> incident id of the incidents written (a topic's events link to its incident)."""
        ...


class Outbox(Protocol):
    """Notifications: queued with what caused them, delivered by `listener.notify`, shown by `listener alerts`."""

    def enqueue(self, *, message_id: str, channel: str, kind: str, recipients: Sequence[str], subject: str,
                body_text: str, body_html: str | None, payload: dict | None, now: datetime) -> bool:
        """Queue a notification to deliver from `now`; False when one with this message id was ever queued."""
        ...

    def outbox_has(self, message_id: str) -> bool:
        """Whether a notification with this message id was ever queued (sent or not)."""
        ...

    def outbox_status(self, message_id: str) -> OutboxStatus | None:
        """When one notification was queued, its attempts, when it was sent and its last error; None if unknown."""
        ...

    def due_notifications(self, now: datetime, limit: int = 100) -> list[OutboxRow]:
        """Notifications to try now (not sent, not given up, their next attempt due), oldest first."""
        ...

    def notifications(self) -> list[OutboxRow]:
        """Every notification kept, oldest first, with its delivery state (an outbox page)."""
        ...

    def mark_sent(self, outbox_id: int, now: datetime) -> None:
        """A notification was delivered."""
        ...

    def mark_failed(self, outbox_id: int, error: str, next_attempt_at: datetime) -> None:
        """A delivery failed and is tried again at `next_attempt_at`."""
        ...

    def mark_given_up(self, outbox_id: int, error: str, now: datetime) -> None:
        """A notification no retry can deliver: kept with its error, never tried again."""
        ...

    def outbox_counts(self) -> OutboxCounts:
        """How many notifications are queued, sent and given up."""
        ...

    def outbox_problems(self) -> list[OutboxProblem]:
        """Why notifications are not going out, per channel: the failing queued ones and the given-up ones."""
        ...


class Workers(Protocol):
    """Several `listener run` workers on one database (`listener.daemon`): a lease gives one work to
    one worker at a time and expires when that worker dies; a claim does the same for single
    mentions to score and notifications to deliver. `worker` names a process (host:pid); times
    decide, so a killed worker's share is free again once its lease or claim expires."""

    def claim_lease(self, name: str, worker: str, now: datetime, ttl: timedelta) -> bool:
        """Hold lease `name` for `worker` until `now + ttl`: True when it was free, expired, released or
        already `worker`'s (renewed); False while another worker holds it."""
        ...

    def release_lease(self, name: str, worker: str, now: datetime) -> None:
        """Free `name` at `now`, if `worker` holds it (kept as who held it last)."""
        ...

    def end_other_workers(self, worker: str, now: datetime) -> None:
        """Release every lease and drop every claim not `worker`'s, at `now`: for a caller that knows
        no other worker is alive (one daemon per SQLite file, under its lock), so that a restart after
        a crash does not wait for the dead process's leases and claims to expire."""
        ...

    def leases(self, prefix: str = "") -> dict[str, LeaseRow]:
        """Every lease whose name starts with `prefix`, held or last held, by name."""
        ...

    def claim_unscored(self, worker: str, now: datetime, ttl: timedelta, limit: int = 1000) -> list[tuple[int, str, str | None]]:
        """Like `unscored`, of those no other worker's live claim holds, claimed for `worker` until
        `now + ttl` (its earlier claims end)."""
        ...

    def claim_due_notifications(self, worker: str, now: datetime, ttl: timedelta, limit: int = 100) -> list[OutboxRow]:
        """Like `due_notifications`, of those no other worker's live claim holds, claimed for `worker`
        until `now + ttl`: each is delivered by one worker (its earlier claims end)."""
        ...


class Transfer(Protocol):
    """`listener db copy` (`listener.store.transfer`): a whole database moved to another engine, table
    by table, with its ids. Tables are the documented ones, by name."""

    def table_columns(self, table: str) -> list[str]:
        """The documented columns of `table` (what users' SQL sees), in order."""
        ...

    def read_table(self, table: str, *, batch: int = 5000) -> Iterator[list[dict[str, Any]]]:
        """Every row of `table` (documented columns, times as ISO text) in batches, by primary key."""
        ...

    def write_rows(self, table: str, rows: Sequence[Mapping[str, Any]]) -> None:
        """Insert `rows` into `table` as they are, ids included, in one transaction (the engine keeps
        its own indexes, search and partitions; its rollups follow as for any write)."""
        ...

    def clear_table(self, table: str) -> None:
        """Delete every row of `table` (a rollup, before the source's own rows replace it)."""
        ...

    def count_rows(self, table: str) -> int:
        """How many rows `table` holds."""
        ...

    def finish_copy(self) -> None:
        """After rows were written with their ids: new ids continue after the highest (and statistics)."""
        ...


class Retention(Protocol):
    """The daily prune job (`listener.store.retention`) and a status page."""

    def prune(self, before: datetime, *, batch: int = 5000, on_batch: Callable[[int], None] | None = None) -> int:
        """Delete the mentions published before `before` (with their topics, hashtags, corrections and
        search entries), `batch` per transaction so other writers get their turn; the rollups keep
        their counts. How many."""
        ...

    def prune_logs(self, before: datetime, *, batch: int = 5000) -> LogsPruned:
        """Delete log rows older than `before` in batches: fetch attempts, alert events, closed incidents
        and delivered or given-up notifications (queued ones stay, whatever their age)."""
        ...

    def last_job_run(self, job: str) -> datetime | None:
        """When `job` last ran (None: never)."""
        ...

    def record_job_run(self, job: str, at: datetime, detail: str | None = None) -> None:
        """`job` ran at `at` and did `detail`."""
        ...

    def job_runs(self) -> dict[str, JobRun]:
        """Every job's last run and what it did, by job."""
        ...


class DashboardReads(Protocol):
    """The web dashboard (`listener.web`): what its pages show beyond the digest's rollups. Counts per
    hour, day, source, language and hashtag come from `DigestRollups` and `AlertWindows`; these read a
    page of the mentions themselves, the engagement and author rollups, or the logs."""

    def filtered_mentions(self, where: MentionFilter, query: Query | None = None, *, limit: int = 50,
                          before: tuple[str, int] | None = None, after_id: int | None = None) -> list[ExportedMention]:
        """Mentions newest first (published_at, then id) that pass `where` and match `query` (as
        `search`: narrowed by the engine's full-text index, decided by `Query.matches_stored`), at
        most `limit`: those before the keyset `before` (published_at, id) of the last one shown, or
        stored after the mention `after_id` (new ones)."""
        ...

    def topic_engagement(self, topic: str, start: datetime, end: datetime) -> dict[str, int]:
        """The engagement (likes + reposts + replies + score) of `topic`'s scored mentions published in
        [start, end), per sentiment (those there are). Like `rollup_counts`: whole hours come from the
        rollup (they outlive pruned mentions), an hour a bound cuts from the mentions."""
        ...

    def top_authors(self, topic: str, start: datetime, end: datetime, limit: int = 10) -> list[AuthorRow]:
        """The authors of most scored mentions of `topic` published in [start, end), then by engagement,
        then by name: their mentions per sentiment and engagement. Whole UTC days come from the
        rollup (they outlive pruned mentions), a day a bound cuts from the mentions."""
        ...

    def source_outages(self, start: datetime, end: datetime, sources: Sequence[str] | None = None) -> list[Outage]:
        """Runs of failed fetches started in [start, end), per source (of `sources`; None: every recorded one)."""
        ...

    def recent_fetch_errors(self, source: str, limit: int = 5) -> list[FetchRecord]:
        """The last failed fetches of `source`, newest first."""
        ...

    def incident(self, incident_id: int) -> IncidentRecord | None:
        """One incident, its lists decoded; None when there is none with that id."""
        ...

    def incident_events(self, incident_id: int) -> list[AlertEventRow]:
        """The alert transitions linked to the incident, oldest first."""
        ...

    def incident_notifications(self, incident_id: int) -> list[OutboxRow]:
        """The notifications queued about the incident (their payload names it), oldest first, with their delivery."""
        ...


class Corrections(Protocol):
    """A dashboard, `listener corrections` and `listener model eval --corrections`: the team's own labels.

    A correction is the mention's effective label from then on: the corrected sentiment is the
    mention's `sentiment` (its probabilities 1.0 for that label, 0.0 for the others), so every count,
    window, rollup and example follows as after a re-score, and scoring never overwrites it; a mention
    not relevant to a topic leaves that topic (its counts, rollups and windows) and is never linked to
    it again when fetched or imported again. The model's own label is kept with the correction.
    """

    def correct_sentiment(self, mention_id: int, sentiment: str, *, by: str, at: datetime) -> None:
        """`by` says mention `mention_id` is `sentiment` (negative, neutral or positive), at `at`; it
        replaces an earlier sentiment correction of it. ListenerError for an unknown mention or label."""
        ...

    def mark_not_relevant(self, mention_id: int, *, topic: str | None, by: str, at: datetime) -> None:
        """`by` says mention `mention_id` is not relevant to `topic` (None: to any of its topics), at `at`;
        it leaves the topic's counts. ListenerError for an unknown mention, or a topic it is not in."""
        ...

    def corrections(self, since: datetime | None = None) -> list[CorrectionRow]:
        """The current corrections (made since `since`, when given), oldest first, with their mention's words."""
        ...

    def get_mention(self, mention_id: int) -> ExportedMention | None:
        """One stored mention with its topics and hashtags; None when there is none with this id."""
        ...


@runtime_checkable
class MentionStore(Ingest, SourceReads, Scoring, MentionReads, ReadOnlySQL, AlertWindows, DigestRollups, AlertState,
                   Outbox, Workers, Retention, DashboardReads, Corrections, Transfer, Protocol):
    """The mention database as listener uses it: every group above, and its own lifetime."""

    def migrate(self) -> list[str]:
        """Bring the schema up to date (opening the store does); the names of the steps applied."""
        ...

    def close(self) -> None:
        """Release the database; the store is not used after."""
        ...

    def __enter__(self) -> MentionStore:
        ...

    def __exit__(self, *exc: object) -> None:
        ...

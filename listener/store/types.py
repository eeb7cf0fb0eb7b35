"""What the store takes and gives, in the pipeline's, the alerts' and the digest's words: rows to
store, health, hourly counts, job runs, query results, and the one time format of the database.
(The rows it gives as dicts are typed in `rows`.)"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable, NamedTuple, Sequence

from listener.sources import SourceState


def iso(dt: datetime | None) -> str | None:
    """UTC ISO-8601 with a Z, to the second: the one time format in the database."""
    if dt is None:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def iso_once() -> Callable[[datetime | None], str | None]:
    """`iso` that formats each time once: for a batch whose rows share their times (a fetch's)."""
    times: dict[datetime | None, str | None] = {}

    def stamp(dt: datetime | None) -> str | None:
        return times[dt] if dt in times else times.setdefault(dt, iso(dt))

    return stamp


def parse_iso(value: str | None) -> datetime | None:
    """A time as `iso` wrote it, back as an aware datetime (None for None or '')."""
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


Counts = tuple[int, int, int, int]  # scored mentions: (mentions, negative, neutral, positive)


class HourCounts(NamedTuple):
    """One hour of a rollup, as alert rules read it."""

    mentions: int
    negative: int  # labelled negative
    p_negative: float  # sum of P(negative): the model's expected number of negatives
    positive: int
    p_negative_sq: float = 0.0  # sum of P(negative)^2: with the sum, how spread the model's P(negative) is (topics)


@dataclass(frozen=True)
class MentionRow:
    """A mention ready to store: matched, canonicalised, language known."""

    source: str
    source_id: str
    text: str
    published_at: datetime
    fetched_at: datetime
    topics: tuple[str, ...]
    hashtags: tuple[str, ...] = ()
    url: str | None = None
    author: str | None = None
    title: str | None = None
    language: str | None = None
    language_detected: bool = False
    likes: int | None = None
    reposts: int | None = None
    replies: int | None = None
    score: int | None = None


@dataclass(frozen=True)
class SaveResult:
    """What storing a batch of mentions did."""

    new_ids: list[int] = field(default_factory=list)
    updated: int = 0  # already stored (same source id or same URL): engagement/topics refreshed


@dataclass(frozen=True)
class Fetched:
    """A successful fetch to store (`Ingest.save_fetches`): what `save_fetch` takes, as one value."""

    source: str
    kind: str
    rows: Sequence[MentionRow]
    state: SourceState
    started_at: datetime
    now: datetime
    next_check_at: datetime
    items: int
    requests: int
    not_modified: bool = False


class SavesFetchesInBatches:
    """`save_fetch` as a batch of one of the engine's own `save_fetches`: the same on every engine (a mixin
    of each engine's ingest)."""

    def save_fetch(self, source: str, kind: str, rows: Sequence[MentionRow], state: SourceState, *,
                   started_at: datetime, now: datetime, next_check_at: datetime, items: int,
                   requests: int, not_modified: bool = False) -> SaveResult:
        return self.save_fetches([Fetched(source, kind, rows, state, started_at, now, next_check_at, items, requests,
                                          not_modified)])[0]


@dataclass(frozen=True)
class SourceHealth:
    """A source's state and how its fetches are going."""

    name: str
    kind: str
    state: SourceState
    last_attempt_at: datetime | None
    last_success_at: datetime | None
    last_error: str | None
    last_error_at: datetime | None
    consecutive_errors: int
    next_check_at: datetime | None
    mentions: int = 0


@dataclass(frozen=True)
class JobRun:
    """The last run of a periodic maintenance job (retention) and what it did."""

    job: str
    last_run_at: datetime
    detail: str | None


@dataclass(frozen=True)
class QueryResult:
    """The answer to read-only user SQL: column names and rows."""

    columns: list[str]
    rows: list[tuple]


@dataclass(frozen=True)
class MentionFilter:
    """Which stored mentions a list shows (the dashboard's filters): None is any. Times are aware;
    [start, end) of published_at."""

    topic: str | None = None
    sentiment: str | None = None
    source: str | None = None
    language: str | None = None
    hashtag: str | None = None  # lower-case, without '#'
    author: str | None = None
    start: datetime | None = None
    end: datetime | None = None

"""One fetch cycle: due sources fetched concurrently -> matched to topics -> stored -> scored.

`fetch_due` and `score_pending` are plain functions: `listener fetch` calls them once, the daemon
calls them on a schedule, tests call them directly with an injected `now`.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Callable, Iterable, Sequence

from listener.config import Config, SourceConfig, Topic
from listener.errors import FetchError, error_text
from listener.pipeline.language import detect_language, normalise_language
from listener.query import Document, extract_hashtags, prepare
from listener.store import MentionRow, Store
from listener.sources import FetchResult, Mention, source_class
from listener.sources.http import HttpClient, HttpSettings
from listener.sources.text import web_url

if TYPE_CHECKING:  # pragma: no cover
    from listener.models import SentimentModel

MAX_BACKOFF = timedelta(hours=6)
MAX_BACKOFF_FACTOR = 4  # a failing source is retried at least every 4 intervals: recovery is seen quickly
FUTURE_TOLERANCE = timedelta(hours=1)  # a date further ahead than this is a feed's mistake


@dataclass(frozen=True)
class SourceOutcome:
    """What one source's fetch did in this cycle."""

    source: str
    ok: bool
    items: int = 0  # what the source returned
    new: int = 0  # stored as new mentions
    duplicates: int = 0  # already stored (same id or URL)
    unmatched: int = 0  # matched no topic, or older than the first fetch's backfill: not stored
    not_modified: bool = False
    error: str | None = None
    next_check_at: datetime | None = None


@dataclass
class CycleReport:
    outcomes: list[SourceOutcome] = field(default_factory=list)
    scored: int = 0

    @property
    def new(self) -> int:
        return sum(o.new for o in self.outcomes)

    @property
    def failed(self) -> list[SourceOutcome]:
        return [o for o in self.outcomes if not o.ok]

    def summary(self) -> str:
        ok = len(self.outcomes) - len(self.failed)
        parts = [f"{len(self.outcomes)} source{'s' if len(self.outcomes) != 1 else ''} fetched ({ok} ok, {len(self.failed)} failed)",
                 f"{self.new} new mention{'s' if self.new != 1 else ''}",
                 f"{self.scored} scored"]
        return ", ".join(parts)


# ---------------------------------------------------------------- scheduling
def backoff(every: timedelta, consecutive_errors: int, retry_after: float | None = None) -> timedelta:
    """Delay before the next try after `consecutive_errors` failures in a row (1 = first failure).

    Exponential from the source's interval (x1, x2, x4), capped at 4 intervals and 6 hours (or the
    interval when that is longer), so a recovered source is noticed within minutes; a server's
    Retry-After wins when it asks for longer.
    """
    cap = max(min(MAX_BACKOFF, every * MAX_BACKOFF_FACTOR), every)
    delay = min(every * (2 ** min(max(consecutive_errors - 1, 0), 16)), cap)
    if retry_after is not None:
        delay = max(delay, timedelta(seconds=retry_after))
    return delay


def due_sources(config: Config, store: Store, now: datetime, only: str | None = None,
                names: set[str] | None = None) -> list[SourceConfig]:
    """Enabled sources whose next check time has come (among `names`, when given).

    `only` names one source and ignores its timing (`listener fetch --source NAME`).
    """
    if only is not None:
        return [config.source(only)]
    health = store.source_health()
    due = []
    for src in config.sources:
        if not src.enabled or (names is not None and src.name not in names):
            continue
        h = health.get(src.name)
        if h is None or h.next_check_at is None or h.next_check_at <= now:
            due.append(src)
    return due


# ---------------------------------------------------------------- matching
def topics_for(mention: Mention, doc: Document, language: str | None, source: SourceConfig,
               topics: Sequence[Topic]) -> tuple[str, ...]:
    """Topics a mention belongs to: the source's own `topics` without matching, else every match.

    A topic restricted to `languages` accepts only mentions in those languages.
    """
    def language_ok(t: Topic) -> bool:
        return not t.languages or (language is not None and language in t.languages)

    if source.topics or mention.topics:
        names = set(source.topics) | set(mention.topics)
        return tuple(t.name for t in topics if t.name in names and language_ok(t))
    return tuple(t.name for t in topics if language_ok(t) and t.matcher.matches(doc))


def to_rows(source: SourceConfig, mentions: Iterable[Mention], topics: Sequence[Topic],
            now: datetime, *, since: datetime | None = None) -> tuple[list[MentionRow], int]:
    """Turn a source's mentions into rows to store; returns (rows, how many were left out).

    Left out: mentions matching no topic, and mentions published before `since` (the backfill
    limit of a source's first fetch).
    """
    rows, unmatched = [], 0
    for m in mentions:
        if since is not None and m.published_at is not None and m.published_at < since:
            unmatched += 1
            continue
        hashtags = tuple(dict.fromkeys([*filter(None, map(_source_hashtag, m.hashtags)),
                                        *extract_hashtags(m.text), *extract_hashtags(m.title or "")]))
        doc = prepare(m.text, title=m.title, hashtags=hashtags, author=m.author)
        language = normalise_language(m.language)
        detected = False
        if language is None:
            language = detect_language(" ".join(filter(None, [m.title, m.text])))
            detected = language is not None
        matched = topics_for(m, doc, language, source, topics)
        if not matched:
            unmatched += 1
            continue
        published = m.published_at
        if published is None or published > now + FUTURE_TOLERANCE:
            published = now
        rows.append(MentionRow(
            source=source.name, source_id=m.source_id or _fallback_id(m), text=m.text, published_at=published,
            fetched_at=now, topics=matched, hashtags=hashtags, url=web_url(m.url),
            author=m.author, title=m.title, language=language, language_detected=detected,
            likes=m.likes, reposts=m.reposts, replies=m.replies, score=m.score))
    return rows, unmatched


_TAG_WORD = re.compile(r"\w+")


def _source_hashtag(tag: str) -> str | None:
    """A hashtag as a source gives it (`#Acme`, `acme`), as the text's are stored: its leading word,
    lower case; None when it has none. A tag never holds a space or a line break."""
    word = _TAG_WORD.match(tag.lstrip("#"))
    return word[0].lower() if word else None


def _fallback_id(m: Mention) -> str:
    return "sha1:" + hashlib.sha1(f"{m.url}|{m.title}|{m.text}".encode("utf-8", "replace")).hexdigest()


# ---------------------------------------------------------------- fetching
def http_settings(config: Config) -> HttpSettings:
    defaults = HttpSettings()
    return HttpSettings(timeout=config.fetch.timeout.total_seconds(), max_bytes=config.fetch.max_bytes,
                        per_host=config.fetch.per_host, user_agent=config.fetch.user_agent or defaults.user_agent)


_instances: dict[tuple[str, str, object], object] = {}


def source_instance(src: SourceConfig):
    """The source object for `src`, kept for the life of the process (it may cache a token)."""
    key = (src.name, src.kind, src.options)
    if key not in _instances:
        _instances[key] = source_class(src.kind)(src.name, src.options)
    return _instances[key]


def fetch_since(src: SourceConfig, store: Store, now: datetime, since: datetime | None = None) -> datetime | None:
    """How far back a fetch looks: the explicit `since`, else `backfill` until the first success."""
    if since is not None:
        return since
    health = store.source_health(src.name).get(src.name)
    return now - src.backfill if health is None or health.last_success_at is None else None


async def _fetch_one(src: SourceConfig, store: Store, http: HttpClient, now: datetime,
                     since: datetime | None) -> FetchResult | Exception:
    try:
        return await source_instance(src).fetch(store.source_state(src.name), http, now, since=since)
    except FetchError as exc:
        return exc
    except Exception as exc:  # noqa: BLE001 - a bug in one source must not stop the others
        return FetchError(f"internal error in {src.kind} source: {type(exc).__name__}: {exc}")


async def fetch_due_async(config: Config, store: Store, now: datetime, *, only: str | None = None,
                          names: set[str] | None = None, since: datetime | None = None,
                          on_outcome: Callable[[SourceOutcome], None] | None = None,
                          clock: Callable[[], datetime] | None = None) -> list[SourceOutcome]:
    """Fetch all due sources concurrently (global and per-host limits) and store each as it lands.

    `since` asks for a backfill from that time (where the source's API allows it).
    """
    due = due_sources(config, store, now, only, names)
    outcomes: list[SourceOutcome] = []
    if not due:
        return outcomes
    limit = asyncio.Semaphore(config.fetch.concurrency)
    async with HttpClient(http_settings(config)) as http:

        async def run(src: SourceConfig) -> None:
            lower = fetch_since(src, store, now, since)
            async with limit:
                result = await _fetch_one(src, store, http, now, lower)
            finished = clock() if clock else now
            outcome = record(config, store, src, result, started_at=now, now=finished, since=lower)
            outcomes.append(outcome)
            if on_outcome:
                on_outcome(outcome)

        await asyncio.gather(*(run(src) for src in due))
    return outcomes


def record(config: Config, store: Store, src: SourceConfig, result: FetchResult | Exception, *,
           started_at: datetime, now: datetime, since: datetime | None = None) -> SourceOutcome:
    """Store one source's fetch result (success or failure) in one transaction.

    Mentions published before `since` are left out (the backfill bound).
    """
    if not isinstance(result, Exception):
        try:
            return _record_success(config, store, src, result, started_at=started_at, now=now, since=since)
        except Exception as exc:  # noqa: BLE001 - what one source returned must not cost the others
            result = FetchError(f"could not store its mentions: {type(exc).__name__}: {exc}")
    errors = store.source_health(src.name).get(src.name)
    count = (errors.consecutive_errors if errors else 0) + 1
    retry_after = getattr(result, "retry_after", None)
    next_check = now + backoff(src.every, count, retry_after)
    message = error_text(result)
    store.record_failure(src.name, src.kind, message, started_at=started_at, now=now, next_check_at=next_check)
    return SourceOutcome(src.name, ok=False, error=message, next_check_at=next_check)


def _record_success(config: Config, store: Store, src: SourceConfig, result: FetchResult, *,
                    started_at: datetime, now: datetime, since: datetime | None) -> SourceOutcome:
    rows, unmatched = to_rows(src, result.mentions, config.topics, now, since=since)
    next_check = now + max(src.every, timedelta(seconds=result.wait or 0))
    saved = store.save_fetch(src.name, src.kind, rows, result.state, started_at=started_at, now=now,
                             next_check_at=next_check, items=len(result.mentions), requests=result.requests,
                             not_modified=result.not_modified)
    return SourceOutcome(src.name, ok=True, items=len(result.mentions), new=len(saved.new_ids),
                         duplicates=saved.updated, unmatched=unmatched, not_modified=result.not_modified,
                         next_check_at=next_check)


def fetch_due(config: Config, store: Store, now: datetime | None = None, **kwargs) -> list[SourceOutcome]:
    """Synchronous wrapper around `fetch_due_async`."""
    return asyncio.run(fetch_due_async(config, store, now or datetime.now(timezone.utc), **kwargs))


# ---------------------------------------------------------------- scoring
def text_for_scoring(text: str, title: str | None) -> str:
    """The title and the text, unless one already contains the other."""
    if title and title.strip() and title.strip() not in text:
        return f"{title.strip()}. {text}" if text else title.strip()
    return text


class ScoreCache:
    """The last `size` texts scored by each model: reposts, copies and spam are scored once."""

    def __init__(self, size: int = 50_000):
        self.size = size
        self._entries: OrderedDict[tuple[str, str], object] = OrderedDict()

    def score(self, model: SentimentModel, texts: list[str]) -> list:
        name = getattr(model, "name", "")
        missing = [t for t in dict.fromkeys(texts) if (name, t) not in self._entries]
        for text, sentiment in zip(missing, model.score(missing) if missing else []):
            self._entries[(name, text)] = sentiment
        out = []
        for t in texts:
            self._entries.move_to_end((name, t))
            out.append(self._entries[(name, t)])
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)
        return out


SCORE_CACHE = ScoreCache()


def score_pending(store: Store, model: SentimentModel, now: datetime | None = None, *, batch: int = 256,
                  on_batch: Callable[[int], None] | None = None) -> int:
    """Score every unscored mention in batches; each batch is committed on its own."""
    total = 0
    while True:
        pending = store.unscored(batch)
        if not pending:
            return total
        scores = SCORE_CACHE.score(model, [text_for_scoring(text, title) for _, text, title in pending])
        store.save_scores(zip([mid for mid, _, _ in pending], scores), model.name, now or datetime.now(timezone.utc))
        total += len(pending)
        if on_batch:
            on_batch(len(pending))


def run_cycle(config: Config, store: Store, model_factory: Callable[[], object] | None, *,
              now: datetime | None = None, only: str | None = None, since: datetime | None = None,
              on_outcome: Callable[[SourceOutcome], None] | None = None,
              on_scored: Callable[[int], None] | None = None) -> CycleReport:
    """`listener fetch`: fetch what is due, store it, then score what is unscored."""
    now = now or datetime.now(timezone.utc)
    report = CycleReport(fetch_due(config, store, now, only=only, since=since, on_outcome=on_outcome))
    if model_factory is not None and store.count_unscored():
        report.scored = score_pending(store, model_factory(), now, on_batch=on_scored)
    return report

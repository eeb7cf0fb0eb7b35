"""Fetching: which sources are due, each fetched concurrently within the limits, its result (or its
failure, with backoff) stored as it lands, with those that land with it (`recording.Recorder`)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import Callable

from listener.config import Config, SourceConfig
from listener.errors import FetchError
from listener.pipeline.match import match_parsed, to_rows_of, topic_specs, warm_up
from listener.pipeline.recording import Recorder, SourceOutcome
from listener.sources import FetchResult, SourceState, source_class
from listener.sources.http import AFTER_PARSE, AfterParse, HttpClient, HttpSettings
from listener.sources.parsing import ParsePool, default_workers
from listener.store import MentionStore, SourceHealth, iso

UNREAD = object()  # a source's stored row not read yet (see `fetch_source`)
PARSE_POOL_MIN = 8  # due sources from which a fetch parses in worker processes (starting them costs ~0.3 s of CPU)
# Fetches under way beyond `[fetch] concurrency` (the requests in flight) per parse process: read responses
# waiting for one. Enough to keep it busy while the event loop stores a batch (~40 ms for 50 sources of 20
# mentions); with the requests' slots alone (8) the processes ran dry then, and a cold fetch of 1,000 feeds
# took 5.1 s instead of 4.7 (bench/ingest.py).
PARSE_BACKLOG = 12


def due_sources(config: Config, store: MentionStore, now: datetime, only: str | None = None,
                names: set[str] | None = None) -> list[SourceConfig]:
    """Enabled sources whose next check time has come (among `names`, when given).

    `only` names one source and ignores its timing (`listener fetch --source NAME`).
    """
    return [src for src, _ in due_with_health(config, store, now, only, names)]


def due_with_health(config: Config, store: MentionStore, now: datetime, only: str | None = None,
                    names: set[str] | None = None) -> list[tuple[SourceConfig, SourceHealth | None]]:
    """`due_sources`, each with its stored row as read (None: never fetched): its fetch starts from
    that row's state instead of reading it again (two queries a source, half a 304's time on PostgreSQL)."""
    if only is not None:
        src = config.source(only)
        return [(src, store.source_health(src.name).get(src.name))]
    one = next(iter(names)) if names is not None and len(names) == 1 else None
    health = store.source_health(one)  # one source's row when one is asked about (a worker's check before it fetches)
    due = []
    for src in config.sources:
        if not src.enabled or (names is not None and src.name not in names):
            continue
        h = health.get(src.name)
        if h is None or h.next_check_at is None or h.next_check_at <= now:
            due.append((src, h))
    return due


def fetch_lease(config: Config) -> timedelta:
    """How long a worker holds a source while fetching it: long enough for several requests that
    each run into the time limit; past it, a worker that died mid-fetch frees the source."""
    return max(timedelta(minutes=5), 5 * config.fetch.timeout)


def http_settings(config: Config) -> HttpSettings:
    defaults = HttpSettings()
    return HttpSettings(timeout=config.fetch.timeout.total_seconds(), max_bytes=config.fetch.max_bytes,
                        per_host=config.fetch.per_host, concurrency=config.fetch.concurrency,
                        user_agent=config.fetch.user_agent or defaults.user_agent)


def fetch_slots(config: Config, parser: ParsePool | None) -> asyncio.Semaphore:
    """The limit of fetches under way at once (`fetch_source`'s `limit`): the requests in flight
    (the HTTP client holds each to `[fetch] concurrency`) and PARSE_BACKLOG read responses per
    parse process waiting to be parsed."""
    return asyncio.Semaphore(config.fetch.concurrency + (parser.workers * PARSE_BACKLOG if parser else 0))


class SourcePool:
    """The source objects of one process's fetches, kept from cycle to cycle (a source may keep a
    login token or a cursor cache). The daemon keeps one for its life; a one-off fetch makes its own."""

    def __init__(self) -> None:
        self._objects: dict[tuple[str, str, object], object] = {}
        self._lock = threading.Lock()

    def get(self, src: SourceConfig):
        """The source object for `src`; a changed config (kind or options) gets a new one."""
        key = (src.name, src.kind, src.options)
        with self._lock:
            if key not in self._objects:
                self._objects[key] = source_class(src.kind)(src.name, src.options)
            return self._objects[key]


def fetch_since(src: SourceConfig, health: SourceHealth | None, now: datetime,
                since: datetime | None = None) -> datetime | None:
    """How far back a fetch looks: the explicit `since`, else `backfill` until the first success
    (`health`: the source's stored row, None when it was never fetched)."""
    if since is not None:
        return since
    return now - src.backfill if health is None or health.last_success_at is None else None


async def _fetch_one(src: SourceConfig, state: SourceState, http: HttpClient, now: datetime,
                     since: datetime | None, pool: SourcePool) -> FetchResult | Exception:
    try:
        return await pool.get(src).fetch(state, http, now, since=since)
    except FetchError as exc:
        return exc
    except Exception as exc:  # noqa: BLE001 - a bug in one source must not stop the others
        return FetchError(f"internal error in {src.kind} source: {type(exc).__name__}: {exc}")


async def fetch_source(config: Config, store: MentionStore, src: SourceConfig, http: HttpClient,
                       limit: asyncio.Semaphore, now: datetime, *, since: datetime | None = None,
                       pool: SourcePool, recorder: Recorder, clock: Callable[[], datetime] | None = None,
                       worker: str | None = None, only: bool = False,
                       health: SourceHealth | None | object = UNREAD) -> SourceOutcome | None:
    """Fetch one source within `limit` (`fetch_slots`: the fetches under way) and store what it gave, or
    its failure: the outcome. `now` is when its fetch started; `clock` tells when it finished. With
    parse processes (`http.parser`) its mentions are matched there too. With `worker` (a daemon
    among several on one database), only the worker that takes the source's lease fetches it, and
    only if it is still due then (another worker may have just fetched it; `only`: due or not):
    None when it did not. `health` is the source's stored row as the caller just read it (UNREAD:
    read here)."""
    with recorder.fetching():
        return await _fetch_and_record(config, store, src, http, limit, now, since=since, pool=pool, recorder=recorder,
                                       clock=clock, worker=worker, only=only, health=health)


async def _fetch_and_record(config: Config, store: MentionStore, src: SourceConfig, http: HttpClient,
                            limit: asyncio.Semaphore, now: datetime, *, since: datetime | None, pool: SourcePool,
                            recorder: Recorder, clock: Callable[[], datetime] | None, worker: str | None, only: bool,
                            health: SourceHealth | None | object) -> SourceOutcome | None:
    async with contextlib.AsyncExitStack() as held:
        async with limit:  # a worker takes the lease once it can fetch: one that has no room leaves the source to others
            if worker is not None:
                lease = f"fetch:{src.name}"
                claimed_at = clock() if clock else now
                if not store.claim_lease(lease, worker, claimed_at, fetch_lease(config)):
                    return None  # another worker is fetching it
                held.callback(lambda: store.release_lease(lease, worker, clock() if clock else now))
                due = due_with_health(config, store, claimed_at, names={src.name}, only=src.name if only else None)
                if not due:
                    return None  # another worker fetched it since this one looked
                health = due[0][1]  # as it is now, after any other worker's fetch
            if health is UNREAD:
                health = store.source_health(src.name).get(src.name)
            result, landed = await _fetch(config, src, health, http, now, since=since, pool=pool, clock=clock)
        # stored once the request slot is free for the next fetch (a result may wait for others to be
        # stored with), the lease held until it is stored
        return await recorder.record(src, result, **landed)


async def _fetch(config: Config, src: SourceConfig, health: SourceHealth | None, http: HttpClient, now: datetime, *,
                 since: datetime | None, pool: SourcePool,
                 clock: Callable[[], datetime] | None) -> tuple[FetchResult | Exception, dict]:
    """(Within a slot of `fetch_source`'s limit.) The result, and the rest of what
    `Recorder.record` takes to store it."""
    lower = fetch_since(src, health, now, since)
    matched = None
    specs = topic_specs(config.topics)
    after = AfterParse(match_parsed, lambda: (src, specs, clock() if clock else now, lower))
    token = AFTER_PARSE.set(after)  # matched in the parse's own job when a fetch parses once
    try:
        result = await _fetch_one(src, health.state if health else SourceState(), http, now, lower, pool)
    finally:
        AFTER_PARSE.reset(token)
    finished = clock() if clock else now
    if isinstance(result, Exception) or not result.mentions or http.parser is None:
        return result, {"started_at": now, "now": finished, "since": lower, "matched": None}  # matched when stored
    try:
        if after.parsed is result.mentions:  # its one parse gave these mentions, matched in the same job
            kind, value = after.outcome
            if kind == "error":
                raise value
            rows, unmatched = value  # made when the parse was sent; the fetch finished now (stored to the second)
            if iso(after.sent[2]) != iso(finished):
                rows = [replace(row, fetched_at=finished) for row in rows]
            matched = (rows, unmatched)
        else:  # matched in the parse processes too: hashtags, language, topics are pure Python
            matched = await http.parser.run(to_rows_of, src, result.mentions, specs, finished, lower)
    except Exception as exc:  # noqa: BLE001 - as when matching here fails
        result = FetchError(f"could not store its mentions: {type(exc).__name__}: {exc}")
    return result, {"started_at": now, "now": finished, "since": lower, "matched": matched}


async def fetch_due_async(config: Config, store: MentionStore, now: datetime, *, only: str | None = None,
                          names: set[str] | None = None, since: datetime | None = None,
                          on_outcome: Callable[[SourceOutcome], None] | None = None,
                          clock: Callable[[], datetime] | None = None,
                          pool: SourcePool | None = None, parser: ParsePool | None = None,
                          worker: str | None = None) -> list[SourceOutcome]:
    """Fetch all due sources concurrently (global and per-host limits) and store each as it lands.

    `since` asks for a backfill from that time (where the source's API allows it); `pool` keeps
    the source objects across calls (the daemon's), else they live for this call; `worker`: see
    `fetch_source`. Responses are
    parsed in `parser`'s processes; without one, in processes of this call's own when at least
    PARSE_POOL_MIN sources are due on a machine with more than one core, else in a thread.
    """
    due = due_with_health(config, store, now, only, names)
    pool = pool if pool is not None else SourcePool()
    outcomes: list[SourceOutcome] = []
    if not due:
        return outcomes
    own_parser = parser is None and len(due) >= PARSE_POOL_MIN and default_workers() > 1
    if own_parser:
        parser = ParsePool(warm_up=warm_up)
        if any(health is None or not (health.state.etag or health.state.last_modified) for _, health in due):
            parser.start()  # some answer will be whole (nothing to send for a 304), parsed or matched there: warm by then
    limit = fetch_slots(config, parser)
    recorder = Recorder(config, store)

    async def run(src: SourceConfig, health: SourceHealth | None) -> None:
        outcome = await fetch_source(config, store, src, http, limit, now, since=since, pool=pool, recorder=recorder,
                                     clock=clock, worker=worker, only=only is not None, health=health)
        if outcome is None:
            return
        outcomes.append(outcome)
        if on_outcome:
            on_outcome(outcome)

    try:
        async with HttpClient(http_settings(config), parser=parser) as http:
            await asyncio.gather(*(run(src, health) for src, health in due))
    finally:
        if own_parser:
            parser.close()
    return outcomes


def fetch_due(config: Config, store: MentionStore, now: datetime | None = None, **kwargs) -> list[SourceOutcome]:
    """Synchronous wrapper around `fetch_due_async`."""
    return asyncio.run(fetch_due_async(config, store, now or datetime.now(timezone.utc), **kwargs))

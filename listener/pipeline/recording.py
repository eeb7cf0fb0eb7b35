"""Storing what each fetch brought: its mentions and the source's new state, or its failure with a
backoff; many sources' results in one transaction when they land together.

`record` stores one result at once. A `Recorder` (one per fetch cycle, or the daemon's fetch loop's
for its life) stores results as they land in batches: a successful fetch waits up to LINGER seconds
for others, then all that landed meanwhile are stored in one transaction (`save_fetches`), so that
a busy cycle commits once per batch, not once per source (group commit: bench/ingest.py's 1,000
fetches of 20 mentions store at about 25,000 mentions/s in batches of 50 against 16,400 one by one
on SQLite, 20,200 against 7,600 on PostgreSQL). A batch the store refuses is stored again one
source at a time, so one source's bad row never costs the others theirs. A failed fetch is
recorded at once, on its own.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable, Iterator

from listener.config import Config, SourceConfig
from listener.errors import FetchError, error_text
from listener.pipeline.match import to_rows
from listener.sources import FetchResult
from listener.store import Fetched, MentionStore, SaveResult

MAX_BACKOFF = timedelta(hours=6)
MAX_BACKOFF_FACTOR = 4  # a failing source is retried at least every 4 intervals: recovery is seen quickly
LINGER = 0.2  # seconds a landed fetch waits for others to be stored with it (a cold cycle lands ~100 a second)
MAX_BATCH = 50  # sources stored in one transaction at most (a batch is stored at once when it is full)


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


def record(config: Config, store: MentionStore, src: SourceConfig, result: FetchResult | Exception, *,
           started_at: datetime, now: datetime, since: datetime | None = None,
           matched: tuple[list, int] | None = None) -> SourceOutcome:
    """Store one source's fetch result (success or failure) in one transaction.

    Mentions published before `since` are left out (the backfill bound). `matched` is what
    `to_rows` made of the result's mentions, when it ran already (in the parse processes).
    """
    if not isinstance(result, Exception):
        try:
            fetched, unmatched = _fetched(config, src, result, started_at, now, since, matched)
            return _succeeded(src, result, fetched, unmatched, store.save_fetches([fetched])[0])
        except Exception as exc:  # noqa: BLE001 - what one source returned must not cost the others
            result = FetchError(f"could not store its mentions: {type(exc).__name__}: {exc}")
    errors = store.source_health(src.name).get(src.name)
    count = (errors.consecutive_errors if errors else 0) + 1
    retry_after = getattr(result, "retry_after", None)
    next_check = now + backoff(src.every, count, retry_after)
    message = error_text(result)
    store.record_failure(src.name, src.kind, message, started_at=started_at, now=now, next_check_at=next_check)
    return SourceOutcome(src.name, ok=False, error=message, next_check_at=next_check)


def _fetched(config: Config, src: SourceConfig, result: FetchResult, started_at: datetime, now: datetime,
             since: datetime | None, matched: tuple[list, int] | None) -> tuple[Fetched, int]:
    """What the store is given of a successful fetch, and how many of its mentions were left out."""
    rows, unmatched = matched if matched is not None else to_rows(src, result.mentions, config.topics, now, since=since)
    next_check = now + max(src.every, timedelta(seconds=result.wait or 0))
    return Fetched(src.name, src.kind, rows, result.state, started_at, now, next_check, len(result.mentions),
                   result.requests, result.not_modified), unmatched


def _succeeded(src: SourceConfig, result: FetchResult, fetched: Fetched, unmatched: int,
               saved: SaveResult) -> SourceOutcome:
    return SourceOutcome(src.name, ok=True, items=len(result.mentions), new=len(saved.new_ids),
                         duplicates=saved.updated, unmatched=unmatched, not_modified=result.not_modified,
                         next_check_at=fetched.next_check_at)


@dataclass
class _Landed:
    """A successful fetch waiting for its batch, and how to store it alone if the batch fails."""

    src: SourceConfig
    result: FetchResult
    fetched: Fetched
    unmatched: int
    alone: Callable[[], SourceOutcome]
    future: asyncio.Future


class Recorder:
    """Stores fetch results in batches from one event loop (see the module's docstring); `await
    recorder.record(...)` takes `record`'s arguments and returns once its result is stored. A fetch
    runs inside `with recorder.fetching():`, so that a batch is stored at once when no fetch is
    left that could still join it (a cycle of three sources does not wait LINGER)."""

    def __init__(self, config: Config, store: MentionStore, *, linger: float = LINGER, max_batch: int = MAX_BATCH):
        self.config, self.store = config, store
        self.linger, self.max_batch = linger, max_batch
        self._landed: list[_Landed] = []
        self._timer: asyncio.TimerHandle | None = None
        self._fetching = 0  # fetches under way, landed ones included

    @contextlib.contextmanager
    def fetching(self) -> Iterator[None]:
        """Around one fetch that may land here."""
        self._fetching += 1
        try:
            yield
        finally:
            self._fetching -= 1
            if self._landed and len(self._landed) >= self._fetching:  # the rest of its batch waited for it
                self.flush()

    async def record(self, src: SourceConfig, result: FetchResult | Exception, *, started_at: datetime,
                     now: datetime, since: datetime | None = None,
                     matched: tuple[list, int] | None = None) -> SourceOutcome:
        def alone() -> SourceOutcome:
            return record(self.config, self.store, src, result, started_at=started_at, now=now, since=since,
                          matched=matched)

        if isinstance(result, Exception):
            return alone()
        try:
            fetched, unmatched = _fetched(self.config, src, result, started_at, now, since, matched)
        except Exception:  # noqa: BLE001 - stored alone, which records why it failed
            return alone()
        loop = asyncio.get_running_loop()
        landed = _Landed(src, result, fetched, unmatched, alone, loop.create_future())
        self._landed.append(landed)
        if len(self._landed) >= self.max_batch or len(self._landed) >= self._fetching:
            self.flush()  # full, or no fetch under way is left to join it
        elif self._timer is None:
            self._timer = loop.call_later(self.linger, self.flush)
        try:
            return await landed.future
        except asyncio.CancelledError:  # its fetch is being stopped: stored now, before its lease goes
            if landed in self._landed:
                self.flush()
            raise

    def flush(self) -> None:
        """Store every result waiting, in one transaction (each alone if the store refuses the batch)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        batch, self._landed = self._landed, []
        if not batch:
            return
        try:
            saved = self.store.save_fetches([landed.fetched for landed in batch])
        except Exception:  # noqa: BLE001 - one source's rows may be the cause: each is stored on its own
            saved = None
        for i, landed in enumerate(batch):
            try:
                outcome = (_succeeded(landed.src, landed.result, landed.fetched, landed.unmatched, saved[i])
                           if saved is not None else landed.alone())
            except Exception as exc:  # noqa: BLE001 - not even its failure could be stored: the caller says so
                if not landed.future.done():
                    landed.future.set_exception(exc)
                continue
            if not landed.future.done():
                landed.future.set_result(outcome)

"""The daemon's fetching: one thread running one event loop, with one HTTP client (its connections and
per-host limits) and one pool of parse processes for the daemon's life, however many sources.

Every `tick` seconds the loop asks the store which sources are due (their interval, backoff and
Retry-After are in their next check time) and starts a fetch for each one not already in flight;
each is fetched within `[fetch] concurrency` and `per_host` and stored as it lands (`fetch_source`).
Stopping lets the fetches in flight finish and store their batch.
"""

from __future__ import annotations

import asyncio
import threading
from datetime import datetime
from typing import Callable

from listener.config import Config, SourceConfig
from listener.errors import ListenerError
from listener.pipeline.fetch import SourcePool, due_with_health, fetch_slots, fetch_source, http_settings
from listener.pipeline.match import warm_up
from listener.pipeline.recording import Recorder, SourceOutcome
from listener.sources.http import HttpClient
from listener.sources.parsing import ParsePool
from listener.store import MentionStore, SourceHealth, parse_iso

TICK = 2.0  # seconds between two looks at which sources are due


class FetchLoop:
    """Fetch every enabled source whenever it is due, in a thread of its own, until `stop()`.

    `open_store` opens the store the loop's thread uses (a connection of its own); `on_outcome`
    gets each fetch's outcome and `log` each error that is not a source's (the store unreachable).
    """

    def __init__(self, config: Config, open_store: Callable[[], MentionStore], *,
                 clock: Callable[[], datetime], on_outcome: Callable[[SourceOutcome], None],
                 log: Callable[[str], None], sources: SourcePool | None = None, parser: ParsePool | None = None,
                 tick: float = TICK, worker: str | None = None):
        self.config = config
        self.open_store = open_store
        self.clock = clock
        self.on_outcome = on_outcome
        self.log = log
        self.sources = sources if sources is not None else SourcePool()
        self.parser = parser if parser is not None else ParsePool(warm_up=warm_up)
        self.tick = tick
        self.worker = worker  # a daemon among several on one database: fetch only the sources whose lease it takes
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._stopping = threading.Event()
        self._ready = threading.Event()

    def start(self) -> None:
        """Start the loop's thread."""
        self._thread = threading.Thread(target=self._main, name="fetch-loop", daemon=True)
        self._thread.start()
        self._ready.wait()

    def stop(self) -> None:
        """Start no more fetches, let those in flight finish and store, then end the thread."""
        self._stopping.set()
        if self._loop is not None and self._wake is not None:
            self._loop.call_soon_threadsafe(self._wake.set)
        if self._thread is not None:
            self._thread.join()
        self.parser.close()

    def _main(self) -> None:
        asyncio.run(self._run())

    async def _run(self) -> None:
        self._loop, self._wake = asyncio.get_running_loop(), asyncio.Event()
        self._ready.set()
        try:
            store = self.open_store()
        except Exception as exc:  # noqa: BLE001 - said, and the daemon's other jobs go on
            self.log(f"error: the fetch loop cannot open the database: {exc}")
            return
        in_flight: dict[str, asyncio.Task] = {}
        limit = fetch_slots(self.config, self.parser)
        recorder = Recorder(self.config, store)
        try:
            async with HttpClient(http_settings(self.config), parser=self.parser) as http:
                while not self._stopping.is_set():
                    for src, health in self._due(store, in_flight):
                        task = asyncio.create_task(self._fetch(store, src, health, http, limit, recorder))
                        in_flight[src.name] = task
                        task.add_done_callback(lambda _, name=src.name: in_flight.pop(name, None))
                    try:
                        await asyncio.wait_for(self._wake.wait(), self.tick)
                    except TimeoutError:
                        pass
                if in_flight:
                    await asyncio.gather(*in_flight.values(), return_exceptions=True)
        finally:
            store.close()

    def _due(self, store: MentionStore, in_flight: dict[str, asyncio.Task]) -> list[tuple[SourceConfig, SourceHealth | None]]:
        try:
            now = self.clock()
            held = {name[len("fetch:"):] for name, lease in store.leases("fetch:").items()
                    if lease["worker"] != self.worker and lease["released_at"] is None
                    and parse_iso(lease["expires_at"]) > now} if self.worker else set()  # other workers' fetches
            return [(src, health) for src, health in due_with_health(self.config, store, now)
                    if src.name not in in_flight and src.name not in held]
        except Exception as exc:  # noqa: BLE001 - a locked or unreachable store: try again next tick
            self.log(f"error: {_reason(exc)}")
            return []

    async def _fetch(self, store: MentionStore, src: SourceConfig, health: SourceHealth | None, http: HttpClient,
                     limit: asyncio.Semaphore, recorder: Recorder) -> None:
        try:
            outcome = await fetch_source(self.config, store, src, http, limit, self.clock(), pool=self.sources,
                                         recorder=recorder, clock=self.clock, worker=self.worker, health=health)
        except Exception as exc:  # noqa: BLE001 - not even its failure could be stored: said, retried next tick
            self.log(f"error: {src.name}: {_reason(exc)}")
            return
        if outcome is not None:  # None: another worker fetches it
            self.on_outcome(outcome)


def _reason(exc: Exception) -> str:
    return str(exc) if isinstance(exc, ListenerError) else f"{type(exc).__name__}: {exc}"

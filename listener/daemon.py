"""`listener run`: the background daemon. APScheduler only wires the jobs; the jobs are plain
functions (below) that take an injected `now`, and tests call them directly.

Jobs: scoring of new mentions, alert evaluation every minute, outbox delivery, the daily digest
(checked every minute, queued once a day) and retention (checked hourly, pruned once a day), on a
few threads. Explicit job ids, `coalesce=True`, `max_instances=1`. The sources are fetched by one
`pipeline.FetchLoop` beside them: one thread, one event loop, each source when it is due.
SIGTERM/SIGINT stop it gracefully: running jobs and fetches finish their batch and commit, then exit 0.
One daemon per SQLite file: a second one stops with a clear error. On PostgreSQL, several daemons
(workers, on one machine or several) share the work: each due source is fetched by the one that
takes its lease, new mentions are scored and notifications delivered by whoever claims them, and
the leader (the worker holding the `leader` lease, renewed every 15 s, taken over within a minute
when it dies) alone evaluates rules, queues the digest and prunes.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import socket
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from listener.config import Config
from listener.errors import ListenerError, redact_url
from listener.store import MentionStore, is_postgres, open_store

if TYPE_CHECKING:  # pragma: no cover
    from listener.models import SentimentModel
    from listener.pipeline import ScoreCache, SourcePool

LEADER_TTL = timedelta(seconds=45)  # a leader that died is replaced within a minute
LEAD_EVERY = timedelta(seconds=15)  # how often the leader renews its lease (and another worker tries to take it)
JOB_THREADS = 4  # the scheduled jobs' threads (the fetches have a thread of their own)
EVALUATE_EVERY = timedelta(minutes=1)
SCORE_EVERY = timedelta(seconds=15)
DELIVER_EVERY = timedelta(seconds=15)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def worker_name() -> str:
    """This process among the workers on one database: host:pid."""
    return f"{socket.gethostname()}:{os.getpid()}"


# ---------------------------------------------------------------- the jobs
def job_fetch(config: Config, store: MentionStore, now: datetime, source: str | None = None,
              pool: SourcePool | None = None, worker: str | None = None) -> list:
    """Fetch what is due (one source, or all; those whose lease `worker` takes, when given);
    failures are recorded by the pipeline. `pool` keeps the source objects from one fetch to the
    next (the daemon's)."""
    from listener.pipeline import fetch_due

    names = {source} if source else None
    return fetch_due(config, store, now, names=names, pool=pool, worker=worker)


def job_score(store: MentionStore, model: SentimentModel, now: datetime, cache: ScoreCache | None = None,
              worker: str | None = None) -> int:
    """Score the new mentions (those `worker` claims, when given); `cache` remembers texts already
    scored (the daemon's)."""
    from listener.pipeline import score_pending

    return score_pending(store, model, now, cache=cache, worker=worker)


def job_evaluate(config: Config, store: MentionStore, now: datetime):
    """Evaluate the alert rules: an Evaluation (its transitions, and the notices it queued)."""
    from listener.alerts import evaluate_all

    return evaluate_all(config, store, now)


def job_deliver(config: Config, store: MentionStore, now: datetime, worker: str | None = None):
    """Deliver the due notifications (those `worker` claims, when given): a DeliveryReport (unpacks
    as sent, failed)."""
    from listener.notify import deliver

    return deliver(config, store, now, worker=worker)


def job_digest(config: Config, store: MentionStore, now: datetime) -> bool:
    """Queue yesterday's digest once `[digest] at` has passed (exactly once per day)."""
    from listener.digest import send_digest_if_due

    return send_digest_if_due(config, store, now)


def job_prune(config: Config, store: MentionStore, now: datetime):
    """Delete mentions older than `[database] keep`, once a day."""
    from listener.store.retention import prune_if_due

    return prune_if_due(config, store, now)


# ---------------------------------------------------------------- one daemon per database
class DatabaseLock:
    """An exclusive lock on `<database>.lock`, held for the life of the daemon."""

    def __init__(self, db_path: Path):
        self.path = Path(str(db_path) + ".lock")
        self.fh = None

    def __enter__(self) -> "DatabaseLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fh = open(self.path, "a+")
        try:
            fcntl.flock(self.fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.fh.seek(0)
            pid = self.fh.read().strip() or "?"
            self.fh.close()
            raise ListenerError(f"another `listener run` (pid {pid}) is already using {self.path.with_suffix('')}; "
                                "stop it first or point this one at another database") from None
        self.fh.seek(0)
        self.fh.truncate()
        self.fh.write(str(os.getpid()))
        self.fh.flush()
        return self

    def __exit__(self, *exc) -> None:
        if self.fh:
            fcntl.flock(self.fh, fcntl.LOCK_UN)
            self.fh.close()


# ---------------------------------------------------------------- wiring
@dataclass
class Daemon:
    config: Config
    model_factory: Callable[[], object]
    clock: Callable[[], datetime] = utcnow
    log: Callable[[str], None] = print
    worker: str = field(default_factory=worker_name)

    def __post_init__(self) -> None:
        from listener.pipeline import ScoreCache, SourcePool

        self._model = None
        self._model_lock = threading.Lock()
        self._sources = SourcePool()  # source objects (a login token, say) kept for the daemon's life
        self._scores = ScoreCache()  # reposts and copies are scored once
        self._evaluate_lock = threading.Lock()  # two evaluations at once would notify twice
        self._deliver_lock = threading.Lock()  # two deliveries at once would send a message twice
        self._leading = False

    def model(self):
        with self._model_lock:  # loaded once per process, on first need
            if self._model is None:
                self._model = self.model_factory()
            return self._model

    def _with_store(self, fn):
        def run(*args):
            try:
                with open_store(self.config.database.location) as store:
                    return fn(store, *args)
            except ListenerError as exc:
                self.log(f"error: {exc}")
            except Exception as exc:  # noqa: BLE001 - a job must never take the daemon down
                self.log(f"error: {type(exc).__name__}: {exc}")
        return run

    # jobs as the scheduler (and the fetch loop) call them
    def fetched(self, o) -> None:
        """Say what one source's fetch did."""
        self.log(f"fetched {o.source}: {o.items} items, {o.new} new" if o.ok else f"fetch failed {o.source}: {o.error}")

    def fetch(self, store: MentionStore, source: str) -> None:
        """Fetch one source now if it is due (and this worker takes its lease); the loop does all of them."""
        for o in job_fetch(self.config, store, self.clock(), source, self._sources, self.worker):
            self.fetched(o)

    def fetch_loop(self):
        """The loop that fetches every source when it is due, with the daemon's source objects."""
        from listener.pipeline import FetchLoop

        return FetchLoop(self.config, lambda: open_store(self.config.database.location), clock=self.clock,
                         on_outcome=self.fetched, log=self.log, sources=self._sources, worker=self.worker)

    def leads(self, store: MentionStore) -> bool:
        """Whether this worker is the leader (its lease taken or renewed now): among several workers on
        one database, only the leader evaluates rules, queues the digest and prunes."""
        was = self._leading
        self._leading = store.claim_lease("leader", self.worker, self.clock(), LEADER_TTL)
        if self._leading != was:
            self.log(f"worker {self.worker} {'leads' if self._leading else 'no longer leads'}: alert rules, digest, retention")
        return self._leading

    def lead(self, store: MentionStore) -> None:
        self.leads(store)

    def score(self, store: MentionStore) -> None:
        """Score new mentions (the batches this worker claims); when there were any, evaluate and
        deliver at once (minutes matter)."""
        if store.count_unscored():
            n = job_score(store, self.model(), self.clock(), self._scores, worker=self.worker)
            if n:
                self.log(f"scored {n} mentions")
                self.evaluate(store)
                self.deliver(store)

    def evaluate(self, store: MentionStore) -> None:
        with self._evaluate_lock:
            if not self.leads(store):
                return
            result = job_evaluate(self.config, store, self.clock())
        for event in [*result.transitions, *result.notices]:
            self.log(f"alert {event.line()}")

    def deliver(self, store: MentionStore) -> None:
        with self._deliver_lock:
            report = job_deliver(self.config, store, self.clock(), worker=self.worker)
        if report.sent or report.failed or report.given_up:
            self.log(f"notifications: {report.summary()}")

    def digest(self, store: MentionStore) -> None:
        if self.leads(store) and job_digest(self.config, store, self.clock()):
            self.log("daily digest queued")
            self.deliver(store)

    def prune(self, store: MentionStore) -> None:
        if not self.leads(store):
            return
        result = job_prune(self.config, store, self.clock())
        if result:
            self.log(f"retention: deleted {result} old mentions")

    def scheduler(self):
        from apscheduler.executors.pool import ThreadPoolExecutor
        from apscheduler.schedulers.background import BackgroundScheduler
        from apscheduler.triggers.interval import IntervalTrigger

        sched = BackgroundScheduler(
            timezone=timezone.utc,
            executors={"default": ThreadPoolExecutor(JOB_THREADS)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 300},
        )
        start = self.clock()
        sched.add_job(self._with_store(self.lead), IntervalTrigger(seconds=LEAD_EVERY.total_seconds()),
                      id="lead", name="leader lease", next_run_time=start + timedelta(seconds=1))
        sched.add_job(self._with_store(self.score), IntervalTrigger(seconds=SCORE_EVERY.total_seconds()),
                      id="score", name="score new mentions", next_run_time=start + timedelta(seconds=2))
        sched.add_job(self._with_store(self.evaluate), IntervalTrigger(seconds=EVALUATE_EVERY.total_seconds()),
                      id="evaluate", name="evaluate alert rules", next_run_time=start + timedelta(seconds=5))
        sched.add_job(self._with_store(self.deliver), IntervalTrigger(seconds=DELIVER_EVERY.total_seconds()),
                      id="deliver", name="deliver notifications", next_run_time=start + timedelta(seconds=6))
        if self.config.digest.enabled:
            sched.add_job(self._with_store(self.digest), IntervalTrigger(minutes=1), id="digest",
                          name="daily digest", next_run_time=start + timedelta(seconds=20))
        if self.config.database.keep:
            sched.add_job(self._with_store(self.prune), IntervalTrigger(hours=1), id="prune",
                          name="retention", next_run_time=start + timedelta(seconds=30))
        return sched

    def run(self, stop: threading.Event | None = None) -> int:
        """Run until SIGTERM/SIGINT (or `stop` is set); returns the exit code (0)."""
        stop = stop or threading.Event()
        location = self.config.database.location
        shared = is_postgres(location)  # several workers share a PostgreSQL database; one daemon per SQLite file
        with contextlib.ExitStack() as held:
            if not shared:
                held.enter_context(DatabaseLock(Path(location)))
            with open_store(location) as store:  # migrate before the jobs start
                if not shared:  # under the lock no other daemon is alive: a crashed one's leases end now
                    store.end_other_workers(self.worker, self.clock())
            sched = self.scheduler()
            fetches = self.fetch_loop()
            previous = {}
            if threading.current_thread() is threading.main_thread():
                for sig in (signal.SIGTERM, signal.SIGINT):
                    previous[sig] = signal.signal(sig, lambda *_: stop.set())
            fetches.start()
            sched.start()
            where = redact_url(location) if shared else location
            sources = sum(src.enabled for src in self.config.sources)
            self.log(f"listener running as worker {self.worker}: {sources} source{'s' if sources != 1 else ''} and "
                     f"{len(sched.get_jobs())} jobs on {where} (stop with Ctrl-C)")
            try:
                while not stop.wait(0.5):
                    pass
            finally:
                self.log("stopping: finishing running jobs")
                fetches.stop()
                sched.shutdown(wait=True)
                for sig, handler in previous.items():
                    signal.signal(sig, handler)
                self._with_store(lambda store: store.release_lease("leader", self.worker, self.clock()))()
            self.log("stopped")
        return 0

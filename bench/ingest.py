"""Benchmark ingestion at full speed: 1,000 loopback RSS feeds of 20 items fetched, parsed, matched and
stored, against a plain sequential loop that stores nothing, in one run.

    .venv/bin/python bench/ingest.py [--feeds 1000] [--items 20] [--hosts 20] [--repeat 1]
                                     [--engine sqlite|postgresql] [--no-daemon] [--profile PATH]

The feeds (bench/feeds.py: realistic items in English, Dutch and German, most feeds saying their
language, every item naming a tracked brand, a quarter with hashtags) are served by a real HTTP server
in its own process on 127.0.0.10 .. 127.0.0.(10 + hosts - 1), with ETag and Last-Modified. Stages:

(a) baseline: a plain sequential loop of `client.get` + `feedparser.parse` over the feeds with one
    keep-alive `httpx.Client`, storing nothing (a new client per `httpx.get` builds a TLS context each
    time, ~20 ms a call here: that would measure httpx's setup, not fetching);
(b) cold: `run_cycle(config, store, None)`, what `listener fetch --no-score` calls, on a fresh database:
    every feed answers 200, every item is stored;
(c) warm: the same again once the sources are due: every feed answers 304;
(d) bulk storing alone: the 20,000 rows of (b) stored on a fresh database through `save_fetches`,
    one source (20 rows) a call, then the same rows again (every one a duplicate); then in batches of
    MAX_BATCH sources a call, as a fetch cycle's Recorder stores them when they land together; and
    through `save_mentions` (1,000 a call, as an import does);
(e) the daemon (`listener run`'s `Daemon`, in a process of its own, with a tiny keyword model so that
    scoring costs nothing) with the 1,000 sources until each was fetched once: the most threads it
    ran at once and the peak memory of it and its parse processes (VmHWM, and the most RSS of all its
    processes at one sample).

Each of (a)-(c) prints wall and CPU time (of every process but the feed server's); (b) and (c) the
CPU of the main process per stage, from timers around the pipeline's functions, and of the parse
processes. Then the cold fetch once more on a fresh database with no parse processes, so that every
stage runs in this process and is timed: fetch (the HTTP client and the event loop: what is left of
the process), parse (feedparser and the entries), match (hashtags, topics; language excluded),
language (detection), store (every store call). `--repeat N` runs (a)-(c) N times, each
on a fresh database, and prints the median of each figure. `--profile PATH` writes a cProfile of
the main process during the first cold fetch. `--engine postgresql` runs (b)-(d) on a throwaway
PostgreSQL server (tests/pgserver.py, Debian's postgresql package). The goals: cold at least 1.5x
faster than the baseline, warm under 1 s, bulk storing at least 20,000 mentions/s, the daemon on a
bounded number of threads within 1 GB.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import functools
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
from collections import defaultdict
from datetime import datetime, timedelta, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.feeds import feed_url  # noqa: E402

EVERY = timedelta(minutes=10)
TOPICS = """
[[topics]]
name = "acme"
query = 'acme OR #acmefail'

[[topics]]
name = "globex"
query = "globex"

[[topics]]
name = "initech"
query = "initech"

[[topics]]
name = "others"
query = "umbrella OR hooli"

[[topics]]
name = "acme-nl"
query = "acme"
languages = ["nl"]
"""


# ---------------------------------------------------------------- the feed server
def free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def feed_server(feeds: int, items: int, hosts: int, now: datetime, delay: str = "0"):
    """The feed server process (`delay`: its --delay); yields (port, its pid, a function reading its answer counts)."""
    import httpx

    port = free_port("127.0.0.10")
    proc = subprocess.Popen([sys.executable, str(REPO / "bench" / "feeds.py"), "--feeds", str(feeds), "--items",
                             str(items), "--hosts", str(hosts), "--port", str(port), "--now", now.isoformat(),
                             "--delay", delay],
                            stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        if not line.startswith("ready"):
            raise SystemExit(f"the feed server did not start: {line!r}")

        def stats() -> dict[str, int]:
            return httpx.get(f"http://127.0.0.10:{port}/stats").json()

        yield port, proc.pid, stats
    finally:
        proc.terminate()
        proc.wait()


def config_text(location: str, urls: list[str], engine: str) -> str:
    database = f'url = "{location}"\npath = "unused.db"' if engine == "postgresql" else f'path = "{location}"'
    sources = "".join(f'\n[[sources]]\nname = "feed-{i:04d}"\nkind = "rss"\nurl = "{url}"\nevery = "10m"\n'
                      for i, url in enumerate(urls))
    return f"[database]\n{database}\n{TOPICS}{sources}"


# ---------------------------------------------------------------- CPU accounting
CLK_TCK = os.sysconf("SC_CLK_TCK")


def _descendants(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        for task in Path(f"/proc/{p}/task").glob("*"):
            with contextlib.suppress(OSError):
                for child in (task / "children").read_text().split():
                    out.append(int(child))
                    todo.append(int(child))
    return out


def children_cpu(exclude: int) -> float:
    """CPU seconds of this process's children and their descendants (but `exclude`, the feed server):
    the live ones' own and reaped children's time, and the reaped ones'."""
    total = os.times().children_user + os.times().children_system
    for pid in _descendants(os.getpid()):
        if pid == exclude:
            continue
        with contextlib.suppress(OSError, IndexError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += sum(int(v) for v in fields[11:15]) / CLK_TCK  # utime stime cutime cstime
    return total


class StageTimers:
    """CPU time (of the calling thread) spent in the pipeline's stage functions, by stage."""

    def __init__(self) -> None:
        self.cpu: dict[str, float] = defaultdict(float)

    def wrap(self, stage: str, fn):
        @functools.wraps(fn)
        def timed(*args, **kwargs):
            start = time.thread_time()
            try:
                return fn(*args, **kwargs)
            finally:
                self.cpu[stage] += time.thread_time() - start
        return timed

    def install(self) -> None:
        """Time parse_feed (in this process), to_rows, language detection and every store call the
        fetch makes. (The parse processes run the original parse_feed: pickled by name.)"""
        import listener.pipeline.match as match
        import listener.pipeline.recording as recording
        import listener.sources.rss as rss
        from listener.store.interface import Ingest, SourceReads

        rss.parse_feed = self.wrap("parse", rss.parse_feed)
        recording.to_rows = self.wrap("match", recording.to_rows)
        match.detect_language = self.wrap("language", match.detect_language)
        self.store_methods = [name for proto in (Ingest, SourceReads) for name in vars(proto)
                              if not name.startswith("_") and callable(getattr(proto, name))]

    def wrap_store(self, store) -> None:
        for name in self.store_methods:
            if hasattr(store, name):
                setattr(store, name, self.wrap("store", getattr(store, name)))

    def take(self) -> dict[str, float]:
        out = dict(self.cpu)
        out["match"] = out.get("match", 0.0) - out.get("language", 0.0)  # language is timed inside match
        self.cpu.clear()
        return out


# ---------------------------------------------------------------- the stages
def baseline(urls: list[str]) -> dict:
    import feedparser
    import httpx

    wall, cpu = time.perf_counter(), time.process_time()
    entries = 0
    with httpx.Client() as client:
        for url in urls:
            entries += len(feedparser.parse(client.get(url).content).entries)
    return {"wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu, "entries": entries}


def fetch_stage(config, timers: StageTimers, server_pid: int, now: datetime, profile: str | None = None,
                in_process: bool = False) -> dict:
    import listener.pipeline.fetch as fetch
    from listener.pipeline import run_cycle
    from listener.store import open_store

    pool_min = fetch.PARSE_POOL_MIN
    if in_process:
        fetch.PARSE_POOL_MIN = 10 ** 9  # no parse processes: every stage runs (and is timed) here
    with open_store(config.database.location) as store, contextlib.ExitStack() as restore:
        restore.callback(setattr, fetch, "PARSE_POOL_MIN", pool_min)
        timers.wrap_store(store)
        timers.take()
        profiler = cProfile.Profile() if profile else None
        wall, cpu, pool_cpu = time.perf_counter(), time.process_time(), children_cpu(server_pid)
        if profiler:
            profiler.enable()
        report = run_cycle(config, store, None, now=now)
        if profiler:
            profiler.disable()
            profiler.dump_stats(profile)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        pool_cpu = children_cpu(server_pid) - pool_cpu
    stages = timers.take()  # in this process
    stages["fetch"] = cpu - sum(stages.values())
    stages["pool"] = pool_cpu
    return {"wall": wall, "cpu": cpu + pool_cpu, "stages": stages, "report": report}


def bulk_stage(location, engine: str, rows_by_source: dict[str, list]) -> dict:
    from listener.pipeline.recording import MAX_BATCH
    from listener.sources import SourceState
    from listener.store import Fetched, open_store

    now = datetime.now(timezone.utc)
    n = sum(map(len, rows_by_source.values()))
    fetches = [Fetched(source, "rss", rows, SourceState('"e"', None, None), now, now, now + EVERY, len(rows), 1)
               for source, rows in rows_by_source.items()]
    out = {}
    with fresh_database(location, engine, "bulk_fetch") as where, open_store(where) as store:
        start = time.perf_counter()
        for f in fetches:
            store.save_fetches([f])
        out["save_fetch, one source a call"] = n / (time.perf_counter() - start)
        start = time.perf_counter()
        for f in fetches:  # again: every one a duplicate
            store.save_fetches([f])
        out["save_fetch (duplicates)"] = n / (time.perf_counter() - start)
    with fresh_database(location, engine, "bulk_batches") as where, open_store(where) as store:
        start = time.perf_counter()
        for i in range(0, len(fetches), MAX_BATCH):
            store.save_fetches(fetches[i:i + MAX_BATCH])
        out[f"save_fetches, {MAX_BATCH} sources a call"] = n / (time.perf_counter() - start)
    with fresh_database(location, engine, "bulk_import") as where, open_store(where) as store:
        flat = [row for rows in rows_by_source.values() for row in rows]
        start = time.perf_counter()
        for i in range(0, len(flat), 1000):
            store.save_mentions(flat[i:i + 1000])
        out["save_mentions"] = n / (time.perf_counter() - start)
    return out


@contextlib.contextmanager
def fresh_database(location, engine: str, name: str):
    """A new empty database next to `location` (a folder for SQLite, the server's URL for PostgreSQL)."""
    if engine == "postgresql":
        yield location.create_database(f"{name}_{time.monotonic_ns()}")
    else:
        folder = Path(tempfile.mkdtemp(dir=location))
        yield folder / f"{name}.db"


def rows_of(config) -> dict[str, list]:
    """The rows the cold fetch stored, rebuilt from its mentions (for the bulk stage)."""
    from listener.store import MentionRow, open_store, parse_iso

    rows: dict[str, list] = defaultdict(list)
    with open_store(config.database.location) as store:
        for m in store.iter_mentions():
            rows[m["source"]].append(MentionRow(
                source=m["source"], source_id=m["source_id"], text=m["text"], url=m["url"], title=m["title"],
                author=m["author"], language=m["language"], language_detected=bool(m["language_detected"]),
                published_at=parse_iso(m["published_at"]), fetched_at=parse_iso(m["fetched_at"]),
                topics=tuple((m["topic_list"] or "").split()), hashtags=tuple((m["hashtag_list"] or "").split())))
    return dict(rows)


# ---------------------------------------------------------------- the daemon, in a process of its own
class KeywordModel:
    """A tiny real sentiment model, so that the daemon's scoring costs nothing next to its fetching."""

    name = "bench-keywords"

    def score(self, texts):
        from listener.models import Sentiment

        return [Sentiment.from_probs(0.6, 0.3, 0.1) if "complain" in t else Sentiment.from_probs(0.1, 0.8, 0.1)
                for t in texts]


def _status(pid: int | str) -> dict[str, int]:
    out = {}
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("Threads", "VmRSS", "VmHWM"):
                out[key] = int(value.split()[0])
    return out


def daemon_child(config_path: str, feeds: int) -> None:
    """Run the daemon until every source was fetched once; print what it used as JSON."""
    from listener.config import load_config
    from listener.daemon import Daemon

    config = load_config(Path(config_path))
    fetched, done, stop = [0], threading.Event(), threading.Event()
    peak = {"threads": 0, "rss_all_kb": 0}

    def log(line: str) -> None:
        if line.startswith(("fetched ", "fetch failed ")):
            fetched[0] += 1
            if fetched[0] >= feeds:
                done.set()

    def sample() -> None:
        while not stop.is_set():
            me = _status("self")
            peak["threads"] = max(peak["threads"], me.get("Threads", 0))
            rss = me.get("VmRSS", 0) + sum(_status(p).get("VmRSS", 0) for p in _descendants(os.getpid()))
            peak["rss_all_kb"] = max(peak["rss_all_kb"], rss)
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    start = time.perf_counter()
    runner = threading.Thread(target=Daemon(config, KeywordModel, log=log).run, args=(stop,))
    runner.start()
    done.wait(600)
    seconds = time.perf_counter() - start
    stop.set()
    runner.join()
    print(json.dumps({"fetched": fetched[0], "seconds": seconds, "threads": peak["threads"],
                      "hwm_mb": _status("self")["VmHWM"] / 1024, "rss_all_mb": peak["rss_all_kb"] / 1024}))


def daemon_stage(urls: list[str], folder: Path) -> dict:
    config = folder / "daemon.toml"
    config.write_text(config_text(str(folder / "daemon.db"), urls, "sqlite"))
    out = subprocess.run([sys.executable, __file__, "--daemon-child", str(config), "--feeds", str(len(urls))],
                         capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    if out.returncode != 0:
        raise SystemExit(f"the daemon stage failed: {out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------- the run
def breakdown(stages: dict[str, float]) -> str:
    order = ("fetch", "parse", "match", "language", "store")
    line = "  ".join(f"{k} {stages.get(k, 0.0):5.2f}" for k in order if stages.get(k) or k in ("fetch", "store"))
    if stages.get("pool"):
        line += f"  | parse processes (parse, match, language) {stages['pool']:5.2f}"
    return line


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feeds", type=int, default=1000)
    parser.add_argument("--items", type=int, default=20)
    parser.add_argument("--hosts", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=1, help="rounds of (a)-(c), each on a fresh database")
    parser.add_argument("--engine", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--no-daemon", action="store_true", help="skip (e)")
    parser.add_argument("--profile", metavar="PATH", help="cProfile of the first cold fetch (main process)")
    parser.add_argument("--daemon-child", metavar="CONFIG", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.daemon_child:
        daemon_child(args.daemon_child, args.feeds)
        return

    from listener.config import parse_config

    now = datetime.now(timezone.utc).replace(microsecond=0)
    timers = StageTimers()
    timers.install()
    rounds = []
    with contextlib.ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-ingest-")))
        port, server_pid, server_stats = stack.enter_context(feed_server(args.feeds, args.items, args.hosts, now))
        urls = [feed_url(i, args.hosts, port) for i in range(args.feeds)]
        if args.engine == "postgresql":
            from tests.pgserver import ThrowawayPostgres

            location = stack.enter_context(ThrowawayPostgres())
        else:
            location = folder
        print(f"{args.feeds} feeds of {args.items} items on {args.hosts} loopback hosts, {args.engine}, "
              f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}")
        for r in range(args.repeat):
            base = baseline(urls)
            with fresh_database(location, args.engine, "fetch") as where:
                config = parse_config(tomllib.loads(config_text(str(where), urls, args.engine)), base_dir=folder)
                before = server_stats()
                cold = fetch_stage(config, timers, server_pid, now, args.profile if r == 0 else None)
                middle = server_stats()
                warm = fetch_stage(config, timers, server_pid, now + EVERY + timedelta(seconds=1))
                after = server_stats()
                stored = cold["report"].new
                if r == 0:
                    rows = rows_of(config)
            if r == 0:
                with fresh_database(location, args.engine, "fetch_here") as where:
                    config = parse_config(tomllib.loads(config_text(str(where), urls, args.engine)), base_dir=folder)
                    here = fetch_stage(config, timers, server_pid, now, in_process=True)
            answers = (middle["200"] - before["200"], after["304"] - middle["304"])
            rounds.append({"baseline": base, "cold": cold, "warm": warm})
            print(f"round {r + 1}: baseline {base['wall']:.2f} s (cpu {base['cpu']:.2f}, {base['entries']} entries) | "
                  f"cold {cold['wall']:.2f} s (cpu {cold['cpu']:.2f}, {stored} stored, {answers[0]} x 200) | "
                  f"warm {warm['wall']:.2f} s (cpu {warm['cpu']:.2f}, {answers[1]} x 304) | "
                  f"cold {base['wall'] / cold['wall']:.2f}x faster than the baseline")
            print(f"  cold cpu: {breakdown(cold['stages'])}")
            print(f"  warm cpu: {breakdown(warm['stages'])}")
            if cold["report"].failed or warm["report"].failed:
                print(f"  failed: {[o.error for o in cold['report'].failed + warm['report'].failed][:3]}")
        bulk = bulk_stage(location, args.engine, rows)
        daemon = None if args.no_daemon or args.engine != "sqlite" else daemon_stage(urls, folder)

    med = lambda key, field="wall": statistics.median(r[key][field] for r in rounds)  # noqa: E731
    ratio = statistics.median(r["baseline"]["wall"] / r["cold"]["wall"] for r in rounds)
    print(f"\ncold fetch in one process (no parse processes), CPU per stage: {breakdown(here['stages'])}"
          f"  = {here['cpu']:.2f} s; wall {here['wall']:.2f} s")
    print()
    print(f"{'stage':34s} {'result':>14s}   goal")
    print(f"{'(a) baseline (sequential loop)':34s} {med('baseline'):12.2f} s")
    print(f"{'(b) cold fetch (listener fetch)':34s} {med('cold'):12.2f} s   {ratio:.2f}x the baseline's speed, goal >= 1.5x")
    print(f"{'(c) warm fetch (all 304)':34s} {med('warm'):12.2f} s   goal < 1 s")
    for name, rate in bulk.items():
        print(f"{'(d) ' + name:34s} {rate:10,.0f} /s   goal >= 20,000 mentions/s")
    if daemon:
        print(f"{'(e) daemon: threads at most':34s} {daemon['threads']:12d}     {daemon['fetched']} sources fetched "
              f"in {daemon['seconds']:.1f} s")
        print(f"{'(e) daemon: peak RSS (main)':34s} {daemon['hwm_mb']:10.0f} MB   goal < 1 GB")
        print(f"{'(e) daemon: peak RSS (all processes)':34s} {daemon['rss_all_mb']:10.0f} MB")


if __name__ == "__main__":
    main()

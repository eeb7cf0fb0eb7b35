"""Benchmark several workers on one PostgreSQL database: 1 worker against 3 fetching the same loopback
RSS feeds, each run on a fresh database, and check that every source was fetched exactly once.

    .venv/bin/python bench/workers.py [--feeds 2000] [--items 5] [--hosts 20] [--delay 100-300]
                                      [--workers 1,3] [--repeat 1]

The feeds (bench/feeds.py, in a process of its own, on 127.0.0.10 .. 127.0.0.(10 + hosts - 1)) answer
each request after a delay drawn uniformly in `--delay` milliseconds: a real server's latency, so
that the run measures how the workers share the waiting, not the loopback's speed. Each source is
due once (`every = "1h"`). A run starts N worker processes, each a `FetchLoop` (the daemon's fetching:
the fetch leases, its own worker name, its own parse processes; no model, nothing scored) on the same
database, lets them go at once, and polls `source_health()` until every source has a fetch attempt:
that is the wall time. Then it checks the fetch log (one row per source, none failed), the mentions
stored against the items served, and the feed server's 200 answers against the sources.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.feeds import feed_url  # noqa: E402
from bench.ingest import TOPICS, feed_server  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")
DEADLINE = 600.0  # seconds a run may take before it is called failed


def config_text(url: str, urls: list[str]) -> str:
    sources = "".join(f'\n[[sources]]\nname = "feed-{i:04d}"\nkind = "rss"\nurl = "{u}"\nevery = "1h"\n'
                      for i, u in enumerate(urls))
    return f'[database]\nurl = "{url}"\npath = "unused.db"\n{TOPICS}{sources}'


# ---------------------------------------------------------------- one worker, in a process of its own
def worker_child(config_path: str, name: str) -> None:
    """A FetchLoop as worker `name`: "ready" once built, starts on a line on stdin, stops on the next;
    then prints its outcomes and errors as JSON."""
    from listener.config import load_config
    from listener.pipeline import FetchLoop
    from listener.store import open_store

    config = load_config(Path(config_path))
    outcomes: list[dict] = []
    errors: list[str] = []

    started = [0.0]

    def on_outcome(o) -> None:
        outcomes.append({"source": o.source, "ok": o.ok, "new": o.new, "error": o.error,
                         "at": time.perf_counter() - started[0]})

    loop = FetchLoop(config, lambda: open_store(config.database.location), clock=lambda: datetime.now(timezone.utc),
                     on_outcome=on_outcome, log=errors.append, worker=name)
    print("ready", flush=True)
    sys.stdin.readline()
    started[0], t0 = time.perf_counter(), os.times()
    loop.start()
    sys.stdin.readline()
    loop.stop()  # its parse processes ended and reaped: their CPU is in os.times()'s children
    t = os.times()
    cpu = sum(getattr(t, f) - getattr(t0, f) for f in ("user", "system", "children_user", "children_system"))
    print(json.dumps({"worker": name, "outcomes": outcomes, "errors": errors, "cpu": cpu}), flush=True)


@contextlib.contextmanager
def workers(config_path: Path, n: int):
    """N worker processes, built and waiting; yields a function that lets them all go at once."""
    procs = [subprocess.Popen([sys.executable, __file__, "--worker-child", str(config_path), "--name", f"w{k + 1}"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": str(REPO)}) for k in range(n)]
    results: list[dict] = []
    try:
        for p in procs:
            line = p.stdout.readline()
            if line.strip() != "ready":
                raise SystemExit(f"a worker did not start: {line!r}")

        def go() -> None:
            for p in procs:
                p.stdin.write("go\n")
                p.stdin.flush()

        yield go, results
        for p in procs:  # stop them all, then collect
            p.stdin.write("stop\n")
            p.stdin.flush()
        for p in procs:
            out, _ = p.communicate(timeout=120)
            if p.returncode != 0:
                raise SystemExit(f"a worker failed (exit {p.returncode})")
            results.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()


# ---------------------------------------------------------------- one run
def busy_cpus() -> tuple[float, float]:
    """Seconds of CPU time the whole machine spent busy and idle so far (/proc/stat, every process)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    return (sum(fields[:8]) - idle) / CLK_TCK, idle / CLK_TCK


def commits(pg, url: str) -> int:
    """Transactions committed in the database at `url` so far (pg_stat_database: every worker's)."""
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(pg.url(), autocommit=True) as conn:
        conn.execute("SELECT pg_stat_force_next_flush()")
        return conn.execute("SELECT xact_commit FROM pg_stat_database WHERE datname = %s", (name,)).fetchone()[0]


def run(pg, n: int, urls: list[str], folder: Path, served_items: int, server_stats) -> dict:
    from listener.store import open_store

    url = pg.create_database(f"workers{n}_{time.monotonic_ns()}")
    config = folder / f"workers{n}.toml"
    config.write_text(config_text(url, urls))
    with open_store(url) as store:  # the schema made before the workers race to make it
        pass
    before = server_stats()
    load = os.getloadavg()[0]
    with workers(config, n) as (go, results), open_store(url) as store:
        start, machine = time.perf_counter(), busy_cpus()
        go()
        while True:
            attempted = sum(1 for h in store.source_health().values() if h.last_attempt_at is not None)
            if attempted >= len(urls):
                break
            if time.perf_counter() - start > DEADLINE:
                raise SystemExit(f"{n} workers: only {attempted} of {len(urls)} sources fetched in {DEADLINE:.0f} s")
            time.sleep(0.1)
        seconds = time.perf_counter() - start
        busy, idle = (b - a for a, b in zip(machine, busy_cpus()))
    after = server_stats()
    with open_store(url) as store:
        log = store.fetch_log()
        mentions = store.count_rows("mentions")
    transactions = commits(pg, url)
    per_source = Counter(r["source"] for r in log)
    by_worker = {r["worker"]: (len(r["outcomes"]), max((o["at"] for o in r["outcomes"]), default=0.0))
                 for r in results}
    outcome_sources = Counter(o["source"] for r in results for o in r["outcomes"])
    return {
        "workers": n, "seconds": seconds, "machine_busy": busy / max(busy + idle, 1e-9),
        "transactions": transactions, "worker_cpu": sum(r["cpu"] for r in results), "load": load, "load_after": os.getloadavg()[0],
        "fetches": len(log), "sources_fetched": len(per_source),
        "twice": sorted((s, c) for s, c in per_source.items() if c > 1),
        "outcomes_twice": sorted((s, c) for s, c in outcome_sources.items() if c > 1),
        "failed": [(r["source"], r["error"]) for r in log if r["status"] == "error"],
        "errors": [e for r in results for e in r["errors"]],
        "by_worker": by_worker, "mentions": mentions, "served_items": served_items,
        "answers_200": after["200"] - before["200"], "answers_304": after["304"] - before["304"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feeds", type=int, default=2000)
    parser.add_argument("--items", type=int, default=5)
    parser.add_argument("--hosts", type=int, default=20)
    parser.add_argument("--delay", default="100-300", help="the feed server's latency, milliseconds (a range)")
    parser.add_argument("--workers", default="1,3", help="the runs: how many workers each, comma-separated")
    parser.add_argument("--repeat", type=int, default=1, help="rounds of the runs")
    parser.add_argument("--worker-child", metavar="CONFIG", help=argparse.SUPPRESS)
    parser.add_argument("--name", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker_child:
        worker_child(args.worker_child, args.name)
        return
    counts = [int(w) for w in args.workers.split(",")]

    from tests.pgserver import ThrowawayPostgres

    now = datetime.now(timezone.utc).replace(microsecond=0)
    rows = []
    with contextlib.ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-workers-")))
        port, _, server_stats = stack.enter_context(feed_server(args.feeds, args.items, args.hosts, now, args.delay))
        urls = [feed_url(i, args.hosts, port) for i in range(args.feeds)]
        pg = stack.enter_context(ThrowawayPostgres())
        print(f"{args.feeds} feeds of {args.items} items on {args.hosts} loopback hosts, {args.delay} ms a response, "
              f"PostgreSQL, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}")
        for r in range(args.repeat):
            for n in counts:
                row = run(pg, n, urls, folder, args.feeds * args.items, server_stats)
                row["round"] = r + 1
                rows.append(row)
                split = ", ".join(f"{w} {k} in {at:.1f} s" for w, (k, at) in sorted(row["by_worker"].items()))
                print(f"round {r + 1}, {n} worker{'s' if n != 1 else ''}: {row['seconds']:.1f} s; fetched by each "
                      f"(its last one done at): {split}; the workers' CPU since go {row['worker_cpu']:.1f} s "
                      f"(their parse processes included), the machine {row['machine_busy']:.0%} busy; "
                      f"{row['transactions']:,} PostgreSQL transactions ({row['transactions'] / len(urls):.1f} a source); load {row['load']:.2f} -> {row['load_after']:.2f}", flush=True)

    print()
    print(f"{'round':>5} {'workers':>7} {'seconds':>8} {'sources/s':>9} {'vs 1':>5} {'fetches/source':>14} "
          f"{'mentions stored/served':>22} {'200s':>5} {'load':>10}")
    ok = True
    for row in rows:
        one = next((o for o in rows if o["round"] == row["round"] and o["workers"] == 1), None)
        ratio = f"{one['seconds'] / row['seconds']:.2f}" if one else "-"
        per = row["fetches"] / max(1, row["sources_fetched"])
        print(f"{row['round']:>5} {row['workers']:>7} {row['seconds']:8.1f} {args.feeds / row['seconds']:9.1f} "
              f"{ratio:>5} {per:14.3f} {row['mentions']:>10} / {row['served_items']:<9} {row['answers_200']:>5} "
              f"{row['load']:4.2f}-{row['load_after']:.2f}")
        problems = []
        if row["twice"]:
            problems.append(f"fetched more than once (fetch log): {row['twice'][:10]}")
        if row["outcomes_twice"]:
            problems.append(f"fetched more than once (outcomes): {row['outcomes_twice'][:10]}")
        if row["sources_fetched"] != args.feeds:
            problems.append(f"{row['sources_fetched']} sources in the fetch log, not {args.feeds}")
        if row["failed"]:
            problems.append(f"{len(row['failed'])} fetches failed: {row['failed'][:3]}")
        if row["errors"]:
            problems.append(f"worker errors: {row['errors'][:3]}")
        if row["mentions"] != row["served_items"]:
            problems.append(f"{row['mentions']} mentions stored, {row['served_items']} items served")
        if row["answers_200"] != args.feeds or row["answers_304"]:
            problems.append(f"the server answered {row['answers_200']} x 200 and {row['answers_304']} x 304")
        for p in problems:
            ok = False
            print(f"      PROBLEM ({row['workers']} workers): {p}")
    print("every source fetched exactly once, every item stored once" if ok else "PROBLEMS: see above")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()

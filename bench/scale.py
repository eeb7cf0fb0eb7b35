"""Benchmark listener at scale (issue 20), one part per subcommand:

    .venv/bin/python bench/scale.py history [--mentions 1M,10M] [--repeat 5] [--no-sqlite] [--breakdown]
    .venv/bin/python bench/scale.py workers [--feeds 2000] [--delay 100-300] [--workers 1,3] [--repeat N]

`workers`: 1 vs 3 workers fetching loopback feeds with server latency into one PostgreSQL
(`bench/workers.py`, run as it is): seconds, the ratio, and every source fetched exactly once.

`history`: does the cost of an alert evaluation and a digest follow new data, not history? Two
PostgreSQL databases that differ only in how much older data they hold: 1M mentions over one year
and 10M over ten years, at the same traffic (`bench/history.py`: about 2,740 mentions a day, each
day drawn from a seed of its own). History is older data: the last year, the day measured
included, is the same in both, mention for mention (more topics instead would have changed today's
traffic as well). The day ends with a hijack (25 angry posts with #acmedeal, a hashtag in use for
the whole history), so the backlash rule reads that history and fires in both databases.

They are built once, through the store, on a PostgreSQL server kept in `data/bench/pg-scale/`
(git-ignored; a database is renamed into place only when complete, so an interrupted build starts
again), then reused. With SQLite (unless `--no-sqlite`), the smallest is also copied once by
`copy_database` (`listener db copy`) into `data/bench/scale-<size>.db`, for comparison.

Measured on each database, warm (the first run is shown, then the median of `--repeat` runs, the
databases taking turns): `evaluate_all` with the standard rules (volume_spike, negative_spike and
backlash on each topic) at the end of the data; `build_digest` of the last whole day (what
`listener digest --format json` prints); the dashboard overview's figures. The target: the largest
database's time at most 1.5x the smallest's. `--breakdown` adds the time of each store call of
each task. (Alert evaluations write their state: after the first run ever, the hijack's incident
is open, and later runs find it so, in every database alike.)
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import tomllib
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.digest import SOURCES, TOPICS  # noqa: E402
from bench.history import DAY, END, RATE, build, vacuum  # noqa: E402
from listener.alerts.engine import evaluate_all  # noqa: E402
from listener.config import parse_config  # noqa: E402
from listener.digest import build_digest  # noqa: E402
from listener.store import iso, open_store  # noqa: E402
from listener.store.transfer import copy_database  # noqa: E402
from listener.web.overview import overview_figures  # noqa: E402
from tests.pgserver import ThrowawayPostgres  # noqa: E402

TARGET = 1.5
FOLDER = REPO / "data" / "bench"
RULES = ("volume_spike", "negative_spike", "backlash")

CONFIG = """
[database]
{database}
[digest]
timezone = "Europe/Amsterdam"
[email]
host = "127.0.0.1"
from = "listener <listener@bench.example>"
to = ["team@bench.example"]
""" + "".join(f'[[topics]]\nname = "{t}"\nquery = "{t}"\n' for t in TOPICS) \
    + "".join(f'[[sources]]\nname = "{s}"\nkind = "rss"\nurl = "http://127.0.0.1:9/{s}.xml"\nevery = "30m"\n'
              for s in SOURCES) \
    + "".join(f'[[alerts]]\nname = "{t}-{k.replace("_", "-")}"\nkind = "{k}"\ntopic = "{t}"\n'
              for t in TOPICS for k in RULES)


# ---------------------------------------------------------------- the databases
def label(n: int) -> str:
    """1000000 -> 1M, 500000 -> 500k."""
    return f"{n // 1_000_000}M" if n % 1_000_000 == 0 else f"{n // 1000}k" if n % 1000 == 0 else str(n)


def parse_sizes(text: str) -> list[int]:
    """"1M,10M" -> [1000000, 10000000]."""
    try:
        return sorted(int(float(s[:-1]) * {"k": 1e3, "m": 1e6}[s[-1].lower()]) if s[-1].isalpha() else int(s)
                      for s in text.split(","))
    except (KeyError, ValueError, IndexError):
        raise argparse.ArgumentTypeError(f"not a list of sizes like 1M,10M: {text!r}") from None


def _names(pg: ThrowawayPostgres) -> dict[str, int]:
    """The server's databases and their sizes in bytes."""
    import psycopg

    with psycopg.connect(pg.url(), autocommit=True) as conn:
        return dict(conn.execute("SELECT datname, pg_database_size(datname) FROM pg_database").fetchall())


def postgres_database(pg: ThrowawayPostgres, n: int) -> str:
    """The URL of the benchmark database of `n` mentions, built first when missing."""
    name = f"scale_{label(n).lower()}"
    have = _names(pg)
    if name not in have:
        if f"{name}_building" in have:  # an interrupted build
            pg.execute(f'DROP DATABASE "{name}_building"')
        days = max(1, round(n / RATE))
        print(f"building {label(n)}: {days:,} days of history up to {iso(END)} (once; then kept in {pg.folder}) ...")
        url = pg.create_database(f"{name}_building")
        total, seconds = build(url, days)
        print(f"built {total:,} mentions in {seconds / 60:.1f} min ({total / seconds:,.0f} mentions/s stored and scored)")
        t0 = time.perf_counter()
        vacuum(url)
        pg.execute(f'ALTER DATABASE "{name}_building" RENAME TO "{name}"')
        print(f"vacuumed in {(time.perf_counter() - t0) / 60:.1f} min")
    return pg.url(name)


def sqlite_database(url: str, n: int, folder: Path) -> Path:
    """The SQLite copy of the PostgreSQL database at `url` (copied by `listener db copy`'s function when missing)."""
    path = folder / f"scale-{label(n).lower()}.db"
    if not path.exists():
        part = path.with_suffix(".part.db")
        for stale in folder.glob(part.name + "*"):
            stale.unlink()
        print(f"copying {label(n)} into SQLite ({path}, once) ...")
        t0 = time.perf_counter()
        with open_store(url) as source, open_store(str(part)) as target:
            copy_database(source, target, batch=20_000,
                          progress=lambda table, rows: print(f"\r  {table}: {rows:,} rows   ", end="", flush=True))
        part.rename(path)
        print(f"\ncopied in {(time.perf_counter() - t0) / 60:.1f} min")
    return path


# ---------------------------------------------------------------- the measurements
TASKS = {
    "alert evaluation (9 rules)": lambda store, config: evaluate_all(config, store, END),
    "digest of one day": lambda store, config: build_digest(store, config, DAY),
    "dashboard overview": lambda store, config: overview_figures(store, config, END),
}


class Timed:
    """A store whose every call is timed by method (seconds and calls), for `--breakdown`."""

    def __init__(self, store):
        self._store, self.seconds, self.calls = store, Counter(), Counter()

    def __getattr__(self, name: str):
        attr = getattr(self._store, name)
        if not callable(attr):
            return attr

        def timed(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return attr(*args, **kwargs)
            finally:
                self.seconds[name] += time.perf_counter() - t0
                self.calls[name] += 1
        return timed


def _ms(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return 1000 * (time.perf_counter() - t0)


def _without_ids(value):
    """A digest without its incidents' ids (the databases number their incidents differently)."""
    if isinstance(value, dict):
        return {k: _without_ids(v) for k, v in value.items() if k != "id"}
    if isinstance(value, list):
        return [_without_ids(v) for v in value]
    return value


def measure(targets: dict[str, tuple], repeat: int) -> dict[str, dict[str, tuple[float, float]]]:
    """task -> database -> (first run, median of `repeat` runs) in ms; the databases take turns."""
    runs: dict[str, dict[str, list[float]]] = {task: {name: [] for name in targets} for task in TASKS}
    for _ in range(repeat + 1):
        for task, fn in TASKS.items():
            for name, (store, config) in targets.items():
                runs[task][name].append(_ms(lambda: fn(store, config)))
    return {task: {name: (r[0], statistics.median(r[1:])) for name, r in by.items()} for task, by in runs.items()}


def check_same(targets: dict[str, tuple]) -> None:
    """The same day gives the same alerts and the same digest in every database (history aside)."""
    states = {name: sorted((r["rule"], r["labels"], r["state"]) for r in store.alert_states())
              for name, (store, _) in targets.items()}
    digests = {name: json.dumps(_without_ids(build_digest(store, config, DAY)), sort_keys=True)
               for name, (store, config) in targets.items()}
    first = next(iter(targets))
    print("alerts after the evaluation: " + ("; ".join(f"{r} {l} {s}" for r, l, s in states[first]) or "none"))
    for name in targets:
        if states[name] != states[first] or digests[name] != digests[first]:
            print(f"  WARNING: {name} differs from {first} in its " + ("alerts" if states[name] != states[first]
                                                                    else "digest"))
    print(f"same alerts and the same digest in every database: "
          f"{'yes' if all(states[n] == states[first] and digests[n] == digests[first] for n in targets) else 'NO'}")


def breakdown(targets: dict[str, tuple]) -> None:
    """Each store call of every task, run once: calls and ms per database."""
    for task in TASKS:
        timed = {name: Timed(store) for name, (store, _) in targets.items()}
        for name, (_, config) in targets.items():
            TASKS[task](timed[name], config)
        first, last = list(targets)[0], list(targets)[-1]
        print(f"\n{task}: store calls{'':>18}" + "".join(f"{n:>14}" for n in targets) + f"{'ratio':>8}")
        for method, seconds in timed[last].seconds.most_common():
            print(f"  {method:38} {timed[last].calls[method]:>5}x"
                  + "".join(f"{1000 * t.seconds[method]:12.1f}ms" for t in timed.values())
                  + f"{seconds / max(timed[first].seconds[method], 1e-9):8.2f}")


def history(args: argparse.Namespace) -> int:
    """The `history` part (see the module's docstring); 1 when a ratio misses the target."""
    sizes = args.mentions
    with ThrowawayPostgres(folder=args.folder / "pg-scale") as pg:
        urls = {n: postgres_database(pg, n) for n in sizes}
        sizes_on_disk = _names(pg)
        print("databases: " + ", ".join(f"{label(n)} {sizes_on_disk[u.rsplit('/', 1)[1]] / 1e9:.1f} GB"
                                       for n, u in urls.items()))
        targets: dict[str, tuple] = {}
        for n, url in urls.items():
            config = parse_config(tomllib.loads(CONFIG.format(database=f'url = "{url}"')), base_dir=args.folder)
            targets[f"{label(n)} PG"] = (open_store(url), config)
        if args.sqlite:
            path = sqlite_database(urls[sizes[0]], sizes[0], args.folder)
            config = parse_config(tomllib.loads(CONFIG.format(database=f'path = "{path}"')), base_dir=args.folder)
            targets[f"{label(sizes[0])} SQLite"] = (open_store(str(path)), config)
        try:
            for name, (store, _) in targets.items():
                print(f"{name}: {store.count_rows('mentions'):,} mentions, {store.count_rows('fetches'):,} fetches, "
                      f"{store.count_rows('incidents'):,} incidents")
            results = measure(targets, args.repeat)
            check_same(targets)
            small, large = f"{label(sizes[0])} PG", f"{label(sizes[-1])} PG"
            print(f"\n{'median ms (first run)':28}" + "".join(f"{n:>18}" for n in targets)
                  + f"{large + '/' + small:>16}{'target':>8}")
            missed = []
            for task, by in results.items():
                ratio = by[large][1] / by[small][1]
                missed += [task] if ratio > TARGET else []
                print(f"{task:28}" + "".join(f"{m:9.1f} ({f:6.1f})" for f, m in by.values())
                      + f"{ratio:16.2f}{'<= ' + str(TARGET):>8}{'  MISSED' if ratio > TARGET else ''}")
            if args.breakdown:
                breakdown({n: t for n, t in targets.items() if n.endswith("PG")})
        finally:
            for store, _ in targets.values():
                store.close()
    print(f"\ncost follows new data, not history ({large}/{small} at most {TARGET}): "
          + ("yes" if not missed else "NO: " + ", ".join(missed)))
    return 1 if missed else 0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parts = ap.add_subparsers(dest="part", required=True)
    hist = parts.add_parser("history", help="1M vs 10M mentions: an alert evaluation, a digest, the overview")
    hist.add_argument("--mentions", type=parse_sizes, default=[1_000_000, 10_000_000],
                      help=f"database sizes, like 1M,10M (history at {RATE:,} mentions a day)")
    hist.add_argument("--repeat", type=int, default=5)
    hist.add_argument("--folder", type=Path, default=FOLDER, help="where the databases are kept")
    hist.add_argument("--no-sqlite", dest="sqlite", action="store_false", help="skip the SQLite copy of the smallest")
    hist.add_argument("--breakdown", action="store_true", help="time every store call of each task")
    work = parts.add_parser("workers", help="1 vs 3 workers on 2,000 loopback feeds with 100-300 ms latency "
                                            "(bench/workers.py; its options follow)")
    args, rest = ap.parse_known_args()
    if rest and args.part != "workers":
        ap.error(f"unrecognized arguments: {' '.join(rest)}")
    args.rest = rest
    raise SystemExit({"history": history, "workers": workers}[args.part](args))


def workers(args: argparse.Namespace) -> int:
    """The workers part: bench/workers.py in a process of its own (its workers are processes too)."""
    import subprocess
    import sys

    return subprocess.call([sys.executable, str(Path(__file__).with_name("workers.py")), *args.rest])


if __name__ == "__main__":
    main()

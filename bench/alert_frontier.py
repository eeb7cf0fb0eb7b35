"""How fast the backlash's share test can be for how few false alarms: the trade-off, measured.

    .venv/bin/python bench/alert_frontier.py [--runs 300] [--split tune] [--seed 1]
        [--evidence 0.7,1,1.5,2] [--min-count 4,6,8] [--data ../shared/data/sentiment]

`bench/alert_quality.py` replays a few streams end to end; this asks, over hundreds of draws of
each scenario's burst, what the share half of a backlash (`backlash.negative_enough`: the
burst's expected negatives against the topic's usual share as the model scores it) can tell
from how many posts. Every burst of those scenarios has overwhelming volume evidence within
minutes (a hashtag nobody used at 15/h or more), so the share decides when a hijack fires, and
whether a news story as negative as its brand does.

Each draw: the burst's posts arrive as in alert_quality (Poisson, minute by minute, its rate
profile), each a real text of the split drawn by the burst's label mix, with its P(negative)
from the bundled model (texts scored once, brand name prepended, up to --pool per label). The
topic's usual share and one post's spread are those of the scenario's own mix on the same
scores; the most the usual plausibly is adds 1.64 standard errors of the days of history
before the burst. Every minute the test runs on all the burst's posts so far, with
`min_count` and SHARE_EVIDENCE as given (the other thresholds as shipped).

Printed per setting: for the news story of always-criticised, the share of draws in which it
ever fires over its 6 hours (a false alarm); for each hijack, the median and 90th percentile
minute of its first firing and the share of draws later than its target (alert_quality's
deadline: 30 min, 15 at 300/h). The shipped setting is marked. A better setting moves both
down; along the frontier one goes down only as the other goes up.
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))
sys.path.insert(0, str(BENCH))

from alert_quality import DEFAULT_DATA, SCENARIOS, Burst, Scenario, load_texts, poisson  # noqa: E402
from listener.alerts.kinds.backlash import SHARE_EVIDENCE, negative_enough  # noqa: E402
from listener.config.schema import ALERT_KINDS  # noqa: E402

HISTORY_HOURS_A_DAY = 12  # full-rate hours a day of ordinary traffic amounts to (alert_quality's daily rhythm)


def scored_pools(texts: dict, languages: set[str], per_label: int, rng: random.Random) -> dict:
    """P(negative) of up to `per_label` texts per language and label, as the bundled model scores them."""
    from listener.models import load_model

    model = load_model("bundled")
    out = {}
    for language in sorted(languages):
        brand = "Frietpaleis" if language == "nl" else "Grillhof"
        pools = []
        for by_label in texts[language]:
            sample = rng.sample(by_label, min(per_label, len(by_label)))
            pools.append([s.p_negative for s in model.score([f"{brand} {t}" for t in sample])])
        out[language] = pools
    return out


def mixture(pools: list[list[float]], mix: tuple[float, float, float]) -> tuple[float, float]:
    """Mean and standard deviation of one post's P(negative) for a label mix."""
    mean = sum(w * sum(p) / len(p) for w, p in zip(mix, pools))
    square = sum(w * sum(x * x for x in p) / len(p) for w, p in zip(mix, pools))
    return mean, math.sqrt(max(square - mean * mean, 0.0))


def first_firing(burst: Burst, pools: list[list[float]], usual: float, upper: float, spread: float,
                 min_count: int, evidence: float, floor: float, rng: random.Random) -> int | None:
    """The first minute after the burst's start at which the share test fires, or None."""
    n, k = 0, 0.0
    for minute in range(burst.minutes):
        for _ in range(poisson(rng, burst.rate((minute + 0.5) / 60) / 60)):
            n += 1
            k += rng.choice(pools[rng.choices((0, 1, 2), burst.mix)[0]])
        if n >= max(min_count, 1) and negative_enough(k / n, n, usual, upper, spread, floor, evidence):
            return minute + 1
    return None


def families(scenarios: tuple[Scenario, ...]) -> list[tuple[str, Scenario, Burst]]:
    """(name, scenario, burst) for every hijack and news burst: the ones whose share decides."""
    return [(s.name, s, b) for s in scenarios for b in s.bursts if b.kind in ("hijack", "news")]


def measure(fams, pools, settings, runs: int, seed: int, floor: float) -> list[dict]:
    rows = []
    for min_count, evidence in settings:
        row = {"min_count": min_count, "evidence": evidence, "cells": {}}
        for name, scenario, burst in fams:
            lang = pools[scenario.language]
            usual, spread = mixture(lang, scenario.mix)
            history = scenario.rate * HISTORY_HOURS_A_DAY * burst.day
            upper = usual + 1.64 * spread / math.sqrt(max(history, 1.0))
            firsts = [first_firing(burst, lang, usual, upper, spread, min_count, evidence, floor,
                                   random.Random(f"{seed}:{name}:{i}"))  # draw i is the same for every setting
                      for i in range(runs)]
            if burst.kind == "news":
                row["cells"][name] = {"false_alarms": sum(f is not None for f in firsts) / runs}
            else:
                deadline = burst.deadline()
                limit = deadline.total_seconds() / 60 if deadline else None
                delays = sorted(f if f is not None else math.inf for f in firsts)
                row["cells"][name] = {"p50": delays[runs // 2], "p90": delays[int(runs * 0.9)],
                                      "late": sum(d > limit for d in delays) / runs if limit else None}
        rows.append(row)
    return rows


def cell_text(cell: dict) -> str:
    if "false_alarms" in cell:
        return f"{100 * cell['false_alarms']:.1f}%"
    fmt = lambda m: "never" if math.isinf(m) else f"{m:g}"  # noqa: E731
    late = f", {100 * cell['late']:.0f}% late" if cell["late"] is not None else ""
    return f"{fmt(cell['p50'])} / {fmt(cell['p90'])} min{late}"


def table(rows: list[dict], fams, shipped: tuple[int, float]) -> str:
    names = [name for name, _, _ in fams]
    lines = ["| min_count | share evidence (nats) | " + " | ".join(names) + " |",
             "|---:|---:|" + "---|" * len(names)]
    for r in rows:
        mark = " (shipped)" if (r["min_count"], r["evidence"]) == shipped else ""
        lines.append(f"| {r['min_count']} | {r['evidence']:g}{mark} | "
                     + " | ".join(cell_text(r["cells"][n]) for n in names) + " |")
    return "\n".join(lines)


def numbers(text: str, cast) -> list:
    try:
        return [cast(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise SystemExit(f"not a comma-separated list of numbers: {text!r}") from None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=300, help="Draws of each burst per setting (default 300).")
    ap.add_argument("--split", choices=("tune", "holdout"), default="tune")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--evidence", default="0.7,1,1.5,2", help="SHARE_EVIDENCE values to try (nats).")
    ap.add_argument("--min-count", default="4,6,8", help="min_count values to try.")
    ap.add_argument("--pool", type=int, default=1500, help="Texts scored per language and label (default 1500).")
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="Folder of the sentiment TSV files.")
    args = ap.parse_args()
    if args.runs < 1 or args.pool < 1:
        raise SystemExit("--runs and --pool must be at least 1")
    if not (args.data / "en_train.tsv").exists():
        raise SystemExit(f"{args.data}: sentiment data not found (en_train.tsv, en_val.tsv, nl_val.tsv); pass --data DIR")
    backlash = ALERT_KINDS["backlash"]
    shipped = (int(backlash["min_count"]), SHARE_EVIDENCE)
    settings = sorted({(m, e) for m in numbers(args.min_count, int) for e in numbers(args.evidence, float)} | {shipped})
    fams = families(SCENARIOS)
    t0 = time.perf_counter()
    pools = scored_pools(load_texts(args.data, args.split), {s.language for _, s, _ in fams}, args.pool,
                         random.Random(f"{args.seed}:pool"))
    scored = time.perf_counter() - t0
    rows = measure(fams, pools, settings, args.runs, args.seed, float(backlash.get("negative_share") or 0.0))
    print(f"## Backlash share test: {args.runs} draws per burst, split {args.split}, seed {args.seed}; texts scored "
          f"in {scored:.0f} s, draws in {time.perf_counter() - t0 - scored:.1f} s\n")
    print("News: share of draws with a false alarm over the story. Hijacks: first firing, median / 90th "
          "percentile, and the share later than the target.\n")
    print(table(rows, fams, shipped))


if __name__ == "__main__":
    main()

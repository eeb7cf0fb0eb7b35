"""Benchmark the daily digest on a large database against a naive peer, in one run on the same data.

    .venv/bin/python bench/digest.py [--mentions 1000000] [--days 30] [--db PATH] [--repeat 5]

1. Builds a database of `--mentions` scored mentions over `--days` days through the real schema
   (migrations, triggers, FTS index): 3 topics of different sizes (5% of mentions in two), a daily
   rhythm, 8 sources, 6 languages, Zipf-distributed hashtags on 40% of mentions, engagement with
   a long tail, plus a fetch log with failures and some alert events. One transaction, executemany.
   With `--db PATH` an existing benchmark database is reused (built there first if absent).
2. Times `build_digest` for the last full day (all topics) and a naive peer that computes the same
   figures with straightforward GROUP BY queries over mentions joined to mention_topics (and
   hashtags), no rollups; checks that both give the same numbers; prints the first run (a fresh
   connection) and the median of `--repeat` runs, and the ratio. Then, for information, the time
   the email's charts (matplotlib) and HTML take to render.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
import tomllib
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from listener.config import parse_config  # noqa: E402
from listener.digest import (build_digest, data_uris, day_bounds, local_midnight, render_charts,  # noqa: E402
                             render_html, render_markdown)
from listener.store import Store, iso  # noqa: E402

UTC = timezone.utc
END = datetime(2026, 11, 22, 6, 0, tzinfo=UTC)  # "now": the digest is for 2026-11-21 (Europe/Amsterdam)
DAY = date(2026, 11, 21)
TOPICS = {"acme": 0.55, "globex": 0.30, "initech": 0.15}
SOURCES = {"mastodon": 0.30, "bluesky": 0.20, "reddit": 0.15, "hn": 0.08, "news-nl": 0.10, "news-en": 0.07,
           "lemmy": 0.05, "blogs": 0.05}
LANGUAGES = {"en": 0.55, "nl": 0.25, "de": 0.07, "fr": 0.05, "es": 0.03, None: 0.05}
SENTIMENT = {"acme": (0.20, 0.45, 0.35), "globex": (0.35, 0.40, 0.25), "initech": (0.10, 0.60, 0.30)}
HOUR_WEIGHT = [1, 1, 1, 1, 1, 2, 3, 5, 7, 8, 9, 9, 10, 10, 10, 9, 9, 8, 8, 7, 6, 4, 3, 2]
WORDS = ("great service order delivery price support app update store staff quality fast slow broken love hate "
         "new launch recall refund waiting again today finally really never always best worst menu burger").split()

CONFIG = """
[database]
path = "{db}"
[[topics]]
name = "acme"
query = "acme"
[[topics]]
name = "globex"
query = "globex"
[[topics]]
name = "initech"
query = "initech"
[digest]
timezone = "Europe/Amsterdam"
"""


# ---------------------------------------------------------------- the data
def build(path: Path, n: int, days: int, seed: int = 7) -> float:
    """Fill a new database with `n` scored mentions; returns the seconds it took."""
    rng = random.Random(seed)
    t0 = time.perf_counter()
    store = Store(path)
    conn = store.conn
    conn.execute("PRAGMA cache_size = -262144")  # 256 MB while building
    start = END - timedelta(days=days)
    hours = [start + timedelta(hours=h) for h in range(days * 24)]
    weights = [HOUR_WEIGHT[h.hour] * (1 + 0.3 * i / len(hours)) for i, h in enumerate(hours)]  # rhythm, slow growth
    times = sorted(h + timedelta(seconds=rng.randrange(3600)) for h in rng.choices(hours, weights, k=n))
    topic_names, topic_w = list(TOPICS), list(TOPICS.values())
    vocab = {t: [f"{t}{w}" for w in ("fail", "love", "news", "deal", "help", "app", "store", "launch")]
             + [f"{t}{k}" for k in range(400)] for t in TOPICS}
    zipf = [1 / (k + 1) for k in range(408)]
    source_names, source_w = list(SOURCES), list(SOURCES.values())
    lang_names, lang_w = list(LANGUAGES), list(LANGUAGES.values())

    def rows():
        for i, at in enumerate(times, 1):
            topic = rng.choices(topic_names, topic_w)[0]
            topics = [topic] + ([rng.choice([t for t in topic_names if t != topic])] if rng.random() < 0.05 else [])
            sentiment = rng.choices(("negative", "neutral", "positive"), SENTIMENT[topic])[0]
            p = {"negative": (0.8, 0.15, 0.05), "neutral": (0.1, 0.8, 0.1), "positive": (0.05, 0.15, 0.8)}[sentiment]
            tags = (list(dict.fromkeys(rng.choices(vocab[topic], zipf, k=rng.choice((1, 1, 2)))))
                    if rng.random() < 0.4 else [])
            source = rng.choices(source_names, source_w)[0]
            engagement = int(rng.paretovariate(1.3)) - 1
            text = " ".join([*topics, *rng.sample(WORDS, 6), *(f"#{t}" for t in tags)])
            stamp = iso(at)
            yield ((i, source, str(i), f"https://{source}.example/{i}", f"user{rng.randrange(50_000)}", None, text,
                    rng.choices(lang_names, lang_w)[0], 0, stamp, stamp, engagement, engagement // 4,
                    engagement // 8, None, sentiment, *p, p[2] - p[0], "bench", stamp), topics, tags, stamp)

    with store.transaction():
        batch: list = []
        for row in rows():
            batch.append(row)
            if len(batch) == 50_000:
                _insert(conn, batch)
                batch = []
        if batch:
            _insert(conn, batch)
        _fetch_log(conn, rng, start)
        _alerts(conn)
    conn.execute("ANALYZE")
    store.close()
    return time.perf_counter() - t0


def _insert(conn, batch) -> None:
    conn.executemany(f"INSERT INTO mentions (id, source, source_id, url, author, title, text, language, "
                     f"language_detected, published_at, fetched_at, likes, reposts, replies, score, sentiment, "
                     f"p_negative, p_neutral, p_positive, sentiment_score, model, scored_at) "
                     f"VALUES ({','.join('?' * 22)})", [r[0] for r in batch])
    conn.executemany("INSERT INTO mentions_fts (rowid, title, text) VALUES (?, ?, ?)",  # as the store does (m011)
                     [(r[0][0], r[0][5], r[0][6]) for r in batch])
    # hashtags before topics: the rollup triggers fire when a scored mention gets its topic
    conn.executemany("INSERT INTO hashtags (mention_id, hashtag, published_at) VALUES (?, ?, ?)",
                     [(r[0][0], t, r[3]) for r in batch for t in r[2]])
    conn.executemany("INSERT INTO mention_topics (mention_id, topic, published_at) VALUES (?, ?, ?)",
                     [(r[0][0], t, r[3]) for r in batch for t in r[1]])


def _fetch_log(conn, rng, start) -> None:
    rows = []
    for source in SOURCES:
        t = start
        while t < END:
            failed = rng.random() < (0.2 if source == "lemmy" else 0.01)
            rows.append((source, iso(t), iso(t + timedelta(seconds=2)), "error" if failed else "ok", 0 if failed else 40,
                         0 if failed else 30, 1, "HTTP 502 from example" if failed else None))
            t += timedelta(minutes=10)
    conn.executemany("INSERT INTO fetches (source, started_at, finished_at, status, items, new_mentions, requests, error) "
                     "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
    conn.executemany("INSERT INTO sources (name, kind, consecutive_errors, last_success_at) VALUES (?, 'bench', ?, ?)",
                     [(s, 2 if s == "lemmy" else 0, iso(END)) for s in SOURCES])


def _alerts(conn) -> None:
    for k in range(60):
        at = END - timedelta(hours=12 * k)
        conn.execute("INSERT INTO alert_events (rule, labels, state, at, value, summary) VALUES (?, ?, ?, ?, ?, ?)",
                     ("spike", '{"topic": "acme"}', "firing" if k % 2 else "resolved", iso(at), 10, "bench"))


# ---------------------------------------------------------------- the naive peer
def naive_digest(store: Store, config, day: date) -> dict:
    """The same counts with straightforward GROUP BY queries on mentions JOIN mention_topics (no rollups)."""
    tz = config.digest.tzinfo
    conn = store.conn
    start, end = day_bounds(day, tz)
    out = {}
    counts = ("count(*), sum(m.sentiment = 'negative'), sum(m.sentiment = 'neutral'), sum(m.sentiment = 'positive')")
    base = ("FROM mention_topics t JOIN mentions m ON m.id = t.mention_id "
            "WHERE t.topic = ? AND t.published_at >= ? AND t.published_at < ? AND m.sentiment IS NOT NULL")
    for topic in [t.name for t in config.topics]:
        daily = []
        for k in range(7, -1, -1):
            a, b = day_bounds(day - timedelta(days=k), tz)
            daily.append(tuple(x or 0 for x in conn.execute(f"SELECT {counts} {base}", (topic, iso(a), iso(b))).fetchone()))
        by_source = {r[0]: tuple(r[1:]) for r in conn.execute(
            f"SELECT m.source, {counts} {base} GROUP BY m.source", (topic, iso(start), iso(end)))}
        by_language = {r[0] or "": tuple(r[1:]) for r in conn.execute(
            f"SELECT m.language, {counts} {base} GROUP BY m.language", (topic, iso(start), iso(end)))}
        week_start = local_midnight(day - timedelta(days=7), tz)
        prev_start = local_midnight(day - timedelta(days=1), tz)
        tags = {}
        for tag, period, n in conn.execute(
                """SELECT h.hashtag, CASE WHEN t.published_at >= :start THEN 2 WHEN t.published_at >= :prev THEN 1 ELSE 0 END,
                           count(*)
                    FROM mention_topics t JOIN hashtags h ON h.mention_id = t.mention_id JOIN mentions m ON m.id = t.mention_id
                    WHERE t.topic = :topic AND t.published_at >= :week AND t.published_at < :end AND m.sentiment IS NOT NULL
                    GROUP BY 1, 2""", {"start": iso(start), "prev": iso(prev_start), "topic": topic,
                                       "week": iso(week_start), "end": iso(end)}):
            tags.setdefault(tag, [0, 0, 0])[period] = n
        chart_start = local_midnight(day - timedelta(days=6), tz)
        hourly = {r[0] + ":00:00Z": tuple(r[1:]) for r in conn.execute(
            f"SELECT substr(t.published_at, 1, 13), {counts} {base} GROUP BY 1", (topic, iso(chart_start), iso(end)))}
        examples = {}
        for sentiment in ("positive", "negative"):
            examples[sentiment] = [r[0] for r in conn.execute(
                """SELECT m.id FROM mention_topics t JOIN mentions m ON m.id = t.mention_id
                   WHERE t.topic = ? AND t.published_at >= ? AND t.published_at < ? AND m.sentiment = ?
                   ORDER BY coalesce(m.likes, 0) + coalesce(m.reposts, 0) + coalesce(m.replies, 0) + coalesce(m.score, 0) DESC,
                            abs(m.sentiment_score) DESC, m.id LIMIT 3""", (topic, iso(start), iso(end), sentiment))]
        out[topic] = {"daily": daily, "by_source": by_source, "by_language": by_language, "tags": tags,
                      "hourly": hourly, "examples": examples}
    return out


def same_figures(ours: dict, naive: dict) -> list[str]:
    """Differences between build_digest's figures and the naive ones (empty when they agree)."""
    problems = []
    for t in ours["topics"]:
        n = naive[t["topic"]]
        if t["mentions"] != n["daily"][-1][0] or t["previous_day"] != n["daily"][-2][0]:
            problems.append(f"{t['topic']}: volume")
        if [d["mentions"] for d in t["daily"]] != [d[0] for d in n["daily"][1:]]:
            problems.append(f"{t['topic']}: daily")
        if t["average_7d"] != round(sum(d[0] for d in n["daily"][:-1]) / 7, 2):
            problems.append(f"{t['topic']}: average")
        if {r["source"]: r["mentions"] for r in t["by_source"]} != {k: v[0] for k, v in n["by_source"].items()}:
            problems.append(f"{t['topic']}: by source")
        if {r["language"] or "": r["mentions"] for r in t["by_language"]} != {k: v[0] for k, v in n["by_language"].items()}:
            problems.append(f"{t['topic']}: by language")
        for h in t["hashtags"]:
            earlier, prev, today = n["tags"].get(h["hashtag"], [0, 0, 0])
            if (h["mentions"], h["previous_day"], h["new"]) != (today, prev, prev == 0 and earlier == 0):
                problems.append(f"{t['topic']}: hashtag {h['hashtag']}")
        top = sorted(((v[2], k) for k, v in n["tags"].items() if v[2]), key=lambda x: (-x[0], x[1]))[:10]
        if [(h["mentions"], h["hashtag"]) for h in t["hashtags"]] != top:
            problems.append(f"{t['topic']}: top hashtags")
        hourly = t["hourly"]
        for i, hour in enumerate(hourly["hours"]):
            want = n["hourly"].get(hour, (0, 0, 0, 0))
            if (hourly["negative"][i], hourly["neutral"][i], hourly["positive"][i]) != want[1:]:
                problems.append(f"{t['topic']}: hour {hour}")
                break
        for s in ("positive", "negative"):
            if [e["id"] for e in t["most_engaged"][s]] != n["examples"][s]:
                problems.append(f"{t['topic']}: most engaged {s}")
    return problems


# ---------------------------------------------------------------- timing
def timed(fn, repeat: int) -> tuple[float, float, object]:
    """(first run, median of `repeat` runs, result)."""
    runs, result = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        runs.append(time.perf_counter() - t0)
    return runs[0], statistics.median(runs), result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mentions", type=int, default=1_000_000)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--db", type=Path, help="Reuse (or build here) a benchmark database.")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    tmp = None
    if args.db is None:
        tmp = tempfile.TemporaryDirectory()
        args.db = Path(tmp.name) / "bench.db"
    if not args.db.exists():
        print(f"building {args.mentions:,} mentions over {args.days} days in {args.db} ...", flush=True)
        seconds = build(args.db, args.mentions, args.days)
        print(f"built in {seconds:.1f} s ({args.mentions / seconds:,.0f} mentions/s, with triggers and the FTS index)")
    config = parse_config(tomllib.loads(CONFIG.format(db=args.db)), base_dir=args.db.parent)
    with Store(args.db) as store:
        n = store.conn.execute("SELECT count(*) FROM mentions").fetchone()[0]
        links = store.conn.execute("SELECT count(*) FROM mention_topics").fetchone()[0]
        tags = store.conn.execute("SELECT count(*) FROM hashtags").fetchone()[0]
    size = sum(p.stat().st_size for p in args.db.parent.glob(args.db.name + "*")) / 1e6
    print(f"database: {n:,} mentions, {links:,} topic links, {tags:,} hashtag links, {size:,.0f} MB")

    with Store(args.db) as store:  # fresh connections: the first run reads from an empty SQLite cache
        ours_first, ours_median, ours = timed(lambda: build_digest(store, config, DAY), args.repeat)
    with Store(args.db) as store:
        naive_first, naive_median, naive = timed(lambda: naive_digest(store, config, DAY), args.repeat)
    problems = same_figures(ours, naive)
    day_n = sum(t["mentions"] for t in ours["topics"])
    print(f"digest of {DAY} (Europe/Amsterdam), {len(ours['topics'])} topics, {day_n:,} mentions that day:")
    print(f"  build_digest (rollups)     first {1000 * ours_first:8.1f} ms   median {1000 * ours_median:8.1f} ms")
    print(f"  naive GROUP BY on mentions first {1000 * naive_first:8.1f} ms   median {1000 * naive_median:8.1f} ms")
    print(f"  ratio naive / ours         first {naive_first / ours_first:8.1f} x    median {naive_median / ours_median:8.1f} x")
    print("  same figures: yes" if not problems else "  DIFFERENT: " + "; ".join(problems[:10]))
    t0 = time.perf_counter()
    charts = render_charts(ours)
    t1 = time.perf_counter()
    render_html(ours, data_uris(charts))
    render_markdown(ours)
    t2 = time.perf_counter()
    print(f"  rendering for the email: {len(charts)} charts {1000 * (t1 - t0):.0f} ms, HTML and Markdown "
          f"{1000 * (t2 - t1):.1f} ms")
    if tmp:
        tmp.cleanup()
    if problems:
        raise SystemExit(1)


if __name__ == "__main__":
    main()

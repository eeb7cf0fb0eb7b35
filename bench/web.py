"""Benchmark the dashboard on a database of 1M mentions: every page and JSON endpoint, against a naive
peer that computes the same figures by scanning the mentions instead of the hourly rollups.

    .venv/bin/python bench/web.py [--mentions 1000000] [--days 30] [--db data/bench/web.db] [--repeat 5]

1. Builds (once; cached at `--db`) a database through the store's own writes: `save_mentions` in
   batches (dedup, topics, hashtags, FTS index and rollup triggers, as an import does), then
   `save_scores`; synthetic texts, 3 topics, 8 sources, 6 languages, Zipf hashtags, a long tail of
   engagement and authors (the distributions of bench/digest.py), a fetch log with outages and one
   incident with its notification.
2. Times each page and endpoint through Starlette's test client (routing, store, templates, JSON):
   the first run and the median of `--repeat`; then the naive peer of the figures a page draws
   (the overview's digest figures, a topic's hourly chart, share of voice by mentions and by
   engagement, top authors) by GROUP BY over the mentions. Prints a table; the target is every page
   under 300 ms. (A cached database from before a migration is migrated when opened: m008 backfills
   its engagement and author rollups in a few seconds.)
"""

from __future__ import annotations

import argparse
from itertools import accumulate
import json
import random
import statistics
import sys
import time
import tomllib
from datetime import timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.digest import CONFIG, DAY, END, HOUR_WEIGHT, LANGUAGES, SENTIMENT, SOURCES, TOPICS, WORDS, naive_digest  # noqa: E402
from listener.config import parse_config  # noqa: E402
from listener.digest import build_digest  # noqa: E402
from listener.models import Sentiment  # noqa: E402
from listener.sources import SourceState  # noqa: E402
from listener.store import MentionFilter, MentionRow, Store, iso, parse_iso  # noqa: E402

TARGET_MS = 300
BATCH = 20_000
PROBS = {"negative": (0.8, 0.15, 0.05), "neutral": (0.1, 0.8, 0.1), "positive": (0.05, 0.15, 0.8)}


def build(path: Path, n: int, days: int, seed: int = 11) -> float:
    """Fill a new database with `n` scored mentions through the store; the seconds it took."""
    rng = random.Random(seed)
    t0 = time.perf_counter()
    start = END - timedelta(days=days)
    hours = [start + timedelta(hours=h) for h in range(days * 24)]
    weights = [HOUR_WEIGHT[h.hour] for h in hours]
    times = sorted(h + timedelta(seconds=rng.randrange(3600)) for h in rng.choices(hours, weights, k=n))
    topic_names, topic_w = list(TOPICS), list(TOPICS.values())
    vocab = {t: [f"{t}{w}" for w in ("fail", "love", "news", "deal", "help", "app", "store", "launch")]
             + [f"{t}{k}" for k in range(400)] for t in TOPICS}
    zipf = [1 / (k + 1) for k in range(408)]
    authors = list(accumulate(1 / (k + 1) ** 0.8 for k in range(20_000)))  # cumulative: one bisect a draw
    with Store(path) as store:
        for lo in range(0, n, BATCH):
            rows, labels = [], []
            for i in range(lo, min(lo + BATCH, n)):
                topic = rng.choices(topic_names, topic_w)[0]
                topics = [topic] + ([rng.choice([t for t in topic_names if t != topic])] if rng.random() < 0.05 else [])
                tags = tuple(dict.fromkeys(rng.choices(vocab[topic], zipf, k=rng.choice((1, 1, 2))))) \
                    if rng.random() < 0.4 else ()
                source = rng.choices(list(SOURCES), list(SOURCES.values()))[0]
                likes = int(rng.paretovariate(1.3)) - 1
                text = " ".join([*topics, *rng.sample(WORDS, 6), *(f"#{t}" for t in tags)])
                rows.append(MentionRow(source, str(i), text, times[i], times[i], tuple(topics), tags,
                                       url=f"https://{source}.example/{i}",
                                       author=f"user{rng.choices(range(len(authors)), cum_weights=authors)[0]}",
                                       language=rng.choices(list(LANGUAGES), list(LANGUAGES.values()))[0],
                                       likes=likes, reposts=likes // 4, replies=likes // 8))
                labels.append(rng.choices(("negative", "neutral", "positive"), SENTIMENT[topic])[0])
            ids = store.save_mentions(rows).new_ids
            store.save_scores([(mid, Sentiment.from_probs(*PROBS[s])) for mid, s in zip(ids, labels)], "bench", END)
            print(f"\r  {min(lo + BATCH, n):,} of {n:,} mentions stored and scored", end="", flush=True)
        print()
        _fetch_log(store, rng, start)
        _incident(store)
    return time.perf_counter() - t0


def _fetch_log(store: Store, rng: random.Random, start) -> None:
    """Every source fetched every 10 minutes; lemmy fails one fetch in five, everyone else rarely."""
    for source in SOURCES:
        t = start
        while t < END:
            if rng.random() < (0.2 if source == "lemmy" else 0.01):
                store.record_failure(source, "bench", "HTTP 502 from example", started_at=t, now=t,
                                     next_check_at=t + timedelta(minutes=10))
            else:
                store.save_fetch(source, "bench", [], SourceState(), started_at=t, now=t,
                                 next_check_at=t + timedelta(minutes=10), items=40, requests=1)
            t += timedelta(minutes=10)


def _incident(store: Store) -> None:
    at = END - timedelta(hours=20)
    labels = json.dumps({"hashtag": "acmefail", "topic": "acme"}, sort_keys=True)
    lead = {"rule": "hijack", "labels": {"hashtag": "acmefail", "topic": "acme"}, "summary": "bench", "details": {}}
    store.save_alert_evaluation(
        states={}, events=[{"rule": "hijack", "labels": labels, "state": "firing", "at": at, "value": 90.0,
                            "summary": "bench", "details": None, "topic": "acme"}],
        incidents=[{"id": None, "topic": "acme", "state": "closed", "opened_at": iso(at), "notified_at": iso(at),
                    "last_notified_at": iso(at), "closed_at": iso(at + timedelta(hours=3)), "lead_rule": "hijack",
                    "lead_labels": labels, "lead": json.dumps(lead), "summary": "bench", "peak": 90.0,
                    "peak_at": iso(at), "hashtags": '["acmefail"]', "rules": '["hijack"]', "members": "[]",
                    "announced": "[]", "notifications": 1}],
        outbox=[{"message_id": "<bench@x>", "channel": "email", "kind": "alert", "recipients": ["pr@x"],
                 "subject": "FIRING", "body_text": "b", "body_html": None, "payload": {}, "now": at,
                 "incident_topic": "acme"}], evaluations=[])


# ---------------------------------------------------------------- the naive peer
def naive_hourly(store: Store, topic: str, start, end) -> dict:
    """A topic's mentions per hour by sentiment, scanning the mentions (what /api/topic reads from topic_hourly)."""
    return {h: c for h, *c in store.conn.execute(
        """SELECT substr(t.published_at, 1, 13), count(*), sum(m.sentiment = 'negative'), sum(m.sentiment = 'neutral'),
                  sum(m.sentiment = 'positive')
           FROM mention_topics t JOIN mentions m ON m.id = t.mention_id
           WHERE t.topic = ? AND t.published_at >= ? AND t.published_at < ? AND m.sentiment IS NOT NULL GROUP BY 1""",
        (topic, iso(start), iso(end)))}


def naive_voice(store: Store, start, end) -> dict:
    """Every topic's mentions by sentiment and source in a range, scanning (what the topic page reads from rollups)."""
    return {(t, s, src): n for t, s, src, n in store.conn.execute(
        """SELECT t.topic, m.sentiment, m.source, count(*) FROM mention_topics t JOIN mentions m ON m.id = t.mention_id
           WHERE t.published_at >= ? AND t.published_at < ? AND m.sentiment IS NOT NULL GROUP BY 1, 2, 3""",
        (iso(start), iso(end)))}


def naive_engagement(store: Store, topic: str, start, end) -> dict:
    """A topic's engagement by sentiment, scanning the mentions (what the share of voice reads from topic_hourly)."""
    return dict(store.conn.execute(
        """SELECT m.sentiment, sum(coalesce(m.likes, 0) + coalesce(m.reposts, 0) + coalesce(m.replies, 0)
                                   + coalesce(m.score, 0))
           FROM mention_topics t JOIN mentions m ON m.id = t.mention_id
           WHERE t.topic = ? AND t.published_at >= ? AND t.published_at < ? AND m.sentiment IS NOT NULL GROUP BY 1""",
        (topic, iso(start), iso(end))))


def naive_authors(store: Store, topic: str, start, end, limit: int = 10) -> list:
    """A topic's top authors, scanning the mentions (what the topic page reads from topic_author_daily)."""
    return store.conn.execute(
        """SELECT m.author, count(*) AS n, sum(coalesce(m.likes, 0) + coalesce(m.reposts, 0) + coalesce(m.replies, 0)
                                             + coalesce(m.score, 0)) AS e
           FROM mention_topics t JOIN mentions m ON m.id = t.mention_id
           WHERE t.topic = ? AND t.published_at >= ? AND t.published_at < ? AND m.sentiment IS NOT NULL
             AND m.author IS NOT NULL GROUP BY m.author ORDER BY n DESC, e DESC, m.author LIMIT ?""",
        (topic, iso(start), iso(end), limit)).fetchall()


def timed(fn, repeat: int) -> tuple[float, float]:
    """(first run, median of `repeat` runs) in ms."""
    runs = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        runs.append(1000 * (time.perf_counter() - t0))
    return runs[0], statistics.median(runs)


def main() -> None:
    from starlette.testclient import TestClient

    from listener.web import create_app

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mentions", type=int, default=1_000_000)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--db", type=Path, default=REPO / "data" / "bench" / "web.db")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--at", help="the dashboard's now, UTC ISO-8601 (default: 2026-11-22T00:00:00Z, a midnight: "
                                 "a time of day makes the pages add the cut hours and days from the mentions)")
    args = ap.parse_args()
    if not args.db.exists():
        print(f"building {args.mentions:,} mentions over {args.days} days in {args.db} (once; then cached) ...")
        args.db.parent.mkdir(parents=True, exist_ok=True)
        seconds = build(args.db, args.mentions, args.days)
        print(f"built in {seconds:.0f} s ({args.mentions / seconds:,.0f} mentions/s through save_mentions and save_scores)")
    config = parse_config(tomllib.loads(CONFIG.format(db=args.db)), base_dir=args.db.parent)
    now = END - timedelta(hours=6)  # the evening of the digest's day in bench/digest.py
    if args.at:
        now = parse_iso(args.at)
    with Store(args.db) as store:
        total = sum(store.count_by_sentiment().values())
        newest = store.filtered_mentions(MentionFilter(), limit=1)
    print(f"database: {total:,} mentions; now = {iso(now)}")
    client = TestClient(create_app(config, lambda: Store(args.db), secret_key="bench", clock=lambda: now))
    pages = ["/", "/topic/acme?range=24h", "/topic/acme?range=7d", "/topic/acme?range=30d",
             "/api/topic/acme?range=7d", "/api/topic/acme?range=30d", "/mentions", "/mentions?topic=acme&sentiment=negative",
             "/mentions?hashtag=acmefail", "/mentions?author=user7", "/mentions?q=acme%20refund%20-broken",
             "/mentions?topic=initech&language=fr&range=7d", f"/mentions/new?after_id={newest[0]['id'] - 10}",
             "/incidents", "/incident/1", "/api/incident/1", "/sources", "/mentions/export.csv?hashtag=initechlove&range=24h"]
    print(f"{'page':58} {'first ms':>9} {'median ms':>10}")
    slow = []
    for url in pages:
        def get(url=url):
            r = client.get(url, headers={"accept": "text/html"})
            assert r.status_code == 200, (url, r.status_code, r.text[:200])
        first, median = timed(get, args.repeat)
        slow += [url] if median > TARGET_MS else []
        print(f"{url:58} {first:9.1f} {median:10.1f}{'  SLOW' if median > TARGET_MS else ''}")
    start7, start30 = now - timedelta(days=7), now - timedelta(days=30)
    with Store(args.db) as store:
        peers = [("overview figures: build_digest (rollups)", lambda: build_digest(store, config, DAY)),
                 ("overview figures: naive GROUP BY on mentions", lambda: naive_digest(store, config, DAY)),
                 ("topic chart 30 d: topic_hourly_counts (rollup)", lambda: store.topic_hourly_counts("acme", start30, now)),
                 ("topic chart 30 d: naive GROUP BY on mentions", lambda: naive_hourly(store, "acme", start30, now)),
                 ("share of voice 7 d: rollup_counts per topic", lambda: [store.rollup_counts(k, t, [start7, now])
                                                                         for t in TOPICS for k in ("topic", "source")]),
                 ("share of voice 7 d: naive GROUP BY on mentions", lambda: naive_voice(store, start7, now)),
                 ("engagement 30 d: topic_engagement per topic (rollup)",
                  lambda: [store.topic_engagement(t, start30, now) for t in TOPICS]),
                 ("engagement 30 d: naive GROUP BY on mentions", lambda: [naive_engagement(store, t, start30, now)
                                                                          for t in TOPICS]),
                 ("top authors 30 d: top_authors (rollup)", lambda: store.top_authors("acme", start30, now)),
                 ("top authors 30 d: naive GROUP BY on mentions", lambda: naive_authors(store, "acme", start30, now))]
        print(f"\n{'figure (the same numbers, two ways)':58} {'first ms':>9} {'median ms':>10}")
        for name, fn in peers:
            first, median = timed(fn, args.repeat)
            print(f"{name:58} {first:9.1f} {median:10.1f}")
    print(f"\nevery page under {TARGET_MS} ms: " + ("yes" if not slow else "NO: " + ", ".join(slow)))
    if slow:
        raise SystemExit(1)


if __name__ == "__main__":
    main()

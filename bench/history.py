"""The history databases of bench/scale.py: a listener's traffic, a day at a time, stored as listener
stores it.

About 2,740 mentions a day (a million a year), each day drawn from a seed of its own so that a
day is the same in every database that holds it: 3 topics (5% of mentions in two), a daily and
weekly rhythm with noise from day to day, "stories" on 3% of days (a few hundred more negative
mentions of a topic in a few hours, with a hashtag of that year, and the incident they caused, its
notification sent), Zipf hashtags on 40% of mentions (evergreen ones and each year's own), regular
authors and each year's passers-by, 8 sources, 6 languages, long-tailed engagement, scores spread
around each label; every source fetched every 30 minutes (lemmy failing one fetch in five). The
last 40 minutes hold a hijack: 25 angry posts with #acmedeal, a hashtag in use for the whole
history.

`build` stores them through the store: `save_mentions` in batches of 20,000 (dedup keys, monthly
partitions, search words, topics, hashtags), `save_scores` (the rollups follow), the fetch log and
the sources' state by `write_rows` (as `listener db copy` writes them), incidents by
`save_alert_evaluation`, then `finish_copy` (sequences after the written ids, statistics).
`vacuum` then does what autovacuum does to a live database as it goes.
"""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from itertools import accumulate

from bench.digest import HOUR_WEIGHT, LANGUAGES, SENTIMENT, SOURCES, TOPICS, WORDS
from listener.models import Sentiment
from listener.store import MentionRow, iso, open_store, parse_iso

UTC = timezone.utc
END = datetime(2026, 11, 22, 7, 0, tzinfo=UTC)  # the data's end, the evaluation's now: 08:00 in Amsterdam
DAY = date(2026, 11, 21)  # the digest's day (Europe/Amsterdam), the last whole one
RATE = 2740  # mentions a day: a million a year
BATCH = 20_000
WEEKDAY = (1.0, 1.05, 1.05, 1.0, 0.95, 0.7, 0.65)  # Monday first
STORY_DAYS, STORY_SENTIMENT = 0.03, (0.6, 0.3, 0.1)
HIJACK_TAG, HIJACK_POSTS, HIJACK_MINUTES = "acmedeal", 25, 40
HEAD = ("fail", "love", "news", "deal", "help", "app", "store", "launch")
CAMPAIGNS = ("summer", "winter", "promo", "week", "fest", "cup", "tour", "drop", "live", "care")
EVERGREEN = {t: [f"{t}{w}" for w in HEAD] + [f"{t}{k}" for k in range(400)] for t in TOPICS}
ZIPF = list(accumulate(1 / (k + 1) for k in range(len(EVERGREEN["acme"]))))  # cumulative: one bisect a draw
CAMPAIGN_ZIPF = list(accumulate(1 / (k + 1) for k in range(len(CAMPAIGNS))))
REGULARS = list(accumulate(1 / (k + 1) ** 0.8 for k in range(20_000)))
TITLED = {"news-nl", "news-en", "blogs"}


@dataclass
class Day:
    """One day's mentions with their scores, and its story (topic, hashtag, start) if it had one."""

    mentions: list[tuple[MentionRow, Sentiment]] = field(default_factory=list)
    story: tuple[str, str, datetime] | None = None


def _probs(rng: random.Random, label: str) -> Sentiment:
    """A model's probabilities around `label` (the label's the largest)."""
    p = 0.5 + 0.45 * rng.random()
    a = rng.random() * (1 - p)
    rest = iter((a, 1 - p - a))
    return Sentiment.from_probs(*(p if s == label else next(rest) for s in ("negative", "neutral", "positive")))


def _mention(rng: random.Random, day: date, k: int, at: datetime, topic: str | None = None,
             tag: str | None = None, sentiment: tuple[float, float, float] | None = None) -> tuple[MentionRow, Sentiment]:
    """The `k`-th mention of `day`, at `at`, and its score (of `topic` with `tag`: a story's or the hijack's)."""
    names = list(TOPICS)
    topic = topic or rng.choices(names, list(TOPICS.values()))[0]
    topics = [topic] + ([rng.choice([t for t in names if t != topic])] if rng.random() < 0.05 else [])
    tags: list[str] = [tag] if tag else []
    if rng.random() < 0.4:
        for _ in range(rng.choice((1, 1, 2))):
            tags.append(rng.choices(EVERGREEN[topic], cum_weights=ZIPF)[0] if rng.random() < 0.8 else
                        f"{topic}{rng.choices(CAMPAIGNS, cum_weights=CAMPAIGN_ZIPF)[0]}{day.year % 100:02d}")
    tags = list(dict.fromkeys(tags))
    source = rng.choices(list(SOURCES), list(SOURCES.values()))[0]
    author = (f"user{rng.choices(range(len(REGULARS)), cum_weights=REGULARS)[0]}" if rng.random() < 0.65
              else f"visitor{day.year}-{rng.randrange(40_000)}")
    likes = int(rng.paretovariate(1.3)) - 1
    words = " ".join(rng.sample(WORDS, 6))
    text = " ".join([*topics, words, *(f"#{t}" for t in tags)])
    slot = at.replace(minute=0, second=0) + timedelta(minutes=30 * (at.minute // 30 + 1), seconds=rng.randrange(5, 60))
    row = MentionRow(source, f"{day:%Y%m%d}-{k}", text, at, min(slot, END), tuple(topics), tuple(tags),
                     url=f"https://{source}.example/{day:%Y/%m/%d}/{k}", author=author,
                     title=f"{topic.title()}: {words}" if source in TITLED else None,
                     language=rng.choices(list(LANGUAGES), list(LANGUAGES.values()))[0],
                     likes=likes, reposts=likes // 4, replies=likes // 8)
    label = rng.choices(("negative", "neutral", "positive"), sentiment or SENTIMENT[topic])[0]
    return row, _probs(rng, label)


def day_mentions(day: date) -> Day:
    """`day`'s mentions (UTC), the same in every database that holds the day; the last day stops at END."""
    rng = random.Random(f"scale:{day.isoformat()}")
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    n = round(RATE * 7 / sum(WEEKDAY) * WEEKDAY[day.weekday()] * rng.lognormvariate(-0.011, 0.15))
    times = [start + timedelta(hours=h, seconds=rng.randrange(3600)) for h in rng.choices(range(24), HOUR_WEIGHT, k=n)]
    out = Day()
    extra: list[tuple[datetime, str, str]] = []  # (time, topic, hashtag) of a story's mentions
    if rng.random() < STORY_DAYS:
        topic = rng.choices(list(TOPICS), list(TOPICS.values()))[0]
        tag = f"{topic}{rng.choice(CAMPAIGNS)}{day.year % 100:02d}"
        began = start + timedelta(hours=rng.randrange(8, 18), minutes=rng.randrange(60))
        out.story = (topic, tag, began)
        extra = [(began + timedelta(seconds=rng.randrange(3 * 3600)), topic, tag) for _ in range(rng.randrange(150, 600))]
    if day == END.date():
        extra += [(END - timedelta(seconds=rng.randrange(60 * HIJACK_MINUTES)), "acme", HIJACK_TAG)
                  for _ in range(HIJACK_POSTS)]
    items = [(at, None, None) for at in times] + extra
    items.sort(key=lambda item: item[0])
    for k, (at, topic, tag) in enumerate(items):
        if at < END:
            out.mentions.append(_mention(rng, day, k, at, topic, tag, STORY_SENTIMENT if tag else None))
    return out


def _fetch_rows(day: date, mentions: list[tuple[MentionRow, Sentiment]], first_id: int) -> list[dict]:
    """The day's fetch log: every source every 30 minutes, lemmy failing one fetch in five."""
    rng = random.Random(f"fetches:{day.isoformat()}")
    start, every = datetime(day.year, day.month, day.day, tzinfo=UTC), timedelta(minutes=30)
    new = Counter((row.source, (row.fetched_at - start) // every) for row, _ in mentions)
    rows = []
    for slot in range(48):
        at = start + slot * every
        if at >= END:
            break
        for source in SOURCES:
            failed = rng.random() < (0.2 if source == "lemmy" else 0.005)
            rows.append({"id": first_id + len(rows), "source": source, "started_at": iso(at),
                         "finished_at": iso(at + timedelta(seconds=rng.randrange(1, 4))),
                         "status": "error" if failed else "ok", "items": 0 if failed else 20,
                         "new_mentions": 0 if failed else new[source, slot], "requests": 1,
                         "error": "HTTP 502 from lemmy.example" if failed else None})
    return rows


def _story_incident(story: tuple[str, str, datetime]) -> dict:
    """The incident a story caused (a backlash on its hashtag, firing from half an hour after it began to
    four hours after), as an evaluation writes it."""
    topic, tag, began = story
    opened, closed = began + timedelta(minutes=30), began + timedelta(hours=4)
    labels = json.dumps({"hashtag": tag, "topic": topic}, sort_keys=True)
    rule = f"{topic}-backlash"
    lead = {"rule": rule, "labels": {"hashtag": tag, "topic": topic}, "summary": f"#{tag} burst", "details": {}}
    return dict(
        states={},
        events=[{"rule": rule, "labels": labels, "state": state, "at": at, "value": 40.0, "summary": f"#{tag} burst",
                 "details": None, "topic": topic} for state, at in (("firing", opened), ("resolved", closed))],
        incidents=[{"id": None, "topic": topic, "state": "closed", "opened_at": iso(opened), "notified_at": iso(opened),
                    "last_notified_at": iso(closed), "closed_at": iso(closed), "lead_rule": rule,
                    "lead_labels": labels, "lead": json.dumps(lead), "summary": f"#{tag} burst", "peak": 120.0,
                    "peak_at": iso(began + timedelta(hours=1)), "hashtags": json.dumps([tag]),
                    "rules": json.dumps([rule]), "members": json.dumps([f"{rule}|{labels}"]), "announced": "[]",
                    "notifications": 1}],
        outbox=[{"message_id": f"<incident-{opened:%Y%m%d%H%M}-{topic}@bench>", "channel": "email", "kind": "alert",
                 "recipients": ["team@bench.example"], "subject": f"[listener] FIRING {topic} #{tag}",
                 "body_text": f"#{tag} burst", "body_html": None, "payload": {}, "now": opened,
                 "incident_topic": topic}],
        evaluations=[])


def build(url: str, days: int) -> tuple[int, float]:
    """Fill the new database at `url` with `days` days of history up to END; (mentions, seconds)."""
    t0 = time.perf_counter()
    first = END.date() - timedelta(days=days - 1)
    total, fetch_id, stories, fetches = 0, 1, [], []
    batch: list[tuple[MentionRow, Sentiment]] = []
    with open_store(url) as store:
        def flush() -> None:
            ids = store.save_mentions([row for row, _ in batch]).new_ids
            assert len(ids) == len(batch), "every generated mention is new"
            store.save_scores(list(zip(ids, (s for _, s in batch))), "bench", max(row.fetched_at for row, _ in batch))
            batch.clear()

        for d in range(days):
            when = first + timedelta(days=d)
            day = day_mentions(when)
            batch += day.mentions
            total += len(day.mentions)
            rows = _fetch_rows(when, day.mentions, fetch_id)
            fetches += rows
            fetch_id += len(rows)
            stories += [day.story] if day.story else []
            if len(batch) >= BATCH:
                flush()
            if len(fetches) >= 50_000:
                store.write_rows("fetches", fetches)
                fetches = []
            if d % 30 == 29 or d == days - 1:
                rate = total / (time.perf_counter() - t0)
                print(f"\r  {d + 1:,} of {days:,} days, {total:,} mentions ({rate:,.0f}/s)", end="", flush=True)
        if batch:
            flush()
        store.write_rows("fetches", fetches)
        at = iso(END - timedelta(minutes=30))  # every source's last fetch, a good one
        store.write_rows("sources", [{"name": s, "kind": "rss", "etag": None, "last_modified": None, "cursor": None,
                                      "last_attempt_at": at, "last_success_at": at, "last_error": None,
                                      "last_error_at": None, "consecutive_errors": 0, "next_check_at": iso(END)}
                                     for s in SOURCES])
        for story in stories:
            store.save_alert_evaluation(**_story_incident(story))
        for note in store.notifications():
            store.mark_sent(note["id"], parse_iso(note["created_at"]) + timedelta(minutes=1))
        store.finish_copy()  # the fetch log's ids continue after the written ones; statistics
    print()
    return total, time.perf_counter() - t0


def vacuum(url: str) -> None:
    """What autovacuum does to a live database as it goes, done once after a bulk build: the row
    versions that scoring left behind removed and the space returned (VACUUM FULL), then the
    visibility map and statistics (VACUUM ANALYZE: index-only scans of old partitions, as on a
    database that ran for years)."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM FULL")
        conn.execute("VACUUM ANALYZE")

"""The PostgreSQL engine's own specifics, beyond the contract every engine passes (test_store_contract.py):
the same mentions, ids and rollup rows as SQLite after the same changes, one partition per month made
on demand and dropped whole by retention, writers storing the same mentions at once, the search
index's folding, and a password never shown. These may read the tables with `_dicts`; nothing else may."""

from __future__ import annotations

import random
import threading
from datetime import datetime, timedelta, timezone

import pytest

from listener.errors import StoreError
from listener.models import Sentiment
from listener.query import parse
from listener.sources import SourceState
from listener.store import MentionRow, Store, open_store

T = datetime(2026, 11, 20, 10, 5, tzinfo=timezone.utc)
DAY0 = datetime(2026, 11, 17, tzinfo=timezone.utc)
NEG, NEU, POS = Sentiment.from_probs(0.8, 0.1, 0.1), Sentiment.from_probs(0.1, 0.8, 0.1), Sentiment.from_probs(0.1, 0.2, 0.7)
ROLLUPS = {"topic_hourly": "topic, hour", "hashtag_hourly": "topic, hashtag, hour",
           "topic_breakdown_hourly": "topic, hour, source, language", "topic_author_daily": "topic, day, author"}
MENTION_TABLES = ("mentions", "mention_topics", "hashtags")


@pytest.fixture
def pg(pg_url):
    store = open_store(pg_url)
    yield store
    store.close()


def fetch(store, rows, source="feed", at=T):
    return store.save_fetch(source, "rss", rows, SourceState(), started_at=at, now=at, next_check_at=at, items=len(rows),
                            requests=1)


def rounded(rows):
    return [{k: round(v, 9) if isinstance(v, float) else v for k, v in r.items()} for r in rows]


def sqlite_rows(store, table: str, order: str) -> list[dict]:
    return rounded(store._dicts(f"SELECT * FROM {table} ORDER BY {order}"))


def pg_rows(store, table: str, order: str) -> list[dict]:
    keys = [k if k in ("hour", "day") else f'{k} COLLATE "C"' for k in order.split(", ")]  # SQLite's order
    return rounded(store._dicts(f"SELECT * FROM {table} ORDER BY {', '.join(keys)}"))


def same_everywhere(lite, pg) -> None:
    """Both engines hold the same mentions (ids, topics, hashtags included) and the same rollup rows."""
    assert rounded(pg.iter_mentions()) == rounded(lite.iter_mentions())
    for table, order in ROLLUPS.items():
        assert pg_rows(pg, table, order) == sqlite_rows(lite, table, order), table
    assert pg.corrections() == lite.corrections()


def test_the_same_changes_leave_the_same_mentions_and_rollup_rows_as_on_sqlite(pg, tmp_path):
    """Every change a rollup follows, done on both engines: new mentions (repeats in the same batch),
    scores, duplicates with more engagement and new topics, re-scores, corrections of sentiment and
    relevance, fetches again, pruning in batches. After each, the same rows on both."""
    lite = Store(tmp_path / "same.db")
    rng = random.Random(11)
    authors = [f"user{k}" for k in range(8)]
    times = sorted(DAY0 + timedelta(minutes=rng.randrange(4 * 24 * 60)) for _ in range(120))
    rows = [MentionRow("feed", f"e{i}", f"acme post {i}", at, at, ("acme",) if i % 4 else ("acme", "globex"),
                       ("fail",) if i % 3 == 0 else ("fail", "soup") if i % 3 == 1 else (),
                       url=f"https://news.example/{i % 110}", author=rng.choice(authors) if i % 9 else None,
                       language=("en", "nl", None)[i % 3], likes=rng.randrange(30) if i % 5 else None,
                       reposts=rng.randrange(5), score=i % 3 or None)
            for i, at in enumerate(times)]  # the last ten repeat the URLs of the first ten: duplicates at once

    def both(do):
        results = [do(lite), do(pg)]
        same_everywhere(lite, pg)
        return results

    [ids, pg_ids] = both(lambda s: fetch(s, rows).new_ids)
    assert ids == pg_ids and len(ids) == 110
    both(lambda s: s.save_scores([(mid, (NEG, NEU, POS)[k % 3]) for k, mid in enumerate(ids[:100])], "m", T))
    again = [MentionRow(r.source, r.source_id, r.text, r.published_at, r.fetched_at, ("acme", "beta"), url=r.url,
                        author=r.author, likes=(r.likes or 0) + 40, replies=7) for r in rows[3:12] + rows[104:108]]
    assert both(lambda s: fetch(s, again).updated) == [13, 13]
    both(lambda s: fetch(s, [MentionRow("other", "x1", "acme post 13", rows[13].published_at, T, ("globex",),
                                        url=rows[13].url, likes=500)], source="other"))
    both(lambda s: s.save_scores([(ids[k], NEU) for k in range(0, 110, 7)], "m2", T))
    both(lambda s: s.correct_sentiment(ids[1], "negative", by="ann", at=T))
    both(lambda s: s.correct_sentiment(ids[105], "positive", by="ann", at=T))  # not scored yet
    both(lambda s: s.mark_not_relevant(ids[4], topic="acme", by="ann", at=T))
    both(lambda s: s.mark_not_relevant(ids[8], topic=None, by="ann", at=T))
    both(lambda s: s.mark_not_relevant(ids[13], topic="globex", by="ann", at=T))
    both(lambda s: fetch(s, [rows[4], rows[8], rows[13]]))  # not linked again
    both(lambda s: s.save_scores([(mid, POS) for mid in ids], "m3", T))
    pruned, pg_pruned = both(lambda s: s.prune(DAY0 + timedelta(days=2), batch=7))
    assert pruned == pg_pruned and 0 < pruned < 110
    lite.close()

"""Storing a batch at once (one look-up and one write of each kind for the whole batch) does exactly
what storing its rows one at a time does: the same mentions, links, hashtags, rollups and counts,
with copies inside the batch, copies of stored mentions (scored, corrected) and engagement refreshes."""

from __future__ import annotations

import sys
from datetime import datetime, timedelta, timezone

from listener.models import Sentiment
from listener.sources import SourceState
from listener.sources.text import _UNSAFE_IN_URL, _URL_UNSAFE
from listener.store import MentionRow, Store

NOW = datetime(2026, 11, 20, 12, tzinfo=timezone.utc)
TABLES = ("mentions", "mention_topics", "hashtags", "topic_hourly", "hashtag_hourly", "topic_breakdown_hourly",
          "topic_author_daily", "sources", "fetches")


def row(sid, *, source="feed", url=None, topics=("acme",), hashtags=(), hours=1, text=None, **numbers):
    return MentionRow(source=source, source_id=sid, text=text or f"Acme story {sid}", url=url, topics=topics,
                      hashtags=hashtags, published_at=NOW - timedelta(hours=hours), fetched_at=NOW, author="ann",
                      **numbers)


BEFORE = [row("a", url="https://x.example/a", likes=1), row("b", url="https://x.example/b", topics=("acme", "globex")),
          row("c", source="other", url="https://x.example/c", hashtags=("deal",))]
BATCH = [
    row("n1", url="https://x.example/n1", hashtags=("acmefail", "deal"), likes=3),
    row("n1", url="https://x.example/n1-moved", topics=("globex",), hashtags=("late",), likes=None, replies=2),  # same id
    row("n2", url="https://x.example/n1", topics=("initech",), score=9, hours=5),  # another id, n1's URL
    row("a", topics=("globex",), likes=5, reposts=1, hours=30),  # stored before, scored: refreshed, linked at its time
    row("z", source="elsewhere", url="https://x.example/b", topics=("initech",), likes=4),  # b's URL from another source
    row("c", source="other", topics=("acme",)),  # stored before and marked not relevant to acme
    row("n3", topics=(), hashtags=("solo",)),  # no topic (an import may hold one)
    row("n4", url=None, likes=0),
    row("n4", url="https://x.example/n4", likes=None, reposts=None),  # nothing to refresh
]


def prepared(path) -> Store:
    store = Store(path)
    store.save_mentions(BEFORE)
    ids = {m["source_id"]: m["id"] for m in store.iter_mentions()}
    store.save_scores([(ids["a"], Sentiment.from_probs(0.7, 0.2, 0.1)), (ids["b"], Sentiment.from_probs(0.1, 0.2, 0.7))],
                      "m", NOW)
    store.mark_not_relevant(ids["c"], topic="acme", by="ann", at=NOW)
    return store


def dump(store: Store) -> dict:
    return {t: sorted(map(tuple, store.conn.execute(f"SELECT * FROM {t}"))) for t in TABLES}


def test_a_batch_stores_what_its_rows_one_by_one_store(tmp_path):
    with prepared(tmp_path / "batch.db") as batch, prepared(tmp_path / "single.db") as single:
        at_once = batch.save_mentions(BATCH)
        singly = [single.save_mentions([r]) for r in BATCH]
        assert at_once.new_ids == [i for s in singly for i in s.new_ids]
        assert at_once.updated == sum(s.updated for s in singly) == 6
        for store in (batch, single):
            ids = {m["source_id"]: m["id"] for m in store.iter_mentions()}
            store.save_scores([(ids["n1"], Sentiment.from_probs(0.2, 0.2, 0.6))], "m", NOW)
        assert dump(batch) == dump(single)
        stored = {m["source_id"]: m for m in batch.iter_mentions()}
        assert (stored["n1"]["likes"], stored["n1"]["replies"], stored["n1"]["score"]) == (3, 2, 9)
        assert stored["n1"]["url"] == "https://x.example/n1" and stored["n1"]["hashtag_list"] == "acmefail deal"
        assert sorted(stored["n1"]["topic_list"].split()) == ["acme", "globex", "initech"]
        assert (stored["a"]["likes"], stored["a"]["reposts"]) == (5, 1)
        assert "acme" not in (stored["c"]["topic_list"] or "").split()


def test_a_fetch_batch_stores_what_its_rows_one_by_one_store(tmp_path):
    with prepared(tmp_path / "batch.db") as batch, prepared(tmp_path / "single.db") as single:
        def fetch(store, rows):
            return store.save_fetch("feed", "rss", rows, SourceState('"e1"', "Fri, 20 Nov 2026 10:00:00 GMT", None),
                                    started_at=NOW, now=NOW, next_check_at=NOW + timedelta(minutes=15),
                                    items=len(rows), requests=1)

        fetch(batch, BATCH)
        for r in BATCH:
            fetch(single, [r])
        fetch(batch, [])  # a 304
        fetch(single, [])
        dumped = {name: dump(store) for name, store in (("batch", batch), ("single", single))}
        for name in dumped:  # the fetch logs differ: one line per call
            dumped[name].pop("fetches")
        assert dumped["batch"] == dumped["single"]
        health = batch.source_health()["feed"]
        assert health.state.etag == '"e1"' and health.consecutive_errors == 0
        assert [f["new_mentions"] for f in batch.fetch_log("feed")] == [3, 0]


def test_the_url_pattern_is_the_characters_a_link_may_not_hold_raw():
    unsafe = {chr(c) for c in range(sys.maxunicode + 1) if chr(c).isspace() or c < 32 or chr(c) in _URL_UNSAFE}
    matched = {chr(c) for c in range(sys.maxunicode + 1) if _UNSAFE_IN_URL.match(chr(c))}
    assert matched == unsafe and {" ", "\t", "\u00a0", "\u2028", "\x7f"} & matched == {" ", "\t", "\u00a0", "\u2028"}

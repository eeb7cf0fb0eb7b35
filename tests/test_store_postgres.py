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


def months(store) -> dict[str, list[str]]:
    """Each mention table's partitions, by name."""
    return {table: [r["name"] for r in store._dicts(
        "SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = %s::regclass ORDER BY 1", (table,))] for table in MENTION_TABLES}


def test_each_month_gets_its_partitions_and_retention_drops_whole_months_keeping_the_rollups(pg):
    assert months(pg) == {table: [] for table in MENTION_TABLES}
    times = [datetime(2026, 9, 3, 8, tzinfo=timezone.utc), datetime(2026, 9, 30, 23, 59, tzinfo=timezone.utc),
             datetime(2026, 10, 2, 12, tzinfo=timezone.utc), datetime(2026, 10, 20, 12, tzinfo=timezone.utc),
             datetime(2026, 11, 1, 0, 0, tzinfo=timezone.utc)]
    rows = [MentionRow("feed", f"m{k}", f"acme day {k}", at, T, ("acme",), ("tag",), url=f"https://x.example/{k}")
            for k, at in enumerate(times)]
    ids = fetch(pg, rows).new_ids
    assert months(pg) == {table: [f"{table}_p2026_09", f"{table}_p2026_10", f"{table}_p2026_11"] for table in MENTION_TABLES}
    assert [r["n"] for r in pg._dicts("SELECT count(*) AS n FROM mentions_p2026_09 UNION ALL "
                                      "SELECT count(*) FROM hashtags_p2026_10")] == [2, 2]
    pg.save_scores(zip(ids, [NEG, POS, NEG, NEU, POS]), "m", T)
    pg.correct_sentiment(ids[0], "neutral", by="ann", at=T)
    pg.correct_sentiment(ids[3], "negative", by="ann", at=T)
    rollups = {table: pg_rows(pg, table, order) for table, order in ROLLUPS.items()}
    batches = []
    assert pg.prune(datetime(2026, 10, 15, tzinfo=timezone.utc), batch=1, on_batch=batches.append) == 3
    assert batches == [2, 1]  # September as a whole, then October's first mention
    assert months(pg) == {table: [f"{table}_p2026_10", f"{table}_p2026_11"] for table in MENTION_TABLES}
    assert [m["source_id"] for m in pg.iter_mentions()] == ["m3", "m4"]
    assert [c["mention_id"] for c in pg.corrections()] == [ids[3]]
    assert pg._dicts("SELECT count(*) AS n FROM mention_keys")[0]["n"] == 2
    assert {table: pg_rows(pg, table, order) for table, order in ROLLUPS.items()} == rollups  # trends outlive them
    # a pruned mention fetched again is a new one (its key went with it), in a partition made again
    again = fetch(pg, rows[:1])
    assert again.updated == 0 and again.new_ids[0] > ids[-1] and "mentions_p2026_09" in months(pg)["mentions"]
    assert pg.prune(datetime(2026, 10, 15, tzinfo=timezone.utc)) == 1 and pg.prune(datetime(2026, 10, 15, tzinfo=timezone.utc)) == 0


def test_writers_storing_the_same_mentions_at_once_store_each_once(pg_url):
    """Two stores (two pools, as two workers) store the same 300 mentions at the same moment, in
    opposite orders: every mention once, with its topics and hashtags once, and each batch says so."""
    rows = [MentionRow("feed", f"c{k}", f"acme {k}", T - timedelta(days=k % 40), T, ("acme", "globex") if k % 2 else ("acme",),
                       ("tag",), url=f"https://x.example/{k}") for k in range(300)]
    stores = [open_store(pg_url), open_store(pg_url)]
    results: list = [None, None]
    start = threading.Barrier(2)

    def store_all(k: int) -> None:
        start.wait()
        results[k] = stores[k].save_mentions(rows if k == 0 else rows[::-1])

    threads = [threading.Thread(target=store_all, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stored = list(stores[0].iter_mentions())
    assert sorted(m["source_id"] for m in stored) == sorted(r.source_id for r in rows)
    assert sum(len(m["topic_list"].split()) for m in stored) == 450 and all(m["hashtag_list"] == "tag" for m in stored)
    assert sum(len(r.new_ids) for r in results) == 300 and sum(r.updated for r in results) == 300
    for s in stores:
        s.close()


def test_search_folds_accents_and_case_and_finds_every_word_the_query_language_sees(pg, tmp_path):
    """The search index holds the words the query language sees (folded: no accents, no case), not
    what PostgreSQL's own parser would make of them (one word for a host, an address, a version)."""
    texts = ["Le CAFÉ de la gare est fermé", "cafe crème et croissant", "see news.example.com/acme today",
             "mail bob@acme.org or v2.0 release", "Smörgåsbord in Malmö", "naïve approach, l’acme"]
    rows = [MentionRow("feed", f"s{k}", text, T - timedelta(minutes=k), T, ("acme",)) for k, text in enumerate(texts)]
    lite = Store(tmp_path / "search.db")
    for s in (lite, pg):
        fetch(s, rows)
    for text, wanted in [("café", ["s0", "s1"]), ("CAFE", ["s0", "s1"]), ("creme", ["s1"]), ("ferme", ["s0"]),
                         ("example", ["s2"]), ("acme", ["s2", "s3", "s5"]), ("0", ["s3"]), ("v2", ["s3"]),
                         ("malmo", ["s4"]), ("smorg*", ["s4"]), ("naive", ["s5"]), ('"news example"', ["s2"]),
                         ("acme -org", ["s2", "s5"]), ("caf*", ["s0", "s1"]), ('"example acme"', [])]:
        assert [m["source_id"] for m in pg.search(parse(text))] == wanted, text
        assert [m["source_id"] for m in lite.search(parse(text))] == wanted, text
    lite.close()


def test_its_sessions_compile_no_plans(pg):
    """(JIT: a plan over many months of partitions took longer to compile than to run.)"""
    assert pg._dicts("SHOW jit") == [{"jit": "off"}]


def test_a_password_in_the_url_never_shows_in_an_error(pg_server):
    url = pg_server.url("listener_nowhere").replace("listener@", "listener:s3cret-pw@")
    with pytest.raises(StoreError) as failed:
        open_store(url)
    assert "s3cret-pw" not in str(failed.value) and "listener_nowhere" in str(failed.value)
    pg_server.create_database("listener_pw")
    with open_store(pg_server.url("listener_pw").replace("listener@", "listener:s3cret-pw@")) as store:
        with pytest.raises(StoreError) as bad:  # a text PostgreSQL refuses: the batch fails, in one line
            store.save_mentions([MentionRow("feed", "nul", "a \x00 b", T, T, ("acme",))])
        assert "s3cret-pw" not in str(bad.value) and "\n" not in str(bad.value)
        assert list(store.iter_mentions()) == []

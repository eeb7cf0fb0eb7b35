"""The store's contract: what the pipeline, the alerts, the digest and the CLI ask of it, in their
words (`listener.store.interface`). Written against the public methods only (never `conn`), so that
every engine must pass it: SQLite and PostgreSQL (a throwaway server, tests/pgserver.py).
One test (or more) per group of the interface; SQLite's own specifics are in test_store_sqlite.py.
"""

from __future__ import annotations

import inspect
import json
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from listener.errors import ListenerError, StoreError
from listener.query import parse
from listener.store import Fetched, JobRun, MentionRow, MentionStore, Store, iso, interface, open_store
from listener.models import Sentiment
from listener.sources import SourceState

T = datetime(2026, 11, 20, 10, 5, tzinfo=timezone.utc)
NEG, NEU, POS = Sentiment.from_probs(0.8, 0.1, 0.1), Sentiment.from_probs(0.1, 0.8, 0.1), Sentiment.from_probs(0.1, 0.2, 0.7)
HOUR = timedelta(hours=1)

def _another_pg_database(request) -> str:
    server = request.getfixturevalue("pg_server")
    return server.create_database(f"copy_{uuid.uuid4().hex[:12]}", template="listener_template")


ENGINES = {"sqlite": lambda request, tmp_path: Store(tmp_path / "contract.db"),
           "postgresql": lambda request, tmp_path: open_store(request.getfixturevalue("pg_url"))}
OTHER = {"sqlite": lambda request, tmp_path: Store(tmp_path / "other.db"),  # a second, empty database of each engine
         "postgresql": lambda request, tmp_path: open_store(_another_pg_database(request))}


@pytest.fixture(params=sorted(ENGINES))
def store(request, tmp_path):
    s = ENGINES[request.param](request, tmp_path)
    yield s
    s.close()


def row(sid: str, text: str = "acme", *, at: datetime = T, topics=("acme",), hashtags=(), url=None, source="feed",
        likes=None, language=None) -> MentionRow:
    return MentionRow(source, sid, text, at, at, tuple(topics), tuple(hashtags), url=url, likes=likes, language=language)


def fetch(store: MentionStore, rows, *, source="feed", at: datetime = T, cursor: str | None = None,
          state: SourceState | None = None):
    return store.save_fetch(source, "rss", rows, state or SourceState(cursor=cursor), started_at=at, now=at,
                            next_check_at=at + timedelta(minutes=10), items=len(rows), requests=1)


def link_counts(store: MentionStore) -> tuple[int, int, int]:
    """(mentions, topic links, hashtags) stored."""
    stored = list(store.iter_mentions())
    return (len(stored), sum(len((m["topic_list"] or "").split()) for m in stored),
            sum(len((m["hashtag_list"] or "").split()) for m in stored))


def test_every_engine_offers_the_whole_interface_with_its_parameters(store):
    assert isinstance(store, MentionStore)
    groups = [c for c in MentionStore.__mro__ if c.__module__ == interface.__name__]
    names = {n for g in groups for n, f in vars(g).items()
             if inspect.isfunction(f) and (not n.startswith("_") or n in ("__enter__", "__exit__"))}
    assert len(names) > 50
    for name in sorted(names):
        wanted = inspect.signature(getattr(MentionStore, name)).parameters
        offered = inspect.signature(getattr(type(store), name)).parameters
        assert [(p.name, p.kind, p.default) for p in offered.values()] == \
               [(p.name, p.kind, p.default) for p in wanted.values()], name
    assert store.migrate() == []  # opened is migrated


# ---------------------------------------------------------------- Ingest, SourceReads
def test_a_mention_is_stored_once_by_source_id_and_by_canonical_url(store):
    first = fetch(store, [row("1", url="https://news.example/a", likes=1), row("2")])
    assert len(first.new_ids) == 2 and first.updated == 0
    again = fetch(store, [row("1", url="https://news.example/a", likes=5)])  # same source and id
    assert again.new_ids == [] and again.updated == 1
    other = fetch(store, [row("x9", url="https://news.example/a")], source="other")  # same URL elsewhere
    assert other.new_ids == [] and other.updated == 1
    assert store.count_unscored() == 2
    assert store.source_state("feed") == SourceState(cursor=None)


def test_a_duplicate_refreshes_engagement_and_links_its_new_topics(store):
    at = T + timedelta(minutes=5)
    first = fetch(store, [row("a", url="https://news.example/x", hashtags=("acmefail",), likes=3, at=at),
                          row("b", at=at)])
    assert len(first.new_ids) == 2
    # the same item again, with more likes: refreshed, not duplicated
    again = fetch(store, [row("a", url="https://news.example/x", likes=10, at=at)])
    assert again.new_ids == [] and again.updated == 1
    # the same URL through another source, for another topic: one mention, two topics
    other = fetch(store, [row("zz", url="https://news.example/x", topics=("globex",), source="other", at=at)],
                  source="other")
    assert other.new_ids == [] and other.updated == 1
    stored = {m["source_id"]: m for m in store.iter_mentions()}
    assert set(stored) == {"a", "b"} and stored["a"]["likes"] == 10
    assert sorted(stored["a"]["topic_list"].split()) == ["acme", "globex"]
    assert [(m["source_id"], m["hashtag_list"]) for m in stored.values() if m["hashtag_list"]] == [("a", "acmefail")]
    assert link_counts(store) == (2, 3, 1)


def test_fetch_state_health_and_failures(store):
    fetch(store, [row("1")], cursor="c1")
    assert store.source_state("feed").cursor == "c1"
    assert store.record_failure("feed", "rss", "HTTP 500", started_at=T, now=T, next_check_at=T + timedelta(minutes=20)) == 1
    assert store.record_failure("feed", "rss", "HTTP 502", started_at=T, now=T, next_check_at=T + timedelta(minutes=40)) == 2
    h = store.source_health("feed", with_counts=True)["feed"]
    assert (h.consecutive_errors, h.last_error, h.next_check_at, h.mentions) == (2, "HTTP 502", T + timedelta(minutes=40), 1)
    assert h.last_success_at == T and h.state.cursor == "c1"  # a failure keeps the cursor: nothing is lost
    fetch(store, [], cursor="c2", at=T + timedelta(hours=1))
    assert store.source_health()["feed"].consecutive_errors == 0
    [failures] = store.source_failures(T - timedelta(hours=1), T + timedelta(hours=2))
    assert (failures["source"], failures["errors"], failures["ok"], failures["error"]) == ("feed", 2, 2, "HTTP 502")
    assert store.collected_between(T - timedelta(minutes=1), T + timedelta(minutes=1))
    assert not store.collected_between(T - timedelta(days=2), T - timedelta(days=1))


def fetched(source: str, rows, *, at: datetime = T, etag: str | None = None) -> Fetched:
    return Fetched(source, "rss", rows, SourceState(etag=etag), at, at, at + timedelta(minutes=10), len(rows), 1)


def test_several_fetches_are_stored_in_one_go_in_order_or_not_at_all(store):
    url = "https://news.example/story"
    results = store.save_fetches([fetched("a", [row("1", url=url, source="a"), row("2", source="a")], etag='"a1"'),
                                  fetched("b", [row("9", url=url, source="b", likes=4), row("3", source="b")]),
                                  fetched("c", [])])
    assert [(len(r.new_ids), r.updated) for r in results] == [(2, 0), (1, 1), (0, 0)]  # b repeats a's story
    stored = {(m["source"], m["source_id"]): m for m in store.iter_mentions()}
    assert sorted(stored) == [("a", "1"), ("a", "2"), ("b", "3")] and stored[("a", "1")]["likes"] == 4
    assert store.search(parse("acme"))  # in the search index too
    assert store.source_state("a").etag == '"a1"' and set(store.source_health()) == {"a", "b", "c"}
    assert [(f["source"], f["new_mentions"]) for f in store.fetch_log()] == [("a", 2), ("b", 1), ("c", 0)]
    broken = MentionRow("e", "5", None, T, T, ("acme",), ())  # no text: refused (by the database or before it)
    with pytest.raises(Exception):  # noqa: B017 - whichever error, what matters is that nothing stays
        store.save_fetches([fetched("d", [row("4", source="d")], etag='"d1"'), fetched("e", [broken])])
    assert ("d", "4") not in {(m["source"], m["source_id"]) for m in store.iter_mentions()}  # none of them
    assert "d" not in store.source_health() and len(store.fetch_log()) == 3
    assert store.save_fetches([]) == []


def test_validators_survive_failures_and_the_fetch_log_says_each_attempt(store):
    now = T
    fetch(store, [], state=SourceState(etag='"v1"', last_modified="Fri, 20 Nov 2026 11:00:00 GMT"))
    assert store.source_state("feed") == SourceState('"v1"', "Fri, 20 Nov 2026 11:00:00 GMT", None)
    n1 = store.record_failure("feed", "rss", "HTTP 500 from example.org", started_at=now, now=now,
                              next_check_at=now + timedelta(minutes=30))
    n2 = store.record_failure("feed", "rss", "HTTP 500 from example.org", started_at=now, now=now,
                              next_check_at=now + timedelta(hours=1))
    assert (n1, n2) == (1, 2)
    h = store.source_health()["feed"]
    assert h.consecutive_errors == 2 and h.last_error == "HTTP 500 from example.org"
    assert h.last_success_at == now and h.next_check_at == now + timedelta(hours=1)
    assert h.state.etag == '"v1"'  # a failure keeps the validators
    assert [f["status"] for f in store.fetch_log("feed")] == ["ok", "error", "error"]  # never "zero mentions"
    fetch(store, [row("1")])
    assert store.source_health()["feed"].consecutive_errors == 0
    store.save_fetch("news", "rss", [], SourceState(), started_at=now, now=now, next_check_at=now, items=4, requests=2,
                     not_modified=True)
    log = store.fetch_log()
    assert [(f["source"], f["status"], f["items"], f["new_mentions"], f["requests"]) for f in log[-2:]] == \
           [("feed", "ok", 1, 1, 1), ("news", "not_modified", 4, 0, 2)]
    assert log[1]["error"] == "HTTP 500 from example.org" and log[1]["started_at"] == iso(now)
    assert store.save_mentions([row("2", source="import")]).new_ids and "import" not in store.source_health()


# ---------------------------------------------------------------- Scoring, MentionReads
def test_scores_are_saved_with_their_model_and_time(store):
    ids = fetch(store, [row(str(i)) for i in range(3)]).new_ids
    assert [r[0] for r in store.unscored()] == ids and [r[0] for r in store.unscored(2)] == ids[:2]
    store.save_scores([(ids[0], NEG)], "test-model", T)
    assert store.count_unscored() == 2
    [m] = [m for m in store.iter_mentions() if m["id"] == ids[0]]
    assert m["sentiment"] == "negative" and m["p_negative"] == pytest.approx(0.8) and m["sentiment_score"] == pytest.approx(-0.7)
    assert m["model"] == "test-model" and m["scored_at"] == iso(T)
    assert store.count_by_sentiment() == {None: 2, "negative": 1}


def test_scores_feed_the_rollups_and_a_rescore_moves_them(store):
    ids = fetch(store, [row("1", hashtags=("fail",)), row("2", hashtags=("fail",)), row("3")]).new_ids
    assert [i for i, _, _ in store.unscored()] == ids
    store.save_scores(zip(ids, [NEG, NEG, POS]), "m", T)
    assert store.count_unscored() == 0 and store.count_unscored(topic="acme", since=T - timedelta(hours=1)) == 0
    [hour] = store.topic_hours("acme", T - timedelta(hours=1), T + timedelta(hours=1)).values()
    assert (hour.mentions, hour.negative, hour.positive) == (3, 2, 1)
    assert hour.p_negative == pytest.approx(0.8 + 0.8 + 0.1) and hour.p_negative_sq == pytest.approx(0.64 * 2 + 0.01)
    [tag_hour] = store.hashtag_hours("acme", "fail", T - timedelta(hours=1), T + timedelta(hours=1)).values()
    assert (tag_hour.mentions, tag_hour.negative) == (2, 2)
    store.save_scores([(ids[0], NEU)], "m", T)  # re-scored: the rollups follow
    window = store.topic_window("acme", T - timedelta(hours=1), T + timedelta(hours=1))
    assert (window["mentions"], window["negative"], window["neutral"]) == (3, 1, 1)
    assert window["p_negative"] == pytest.approx(0.1 + 0.8 + 0.1)
    [hour] = store.topic_hours("acme", T - timedelta(hours=1), T + timedelta(hours=1)).values()
    assert hour.negative == 1 and hour.p_negative == pytest.approx(1.0)


def test_rollups_follow_a_rescore_that_keeps_the_label_and_a_topic_linked_later(store):
    """The hourly rollups sum P(negative): re-scoring a mention with the same label moves the sum too;
    a scored mention linked to one more topic counts there at once."""
    ids = store.save_mentions([row(str(i), f"acme {i}", hashtags=("tag",)) for i in range(2)]).new_ids
    store.save_scores([(ids[0], Sentiment.from_probs(0.9, 0.05, 0.05)), (ids[1], Sentiment.from_probs(0.9, 0.05, 0.05))],
                      "m", T)
    store.save_scores([(ids[0], Sentiment.from_probs(0.6, 0.3, 0.1))], "m", T)  # still negative, less sure
    store.save_scores([(ids[1], Sentiment.from_probs(0.1, 0.8, 0.1))], "m", T)  # now neutral
    [topic] = store.topic_hours("acme", T - timedelta(days=1), T + timedelta(days=1)).values()
    [tag] = store.hashtag_hours("acme", "tag", T - timedelta(days=1), T + timedelta(days=1)).values()
    assert (topic.mentions, topic.negative) == (tag.mentions, tag.negative) == (2, 1)
    assert topic.p_negative == pytest.approx(0.7) and tag.p_negative == pytest.approx(0.7)
    store.save_mentions([row("0", "acme 0", topics=("acme", "globex"))])  # the same mention, a second topic
    [globex] = store.topic_hours("globex", T - HOUR, T + HOUR).values()
    assert (globex.mentions, globex.negative) == (1, 1) and globex.p_negative_sq == pytest.approx(0.36)


def test_search_and_examples(store):
    ids = fetch(store, [row("1", "acme recall soup", likes=3, url="https://x.example/1"), row("2", "acme launch", likes=9),
                        row("3", "globex", topics=("globex",))]).new_ids
    store.save_scores(zip(ids, [NEG, POS, NEU]), "m", T)
    found = store.search(parse("recall"))
    assert [r["source_id"] for r in found] == ["1"] and found[0]["url"] == "https://x.example/1"
    assert [r["source_id"] for r in store.search(parse("launch"), topic="acme")] == ["2"]
    top = store.top_mentions("acme", T - timedelta(hours=1), T + timedelta(hours=1))
    assert [m["text"] for m in top["positive"]] == ["acme launch"] and [m["text"] for m in top["negative"]] == ["acme recall soup"]
    assert [m["text"] for m in store.examples("acme", T - timedelta(hours=1), T + timedelta(hours=1))] == ["acme recall soup"]
    assert [(m["id"], m["engagement"]) for m in store.examples(None, T - HOUR, T + HOUR, sentiment=None, ids=ids[1:])] == \
           [(ids[1], 9), (ids[2], 0)]  # most engaged first
    assert [r["source_id"] for r in store.search(None, limit=2)] == ["3", "2"]  # newest first
    assert store.search(parse("near")) == [] and store.search(parse("#recall")) == []  # FTS5's words are data


def test_mentions_stream_out_oldest_first_with_their_topics_and_hashtags(store):
    ids = fetch(store, [row("new", at=T, hashtags=("b", "a")), row("old", at=T - timedelta(days=2), topics=("acme", "globex")),
                        row("mid", at=T - timedelta(days=1), topics=("globex",))]).new_ids
    assert [m["source_id"] for m in store.iter_mentions()] == ["old", "mid", "new"]
    assert [m["source_id"] for m in store.iter_mentions(since=T - timedelta(days=1))] == ["mid", "new"]
    assert [m["source_id"] for m in store.iter_mentions(topic="globex")] == ["old", "mid"]
    first = next(store.iter_mentions())
    assert sorted(first["topic_list"].split()) == ["acme", "globex"] and first["hashtag_list"] is None
    assert first["published_at"] == iso(T - timedelta(days=2)) and first["text"] == "acme"
    store.save_scores([(ids[0], POS), (ids[1], NEG)], "m", T)
    assert store.count_by_sentiment() == {None: 1, "negative": 1, "positive": 1}


def test_users_sql_is_read_only_and_time_limited(store):
    ids = fetch(store, [row("1", "Acme is great", hashtags=("launch",), likes=2), row("2", "Acme is awful")]).new_ids
    store.save_scores(zip(ids, [POS, NEG]), "m", T)
    result = store.read_only_query("SELECT source_id, text FROM mentions WHERE text LIKE :pat ORDER BY source_id",
                                   {"pat": "%awful%"})
    assert result.columns == ["source_id", "text"] and result.rows == [("2", "Acme is awful")]
    assert len(store.read_only_query("SELECT id FROM mentions", max_rows=1).rows) == 1
    # the documented views are part of the contract: users' queries and the ready ones read them
    assert store.read_only_query("SELECT source_id, topics, hashtags, engagement FROM mention_details ORDER BY 1").rows == [
        ("1", "acme", "launch", 2), ("2", "acme", None, 0)]
    assert store.read_only_query("SELECT topic, day, mentions, negative, positive FROM topic_daily").rows == [
        ("acme", "2026-11-20", 2, 1, 1)]
    with pytest.raises(StoreError, match="read-only"):
        store.read_only_query("DELETE FROM mentions")
    with pytest.raises(StoreError, match="SQL error"):
        store.read_only_query("SELEC nonsense")
    with pytest.raises(StoreError, match="time limit"):
        store.read_only_query("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c",
                              time_limit=0.2)
    assert link_counts(store) == (2, 2, 1)


# ---------------------------------------------------------------- AlertWindows, DigestRollups
def test_hashtags_carried_together(store):
    """The pairs of hashtags on the same scored mentions of a topic in a window: a hashtag riding
    another's burst is told by them."""
    late = T - timedelta(minutes=30)
    ids = fetch(store, [row("1", at=late, hashtags=("fail", "lunch")), row("2", at=late, hashtags=("lunch", "fail", "rain")),
                        row("3", at=late, hashtags=("fail",)), row("4", at=T - timedelta(hours=3), hashtags=("fail", "lunch")),
                        row("5", at=late, hashtags=("fail", "rain")), row("6", at=late, hashtags=("café", "cafz")),
                        row("7", at=late, hashtags=("acmeb", "acme_fail"))]).new_ids
    store.save_scores(zip(ids[:4] + ids[5:], [NEG, NEG, NEU, NEG, NEU, NEU]), "m", T)  # the fifth waits for the model
    # each pair once, its two as Python sorts them (a database's collation may put é before z)
    assert store.hashtag_pairs("acme", T - timedelta(hours=1), T) == {
        ("fail", "lunch"): 2, ("fail", "rain"): 1, ("lunch", "rain"): 1, ("cafz", "café"): 1, ("acme_fail", "acmeb"): 1}
    assert store.hashtag_pairs("globex", T - timedelta(hours=1), T) == {}


def test_hashtags_as_the_backlash_rule_reads_them(store):
    early, late = T - timedelta(days=2), T
    ids = fetch(store, [row("1", at=early, hashtags=("fail",)), row("2", at=late, hashtags=("fail",)),
                        row("3", at=late, hashtags=("other",))]).new_ids
    store.save_scores(zip(ids, [NEG, POS, NEU]), "m", T)
    posts = store.hashtag_posts("acme", T - timedelta(hours=1), T + timedelta(hours=1))
    assert set(posts) == {"fail", "other"} and posts["fail"] == [(late, pytest.approx(0.1), False)]
    assert store.hashtag_posts("acme", T - timedelta(days=3), T + timedelta(hours=1), hashtag="fail")["fail"][0][0] == early
    first = store.hashtag_first_seen("acme", "fail")  # to the hour at least (it outlives pruned mentions)
    assert early - timedelta(hours=1) < first <= early and store.hashtag_first_seen("acme", "nope") is None
    assert store.hashtag_share("acme", "fail", T - timedelta(days=3), T + timedelta(hours=1)) == (2, 3)
    assert store.hashtag_pairs("acme", T - timedelta(hours=1), T + timedelta(hours=1)) == {}
    # history begins at the first scored data, and not before the first good fetch (the backfill's
    # two days before it are not a quiet history)
    assert store.topic_data_since("acme") == T and store.topic_data_since("acme", sources=[]) == early
    assert store.topic_data_since("globex") is None
    # a mention not scored yet counts nowhere, but its hashtag was seen then (in its topics only)
    unscored = early - timedelta(days=1, minutes=7)
    fetch(store, [row("4", at=unscored, hashtags=("fail",))])
    assert store.hashtag_first_seen("acme", "fail") == unscored and store.hashtag_first_seen("globex", "fail") is None


def test_keyword_rules_read_the_words_of_scored_mentions_only(store):
    ids = fetch(store, [row("1", "acme recall", hashtags=("food",)), row("2", "acme fine"), row("3", "acme later")]).new_ids
    store.save_scores(zip(ids[:2], [NEG, POS]), "m", T)
    found = store.mentions_in("acme", T - HOUR, T + HOUR)
    assert sorted((m["id"], m["text"], m["hashtag_list"]) for m in found) == [(ids[0], "acme recall", "food"),
                                                                              (ids[1], "acme fine", None)]
    assert store.mentions_in("acme", T + HOUR, T + 2 * HOUR) == []


def test_the_digest_counts_periods_from_the_rollups_and_cut_hours_from_the_mentions(store):
    on_hour = T.replace(minute=0)
    rows = [row("1", at=on_hour + timedelta(minutes=5), hashtags=("x",), language="en"),
            row("2", at=on_hour + timedelta(minutes=45), hashtags=("x", "y"), source="forum"),
            row("3", at=on_hour + timedelta(hours=2), language="en")]
    ids = store.save_mentions(rows).new_ids
    store.save_scores(zip(ids, [NEG, POS, NEU]), "m", T)
    day = [on_hour - HOUR, on_hour + 3 * HOUR]
    assert store.rollup_counts("topic", "acme", day) == [{"": (3, 1, 1, 1)}]
    assert store.rollup_counts("source", "acme", day) == [{"feed": (2, 1, 1, 0), "forum": (1, 0, 0, 1)}]
    assert store.rollup_counts("language", "acme", day) == [{"en": (2, 1, 1, 0), "": (1, 0, 0, 1)}]
    assert store.rollup_counts("hashtag", "acme", day) == [{"x": (2, 1, 0, 1), "y": (1, 0, 0, 1)}]
    assert store.rollup_counts("hashtag", "acme", day, keys=["y"]) == [{"y": (1, 0, 0, 1)}]
    assert store.rollup_counts("hashtag", "acme", day, keys=[]) == [{}]
    # a bound in the middle of an hour (a time zone half an hour off UTC): that hour from the mentions
    half = on_hour + timedelta(minutes=30)
    assert store.rollup_counts("topic", "acme", [day[0], half, day[1]]) == [{"": (1, 1, 0, 0)}, {"": (2, 0, 1, 1)}]
    assert store.topic_hourly_counts("acme", on_hour, day[1]) == {iso(on_hour): (2, 1, 0, 1),
                                                                  iso(on_hour + 2 * HOUR): (1, 0, 1, 0)}


# ---------------------------------------------------------------- Corrections
def rollups_match_the_mentions(store: MentionStore, topic: str, start: datetime, end: datetime) -> None:
    """The hourly rollup of `topic` over [start, end) sums to what its mentions say (every count, and
    the P(negative) sums): corrections keep the two in step."""
    window = store.topic_window(topic, start, end)
    hours = store.topic_hours(topic, start, end).values()
    assert (sum(h.mentions for h in hours), sum(h.negative for h in hours), sum(h.positive for h in hours)) == \
           (window["mentions"], window["negative"], window["positive"])
    assert sum(h.p_negative for h in hours) == pytest.approx(window["p_negative"], abs=1e-9)
    [counts] = store.rollup_counts("topic", topic, [start, end])
    assert counts.get("", (0, 0, 0, 0)) == (window["mentions"], window["negative"], window["neutral"], window["positive"])


def test_a_corrected_sentiment_is_the_mentions_label_in_every_count_window_and_example(store):
    ids = fetch(store, [row("1", "acme soup", hashtags=("fail",), likes=9, language="en"),
                        row("2", "acme bread", hashtags=("fail",), language="en"), row("3", "acme cake")]).new_ids
    store.save_scores(zip(ids, [NEG, NEG, POS]), "test-model", T)
    span = (T - HOUR, T + HOUR)
    store.correct_sentiment(ids[0], "positive", by="ann@example.org", at=T + timedelta(minutes=1))
    window = store.topic_window("acme", *span)
    assert (window["mentions"], window["negative"], window["positive"]) == (3, 1, 2)
    assert window["p_negative"] == pytest.approx(0.0 + 0.8 + 0.1)  # the team's label is certain: P(negative) 0
    [hour] = store.topic_hours("acme", *span).values()
    assert (hour.mentions, hour.negative, hour.positive) == (3, 1, 2)
    assert hour.p_negative == pytest.approx(0.9) and hour.p_negative_sq == pytest.approx(0.64 + 0.01)
    [tag] = store.hashtag_hours("acme", "fail", *span).values()
    assert (tag.mentions, tag.negative, tag.positive, tag.p_negative) == (2, 1, 1, pytest.approx(0.8))
    assert store.hashtag_posts("acme", *span)["fail"] == [(T, 0.0, False), (T, pytest.approx(0.8), True)]
    assert store.rollup_counts("source", "acme", list(span)) == [{"feed": (3, 1, 0, 2)}]
    assert store.rollup_counts("language", "acme", list(span)) == [{"en": (2, 1, 0, 1), "": (1, 0, 0, 1)}]
    assert store.rollup_counts("hashtag", "acme", list(span)) == [{"fail": (2, 1, 0, 1)}]
    assert [m["id"] for m in store.examples("acme", *span)] == [ids[1]]  # the rules' examples: negatives only
    assert [m["id"] for m in store.top_mentions("acme", *span)["positive"]] == [ids[0], ids[2]]
    assert store.count_by_sentiment() == {"negative": 1, "positive": 2}
    mention = store.get_mention(ids[0])
    assert (mention["sentiment"], mention["p_negative"], mention["p_neutral"], mention["p_positive"],
            mention["sentiment_score"]) == ("positive", 0.0, 0.0, 1.0, 1.0)
    assert (mention["text"], mention["topic_list"], mention["hashtag_list"]) == ("acme soup", "acme", "fail")
    rollups_match_the_mentions(store, "acme", *span)
    # scoring again (a new model, a re-score) never overwrites the team's label
    assert store.save_scores([(ids[0], NEG), (ids[1], NEU)], "other-model", T + HOUR) == 1
    assert store.get_mention(ids[0])["sentiment"] == "positive" and store.get_mention(ids[1])["sentiment"] == "neutral"
    [correction] = store.corrections()
    assert {k: correction[k] for k in ("mention_id", "topic", "label", "model_sentiment", "model", "corrected_by",
                                       "corrected_at", "text", "language", "source")} == {
        "mention_id": ids[0], "topic": None, "label": "positive", "model_sentiment": "negative", "model": "test-model",
        "corrected_by": "ann@example.org", "corrected_at": iso(T + timedelta(minutes=1)), "text": "acme soup",
        "language": "en", "source": "feed"}
    assert (correction["model_p_negative"], correction["model_p_neutral"], correction["model_p_positive"]) == \
           (pytest.approx(0.8), pytest.approx(0.1), pytest.approx(0.1))
    # a later correction replaces it, and keeps what the model said (not what the first correction did)
    store.correct_sentiment(ids[0], "neutral", by="bob", at=T + 2 * HOUR)
    [again] = store.corrections()
    assert (again["label"], again["model_sentiment"], again["corrected_by"], again["corrected_at"]) == \
           ("neutral", "negative", "bob", iso(T + 2 * HOUR))
    assert store.topic_window("acme", *span)["neutral"] == 2 and store.topic_window("acme", *span)["positive"] == 1
    rollups_match_the_mentions(store, "acme", *span)
    # a mention not scored yet takes the team's label, and the scoring step leaves it
    [later] = fetch(store, [row("4", "acme pie")]).new_ids
    store.correct_sentiment(later, "negative", by="ann@example.org", at=T + 3 * HOUR)
    assert store.count_unscored() == 0 and store.corrections(since=T + 3 * HOUR)[0]["model_sentiment"] is None
    window = store.topic_window("acme", *span)  # the re-scored neutral, the corrected neutral, the cake, the pie
    assert (window["mentions"], window["negative"], window["neutral"], window["positive"]) == (4, 1, 2, 1)
    rollups_match_the_mentions(store, "acme", *span)


def test_a_mention_not_relevant_to_a_topic_leaves_it_and_is_not_linked_to_it_again(store):
    both = ("acme", "globex")
    ids = fetch(store, [row("1", "acme globex", topics=both, hashtags=("tag",), url="https://x.example/1", language="en"),
                        row("2", "acme globex two", topics=both, hashtags=("tag",)), row("3", "acme only")]).new_ids
    store.save_scores(zip(ids, [NEG, POS, NEG]), "m", T)
    span = (T - HOUR, T + HOUR)
    store.mark_not_relevant(ids[0], topic="acme", by="ann", at=T)
    window = store.topic_window("acme", *span)
    assert (window["mentions"], window["negative"], window["positive"]) == (2, 1, 1)
    [hour] = store.topic_hours("acme", *span).values()
    assert (hour.mentions, hour.negative, hour.p_negative, hour.p_negative_sq) == (
        2, 1, pytest.approx(0.1 + 0.8), pytest.approx(0.01 + 0.64))
    [tag] = store.hashtag_hours("acme", "tag", *span).values()
    assert (tag.mentions, tag.negative, tag.p_negative) == (1, 0, pytest.approx(0.1))
    assert store.rollup_counts("language", "acme", list(span)) == [{"": (2, 1, 0, 1)}]  # none in English left
    assert store.rollup_counts("hashtag", "acme", list(span)) == [{"tag": (1, 0, 0, 1)}]
    assert store.hashtag_share("acme", "tag", *span) == (1, 2)
    assert store.examples("acme", *span) == store.examples("acme", *span, ids=[ids[2]])  # the rules' examples
    assert [m["id"] for m in store.mentions_in("acme", *span)] == sorted(ids[1:])
    assert [r["id"] for r in store.search(None, topic="acme")] == [ids[2], ids[1]]
    assert store.get_mention(ids[0])["topic_list"] == "globex"  # still in the other topic, counted there
    assert store.topic_window("globex", *span)["mentions"] == 2
    rollups_match_the_mentions(store, "acme", *span)
    rollups_match_the_mentions(store, "globex", *span)
    # fetched again (the same source id, or the URL through another source): not linked to acme again
    fetch(store, [row("1", "acme globex", topics=both, hashtags=("tag",), url="https://x.example/1")])
    fetch(store, [row("x", "acme globex", topics=both, url="https://x.example/1", source="other")], source="other")
    store.save_mentions([row("1", "acme globex", topics=both)])
    assert store.get_mention(ids[0])["topic_list"] == "globex" and store.topic_window("acme", *span)["mentions"] == 2
    rollups_match_the_mentions(store, "acme", *span)
    # not relevant to any of its topics: it leaves them all, and stays out of each
    store.mark_not_relevant(ids[1], topic=None, by="bob", at=T + HOUR)
    fetch(store, [row("2", "acme globex two", topics=both, hashtags=("tag",))])
    assert store.get_mention(ids[1])["topic_list"] is None
    assert store.topic_window("acme", *span)["mentions"] == 1 and store.topic_window("globex", *span)["mentions"] == 1
    assert store.hashtag_hours("acme", "tag", *span) == {} and store.hashtag_first_seen("acme", "tag") is None
    rollups_match_the_mentions(store, "acme", *span)
    rollups_match_the_mentions(store, "globex", *span)
    # marked again: the same correction, by whoever marked it last; a sentiment correction is another one
    store.mark_not_relevant(ids[0], topic="acme", by="carol", at=T + 2 * HOUR)
    store.correct_sentiment(ids[0], "positive", by="carol", at=T + 2 * HOUR)
    assert [(c["mention_id"], c["topic"], c["label"], c["corrected_by"], c["model_sentiment"])
            for c in store.corrections()] == [(ids[1], None, "not relevant", "bob", "positive"),
                                              (ids[0], "acme", "not relevant", "carol", "negative"),
                                              (ids[0], None, "positive", "carol", "negative")]
    assert [c["mention_id"] for c in store.corrections(since=T + 90 * timedelta(minutes=1))] == [ids[0], ids[0]]
    assert store.topic_window("globex", *span)["positive"] == 1 and store.topic_window("acme", *span)["positive"] == 0
    rollups_match_the_mentions(store, "globex", *span)
    assert link_counts(store) == (3, 2, 2)


def test_a_mention_not_relevant_before_it_is_scored_never_counts_there(store):
    ids = fetch(store, [row("1", topics=("acme", "globex")), row("2")]).new_ids
    store.mark_not_relevant(ids[0], topic="acme", by="ann", at=T)
    store.save_scores(zip(ids, [NEG, NEG]), "m", T)
    span = (T - HOUR, T + HOUR)
    assert [h.mentions for h in store.topic_hours("acme", *span).values()] == [1]
    assert [h.mentions for h in store.topic_hours("globex", *span).values()] == [1]
    rollups_match_the_mentions(store, "acme", *span)


def test_a_correction_names_what_is_wrong_and_stores_nothing(store):
    [mid] = fetch(store, [row("1", topics=("acme",))]).new_ids
    with pytest.raises(ListenerError, match="there is no mention 999"):
        store.correct_sentiment(999, "positive", by="ann", at=T)
    with pytest.raises(ListenerError, match="there is no mention 999"):
        store.mark_not_relevant(999, topic=None, by="ann", at=T)
    with pytest.raises(ListenerError, match="sentiment 'angry' is not one of negative, neutral, positive"):
        store.correct_sentiment(mid, "angry", by="ann", at=T)
    with pytest.raises(ListenerError, match=r"mention \d+ is not in topic 'globex' \(its topics: acme\)"):
        store.mark_not_relevant(mid, topic="globex", by="ann", at=T)
    with pytest.raises(ListenerError, match="needs who made it"):
        store.correct_sentiment(mid, "positive", by=" ", at=T)
    assert store.corrections() == [] and store.get_mention(mid)["sentiment"] is None
    assert store.get_mention(mid)["topic_list"] == "acme" and store.get_mention(999) is None


def test_corrections_go_with_their_pruned_mention_and_the_counts_stay_corrected(store):
    old = T - timedelta(days=40)
    ids = fetch(store, [row("old", at=old, topics=("acme", "globex")), row("new")]).new_ids
    store.save_scores(zip(ids, [NEG, NEG]), "m", T)
    store.correct_sentiment(ids[0], "positive", by="ann", at=T)
    store.mark_not_relevant(ids[0], topic="globex", by="ann", at=T)
    span = (old - HOUR, old + HOUR)
    before = (store.topic_hours("acme", *span), store.topic_hours("globex", *span))
    assert store.prune(T - timedelta(days=30)) == 1
    assert [c["mention_id"] for c in store.corrections()] == []
    assert (store.topic_hours("acme", *span), store.topic_hours("globex", *span)) == before
    [acme] = before[0].values()
    assert (acme.mentions, acme.positive) == (1, 1) and before[1] == {}


# ---------------------------------------------------------------- AlertState, Outbox
def state_row(rule: str, labels: dict, state: str, at: datetime) -> dict:
    return {"rule": rule, "labels": json.dumps(labels, sort_keys=True), "state": state, "active_since": iso(at),
            "fired_at": iso(at) if state == "firing" else None, "last_active_at": iso(at), "last_notified_at": None,
            "value": 3.0, "details": json.dumps({"summary": "3 mentions"})}


def incident_row(incident_id: int | None, state: str, at: datetime) -> dict:
    return {"id": incident_id, "topic": "acme", "state": state, "opened_at": iso(at), "notified_at": iso(at),
            "last_notified_at": iso(at), "closed_at": iso(at + HOUR) if state == "closed" else None,
            "lead_rule": "spike", "lead_labels": '{"topic": "acme"}', "lead": json.dumps({"rule": "spike"}),
            "summary": "3 mentions", "peak": 3.0, "peak_at": iso(at), "hashtags": '["fail"]', "rules": '["spike"]',
            "members": '["spike|{}"]', "announced": '["spike|{}"]', "notifications": 1}


def test_an_evaluation_is_written_at_once_with_its_incidents_and_notifications(store):
    labels = {"topic": "acme"}
    key = json.dumps(labels, sort_keys=True)
    note = {"message_id": "<i1@x>", "channel": "webhook:slack", "kind": "alert", "recipients": [], "subject": "FIRING",
            "body_text": "b", "body_html": None, "payload": {"text": "t"}, "now": T, "incident_topic": "acme"}
    ids = store.save_alert_evaluation(
        states={"spike": {key: state_row("spike", labels, "firing", T)}},
        events=[{"rule": "spike", "labels": key, "state": "firing", "at": T, "value": 3.0, "summary": "3 mentions",
                 "details": None, "topic": "acme"},
                {"rule": "source-down", "labels": "{}", "state": "pending", "at": T, "value": None, "summary": "",
                 "details": None}],
        incidents=[incident_row(None, "open", T)], outbox=[note],
        evaluations=[{"rule": "spike", "now": T, "error": None, "instances": 1, "status": "learning: 2 of 7 days"}])
    incident = ids["acme"]
    [state] = store.alert_states()
    assert (state["rule"], state["labels"], state["state"], state["fired_at"]) == ("spike", key, "firing", iso(T))
    assert store.alert_states("other") == []
    assert [(e["rule"], e["state"], e["incident_id"]) for e in store.alert_events(T - HOUR)] == \
           [("spike", "firing", incident), ("source-down", "pending", None)]
    assert store.alert_events(T + HOUR) == [] and store.alert_events(T - HOUR, T) == []
    [opened] = store.open_incidents()
    assert (opened["id"], opened["hashtags"], opened["notifications"]) == (incident, '["fail"]', 1)  # as stored
    [queued] = store.due_notifications(T)
    assert queued["payload"] == {"text": "t", "incident": incident}  # the new incident's id, once known
    evaluation = store.rule_evaluations()["spike"]
    assert (evaluation["last_evaluated_at"], evaluation["instances"], evaluation["status"]) == (iso(T), 1, "learning: 2 of 7 days")
    # the next evaluation: the instance resolves (no instances left), the incident closes
    store.save_alert_evaluation(states={"spike": {}}, events=[], incidents=[incident_row(incident, "closed", T)],
                                outbox=[], evaluations=[{"rule": "spike", "now": T + HOUR, "error": "boom",
                                                         "instances": 0, "status": None}])
    assert store.alert_states() == [] and store.open_incidents() == []
    assert store.rule_evaluations()["spike"]["last_error"] == "boom"
    [history] = store.incidents(T - HOUR, T + 2 * HOUR)
    assert (history["id"], history["state"], history["hashtags"], history["lead"]) == (incident, "closed", ["fail"],
                                                                                        {"rule": "spike"})
    assert store.incidents(T + 2 * HOUR) == []  # closed before then
    store.add_alert_event("spike", key, "resolved", T + HOUR, None, "quiet again", None, incident)
    assert store.alert_events(T + HOUR)[0]["incident_id"] == incident


def test_the_outbox_queues_once_and_records_every_outcome(store):
    def queue(mid: str, channel: str = "email") -> bool:
        return store.enqueue(message_id=mid, channel=channel, kind="alert", recipients=["pr@example.org"],
                             subject="s", body_text="b", body_html=None, payload={"k": 1}, now=T)

    assert queue("<a@x>") and not queue("<a@x>") and queue("<b@x>", "webhook:slack") and queue("<c@x>")
    assert store.outbox_has("<a@x>") and not store.outbox_has("<z@x>")
    due = store.due_notifications(T)
    assert [r["message_id"] for r in due] == ["<a@x>", "<b@x>", "<c@x>"]
    assert due[0]["recipients"] == ["pr@example.org"] and due[0]["payload"] == {"k": 1}
    assert store.due_notifications(T - timedelta(seconds=1)) == [] and len(store.due_notifications(T, limit=2)) == 2
    a, b, c = (r["id"] for r in due)
    store.mark_sent(a, T)
    store.mark_failed(b, "HTTP 503", T + timedelta(seconds=30))
    store.mark_given_up(c, "HTTP 404", T)
    assert store.outbox_status("<a@x>")["sent_at"] == "2026-11-20T10:05:00Z"
    assert store.outbox_status("<b@x>") == {"created_at": iso(T), "attempts": 1, "sent_at": None, "last_error": "HTTP 503"}
    assert store.outbox_status("<z@x>") is None
    assert store.due_notifications(T + timedelta(seconds=29)) == []
    assert [r["message_id"] for r in store.due_notifications(T + timedelta(seconds=30))] == ["<b@x>"]
    assert store.outbox_counts() == {"queued": 1, "sent": 1, "given_up": 1}
    problems = {(p["channel"], p["given_up"]): (p["count"], p["last_error"]) for p in store.outbox_problems()}
    assert problems == {("webhook:slack", False): (1, "HTTP 503"), ("email", True): (1, "HTTP 404")}
    kept = {n["message_id"]: (n["attempts"], n["sent_at"], n["given_up_at"], n["last_error"]) for n in store.notifications()}
    assert kept == {"<a@x>": (1, iso(T), None, None), "<b@x>": (1, None, None, "HTTP 503"),
                    "<c@x>": (1, None, iso(T), "HTTP 404")}
    assert store.notifications()[0]["recipients"] == ["pr@example.org"]


# ---------------------------------------------------------------- Workers
def test_a_lease_is_held_by_one_worker_until_it_expires_or_is_released(store):
    minute = timedelta(minutes=1)
    assert store.claim_lease("fetch:feed", "w1", T, minute)
    assert not store.claim_lease("fetch:feed", "w2", T + timedelta(seconds=59), minute)  # w1 holds it
    assert store.claim_lease("fetch:feed", "w1", T + timedelta(seconds=30), minute)  # renewed to T+90s
    assert not store.claim_lease("fetch:feed", "w2", T + timedelta(seconds=89), minute)
    assert store.claim_lease("fetch:feed", "w2", T + timedelta(seconds=90), minute)  # expired: w1 died
    assert store.claim_lease("leader", "w1", T, minute)
    store.release_lease("fetch:feed", "w1", T + timedelta(seconds=95))  # not w1's any more: no effect
    assert not store.claim_lease("fetch:feed", "w1", T + timedelta(seconds=100), minute)
    store.release_lease("fetch:feed", "w2", T + timedelta(seconds=100))
    held = store.leases("fetch:")
    assert list(held) == ["fetch:feed"]
    assert held["fetch:feed"] == {"name": "fetch:feed", "worker": "w2", "acquired_at": iso(T + timedelta(seconds=90)),
                                  "expires_at": iso(T + timedelta(seconds=150)), "released_at": iso(T + timedelta(seconds=100))}
    assert store.claim_lease("fetch:feed", "w1", T + timedelta(seconds=101), minute)  # released: free again
    assert store.leases()["leader"]["worker"] == "w1" and set(store.leases()) == {"fetch:feed", "leader"}
    assert not store.claim_lease("leader", "w2", T, minute)
    store.end_other_workers("w2", T)  # w2 knows w1 is dead: its lease and claims end at once
    assert store.claim_lease("leader", "w2", T, minute) and store.claim_lease("fetch:feed", "w2", T, minute)


def test_mentions_to_score_and_notifications_to_deliver_are_claimed_by_one_worker_each(store):
    fetch(store, [row(f"m{i}") for i in range(5)])
    minute = timedelta(minutes=1)
    first = store.claim_unscored("w1", T, minute, limit=3)
    second = store.claim_unscored("w2", T, minute, limit=3)
    assert [m[0] for m in first] == [m[0] for m in store.unscored()][:3] and len(second) == 2
    assert not {m[0] for m in first} & {m[0] for m in second}
    assert store.claim_unscored("w3", T, minute) == []  # all claimed
    store.end_other_workers("w4", T)  # w4 knows the others are dead (one daemon per SQLite file)
    assert len(store.claim_unscored("w4", T, minute)) == 5
    store.end_other_workers("w1", T)
    first = store.claim_unscored("w1", T, minute, limit=3)
    second = store.claim_unscored("w2", T, minute, limit=3)
    store.save_scores([(first[0][0], NEG)], "m", T)  # w1 scored one and died
    again = store.claim_unscored("w3", T + minute, minute)  # w1's and w2's claims expired
    assert sorted(m[0] for m in again) == sorted([m[0] for m in first[1:]] + [m[0] for m in second])
    assert store.claim_unscored("w3", T + minute, minute, limit=1) == [again[0]]  # its own earlier claims end

    for mid in ("<a@x>", "<b@x>"):
        store.enqueue(message_id=mid, channel="email", kind="alert", recipients=["pr@example.org"], subject="s",
                      body_text="b", body_html=None, payload=None, now=T)
    mine = store.claim_due_notifications("w1", T, minute)
    assert [r["message_id"] for r in mine] == ["<a@x>", "<b@x>"] and mine[0]["recipients"] == ["pr@example.org"]
    assert store.claim_due_notifications("w2", T, minute) == []
    store.mark_sent(mine[0]["id"], T)
    assert [r["message_id"] for r in store.claim_due_notifications("w2", T + minute, minute)] == ["<b@x>"]


# ---------------------------------------------------------------- Transfer
def filled(store: MentionStore) -> MentionStore:
    """`store` with a row in every table `listener db copy` moves, and rollups that outlive a pruned mention."""
    old = T - timedelta(days=40)
    ids = fetch(store, [row("old", at=old), row("a", "acme broke it", hashtags=("acmefail",), likes=4,
                                                     url="https://news.example/a"),
                        row("b", "acme is fine", topics=("acme", "globex"), language="nl"), row("c", "later")]).new_ids
    store.save_scores(zip(ids, [NEG, NEG, POS]), "m", T)  # "c" stays unscored
    store.correct_sentiment(ids[2], "neutral", by="ana", at=T)
    store.mark_not_relevant(ids[2], topic="globex", by="ana", at=T)
    store.record_failure("feed", "rss", "HTTP 500", started_at=T, now=T, next_check_at=T + HOUR)
    labels = json.dumps({"topic": "acme"})
    store.save_alert_evaluation(
        states={"spike": {labels: state_row("spike", {"topic": "acme"}, "firing", T)}},
        events=[{"rule": "spike", "labels": labels, "state": "firing", "at": T, "value": 3.0, "summary": "3",
                 "details": None, "topic": "acme"}],
        incidents=[incident_row(None, "open", T)],
        outbox=[{"message_id": "<i1@x>", "channel": "email", "kind": "alert", "recipients": ["pr@example.org"],
                 "subject": "FIRING", "body_text": "b", "body_html": "<p>b</p>", "payload": {"k": 1}, "now": T,
                 "incident_topic": "acme"}],
        evaluations=[{"rule": "spike", "now": T, "error": None, "instances": 1, "status": None}])
    store.record_job_run("prune", T, "1 mention")
    assert store.prune(T - timedelta(days=30)) == 1
    return store


def every_row(store: MentionStore) -> dict[str, list[dict]]:
    from listener.store.transfer import TABLES

    return {t: [r for rows in store.read_table(t) for r in rows] for t in TABLES}


def test_a_copy_holds_every_row_of_every_table_on_every_engine_and_back(store, request, tmp_path):
    from listener.store.transfer import copy_database

    filled(store)
    want = every_row(store)
    assert all(want[t] for t in ("mentions", "corrections", "topic_hourly", "outbox", "job_runs", "fetches"))
    for name in sorted(OTHER):
        with OTHER[name](request, tmp_path) as there:
            report = copy_database(store, there, batch=2)
            assert report.rows["mentions"] == 3 and report.rows["topic_hourly"] == len(want["topic_hourly"])
            assert every_row(there) == want, name  # the pruned mention's hour is in the rollups still
            assert there.search(parse("broke"))[0]["source_id"] == "a"  # its own search index
            assert there.save_mentions([row("d", at=T + HOUR)]).new_ids[0] > max(m["id"] for m in want["mentions"])
            with pytest.raises(StoreError, match="already holds mentions"):
                copy_database(store, there)


# ---------------------------------------------------------------- Retention
def test_retention_drops_old_mentions_but_not_their_counts(store):
    old, new = T - timedelta(days=40), T
    ids = fetch(store, [row("old", at=old), row("new", at=new)]).new_ids
    store.save_scores(zip(ids, [NEG, POS]), "m", T)
    assert store.prune(T - timedelta(days=30)) == 1
    assert [r["source_id"] for r in store.search(None)] == ["new"]
    [hour] = store.topic_hours("acme", old - timedelta(hours=1), old + timedelta(hours=1)).values()
    assert hour.mentions == 1  # the hourly rollups keep their counts
    store.record_job_run("prune", T, "1 mention")
    assert store.last_job_run("prune") == T and store.last_job_run("never") is None
    assert store.job_runs() == {"prune": JobRun("prune", T, "1 mention")}


def test_prune_goes_in_batches_and_takes_topics_hashtags_and_search_with_it(store):
    for day in range(10):  # one mention a day, with a hashtag and a searchable word
        at = T - timedelta(days=day)
        ids = fetch(store, [row(f"m{day}", f"acme zebra{day}", at=at, topics=("acme", "globex"), hashtags=("daily",))],
                    at=at).new_ids
        store.save_scores([(ids[0], NEG if day % 2 else POS)], "m", at)
    span = (T - timedelta(days=11), T + HOUR)
    before = [(t, store.topic_hours(t, *span), store.hashtag_hours(t, "daily", *span)) for t in ("acme", "globex")]
    batches = []
    assert store.prune(T - timedelta(days=5, hours=1), batch=2, on_batch=batches.append) == 4 and batches == [2, 2]
    assert link_counts(store) == (6, 12, 6)
    assert [m["source_id"] for m in store.iter_mentions()][0] == "m5"
    assert store.search(parse("zebra7")) == [] and len(store.search(parse("zebra5"))) == 1
    assert [(t, store.topic_hours(t, *span), store.hashtag_hours(t, "daily", *span)) for t in ("acme", "globex")] == before
    assert store.prune(T - timedelta(days=5, hours=1)) == 0


def log_a_day(store: MentionStore, at: datetime) -> None:
    """What a day leaves in the logs: a failed fetch, an alert event, a notification sent (`sent-DD`)
    and one still queued (`queued-DD`)."""
    store.record_failure("feed", "rss", "HTTP 500", started_at=at, now=at, next_check_at=at)
    store.add_alert_event("backlash", "{}", "firing", at, 1.0, "summary", None)
    for sent in ("sent", "queued"):
        store.enqueue(message_id=f"{sent}-{at:%d}", channel="email", kind="alert", recipients=["a@b"],
                      subject="s", body_text="b", body_html=None, payload=None, now=at)
    [sent_id] = [n["id"] for n in store.notifications() if n["message_id"] == f"sent-{at:%d}"]
    store.mark_sent(sent_id, at)


def test_prune_logs_deletes_what_was_delivered_and_keeps_what_is_queued(store):
    old, recent = T - timedelta(days=31), T - timedelta(days=1)
    for at in (old, recent):
        log_a_day(store, at)
    store.save_alert_evaluation(states={}, events=[], incidents=[incident_row(None, "closed", old)], outbox=[],
                                evaluations=[])
    assert store.prune_logs(T - timedelta(days=30), batch=1) == {"fetches": 1, "alert_events": 1, "incidents": 1,
                                                                 "outbox": 1}
    assert [f["started_at"] for f in store.fetch_log()] == [iso(recent)]
    assert [e["at"] for e in store.alert_events(old - HOUR)] == [iso(recent)]
    assert sorted(n["message_id"] for n in store.notifications()) == sorted(
        [f"queued-{old:%d}", f"queued-{recent:%d}", f"sent-{recent:%d}"])
    assert store.incidents(old - HOUR) == []


# ---------------------------------------------------------------- DashboardReads
def test_the_dashboard_pages_mentions_by_filter_and_keyset(store):
    from listener.query import parse
    from listener.store import MentionFilter

    rows = [row(f"d{i}", f"acme post {i}", at=T + i * HOUR, hashtags=("fail",) if i % 2 else (), likes=i,
                topics=("acme", "globex") if i == 3 else ("acme",), language="en" if i < 4 else "nl") for i in range(6)]
    ids = fetch(store, rows).new_ids
    store.save_scores([(ids[i], NEG if i % 2 else POS) for i in range(5)], "m", T)  # the last one is not scored
    page = store.filtered_mentions(MentionFilter(), limit=2)
    assert [m["id"] for m in page] == [ids[5], ids[4]] and page[0]["topic_list"] == "acme"  # newest first
    nxt = store.filtered_mentions(MentionFilter(), limit=2, before=(page[-1]["published_at"], page[-1]["id"]))
    assert [m["id"] for m in nxt] == [ids[3], ids[2]]
    assert [m["id"] for m in store.filtered_mentions(MentionFilter(hashtag="fail"))] == [ids[5], ids[3], ids[1]]
    assert [m["id"] for m in store.filtered_mentions(MentionFilter(hashtag="fail", topic="globex"))] == [ids[3]]
    assert [m["id"] for m in store.filtered_mentions(MentionFilter(topic="acme", sentiment="positive",
                                                                   language="en"))] == [ids[2], ids[0]]
    window = MentionFilter(start=T + HOUR, end=T + 3 * HOUR, source="feed")
    assert [m["id"] for m in store.filtered_mentions(window)] == [ids[2], ids[1]]
    assert [m["id"] for m in store.filtered_mentions(MentionFilter(), after_id=ids[3])] == [ids[5], ids[4]]
    odd = store.filtered_mentions(MentionFilter(), parse('post "acme post 1" OR "acme post 3"'))
    assert [m["id"] for m in odd] == [ids[3], ids[1]]
    assert [m["id"] for m in store.filtered_mentions(MentionFilter(topic="globex"), parse("acme -post"))] == []
    assert store.filtered_mentions(MentionFilter(author="nobody")) == []
    # engagement and authors of scored mentions only
    assert store.topic_engagement("acme", T, T + 6 * HOUR) == {"negative": 1 + 3, "positive": 0 + 2 + 4}
    assert store.topic_engagement("globex", T, T + 6 * HOUR) == {"negative": 3}
    assert store.top_authors("acme", T, T + 6 * HOUR) == []  # these rows have no author


def test_a_search_finds_the_same_mentions_whether_its_words_are_common_or_rare(store):
    """However many mentions a query's words match (most, a few, none), and however the mentions were
    stored (not in order of time), search and the dashboard's stream find exactly the mentions the
    query matches, newest first, page after page."""
    import random
    from listener.store import MentionFilter

    rng = random.Random(3)
    times = [T - timedelta(minutes=rng.randrange(60 * 24 * 20)) for _ in range(900)]  # stored in no order of time
    rank = {i: r for r, i in enumerate(sorted(range(900), key=lambda i: (times[i], i), reverse=True))}
    rows = [row(f"s{i}", " ".join(["acme", *(["refund"] if i % 3 else []), *(["broken"] if i % 5 == 0 else []),
                                   *(["zebra"] if i % 97 == 0 else []), *(["#late"] if i % 4 == 0 else []),
                                   # the last of every 200 newest and a few more: across pages and windows
                                   *(["sparse"] if rank[i] % 200 == 199 or rank[i] % 37 == 0 else [])]),
                at=at, topics=("acme", "globex") if i % 7 == 0 else ("acme",), hashtags=("late",) if i % 4 == 0 else ())
            for i, at in enumerate(times)]
    fetch(store, rows)
    stored = sorted(store.iter_mentions(), key=lambda m: (m["published_at"], m["id"]), reverse=True)
    for text in ("acme refund -broken", "zebra", "sparse", "sparse OR zebra", "refund zebra", "broken OR zebra", "refund -#late", "#late",
                 "nowhere", "acme"):
        query = parse(text)
        for where in (MentionFilter(), MentionFilter(topic="globex"), MentionFilter(hashtag="late")):
            wanted = [m["id"] for m in stored if query.matches_stored(m)
                      and (where.topic is None or where.topic in m["topic_list"].split())
                      and (where.hashtag is None or where.hashtag in (m["hashtag_list"] or "").split())]
            for limit in (1, 7, 50):
                assert [m["id"] for m in store.filtered_mentions(where, query, limit=limit)] == wanted[:limit], \
                    (text, where, limit)
            page, found = store.filtered_mentions(where, query, limit=40), []
            while page:
                found += [m["id"] for m in page]
                page = store.filtered_mentions(where, query, limit=40, before=(page[-1]["published_at"], page[-1]["id"]))
            assert found == wanted, (text, where)
        assert [m["id"] for m in store.search(query, limit=30)] == [i for i in [m["id"] for m in stored
                                                                                if query.matches_stored(m)]][:30]
        assert [m["id"] for m in store.search(query, limit=30, topic="globex")] == [
            m["id"] for m in stored if query.matches_stored(m) and "globex" in m["topic_list"].split()][:30]


def engagement_from_mentions(store: MentionStore, topic: str, start: datetime, end: datetime) -> dict[str, int]:
    """What `topic_engagement` must say, summed from the stored mentions themselves."""
    out: dict[str, int] = {}
    for m in store.iter_mentions(topic=topic):
        if m["sentiment"] is not None and iso(start) <= m["published_at"] < iso(end):
            out[m["sentiment"]] = out.get(m["sentiment"], 0) + sum(m[k] or 0 for k in ("likes", "reposts", "replies",
                                                                                      "score"))
    return out


def authors_from_mentions(store: MentionStore, topic: str, start: datetime, end: datetime, limit: int) -> list[dict]:
    """What `top_authors` must say, counted from the stored mentions themselves."""
    out: dict[str, dict] = {}
    for m in store.iter_mentions(topic=topic):
        if m["sentiment"] is not None and m["author"] is not None and iso(start) <= m["published_at"] < iso(end):
            a = out.setdefault(m["author"], {"author": m["author"], "mentions": 0, "engagement": 0, "negative": 0,
                                             "neutral": 0, "positive": 0})
            a["mentions"] += 1
            a[m["sentiment"]] += 1
            a["engagement"] += sum(m[k] or 0 for k in ("likes", "reposts", "replies", "score"))
    return sorted(out.values(), key=lambda a: (-a["mentions"], -a["engagement"], a["author"]))[:limit]


DAY0 = datetime(2026, 11, 17, tzinfo=timezone.utc)
# whole UTC days, days cut at both ends, within one day, within one hour, hours cut at both ends
WINDOWS = [(DAY0, DAY0 + timedelta(days=4)), (DAY0 + timedelta(hours=5, minutes=30), DAY0 + timedelta(days=3, hours=7)),
           (DAY0 + timedelta(days=1, hours=2), DAY0 + timedelta(days=1, hours=20)),
           (DAY0 + timedelta(days=2, hours=9, minutes=10), DAY0 + timedelta(days=2, hours=9, minutes=50)),
           (DAY0 + timedelta(days=1), DAY0 + timedelta(days=3)), (DAY0 - timedelta(days=1), DAY0 + timedelta(days=9))]


def figures(store: MentionStore, topic: str) -> list:
    """Every window's engagement and top authors (3 and 10) as the store reads them."""
    return [(store.topic_engagement(topic, a, b), store.top_authors(topic, a, b, 3), store.top_authors(topic, a, b))
            for a, b in WINDOWS]


def assert_figures_follow_the_mentions(store: MentionStore) -> None:
    for topic in ("acme", "globex"):
        assert figures(store, topic) == [
            (engagement_from_mentions(store, topic, a, b), authors_from_mentions(store, topic, a, b, 3),
             authors_from_mentions(store, topic, a, b, 10)) for a, b in WINDOWS], topic


def test_engagement_and_top_authors_follow_every_change_of_the_mentions(store):
    import random

    rng = random.Random(7)
    authors = [f"user{k}" for k in range(12)]
    rows = [MentionRow("feed", f"e{i}", f"acme post {i}", at, at, ("acme",) if i % 4 else ("acme", "globex"),
                       url=f"https://news.example/{i}", author=rng.choices(authors, [1 / (k + 1) for k in range(12)])[0]
                       if i % 9 else None, likes=rng.randrange(30) if i % 5 else None, reposts=rng.randrange(5),
                       score=i % 3 or None)
            for i, at in enumerate(sorted(DAY0 + timedelta(minutes=rng.randrange(4 * 24 * 60)) for _ in range(160)))]
    ids = fetch(store, rows).new_ids
    assert_figures_follow_the_mentions(store)  # nothing scored yet: nothing counted
    assert store.top_authors("acme", *WINDOWS[0]) == [] and store.topic_engagement("acme", *WINDOWS[0]) == {}
    store.save_scores([(mid, (NEG, NEU, POS)[k % 3]) for k, mid in enumerate(ids[:150])], "m", T)
    assert_figures_follow_the_mentions(store)
    assert len(store.top_authors("acme", *WINDOWS[0], 3)) == 3 and store.topic_engagement("globex", *WINDOWS[0])
    # duplicates: new engagement (one not scored yet), and the same URL from elsewhere linking a new topic
    again = [rows[k] for k in (3, 10, 11, 155)]
    fetch(store, [MentionRow(r.source, r.source_id, r.text, r.published_at, r.fetched_at, r.topics, url=r.url,
                             author=r.author, likes=(r.likes or 0) + 40, replies=7) for r in again])
    fetch(store, [MentionRow("other", "x1", "acme post 13", rows[13].published_at, T, ("globex",), url=rows[13].url,
                             author="someone", likes=500)], source="other")
    assert_figures_follow_the_mentions(store)
    # scoring again, the rest scored, corrections of sentiment and relevance
    store.save_scores([(ids[k], NEU) for k in range(0, 160, 7)], "m2", T)
    store.correct_sentiment(ids[1], "negative", by="ann", at=T)
    store.correct_sentiment(ids[13], "positive", by="ann", at=T)
    store.mark_not_relevant(ids[4], topic="acme", by="ann", at=T)
    store.mark_not_relevant(ids[8], topic=None, by="ann", at=T)
    store.mark_not_relevant(ids[13], topic="globex", by="ann", at=T)
    assert_figures_follow_the_mentions(store)
    fetch(store, [rows[4], rows[8]])  # fetched again: not linked again, not counted again
    assert_figures_follow_the_mentions(store)
    # pruning: what is left still adds up; the whole hours (engagement) and UTC days (authors) before the
    # cut keep their figures, like every rollup
    days, hours = (DAY0, DAY0 + timedelta(days=2)), (DAY0 + timedelta(hours=3), DAY0 + timedelta(hours=30))
    kept = (store.topic_engagement("acme", *days), store.topic_engagement("acme", *hours),
            store.top_authors("acme", *days, 3))
    store.prune(DAY0 + timedelta(days=2), batch=7)
    assert (store.topic_engagement("acme", *days), store.topic_engagement("acme", *hours),
            store.top_authors("acme", *days, 3)) == kept
    assert all(kept) and engagement_from_mentions(store, "acme", *days) == {}
    later = [(DAY0 + timedelta(days=2), DAY0 + timedelta(days=4)),
             (DAY0 + timedelta(days=2, hours=1, minutes=20), DAY0 + timedelta(days=3, hours=22, minutes=5))]
    for a, b in later:
        assert store.topic_engagement("acme", a, b) == engagement_from_mentions(store, "acme", a, b)
        assert store.top_authors("acme", a, b, 3) == authors_from_mentions(store, "acme", a, b, 3)


def test_the_dashboard_reads_outages_errors_and_one_incident(store):
    for k, ok in enumerate([True, False, False, True, False]):
        at = T + k * HOUR
        if ok:
            fetch(store, [], at=at)
        else:
            store.record_failure("feed", "rss", f"HTTP 50{k}", started_at=at, now=at, next_check_at=at)
    assert store.source_outages(T, T + 6 * HOUR) == [
        {"source": "feed", "start": iso(T + HOUR), "end": iso(T + 3 * HOUR), "errors": 2, "error": "HTTP 502"},
        {"source": "feed", "start": iso(T + 4 * HOUR), "end": None, "errors": 1, "error": "HTTP 504"}]
    assert store.source_outages(T, T + 6 * HOUR, ["other"]) == []
    assert [e["error"] for e in store.recent_fetch_errors("feed", 2)] == ["HTTP 504", "HTTP 502"]
    note = {"message_id": "<d1@x>", "channel": "email", "kind": "alert", "recipients": ["pr@x"], "subject": "FIRING",
            "body_text": "b", "body_html": None, "payload": {"text": "t"}, "now": T, "incident_topic": "acme"}
    ids = store.save_alert_evaluation(
        states={}, events=[{"rule": "spike", "labels": "{}", "state": "firing", "at": T, "value": 3.0,
                            "summary": "3 mentions", "details": None, "topic": "acme"}],
        incidents=[incident_row(None, "open", T)], outbox=[note], evaluations=[])
    incident = store.incident(ids["acme"])
    assert (incident["topic"], incident["hashtags"], incident["lead"]) == ("acme", ["fail"], {"rule": "spike"})
    assert store.incident(ids["acme"] + 1) is None
    assert [(e["rule"], e["state"]) for e in store.incident_events(ids["acme"])] == [("spike", "firing")]
    [sent] = store.incident_notifications(ids["acme"])
    assert (sent["subject"], sent["recipients"], sent["sent_at"]) == ("FIRING", ["pr@x"], None)
    assert store.incident_notifications(ids["acme"] + 1) == []


def test_a_duplicate_that_adds_a_topic_is_counted_at_the_mentions_own_hour(store):
    """The same URL fetched again by another source, with another time and a second topic: the new
    topic counts the mention at the hour it was stored at, so that a later correction (or re-score)
    moves the counts it added, not some other hour's (it left -1 in one hour and +1 in another)."""
    [mid] = fetch(store, [row("1", url="https://x.example/1")]).new_ids
    store.save_scores([(mid, NEG)], "m", T)
    later = T + timedelta(hours=3)
    fetch(store, [row("9", url="https://x.example/1", at=later, topics=("acme", "beta"), likes=5)], source="other",
          at=later)
    store.correct_sentiment(mid, "positive", by="ann", at=later)
    span = (T - HOUR, T + timedelta(hours=5))
    for topic in ("acme", "beta"):
        hours = store.topic_hours(topic, *span)
        assert [(h.mentions, h.negative, h.positive) for h in hours.values() if h.mentions or h.negative
                or h.positive] == [(1, 0, 1)], (topic, hours)
        rollups_match_the_mentions(store, topic, *span)

"""The store's contract: what the pipeline, the alerts, the digest and the CLI ask of it, in their
words. Written against the public methods only (never `conn`), so that every engine must pass it:
SQLite today; a PostgreSQL engine joins ENGINES and runs the same tests.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from listener.store import MentionRow, Store
from listener.models import Sentiment
from listener.sources import SourceState

T = datetime(2026, 11, 20, 10, 5, tzinfo=timezone.utc)
NEG, NEU, POS = Sentiment.from_probs(0.8, 0.1, 0.1), Sentiment.from_probs(0.1, 0.8, 0.1), Sentiment.from_probs(0.1, 0.2, 0.7)

ENGINES = {"sqlite": lambda tmp_path: Store(tmp_path / "contract.db")}


@pytest.fixture(params=sorted(ENGINES))
def store(request, tmp_path):
    s = ENGINES[request.param](tmp_path)
    yield s
    s.close()


def row(sid: str, text: str = "acme", *, at: datetime = T, topics=("acme",), hashtags=(), url=None, source="feed",
        likes=None) -> MentionRow:
    return MentionRow(source, sid, text, at, at, tuple(topics), tuple(hashtags), url=url, likes=likes)


def fetch(store: Store, rows, *, source="feed", at: datetime = T, cursor: str | None = None):
    return store.save_fetch(source, "rss", rows, SourceState(cursor=cursor), started_at=at, now=at,
                            next_check_at=at + timedelta(minutes=10), items=len(rows), requests=1)


def test_a_mention_is_stored_once_by_source_id_and_by_canonical_url(store):
    first = fetch(store, [row("1", url="https://news.example/a", likes=1), row("2")])
    assert len(first.new_ids) == 2 and first.updated == 0
    again = fetch(store, [row("1", url="https://news.example/a", likes=5)])  # same source and id
    assert again.new_ids == [] and again.updated == 1
    other = fetch(store, [row("x9", url="https://news.example/a")], source="other")  # same URL elsewhere
    assert other.new_ids == [] and other.updated == 1
    assert store.count_unscored() == 2
    assert store.source_state("feed") == SourceState(cursor=None)


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
    # history begins at the first scored data, and not before the first good fetch (the backfill's
    # two days before it are not a quiet history)
    assert store.topic_data_since("acme") == T and store.topic_data_since("acme", sources=[]) == early


def test_search_and_examples(store):
    ids = fetch(store, [row("1", "acme recall soup", likes=3, url="https://x.example/1"), row("2", "acme launch", likes=9),
                        row("3", "globex", topics=("globex",))]).new_ids
    store.save_scores(zip(ids, [NEG, POS, NEU]), "m", T)
    found = store.search('"recall"', lambda r: True)
    assert [r["source_id"] for r in found] == ["1"] and found[0]["url"] == "https://x.example/1"
    assert [r["source_id"] for r in store.search(None, lambda r: "launch" in r["text"], topic="acme")] == ["2"]
    top = store.top_mentions("acme", T - timedelta(hours=1), T + timedelta(hours=1))
    assert [m["text"] for m in top["positive"]] == ["acme launch"] and [m["text"] for m in top["negative"]] == ["acme recall soup"]
    assert [m["text"] for m in store.examples("acme", T - timedelta(hours=1), T + timedelta(hours=1))] == ["acme recall soup"]


def test_the_outbox_queues_once_and_records_every_outcome(store):
    def queue(mid: str, channel: str = "email") -> bool:
        return store.enqueue(message_id=mid, channel=channel, kind="alert", recipients=["pr@example.org"],
                             subject="s", body_text="b", body_html=None, payload={"k": 1}, now=T)

    assert queue("<a@x>") and not queue("<a@x>") and queue("<b@x>", "webhook:slack") and queue("<c@x>")
    assert store.outbox_has("<a@x>") and not store.outbox_has("<z@x>")
    due = store.due_notifications(T)
    assert [r["message_id"] for r in due] == ["<a@x>", "<b@x>", "<c@x>"]
    assert due[0]["recipients"] == ["pr@example.org"] and due[0]["payload"] == {"k": 1}
    a, b, c = (r["id"] for r in due)
    store.mark_sent(a, T)
    store.mark_failed(b, "HTTP 503", T + timedelta(seconds=30))
    store.mark_given_up(c, "HTTP 404", T)
    assert store.outbox_status("<a@x>")["sent_at"] == "2026-11-20T10:05:00Z"
    assert store.due_notifications(T + timedelta(seconds=29)) == []
    assert [r["message_id"] for r in store.due_notifications(T + timedelta(seconds=30))] == ["<b@x>"]
    assert store.outbox_counts() == {"queued": 1, "sent": 1, "given_up": 1}
    problems = {(p["channel"], p["given_up"]): (p["count"], p["last_error"]) for p in store.outbox_problems()}
    assert problems == {("webhook:slack", False): (1, "HTTP 503"), ("email", True): (1, "HTTP 404")}


def test_retention_drops_old_mentions_but_not_their_counts(store):
    old, new = T - timedelta(days=40), T
    ids = fetch(store, [row("old", at=old), row("new", at=new)]).new_ids
    store.save_scores(zip(ids, [NEG, POS]), "m", T)
    assert store.prune(T - timedelta(days=30)) == 1
    assert [r["source_id"] for r in store.search(None, lambda r: True)] == ["new"]
    [hour] = store.topic_hours("acme", old - timedelta(hours=1), old + timedelta(hours=1)).values()
    assert hour.mentions == 1  # the hourly rollups keep their counts
    store.record_job_run("prune", T, "1 mention")
    assert store.last_job_run("prune") == T

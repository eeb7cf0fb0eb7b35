"""A fetch cycle end to end: loopback feeds -> matching -> the store (SQLite and
PostgreSQL) -> sentiment; failures, backoff, 304s."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest

from listener.config import parse_config
from listener.pipeline import backoff, fetch_due, run_cycle, score_pending, text_for_scoring
from listener.store import open_store
from tests.httpserver import Reply


def rss(items: list[tuple[str, str, str, str]], language: str | None = None,
        published: datetime = datetime(2026, 11, 20, 11, tzinfo=timezone.utc)) -> bytes:
    """An RSS 2.0 feed of (guid, link, title, description) items, all published at `published`
    (default 2026-11-20 11:00Z, for tests that inject `now`)."""
    lang = f"<language>{language}</language>" if language else ""
    date = format_datetime(published, usegmt=True)
    body = "".join(
        f"<item><guid>{g}</guid><link>{link}</link><title>{t}</title><description>{d}</description>"
        f"<pubDate>{date}</pubDate></item>" for g, link, t, d in items)
    return f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>t</title>{lang}{body}</channel></rss>'.encode()


NEWS_ITEMS = [
    ("n1", "https://news.example/acme-recall?utm_source=x#top", "Acme recalls soup", "Acme Foods recalls its tomato soup after complaints. #AcmeFail"),
    ("n2", "https://news.example/weather", "Weather", "Sunny tomorrow, nothing about brands."),
    ("n3", "https://news.example/globex", "Globex grows", "Globex reports &amp; celebrates growth"),
]
NEWS = rss(NEWS_ITEMS)
DUTCH_ITEMS = [("d1", "https://blog.example.nl/1", "Acme", "Wat een geweldige soep van Acme, echt heerlijk!")]
DUTCH = rss(DUTCH_ITEMS, language="nl")


def make_config(tmp_path, database, server, extra_sources: str = "") -> object:
    import tomllib

    text = f"""
[database]
{database.toml(tmp_path)}

[[topics]]
name = "acme"
query = 'acme OR #acmefail'

[[topics]]
name = "globex"
query = "globex"

[[topics]]
name = "acme-nl"
query = "acme"
languages = ["nl"]

[[sources]]
name = "news"
kind = "rss"
url = "{server.url('/news.xml')}"
every = "10m"

[[sources]]
name = "blog"
kind = "rss"
url = "{server.url('/nl.xml')}"
every = "10m"
{extra_sources}
"""
    return parse_config(tomllib.loads(text), base_dir=tmp_path)


def test_cycle_matches_stores_and_scores(tmp_path, database, http_server, now, bundled_model):
    http_server.route("/news.xml", body=NEWS, headers={"Content-Type": "application/rss+xml", "ETag": '"n1"'})
    http_server.route("/nl.xml", body=DUTCH, headers={"Content-Type": "application/rss+xml"})
    config = make_config(tmp_path, database, http_server)
    with open_store(config.database.location) as store:
        report = run_cycle(config, store, lambda: bundled_model, now=now)
        assert report.failed == [] and report.new == 3 and report.scored == 3
        stored = list(store.iter_mentions())
        rows = {m["source_id"]: (m["url"], m["language"], m["language_detected"], m["sentiment"], m["model"]) for m in stored}
        assert set(rows) == {"n1", "n3", "d1"}  # the weather item matched no topic
        assert rows["n1"][0] == "https://news.example/acme-recall"  # canonical: no utm_, no fragment
        assert rows["d1"][1:3] == ("nl", 0)  # the feed's language, not detected
        assert rows["n1"][1] == "en" and rows["n1"][2] == 1  # detected
        assert rows["d1"][3] == "positive" and rows["d1"][4] == bundled_model.name
        topics = sorted((m["source_id"], t) for m in stored for t in m["topic_list"].split())
        assert topics == [("d1", "acme"), ("d1", "acme-nl"), ("n1", "acme"), ("n3", "globex")]
        assert [h for m in stored for h in (m["hashtag_list"] or "").split()] == ["acmefail"]
        h = store.source_health()["news"]
        assert h.state.etag == '"n1"' and h.next_check_at == now + timedelta(minutes=10)


def test_not_due_sources_are_skipped_and_304_costs_no_parsing(tmp_path, database, http_server, now):
    def news(request):
        if request.headers.get("if-none-match") == '"v1"':
            return Reply(304)
        return Reply(200, NEWS, {"ETag": '"v1"'})

    http_server.route("/news.xml", news)
    http_server.route("/nl.xml", body=DUTCH)
    config = make_config(tmp_path, database, http_server)
    with open_store(config.database.location) as store:
        assert len(fetch_due(config, store, now)) == 2
        assert fetch_due(config, store, now + timedelta(minutes=5)) == []  # nothing due yet
        later = fetch_due(config, store, now + timedelta(minutes=10), only="news")
        assert later[0].ok and later[0].not_modified and later[0].new == 0
        assert http_server.requests_to("/news.xml")[-1].headers["if-none-match"] == '"v1"'
        statuses = [f["status"] for f in store.fetch_log("news")]
        assert statuses == ["ok", "not_modified"]


def test_fetches_waiting_for_their_parse_keep_the_requests_within_concurrency(tmp_path, database, http_server, now):
    # more fetches are under way than [fetch] concurrency (read responses wait for the parse processes),
    # yet never more requests than it at once
    from listener.sources.parsing import ParsePool

    feeds = [f"/f{i}.xml" for i in range(6)]
    for i, path in enumerate(feeds):
        http_server.route(path, body=rss([(f"g{i}", f"https://news.example/{i}", "Acme", f"Acme news number {i}")]),
                          delay=0.05)
    http_server.route("/news.xml", body=NEWS)
    http_server.route("/nl.xml", body=DUTCH)
    extra = "".join(f'\n[[sources]]\nname = "f{i}"\nkind = "rss"\nurl = "{http_server.url(p)}"\nevery = "10m"\n'
                    for i, p in enumerate(feeds))
    config = make_config(tmp_path, database, http_server, extra + "\n[fetch]\nconcurrency = 1\nper_host = 4\n")
    with open_store(config.database.location) as store, ParsePool(workers=1) as parser:
        outcomes = fetch_due(config, store, now, parser=parser)
        assert sorted(o.source for o in outcomes if o.ok and o.new) == sorted(["news", "blog", *(f"f{i}" for i in range(6))])
    assert http_server.max_concurrent == 1


def test_a_failing_source_is_recorded_backs_off_and_does_not_stop_the_others(tmp_path, database, http_server, now):
    http_server.route("/news.xml", status=500, body=b"oops")
    http_server.route("/nl.xml", body=DUTCH)
    config = make_config(tmp_path, database, http_server)
    with open_store(config.database.location) as store:
        outcomes = {o.source: o for o in fetch_due(config, store, now)}
        assert outcomes["blog"].ok and outcomes["blog"].new == 1
        assert not outcomes["news"].ok and "500" in outcomes["news"].error
        h = store.source_health()["news"]
        assert h.consecutive_errors == 1 and h.next_check_at == now + timedelta(minutes=10)
        fetch_due(config, store, now + timedelta(minutes=10))
        h = store.source_health()["news"]
        assert h.consecutive_errors == 2 and h.next_check_at == now + timedelta(minutes=30)  # 10m + 2 x 10m
        assert [f["status"] for f in store.fetch_log("news")].count("error") == 2
        assert h.last_success_at is None  # never "zero mentions"


def test_retry_after_is_honoured(tmp_path, database, http_server, now):
    http_server.route("/news.xml", status=429, headers={"Retry-After": "7200"})
    http_server.route("/nl.xml", body=DUTCH)
    config = make_config(tmp_path, database, http_server)
    with open_store(config.database.location) as store:
        fetch_due(config, store, now)
        assert store.source_health()["news"].next_check_at == now + timedelta(hours=2)


def test_backoff_schedule():
    every = timedelta(minutes=10)
    assert [backoff(every, n) for n in (1, 2, 3)] == [every, 2 * every, 4 * every]
    assert backoff(every, 4) == backoff(every, 30) == 4 * every  # capped: recovery is noticed quickly
    assert backoff(timedelta(hours=3), 10) == timedelta(hours=6)
    assert backoff(timedelta(days=1), 5) == timedelta(days=1)
    assert backoff(every, 1, retry_after=3600) == timedelta(hours=1)


def test_source_topics_skip_matching_and_backfill_limits_the_first_fetch(tmp_path, database, http_server, now):
    old = rss([("o1", "https://x.example/old", "old", "ancient post")]).replace(b"20 Nov 2026", b"01 Nov 2026")
    http_server.route("/tag.xml", body=old + b"")
    http_server.route("/tag2.xml", body=rss([("t1", "https://x.example/t1", "no brand words", "just a tagged post")]))
    http_server.route("/news.xml", body=NEWS)
    http_server.route("/nl.xml", body=DUTCH)
    extra = f"""
[[sources]]
name = "tag-old"
kind = "rss"
url = "{http_server.url('/tag.xml')}"
topics = ["acme"]

[[sources]]
name = "tag"
kind = "rss"
url = "{http_server.url('/tag2.xml')}"
topics = ["acme"]
"""
    config = make_config(tmp_path, database, http_server, extra)
    with open_store(config.database.location) as store:
        outcomes = {o.source: o for o in fetch_due(config, store, now)}
        assert outcomes["tag"].new == 1  # belongs to acme without matching the query
        assert outcomes["tag-old"].new == 0 and outcomes["tag-old"].unmatched == 1  # older than backfill (2d)
        # after the first success the backfill limit no longer applies
        assert fetch_due(config, store, now + timedelta(hours=1), only="tag-old")[0].new == 1


def test_score_pending_in_batches(tmp_path, database, http_server, now, bundled_model):
    http_server.route("/news.xml", body=NEWS)
    http_server.route("/nl.xml", body=DUTCH)
    config = make_config(tmp_path, database, http_server)
    with open_store(config.database.location) as store:
        fetch_due(config, store, now)
        batches = []
        assert score_pending(store, bundled_model, now, batch=2, on_batch=batches.append) == 3
        assert batches == [2, 1] and store.count_unscored() == 0


def test_text_for_scoring():
    assert text_for_scoring("body", "Title") == "Title. body"
    assert text_for_scoring("Title and more", "Title") == "Title and more"
    assert text_for_scoring("", "Only title") == "Only title"
    assert text_for_scoring("text", None) == "text"


@pytest.mark.parametrize("status", [401, 404, 503])
def test_http_errors_are_recorded_with_a_plain_message(tmp_path, database, http_server, now, status):
    http_server.route("/news.xml", status=status)
    http_server.route("/nl.xml", body=DUTCH)
    config = make_config(tmp_path, database, http_server)
    with open_store(config.database.location) as store:
        fetch_due(config, store, now)
        error = store.source_health()["news"].last_error
        assert str(status) in error and "\n" not in error


def test_results_that_land_together_are_stored_in_one_transaction_and_a_refused_one_alone(tmp_path, database,
                                                                                          http_server, now):
    import asyncio

    from listener.pipeline import Recorder
    from listener.sources import FetchResult, Mention, SourceState
    from listener.store import MentionRow

    extra = f'\n[[sources]]\nname = "forum"\nkind = "rss"\nurl = "{http_server.url("/forum.xml")}"\nevery = "10m"\n'
    config = make_config(tmp_path, database, http_server, extra)
    news, blog, forum = (config.source(name) for name in ("news", "blog", "forum"))
    landed = {name: FetchResult([Mention(f"{name}-1", f"Acme in the {name}")], SourceState(etag=f'"{name}"'))
              for name in ("news", "blog", "forum")}
    refused = ([MentionRow("blog", "blog-1", None, now, now, ("acme",), ())], 0)  # no text: the store refuses it

    async def land(recorder, *calls):
        under_way = asyncio.Event()  # every fetch is under way before the first lands, as in a cycle

        async def fetch(src, kw):
            with recorder.fetching():
                await under_way.wait()
                return await recorder.record(src, landed[src.name], started_at=now, now=now, **kw)

        tasks = [asyncio.create_task(fetch(src, kw)) for src, kw in calls]
        await asyncio.sleep(0)
        under_way.set()
        # an hour's linger: they are stored once no fetch is left that could join them, never by the timer
        return await asyncio.wait_for(asyncio.gather(*tasks), 60)

    with database.open(tmp_path) as store:
        commits = []
        if database.engine == "sqlite":
            store.conn.set_trace_callback(lambda sql: commits.append(sql) if sql == "COMMIT" else None)
        outcomes = asyncio.run(land(Recorder(config, store, linger=3600), (news, {}), (forum, {})))
        assert [(o.source, o.ok, o.new) for o in outcomes] == [("news", True, 1), ("forum", True, 1)]
        if database.engine == "sqlite":
            assert len(commits) == 1  # both in one transaction
        outcomes = asyncio.run(land(Recorder(config, store, linger=3600), (news, {}), (blog, {"matched": refused}),
                                    (forum, {})))
        assert [(o.source, o.ok) for o in outcomes] == [("news", True), ("blog", False), ("forum", True)]
        assert "could not store its mentions" in outcomes[1].error
        assert sorted(m["source_id"] for m in store.iter_mentions()) == ["forum-1", "news-1"]  # blog's alone lost
        health = store.source_health()
        assert health["blog"].consecutive_errors == 1 and health["blog"].state.etag is None  # nothing of it saved
        assert health["news"].state.etag == '"news"' and health["forum"].last_success_at == now
        assert [f["status"] for f in store.fetch_log("news")] == ["ok", "ok"]


def test_the_language_model_unpacked_once_into_the_cache_reads_as_the_packages_own(tmp_path, monkeypatch):
    import py3langid.langid as langid

    from listener.pipeline import language

    monkeypatch.setenv("LISTENER_CACHE", str(tmp_path / "cache"))
    packed = langid.MODEL_DIR / langid.MODEL_FILE
    (tmp_path / "cache").mkdir()
    stale = tmp_path / "cache" / "py3langid-4586720-1796156231.npz"  # the copy of an older version
    stale.write_bytes(b"old")
    unpacked = language._unpacked(packed)
    assert unpacked.parent == tmp_path / "cache" and not stale.exists()
    assert sum(f.stat().st_size for f in unpacked.iterdir()) > 10 * packed.stat().st_size
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == [unpacked.name]  # no work folder left
    written = (unpacked / "nextmove.npy").stat().st_mtime_ns
    assert language._unpacked(packed) == unpacked and (unpacked / "nextmove.npy").stat().st_mtime_ns == written  # once
    ours = language._from_unpacked(langid, unpacked)
    assert isinstance(ours.tk_nextmove, memoryview)  # mapped, not copied
    theirs = langid.LanguageIdentifier.from_modelpath(packed, norm_probs=True)
    texts = ["Wat een geweldige soep van Acme, echt heerlijk!", "Acme recalls its tomato soup after complaints",
             "Die Suppe von Acme ist leider versalzen", "La sopa de Acme es deliciosa", "ok", "🍅🍅", "Acme",
             "Le service client d'Acme ne répond jamais", "Acme की सूप बहुत अच्छी है"]
    assert [ours.classify(t) for t in texts] == [theirs.classify(t) for t in texts]
    # a damaged copy is not used: removed (the next process writes it again), the package's loader instead
    with open(unpacked / "nextmove.npy", "r+b") as f:
        f.truncate(1000)
    fallback = language._identifier.__wrapped__()
    assert not unpacked.exists() and not isinstance(fallback.tk_nextmove, memoryview)
    assert [fallback.classify(t) for t in texts] == [theirs.classify(t) for t in texts]

"""sources.hackernews against a loopback server playing the Algolia HN Search API."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from listener.errors import FetchError
from listener.sources import FetchResult, SourceState, source_class
from listener.sources.hackernews import HackerNewsSource, hit_mention, parse_hits
from listener.sources.http import HttpClient
from tests.httpserver import Reply, http_server  # noqa: F401  (fixture)

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)
T0 = int(NOW.timestamp())
SAMPLES = Path(__file__).resolve().parents[1].parent / "shared" / "samples" / "api" / "hackernews"
PATH = "/api/v1/search_by_date"


def story(object_id: int, stamp: int, **fields) -> dict:
    hit = {
        "created_at": datetime.fromtimestamp(stamp, timezone.utc).isoformat().replace("+00:00", ".000Z"),
        "title": f"Story {object_id}",
        "url": f"https://example.com/{object_id}?utm_source=hn",
        "author": "alice",
        "points": 3,
        "story_text": None,
        "comment_text": None,
        "num_comments": 1,
        "created_at_i": stamp,
        "_tags": ["story", "author_alice", f"story_{object_id}"],
        "objectID": str(object_id),
    }
    hit.update(fields)
    return hit


def comment(object_id: int, stamp: int, text: str, **fields) -> dict:
    hit = {
        "created_at": datetime.fromtimestamp(stamp, timezone.utc).isoformat().replace("+00:00", ".000Z"),
        "author": "bob",
        "points": None,
        "comment_text": text,
        "story_id": 1,
        "story_title": "Some story",
        "story_url": "https://example.com/s",
        "parent_id": 1,
        "created_at_i": stamp,
        "_tags": ["comment", "author_bob", "story_1"],
        "objectID": str(object_id),
    }
    hit.update(fields)
    return hit


class FakeAlgolia:
    """search_by_date over a list of hits: tags, numericFilters, newest first, the 1,000-hit cap."""

    def __init__(self, hits: list[dict]):
        self.hits = hits
        self.params: list[dict[str, str]] = []

    def __call__(self, request) -> Reply:
        params = {k: v[0] for k, v in parse_qs(urlsplit(request.path).query).items()}
        self.params.append(params)
        tags = params.get("tags", "").strip("()").split(",")
        found = [h for h in self.hits if set(tags) & set(h.get("_tags", []))]
        for condition in filter(None, params.get("numericFilters", "").split(",")):
            for op in (">=", "<=", ">", "<"):
                if op in condition:
                    name, value = condition.split(op)
                    assert name == "created_at_i"
                    test = {">=": int.__ge__, "<=": int.__le__, ">": int.__gt__, "<": int.__lt__}[op]
                    found = [h for h in found if test(h["created_at_i"], int(value))]
                    break
        found.sort(key=lambda h: (h["created_at_i"], int(h["objectID"])), reverse=True)
        per_page, page = int(params["hitsPerPage"]), int(params.get("page", 0))
        start = page * per_page
        shown = found[start:start + per_page] if start < 1000 else []
        body = {"hits": shown, "nbHits": len(found), "page": page, "hitsPerPage": per_page,
                "nbPages": min(1000 // per_page, -(-len(found) // per_page)), "query": params.get("query")}
        return Reply(200, json.dumps(body).encode(), {"Content-Type": "application/json"})


def source(http_server, **options) -> HackerNewsSource:
    options.setdefault("query", "listener")
    return HackerNewsSource("hn", HackerNewsSource.Options(base_url=http_server.base_url, **options))


def run(src: HackerNewsSource, state: SourceState = SourceState(), since: datetime | None = None) -> FetchResult:
    async def go() -> FetchResult:
        async with HttpClient() as http:
            return await src.fetch(state, http, NOW, since=since)

    return asyncio.run(go())


def fetch_error(src: HackerNewsSource, **kwargs) -> FetchError:
    with pytest.raises(FetchError) as info:
        run(src, **kwargs)
    assert "\n" not in str(info.value)
    return info.value


# --- contract and options --------------------------------------------------------------------


def test_kind_options_and_hosts():
    assert source_class("hackernews") is HackerNewsSource
    fields = {f.name: f for f in dataclasses.fields(HackerNewsSource.Options)}
    assert set(fields) == {"query", "stories", "comments", "max_pages", "base_url", "item_url"}
    assert all(f.metadata["help"] and "\n" not in f.metadata["help"] for f in fields.values())
    assert fields["base_url"].metadata["url"] is True
    src = HackerNewsSource("hn", HackerNewsSource.Options(query="x"))
    assert src.hosts() == ["hn.algolia.com"] and src.tags == "(story,comment)"
    assert HackerNewsSource("hn", HackerNewsSource.Options(query="x", comments=False)).tags == "story"
    assert HackerNewsSource("hn", HackerNewsSource.Options(query="x", stories=False)).tags == "comment"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"query": "  "}, "query: give the words"),
        ({"query": "x", "stories": False, "comments": False}, "nothing would be fetched"),
        ({"query": "x", "max_pages": 0}, "max_pages: must be at least 1"),
        ({"query": "x", "item_url": "https://hn.example/item"}, "item_url: an http"),
        ({"query": "x", "item_url": "javascript:{}"}, "item_url: an http"),
    ],
)
def test_option_checks(options, message):
    with pytest.raises(ValueError, match=message):
        HackerNewsSource.Options(**options)


# --- conformance over the recorded samples ---------------------------------------------------

needs_samples = pytest.mark.skipif(not SAMPLES.is_dir(), reason="no ../shared/samples/api/hackernews")


@needs_samples
@pytest.mark.parametrize("name", ["search_by_date_story_query_apple_2014.json", "search_by_date_comment_query_apple_2014.json"])
def test_recorded_search_by_date_through_fetch(http_server, name):
    body = (SAMPLES / name).read_bytes()
    recorded = json.loads(body)
    http_server.route(PATH, body=body, headers={"Content-Type": "application/json; charset=utf-8"})
    result = run(source(http_server, query="apple"), since=NOW - timedelta(days=1))
    assert result.requests == 1  # nbHits is large, but the page is short: the window is read
    (mention,) = result.mentions
    hit = recorded["hits"][0]
    assert mention.source_id == hit["objectID"]
    assert mention.url == f"https://news.ycombinator.com/item?id={hit['objectID']}"
    assert mention.published_at == datetime.fromtimestamp(hit["created_at_i"], timezone.utc)
    assert mention.author == hit["author"] and mention.score == hit["points"]
    assert "<" not in mention.text and "&#x27;" not in mention.text and mention.text
    if "story" in hit["_tags"]:
        assert mention.title == hit["title"] and mention.text == hit["title"]  # empty story_text
        assert mention.extra == {"type": "story", "link": hit["url"]}
        assert mention.replies == 0
    else:
        assert mention.title is None and mention.extra["story_title"] == hit["story_title"]
        assert mention.extra["parent_id"] == hit["parent_id"] and "aren't contributing" in mention.text
    json.dumps(mention.extra)  # plain JSON values only
    assert json.loads(result.state.cursor)["after"] == hit["created_at_i"]


@needs_samples
def test_every_recorded_search_reply_parses():
    fixtures = json.loads((SAMPLES / "algolia_fixtures_2014_all26.json").read_text())["fixtures"]
    searches = [f for f in fixtures if "/search" in f["url"]]
    assert len(searches) >= 20
    kinds = set()
    for fixture in searches:
        mentions = parse_hits(fixture["reply"])
        assert len(mentions) == len(fixture["reply"]["hits"]), fixture["url"]
        for mention in mentions:
            kinds.add(mention.extra["type"])
            assert mention.url.startswith("https://news.ycombinator.com/item?id=")
            assert mention.published_at is not None and mention.published_at.tzinfo is not None
    assert kinds == {"story", "comment"}
    # The other replies (an item with children, a user) are not search results.
    for fixture in fixtures:
        if "/search" not in fixture["url"]:
            with pytest.raises(FetchError, match="unexpected response from hn.algolia.com"):
                parse_hits(fixture["reply"])


# --- end to end ------------------------------------------------------------------------------


def test_first_fetch_is_bounded_by_since_and_second_asks_for_new_only(http_server):
    hits = [story(10, T0 - 7200), comment(11, T0 - 3600, "<p>Nice &amp; <i>fast</i></p>"),
            story(12, T0 - 60, story_text="<p>Ask HN: anyone using listener?</p>", url=None),
            story(9, T0 - 9 * 86400)]  # older than since
    fake = FakeAlgolia(hits)
    http_server.route(PATH, fake)
    src = source(http_server)
    since = NOW - timedelta(days=2)
    first = run(src, since=since)
    assert first.requests == 1
    params = fake.params[0]
    assert params["query"] == "listener" and params["tags"] == "(story,comment)"
    assert params["hitsPerPage"] == "100" and params["page"] == "0"
    assert params["numericFilters"] == f"created_at_i>={int(since.timestamp())}"
    assert [m.source_id for m in first.mentions] == ["12", "11", "10"]
    ask, reply, link = first.mentions
    assert ask.text == "Ask HN: anyone using listener?" and ask.title == "Story 12" and "link" not in ask.extra
    assert reply.text == "Nice & fast" and reply.extra["type"] == "comment" and reply.extra["link"] == "https://example.com/s"
    assert link.extra["link"] == "https://example.com/10"  # tracking parameter dropped
    assert json.loads(first.state.cursor) == {"after": T0 - 60, "ids": ["12"], "backlog": []}

    fake.hits.append(story(13, T0 - 60))  # indexed late, same second as the cursor
    fake.hits.append(comment(14, T0 + 30, "new one"))
    second = run(src, first.state)
    assert fake.params[1]["numericFilters"] == f"created_at_i>={T0 - 60}"
    assert sorted(m.source_id for m in second.mentions) == ["13", "14"]  # 12 not again
    assert second.requests == 1
    assert json.loads(second.state.cursor) == {"after": T0 + 30, "ids": ["14"], "backlog": []}

    third = run(src, second.state)
    assert third.mentions == [] and third.requests == 1
    assert third.state == second.state


def test_tags_follow_the_options(http_server):
    fake = FakeAlgolia([story(1, T0 - 10), comment(2, T0 - 5, "hi")])
    http_server.route(PATH, fake)
    assert [m.source_id for m in run(source(http_server, comments=False), since=NOW - timedelta(hours=1)).mentions] == ["1"]
    assert [m.source_id for m in run(source(http_server, stories=False), since=NOW - timedelta(hours=1)).mentions] == ["2"]
    assert [p["tags"] for p in fake.params] == ["story", "comment"]


def test_hundred_new_hits_cost_one_request(http_server):
    fake = FakeAlgolia([comment(i, T0 - i, f"c{i}") for i in range(1, 101)])
    http_server.route(PATH, fake)
    result = run(source(http_server), since=NOW - timedelta(days=1))
    assert len(result.mentions) == 100 and result.requests == 1


def test_pages_by_narrowing_the_time_window(http_server):
    # 250 hits, one per second: three requests, each page 0 of a narrower window.
    fake = FakeAlgolia([comment(i, T0 - i, f"c{i}") for i in range(1, 251)])
    http_server.route(PATH, fake)
    since = int((NOW - timedelta(days=1)).timestamp())
    result = run(source(http_server), since=NOW - timedelta(days=1))
    assert len(result.mentions) == 250 and result.requests == 3
    assert [p["numericFilters"] for p in fake.params] == [
        f"created_at_i>={since}",
        f"created_at_i>={since},created_at_i<={T0 - 100}",
        f"created_at_i>={since},created_at_i<={T0 - 199}",  # 100..199 came back
    ]
    assert {p["page"] for p in fake.params} == {"0"}
    assert json.loads(result.state.cursor) == {"after": T0 - 1, "ids": ["1"], "backlog": []}


def test_a_whole_page_in_one_second_pages_within_it(http_server):
    fake = FakeAlgolia([comment(i, T0 - 5, f"c{i}") for i in range(1, 151)] + [comment(999, T0 - 50, "older")])
    http_server.route(PATH, fake)
    result = run(source(http_server), since=NOW - timedelta(hours=1))
    assert len(result.mentions) == 151
    assert [(p["page"], p["numericFilters"].count("<=")) for p in fake.params] == [("0", 0), ("0", 1), ("1", 1)]


def test_more_new_hits_than_max_pages_leave_a_backlog_that_later_fetches_read(http_server):
    # 1,250 hits in the backfill: more than Algolia's 1,000 per query and than 2 pages per fetch.
    fake = FakeAlgolia([comment(i, T0 - 10 * i, f"c{i}") for i in range(1, 1251)])
    http_server.route(PATH, fake)
    src = source(http_server, max_pages=2)
    since = NOW - timedelta(days=2)
    since_ts = int(since.timestamp())
    first = run(src, since=since)
    assert first.requests == 2 and [m.source_id for m in first.mentions][:2] == ["1", "2"]
    assert len(first.mentions) == 199  # the newest first; hit 100 closed page 1 and opened page 2
    cursor = json.loads(first.state.cursor)
    assert cursor["after"] == T0 - 10 and cursor["backlog"] == [[since_ts, T0 - 1990]]

    # New hits arrive meanwhile; each fetch reads them first, then goes on with the backlog.
    fake.hits += [comment(5000 + i, T0 + i, f"n{i}") for i in range(1, 4)]
    seen = {m.source_id for m in first.mentions}
    state, fetches = first.state, 0
    while json.loads(state.cursor)["backlog"]:
        result = run(src, state)
        assert result.requests <= 3  # two pages, and the look for new hits when it finds none
        seen |= {m.source_id for m in result.mentions}
        state, fetches = result.state, fetches + 1
        assert fetches < 20
    assert seen == {h["objectID"] for h in fake.hits}  # nothing skipped
    assert json.loads(state.cursor)["after"] == T0 + 3
    assert all(int(p["page"]) * int(p["hitsPerPage"]) < 1000 for p in fake.params)


def test_explicit_since_below_the_cursor_reads_the_gap(http_server):
    fake = FakeAlgolia([story(1, T0 - 86400 * 3), story(2, T0 - 100)])
    http_server.route(PATH, fake)
    state = SourceState(cursor=json.dumps({"after": T0 - 100, "ids": ["2"], "backlog": []}))
    result = run(source(http_server), state, since=NOW - timedelta(days=5))
    assert [m.source_id for m in result.mentions] == ["1"]
    assert json.loads(result.state.cursor)["backlog"] == []
    assert result.requests == 2


def test_unreadable_cursor_starts_over_from_since(http_server):
    fake = FakeAlgolia([story(1, T0 - 100)])
    http_server.route(PATH, fake)
    result = run(source(http_server), SourceState(cursor="not json"), since=NOW - timedelta(hours=1))
    assert [m.source_id for m in result.mentions] == ["1"]


def test_without_cursor_or_since_one_page_of_the_newest(http_server):
    fake = FakeAlgolia([comment(i, T0 - i, "x") for i in range(1, 301)])
    http_server.route(PATH, fake)
    result = run(source(http_server))
    assert result.requests == 1 and len(result.mentions) == 100
    assert "numericFilters" not in fake.params[0]
    assert json.loads(result.state.cursor) == {"after": T0 - 1, "ids": ["1"], "backlog": []}


def test_missing_fields_emoji_and_dutch(http_server):
    hits = [
        {"objectID": "1", "created_at": "2026-11-20T11:00:00.000Z", "_tags": ["story"]},  # bare minimum
        comment(2, T0 - 50, "\U0001F680\U0001F525"),
        comment(3, T0 - 40, "<p>Wij gebruiken het dagelijks, heel fijn &eacute;n snel.</p>", story_title=None,
                story_url=None, parent_id=None, author=None, points=None),
        {"objectID": None, "created_at_i": T0},  # no id: skipped
        "not a hit",
        story(4, T0 - 30, title=None, url=None, story_text=None, num_comments=None, points=None, _tags=None),
    ]
    http_server.route(PATH, body=json.dumps({"hits": hits}).encode())
    result = run(source(http_server), since=NOW - timedelta(hours=2))
    bare, emoji, dutch, untitled = sorted(result.mentions, key=lambda m: m.source_id)
    assert bare.text == "" and bare.title is None and bare.published_at == datetime(2026, 11, 20, 11, tzinfo=timezone.utc)
    assert bare.score is None and bare.replies is None and bare.author is None
    assert emoji.text == "\U0001F680\U0001F525"
    assert dutch.text == "Wij gebruiken het dagelijks, heel fijn \u00e9n snel." and dutch.language is None
    assert dutch.extra == {"type": "comment", "story_id": 1} and dutch.author is None
    assert untitled.extra["type"] == "story" and untitled.text == "" and untitled.title is None


@pytest.mark.parametrize(
    ("reply", "message", "status"),
    [
        (Reply(401, b"no"), "HTTP 401 unauthorized at http://127.0.0.1", 401),
        (Reply(404, b"no"), "check base_url", 404),
        (Reply(400, b'{"message":"invalid"}'), "simplify query", 400),
        (Reply(500, b"oops"), "HTTP 500 from 127.0.0.1", 500),
        (Reply(200, b'{"hits": [{"objectID": "1"'), "invalid JSON from 127.0.0.1", None),
        (Reply(200, b"<html>maintenance</html>", {"Content-Type": "text/html"}), "invalid JSON", None),
        (Reply(200, b'{"message": "nope"}'), "unexpected response from 127.0.0.1", None),
        (Reply(200, b'[{"objectID": "1"}]'), "unexpected response from 127.0.0.1: expected search results, got list", None),
        (Reply(200, b'{"hits": {"0": 1}}'), "unexpected response", None),
    ],
)
def test_errors_are_one_line(http_server, reply, message, status):
    http_server.route(PATH, reply)
    error = fetch_error(source(http_server), since=NOW - timedelta(hours=1))
    assert message in str(error) and error.status == status


def test_429_keeps_retry_after(http_server):
    http_server.route(PATH, Reply(429, b"slow down", {"Retry-After": "120"}))
    error = fetch_error(source(http_server), since=NOW - timedelta(hours=1))
    assert error.retry_after == 120 and error.status == 429
    assert str(error) == "too many requests (429) from 127.0.0.1"


def test_hit_mention_without_id_is_none():
    assert hit_mention({"title": "x"}) is None
    assert hit_mention({"objectID": 42, "created_at_i": T0, "_tags": ["story"], "title": "T"}).source_id == "42"


def test_a_quiet_look_for_new_hits_leaves_the_pages_to_the_backlog(http_server):
    fake = FakeAlgolia([comment(i, T0 - 1000 - i, f"old{i}") for i in range(1, 4)] + [story(50, T0 - 10)])
    http_server.route(PATH, fake)
    state = SourceState(cursor=json.dumps({"after": T0 - 10, "ids": ["50"], "backlog": [[T0 - 2000, T0 - 1000]]}))
    result = run(source(http_server, max_pages=1), state)
    assert sorted(m.source_id for m in result.mentions) == ["1", "2", "3"]
    assert result.requests == 2
    assert [p["numericFilters"] for p in fake.params] == [
        f"created_at_i>={T0 - 10}", f"created_at_i>={T0 - 2000},created_at_i<={T0 - 1000}"]
    assert json.loads(result.state.cursor) == {"after": T0 - 10, "ids": ["50"], "backlog": []}

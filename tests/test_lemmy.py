"""sources.lemmy against a real server on 127.0.0.1 that plays a Lemmy 0.19 instance.

There is no recorded Lemmy response in ../shared/samples: the fixtures here follow the v3 API's
SearchResponse / PostView / CommentView types (lemmy-js-client 0.19).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qs, urlsplit

import pytest

from listener.errors import FetchError
from listener.sources import FetchResult, SourceState, source_class
from listener.sources.http import HttpClient
from listener.sources.lemmy import LemmySource, markdown_to_text, post_mention
from tests.httpserver import LoopbackServer, RecordedRequest, Reply, http_server  # noqa: F401  (fixture)

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)
JSON = {"Content-Type": "application/json"}


def stamp(minutes_ago: float, *, naive: bool = False) -> str:
    when = NOW - timedelta(minutes=minutes_ago)
    text = when.replace(tzinfo=None).isoformat(timespec="microseconds")
    return text if naive else text + "Z"


PERSON = {
    "id": 3, "name": "jan", "display_name": None, "avatar": None, "banned": False,
    "published": "2024-01-02T10:00:00.000000Z", "actor_id": "https://lemmy.example/u/jan", "local": True,
    "deleted": False, "bot_account": False, "instance_id": 1,
}
COMMUNITY = {
    "id": 5, "name": "technology", "title": "Technology", "removed": False,
    "published": "2023-06-01T10:00:00.000000Z", "deleted": False, "nsfw": False,
    "actor_id": "https://Feddit.NL/c/technology", "local": False, "hidden": False,
    "posting_restricted_to_mods": False, "instance_id": 2, "visibility": "Public",
}


def post_view(n: int, *, minutes_ago: float = 0, name: str | None = None, body: str | None = "Some words.",
              **post_fields) -> dict:
    post = {
        "id": n, "name": name or f"Post {n} about the acme anvil", "url": None, "body": body,
        "creator_id": 3, "community_id": 5, "removed": False, "locked": False,
        "published": stamp(minutes_ago), "deleted": False, "nsfw": False,
        "ap_id": f"https://lemmy.example/post/{n}", "local": True, "language_id": 37,
        "featured_community": False, "featured_local": False,
    }
    post.update(post_fields)
    return {
        "post": post, "creator": PERSON, "community": COMMUNITY,
        "creator_banned_from_community": False, "banned_from_community": False,
        "creator_is_moderator": False, "creator_is_admin": False,
        "counts": {"post_id": n, "comments": 4, "score": 12, "upvotes": 13, "downvotes": 1,
                   "published": post["published"], "newest_comment_time": post["published"]},
        "subscribed": "NotSubscribed", "saved": False, "read": False, "hidden": False,
        "creator_blocked": False, "unread_comments": 4,
    }


def comment_view(n: int, *, minutes_ago: float = 0, content: str = "I agree **completely**.") -> dict:
    parent = post_view(900)
    return {
        "comment": {
            "id": n, "creator_id": 3, "post_id": 900, "content": content, "removed": False,
            "published": stamp(minutes_ago), "deleted": False, "ap_id": f"https://lemmy.example/comment/{n}",
            "local": True, "path": f"0.{n}", "distinguished": False, "language_id": 0,
        },
        "creator": PERSON, "post": parent["post"], "community": COMMUNITY,
        "counts": {"comment_id": n, "score": 3, "upvotes": 3, "downvotes": 0, "published": stamp(minutes_ago),
                   "child_count": 1},
        "creator_banned_from_community": False, "banned_from_community": False,
        "creator_is_moderator": False, "creator_is_admin": False, "subscribed": "NotSubscribed",
        "saved": False, "creator_blocked": False,
    }


class FakeLemmy:
    """/api/v3/search over lists of posts and comments: sort=New, numbered pages."""

    def __init__(self, server: LoopbackServer, posts: list[dict] | None = None, comments: list[dict] | None = None):
        self.posts = list(posts or [])
        self.comments = list(comments or [])
        server.route("/api/v3/search", self.search)

    def search(self, request: RecordedRequest) -> Reply:
        query = parse_qs(urlsplit(request.path).query)
        kind = query["type_"][0]
        items, inner = (self.posts, "post") if kind == "Posts" else (self.comments, "comment")
        ordered = sorted(items, key=lambda v: (v[inner]["published"], v[inner]["id"]), reverse=True)
        limit, page = int(query["limit"][0]), int(query["page"][0])
        chunk = ordered[(page - 1) * limit: page * limit]
        body = {"type_": kind, "comments": chunk if kind == "Comments" else [],
                "posts": chunk if kind == "Posts" else [], "communities": [], "users": []}
        return Reply(200, json.dumps(body).encode(), JSON)


def options(server: LoopbackServer, **kwargs) -> LemmySource.Options:
    kwargs.setdefault("query", "acme")
    kwargs.setdefault("instance", server.base_url)
    return LemmySource.Options(**kwargs)


def run(opts: LemmySource.Options, state: SourceState = SourceState(), since: datetime | None = None) -> FetchResult:
    async def go() -> FetchResult:
        async with HttpClient() as http:
            return await LemmySource("l", opts).fetch(state, http, NOW, since=since)

    return asyncio.run(go())


def fetch_error(opts: LemmySource.Options) -> FetchError:
    with pytest.raises(FetchError) as info:
        run(opts)
    assert "\n" not in str(info.value)
    return info.value


def query_of(request: RecordedRequest) -> dict[str, list[str]]:
    return parse_qs(urlsplit(request.path).query)


def ids(result: FetchResult) -> list[int]:
    return [m.extra.get("post_id", m.extra.get("comment_id")) for m in result.mentions]


# --- the source contract ----------------------------------------------------------------------


def test_registered_kind_and_options():
    assert source_class("lemmy") is LemmySource
    fields = {f.name: f for f in dataclasses.fields(LemmySource.Options)}
    assert set(fields) == {"query", "instance", "community", "comments", "max_pages"}
    assert all(f.metadata["help"] and "\n" not in f.metadata["help"] for f in fields.values())
    assert fields["instance"].metadata["url"] is True
    with pytest.raises(TypeError):
        LemmySource.Options()  # the query is required
    opts = LemmySource.Options(query="acme")
    assert (opts.instance, opts.max_pages, opts.comments) == ("https://lemmy.world", 3, False)
    assert LemmySource("l", opts).hosts() == ["lemmy.world"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"query": "  "}, "query: the search query is empty"),
        ({"query": "acme", "max_pages": 0}, "max_pages must be at least 1"),
        ({"query": "acme", "community": "!"}, "community: the community name is empty"),
    ],
)
def test_option_checks(kwargs, message):
    with pytest.raises(ValueError) as info:
        LemmySource.Options(**kwargs)
    assert str(info.value) == message


# --- backfill, cursor, paging -------------------------------------------------------------------


def test_first_fetch_reads_back_to_since_then_only_new(http_server):
    lemmy = FakeLemmy(http_server, [post_view(500 - i, minutes_ago=i) for i in range(120)])
    opts = options(http_server)
    first = run(opts, since=NOW - timedelta(minutes=70))
    assert first.requests == 2 and len(first.mentions) == 71  # minutes 0..70
    page1, page2 = (query_of(r) for r in http_server.requests)
    assert page1 == {"q": ["acme"], "type_": ["Posts"], "sort": ["New"], "listing_type": ["All"],
                     "limit": ["50"], "page": ["1"]}
    assert page2["page"] == ["2"]
    assert json.loads(first.state.cursor) == {"posts": {"mark": ["2026-11-20T12:00:00+00:00", 500]}}

    lemmy.posts += [post_view(600 + i, minutes_ago=-i) for i in (1, 2, 3)]
    http_server.requests.clear()
    second = run(opts, first.state)
    assert ids(second) == [603, 602, 601]
    assert second.requests == 1  # page 1 reached the mark
    assert json.loads(second.state.cursor)["posts"]["mark"] == ["2026-11-20T12:03:00+00:00", 603]

    third = run(opts, second.state)
    assert third.mentions == [] and third.requests == 1 and third.state.cursor == second.state.cursor


def test_first_fetch_without_since_reads_one_page(http_server):
    FakeLemmy(http_server, [post_view(500 - i, minutes_ago=i) for i in range(120)])
    result = run(options(http_server))
    assert result.requests == 1 and len(result.mentions) == 50


def test_request_count_for_many_new_posts(http_server):
    lemmy = FakeLemmy(http_server, [post_view(1, minutes_ago=600)])
    opts = options(http_server)
    state = run(opts).state
    lemmy.posts += [post_view(100 + i, minutes_ago=300 - i) for i in range(99)]
    result = run(opts, state)
    assert len(result.mentions) == 99 and result.requests == 2  # 50 + 49 and the mark


def test_same_timestamp_as_the_mark_is_kept(http_server):
    lemmy = FakeLemmy(http_server, [post_view(10, minutes_ago=5)])
    opts = options(http_server)
    state = run(opts).state
    lemmy.posts.append(post_view(11, minutes_ago=5))  # published in the same microsecond
    assert ids(run(opts, state)) == [11]


def test_stopping_at_max_pages_resumes_at_the_next_page(http_server):
    lemmy = FakeLemmy(http_server, [post_view(1, minutes_ago=600)])
    opts = options(http_server, max_pages=2)
    state = run(opts).state
    lemmy.posts += [post_view(100 + i, minutes_ago=300 - i) for i in range(150)]
    first = run(opts, state)
    assert first.requests == 2 and ids(first) == list(range(249, 149, -1))
    entry = json.loads(first.state.cursor)["posts"]
    assert entry["mark"] == json.loads(state.cursor)["posts"]["mark"]
    assert entry["pending"]["page"] == 3

    lemmy.posts += [post_view(300 + i, minutes_ago=-i) for i in range(5)]  # push everything down by 5
    http_server.requests.clear()
    second = run(opts, first.state)
    assert [query_of(r)["page"] for r in http_server.requests] == [["3"], ["4"]]
    assert ids(second) == list(range(149, 99, -1))  # the gap, nothing twice
    assert json.loads(second.state.cursor)["posts"] == {"mark": entry["pending"]["top"]}

    third = run(opts, second.state)
    assert ids(third) == [304, 303, 302, 301, 300]


def test_backfill_with_a_cursor_keeps_the_cursor(http_server):
    FakeLemmy(http_server, [post_view(500 - i, minutes_ago=i) for i in range(10)])
    state = SourceState(cursor=json.dumps({"posts": {"mark": ["2026-11-20T12:00:00+00:00", 500]}}))
    result = run(options(http_server), state, since=NOW - timedelta(minutes=4))
    assert len(result.mentions) == 5 and json.loads(result.state.cursor) == json.loads(state.cursor)


def test_comments_too(http_server):
    FakeLemmy(http_server, [post_view(1)], [comment_view(70, minutes_ago=2, content="Dit klopt **helemaal**.")])
    result = run(options(http_server, comments=True, community="!technology@feddit.nl"))
    assert result.requests == 2
    kinds = [query_of(r)["type_"] for r in http_server.requests]
    assert kinds == [["Posts"], ["Comments"]]
    assert all(query_of(r)["community_name"] == ["technology@feddit.nl"] for r in http_server.requests)
    post, comment = result.mentions
    assert comment.source_id == "https://lemmy.example/comment/70" and comment.url == comment.source_id
    assert comment.text == "Dit klopt helemaal." and comment.title is None
    assert (comment.likes, comment.score, comment.replies) == (3, 3, 1)
    assert comment.extra == {"instance": "127.0.0.1", "comment_id": 70, "post_title": "Post 900 about the acme anvil",
                             "post_url": "https://lemmy.example/post/900", "community": "technology@feddit.nl"}
    assert set(json.loads(result.state.cursor)) == {"posts", "comments"}


# --- what a mention carries -----------------------------------------------------------------------


def test_post_fields(http_server):
    view = post_view(7, minutes_ago=30, body="Look at **this** [anvil](https://shop.example/anvil?utm_source=x).",
                     url="https://shop.example/anvil?utm_source=lemmy&id=3")
    FakeLemmy(http_server, [view])
    (mention,) = run(options(http_server)).mentions
    assert mention.source_id == "https://lemmy.example/post/7" and mention.url == mention.source_id
    assert mention.title == "Post 7 about the acme anvil"
    assert mention.text == "Look at this anvil."
    assert mention.author == "jan@lemmy.example"
    assert mention.published_at == datetime(2026, 11, 20, 11, 30, tzinfo=timezone.utc)
    assert mention.language is None  # language_id 37 is this instance's number, not a code
    assert (mention.likes, mention.replies, mention.score) == (13, 4, 12)
    assert mention.extra == {"instance": "127.0.0.1", "post_id": 7, "community": "technology@feddit.nl",
                             "link": "https://shop.example/anvil?id=3"}


def test_missing_optional_fields(http_server):
    bare = {"post": {"id": 8, "name": "Only a title", "published": stamp(1)}}
    FakeLemmy(http_server, [bare])
    (mention,) = run(options(http_server)).mentions
    assert mention.source_id == "https://127.0.0.1/post/8" and mention.url is None
    assert mention.text == "Only a title" and mention.author is None
    assert (mention.likes, mention.replies, mention.score) == (None, None, None)


def test_emoji_only_post(http_server):
    FakeLemmy(http_server, [post_view(9, name="\U0001F525\U0001F525", body="\U0001F44D")])
    (mention,) = run(options(http_server)).mentions
    assert (mention.title, mention.text) == ("\U0001F525\U0001F525", "\U0001F44D")


def test_dutch_post_with_naive_time(http_server):
    body = "## Ervaringen\n\n> Mijn aambeeld van **Acme** is _kapot_.\n\n- te zwaar\n- te duur\n\n![foto](https://x.nl/a.jpg)"
    FakeLemmy(http_server, [post_view(10, name="Acme aambeeld stuk", body=body, published="2026-11-20T10:15:00.5")])
    (mention,) = run(options(http_server)).mentions
    assert mention.text == "Ervaringen\nMijn aambeeld van Acme is _kapot_.\nte zwaar\nte duur\nfoto"
    assert mention.published_at == datetime(2026, 11, 20, 10, 15, 0, 500000, tzinfo=timezone.utc)


def test_deleted_and_removed_posts_are_left_out(http_server):
    FakeLemmy(http_server, [post_view(1, deleted=True), post_view(2, removed=True), post_view(3)])
    assert ids(run(options(http_server))) == [3]


def test_junk_items_are_skipped(http_server):
    body = {"posts": ["x", {"post": None}, {"post": {"id": "12"}}, post_view(4)]}
    http_server.route("/api/v3/search", body=json.dumps(body).encode())
    assert ids(run(options(http_server))) == [4]


def test_markdown_to_text():
    assert markdown_to_text("") == ""
    assert markdown_to_text("# Title\n\nSome *words* and `code`.") == "Title\nSome *words* and code."
    assert markdown_to_text("[a link](https://x.example/(1)) and ![alt](i.png)") == "a link and alt"
    assert markdown_to_text("::: spoiler Plot\nHe dies.\n:::") == "Plot\nHe dies."
    assert markdown_to_text("```\nprint(1)\n```") == "print(1)"
    assert markdown_to_text("1. one\n2) two\n***\n\\*not bold\\*") == "one\ntwo\n*not bold*"
    assert markdown_to_text("#hashtag stays") == "#hashtag stays"


def test_post_mention_without_post_is_none():
    assert post_mention({}, "lemmy.example") is None
    assert post_mention({"post": {"id": 1, "deleted": True}}, "lemmy.example") is None


# --- errors -------------------------------------------------------------------------------------


def test_400_explains_lemmy_errors_and_rate_limits(http_server):
    http_server.route("/api/v3/search", status=400, body=b'{"error":"rate_limit_error"}')
    error = fetch_error(options(http_server))
    assert str(error) == (
        "127.0.0.1 refused the search (HTTP 400): Lemmy answers 400 for its errors, rate limiting included "
        "(about 60 searches per 10 minutes per IP); fetch less often or lower max_pages"
    )
    assert error.status == 400


def test_404(http_server):
    error = fetch_error(options(http_server))  # nothing routed: not a Lemmy instance
    assert str(error) == f"127.0.0.1: no Lemmy API at {http_server.base_url}/api/v3/search (HTTP 404); check instance"


def test_401(http_server):
    http_server.route("/api/v3/search", status=401, body=b'{"error":"not_logged_in"}')
    assert "search is not public on this instance (HTTP 401)" in str(fetch_error(options(http_server)))


def test_429_keeps_retry_after(http_server):
    http_server.route("/api/v3/search", status=429, headers={"Retry-After": "30"})
    error = fetch_error(options(http_server))
    assert error.retry_after == 30 and error.status == 429


def test_500(http_server):
    http_server.route("/api/v3/search", status=500)
    assert str(fetch_error(options(http_server))) == "HTTP 500 from 127.0.0.1"


def test_truncated_json(http_server):
    http_server.route("/api/v3/search", body=json.dumps({"posts": [post_view(1)]}).encode()[:-20])
    assert str(fetch_error(options(http_server))).startswith("invalid JSON from 127.0.0.1")


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b'{"error": "unknown"}', "not a Lemmy search result with posts"),
        (b'{"posts": {"a": 1}}', "not a Lemmy search result with posts"),
        (b"[]", "not a Lemmy search result with posts"),
        (b"<html>Bad gateway</html>", "an HTML page, not the API's JSON"),
    ],
)
def test_wrong_shape(http_server, body, reason):
    http_server.route("/api/v3/search", body=body)
    assert str(fetch_error(options(http_server))) == f"unexpected response from 127.0.0.1: {reason}"


def test_no_rate_limit_headers_no_wait(http_server):
    # Lemmy sends no rate-limit headers; nothing to wait for until it refuses (400/429 above).
    FakeLemmy(http_server, [post_view(1)])
    assert run(options(http_server)).wait is None

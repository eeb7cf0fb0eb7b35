"""sources.reddit against a loopback server playing Reddit's OAuth token endpoint and listings."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from listener.errors import FetchError
from listener.sources import FetchResult, SourceState, source_class
from listener.sources.http import HttpClient
from listener.sources.reddit import RedditSource, parse_listing, query_matches, thing_mention
from tests.httpserver import Reply, http_server  # noqa: F401  (fixture)

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)
T0 = NOW.timestamp()
SAMPLES = Path(__file__).resolve().parents[1].parent / "shared" / "samples" / "api" / "reddit"
CLIENT_ID, CLIENT_SECRET = "app-id-123", "s3cr3t-value-xyz"
TOKEN_PATH = "/api/v1/access_token"


@pytest.fixture(autouse=True)
def credentials(monkeypatch):
    monkeypatch.setenv("TEST_REDDIT_ID", CLIENT_ID)
    monkeypatch.setenv("TEST_REDDIT_SECRET", CLIENT_SECRET)


def post(n: int, created: float, **fields) -> dict:
    data = {
        "name": f"t3_p{n}",
        "id": f"p{n}",
        "title": f"Post {n} about listener",
        "selftext": "",
        "selftext_html": None,
        "url": f"https://example.com/{n}?utm_medium=social",
        "is_self": False,
        "permalink": f"/r/test/comments/p{n}/post_{n}/",
        "author": "alice",
        "subreddit": "test",
        "created_utc": created,
        "score": 5,
        "num_comments": 2,
        "ups": 5,
        "over_18": False,
    }
    data.update(fields)
    return {"kind": "t3", "data": data}


def reddit_comment(n: int, created: float, body: str, **fields) -> dict:
    data = {
        "name": f"t1_c{n}",
        "id": f"c{n}",
        "body": body,
        "link_title": "A thread",
        "link_id": "t3_p1",
        "parent_id": "t3_p1",
        "permalink": f"/r/test/comments/p1/a_thread/c{n}/",
        "author": "bob",
        "subreddit": "test",
        "created_utc": created,
        "score": 1,
    }
    data.update(fields)
    return {"kind": "t1", "data": data}


class FakeReddit:
    """Token endpoint plus listings with Reddit's before/after paging over newest-first items."""

    def __init__(self, server, items: list[dict] | None = None, *, expires_in: int = 86400):
        self.items = items or []
        self.comments: list[dict] = []
        self.tokens: list[str] = []
        self.expires_in = expires_in
        self.headers: dict[str, str] = {}
        self.revoked: set[str] = set()
        self.refuse_all = False  # every listing request gets a 401
        self.listing_requests: list[dict] = []
        server.route(TOKEN_PATH, self.token)
        for path in ("/search", "/r/test/search", "/r/test/comments"):
            server.route(path, self.listing)

    def token(self, request) -> Reply:
        expected = "Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        if request.method != "POST" or request.headers.get("authorization") != expected:
            return Reply(401, b'{"message": "Unauthorized", "error": 401}', {"Content-Type": "application/json"})
        assert parse_qs(request.body.decode()) == {"grant_type": ["client_credentials"]}
        token = f"tok-{len(self.tokens) + 1}"
        self.tokens.append(token)
        body = {"access_token": token, "token_type": "bearer", "expires_in": self.expires_in, "scope": "*"}
        return Reply(200, json.dumps(body).encode(), {"Content-Type": "application/json"})

    def listing(self, request) -> Reply:
        params = {k: v[0] for k, v in parse_qs(urlsplit(request.path).query).items()}
        self.listing_requests.append({"path": urlsplit(request.path).path, **params})
        auth = request.headers.get("authorization", "")
        if self.refuse_all or not auth.startswith("bearer ") or auth[7:] not in self.tokens or auth[7:] in self.revoked:
            return Reply(401, b'{"message": "Unauthorized", "error": 401}', {"Content-Type": "application/json"})
        items = self.comments if request.path.startswith("/r/test/comments") else self.items
        names = [i["data"].get("name") if isinstance(i["data"], dict) else None for i in items]
        limit = int(params.get("limit", 25))
        if "before" in params:
            if params["before"] not in names:
                page, start = [], 0
            else:
                end = names.index(params["before"])
                start = max(0, end - limit)
                page = items[start:end]
        elif "after" in params:
            if params["after"] not in names:
                page, start = [], len(items)
            else:
                start = names.index(params["after"]) + 1
                page = items[start:start + limit]
        else:
            start, page = 0, items[:limit]
        end = start + len(page)
        body = {"kind": "Listing", "data": {
            "after": names[end - 1] if page and end < len(items) else None,
            "before": names[start] if page and start > 0 else None,
            "dist": len(page), "modhash": "", "children": page}}
        return Reply(200, json.dumps(body).encode(), {"Content-Type": "application/json", **self.headers})


def source(http_server, **options) -> RedditSource:
    options.setdefault("query", "listener")
    return RedditSource("reddit", RedditSource.Options(
        base_url=http_server.base_url, auth_url=http_server.base_url,
        client_id_env="TEST_REDDIT_ID", client_secret_env="TEST_REDDIT_SECRET", **options))


def run(src: RedditSource, state: SourceState = SourceState(), since: datetime | None = None,
        now: datetime = NOW) -> FetchResult:
    async def go() -> FetchResult:
        async with HttpClient() as http:
            return await src.fetch(state, http, now, since=since)

    return asyncio.run(go())


def fetch_error(src: RedditSource, **kwargs) -> FetchError:
    with pytest.raises(FetchError) as info:
        run(src, **kwargs)
    message = str(info.value)
    assert "\n" not in message and CLIENT_SECRET not in message and CLIENT_ID not in message
    return info.value


def cursor(result: FetchResult) -> dict:
    return json.loads(result.state.cursor)


def newest_first(count: int, start: float = T0 - 60, step: float = 60, first: int = 1) -> list[dict]:
    return [post(n, start - (n - first) * step) for n in range(first, first + count)]


# --- contract and options --------------------------------------------------------------------


def test_kind_options_and_hosts():
    assert source_class("reddit") is RedditSource
    fields = {f.name: f for f in dataclasses.fields(RedditSource.Options)}
    assert set(fields) == {"query", "client_id_env", "client_secret_env", "subreddit", "comments", "max_pages",
                           "user_agent", "base_url", "auth_url"}
    assert all(f.metadata["help"] and "\n" not in f.metadata["help"] for f in fields.values())
    assert fields["client_id_env"].metadata["secret"] and fields["client_secret_env"].metadata["secret"]
    assert fields["base_url"].metadata["url"] and fields["auth_url"].metadata["url"]
    src = RedditSource("r", RedditSource.Options(query="x"))
    assert src.hosts() == ["oauth.reddit.com", "www.reddit.com"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"query": ""}, "query: give the words"),
        ({"query": "x", "subreddit": "r/python"}, "subreddit: 'r/python' is not a subreddit name"),
        ({"query": "x", "comments": True}, "comments = true needs subreddit"),
        ({"query": "x", "max_pages": 0}, "max_pages: must be at least 1"),
        ({"query": "x", "user_agent": "a\nb"}, "user_agent: must be one line"),
    ],
)
def test_option_checks(options, message):
    with pytest.raises(ValueError, match=message):
        RedditSource.Options(**options)
    RedditSource.Options(query="x", subreddit="python+learnpython", comments=True)


# --- conformance over the recorded samples ---------------------------------------------------

needs_samples = pytest.mark.skipif(not SAMPLES.is_dir(), reason="no ../shared/samples/api/reddit")


@needs_samples
def test_recorded_cassette_through_fetch(http_server):
    cassette = json.loads((SAMPLES / "search_listing_r_all_q_praw_oauth_search.with_http.json").read_text())
    fake = FakeReddit(http_server)  # for the token
    headers = {name: ", ".join(values) for name, values in cassette["headers"].items()}
    http_server.route("/search", body=json.dumps(cassette["body"]).encode(), status=cassette["status"]["code"],
                      headers=headers)
    result = run(source(http_server, query="praw oauth search"), since=datetime(2013, 1, 1, tzinfo=timezone.utc))
    assert fake.tokens == ["tok-1"] and result.requests == 2  # token + one page (after is null)
    children = cassette["body"]["data"]["children"]
    assert [m.source_id for m in result.mentions] == [c["data"]["name"] for c in children]
    first, raw = result.mentions[0], children[0]["data"]
    assert first.url == "https://www.reddit.com" + raw["permalink"]
    assert first.title == raw["title"] and first.author == raw["author"]
    assert first.text.startswith("solved\nProblem solved with this:")  # from selftext_html, tags gone
    assert "<p>" not in first.text and "<div" not in first.text and "&#39;" not in first.text
    assert first.published_at == datetime.fromtimestamp(raw["created_utc"], timezone.utc)
    assert first.score == raw["score"] and first.replies == raw["num_comments"]
    assert first.extra == {"type": "post", "subreddit": "redditdev", "over_18": False}  # a self post: no link
    assert all(m.language is None and m.hashtags == () for m in result.mentions)
    assert any("\u305f\u3073\u305f\u3073" in (m.title or "") for m in result.mentions)  # Japanese title intact


@needs_samples
def test_recorded_listings_parse():
    search = json.loads((SAMPLES / "search_listing_r_all_q_praw_oauth_search.json").read_text())
    assert len(parse_listing(search)) == len(search["data"]["children"]) == 6
    modern = json.loads((SAMPLES / "user_overview_listing_new_2026.json").read_text())
    mentions = parse_listing(modern)
    assert len(mentions) == 100
    kinds = {m.extra["type"] for m in mentions}
    assert kinds == {"post", "comment"}
    for mention, child in zip(mentions, modern["data"]["children"]):
        data = child["data"]
        assert mention.source_id == data["name"]
        assert mention.url.startswith("https://www.reddit.com/r/")
        assert mention.published_at == datetime.fromtimestamp(data["created_utc"], timezone.utc)
        json.dumps(mention.extra)
        if child["kind"] == "t1":
            assert mention.title is None and mention.extra["post_title"] == data["link_title"]
            assert mention.text or not data["body"].strip()
        else:
            assert mention.title == data["title"] and mention.replies == data["num_comments"]


@needs_samples
def test_modern_listing_through_fetch_first_page(http_server):
    FakeReddit(http_server)
    body = (SAMPLES / "user_overview_listing_new_2026.json").read_bytes()
    http_server.route("/search", body=body, headers={"Content-Type": "application/json; charset=UTF-8",
                                                     "x-ratelimit-remaining": "995.0", "x-ratelimit-used": "5",
                                                     "x-ratelimit-reset": "300"})
    result = run(source(http_server))  # no cursor, no since: one page
    assert len(result.mentions) == 100 and result.requests == 2 and result.wait is None
    newest = json.loads(body)["data"]["children"][0]["data"]
    assert cursor(result)["posts"] == {"newest": newest["name"], "created": newest["created_utc"]}


# --- auth ------------------------------------------------------------------------------------


def test_token_is_fetched_once_cached_and_refreshed(http_server):
    fake = FakeReddit(http_server, newest_first(3))
    src = source(http_server, user_agent="test:listener:0.1 (by /u/tester)")
    first = run(src, since=NOW - timedelta(days=1))
    token_requests = http_server.requests_to(TOKEN_PATH)
    assert len(token_requests) == 1 and first.requests == 2
    assert token_requests[0].headers["user-agent"] == "test:listener:0.1 (by /u/tester)"
    listing = http_server.requests_to("/search")[0]
    assert listing.headers["authorization"] == "bearer tok-1"
    assert listing.headers["user-agent"] == "test:listener:0.1 (by /u/tester)"

    second = run(src, first.state, now=NOW + timedelta(hours=23))
    assert fake.tokens == ["tok-1"] and second.requests == 2  # before= was empty, then the top checked
    third = run(src, second.state, now=NOW + timedelta(hours=23, minutes=59, seconds=30))  # within a minute of expiry
    assert fake.tokens == ["tok-1", "tok-2"] and third.requests == 3


def test_401_gets_a_new_token_and_retries_once(http_server):
    fake = FakeReddit(http_server, newest_first(2))
    src = source(http_server)
    first = run(src, since=NOW - timedelta(days=1))
    fake.revoked.add("tok-1")
    fake.items.insert(0, post(99, T0))
    second = run(src, first.state)
    assert fake.tokens == ["tok-1", "tok-2"]
    assert [m.source_id for m in second.mentions] == ["t3_p99"]
    assert second.requests == 3  # the refused request, the token, the retry
    fake.refuse_all = True  # the fresh token is refused as well: one retry, then an error
    error = fetch_error(src, state=second.state)
    assert error.status == 401 and "refused a fresh access token" in str(error)
    assert fake.tokens == ["tok-1", "tok-2", "tok-3"]


def test_missing_environment_variable(http_server, monkeypatch):
    monkeypatch.delenv("TEST_REDDIT_SECRET")
    error = fetch_error(source(http_server))
    assert str(error) == "environment variable TEST_REDDIT_SECRET is not set (needed by client_secret_env)"
    assert http_server.requests == []


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        (Reply(401, b'{"message": "Unauthorized", "error": 401}'), "Reddit refused the app's credentials (HTTP 401"),
        (Reply(200, b'{"error": "invalid_grant"}'), "Reddit gave no access token (invalid_grant)"),
        (Reply(200, b'["no"]'), "Reddit gave no access token at"),
    ],
)
def test_refused_credentials(http_server, monkeypatch, reply, message):
    http_server.route(TOKEN_PATH, reply)
    error = fetch_error(source(http_server))
    assert message in str(error) and "TEST_REDDIT_ID and TEST_REDDIT_SECRET" in str(error)


# --- paging and cursors ----------------------------------------------------------------------


def test_first_fetch_pages_down_to_since_then_asks_before_the_newest(http_server):
    items = newest_first(250, step=60) + newest_first(30, start=T0 - 10 * 86400, first=251)
    fake = FakeReddit(http_server, items)
    src = source(http_server)
    first = run(src, since=NOW - timedelta(days=2))
    assert first.requests == 4  # token + 3 pages (the third meets an item older than since)
    assert len(first.mentions) == 250
    requests = fake.listing_requests
    assert [r.get("after") for r in requests] == [None, "t3_p100", "t3_p200"]
    assert all(r["q"] == "listener" and r["sort"] == "new" and r["limit"] == "100" and r["type"] == "link"
               and r["raw_json"] == "1" and "restrict_sr" not in r for r in requests)
    assert cursor(first) == {"posts": {"newest": "t3_p1", "created": T0 - 60}}

    fake.items[:0] = [post(1000 + n, T0 + 100 - n) for n in range(1, 6)]  # five new posts
    second = run(src, first.state)
    assert fake.listing_requests[3]["before"] == "t3_p1"
    assert second.requests == 1  # the token is cached; five new posts: one short page
    assert sorted(m.source_id for m in second.mentions) == [f"t3_p{1000 + n}" for n in range(1, 6)]
    assert cursor(second) == {"posts": {"newest": "t3_p1001", "created": T0 + 99}}


def test_hundred_new_posts_cost_two_requests(http_server):
    fake = FakeReddit(http_server, newest_first(1, start=T0 - 3600, first=500))
    src = source(http_server)
    first = run(src, since=NOW - timedelta(days=1))
    fake.items[:0] = newest_first(100)
    second = run(src, first.state)
    assert len(second.mentions) == 100 and second.requests == 2  # a full page, then an empty one
    assert [r.get("before") for r in fake.listing_requests[1:]] == ["t3_p500", "t3_p1"]


def test_more_new_posts_than_max_pages_continue_next_fetch(http_server):
    fake = FakeReddit(http_server, newest_first(1, start=T0 - 86400, first=900))
    src = source(http_server, max_pages=2)
    first = run(src, since=NOW - timedelta(days=2))
    fake.items[:0] = newest_first(250)  # t3_p1 newest ... t3_p250 oldest new
    second = run(src, first.state)
    assert second.requests == 2 and len(second.mentions) == 200
    assert {m.source_id for m in second.mentions} == {f"t3_p{n}" for n in range(51, 251)}  # the oldest new ones
    assert cursor(second)["posts"]["newest"] == "t3_p51"
    third = run(src, second.state)
    assert {m.source_id for m in third.mentions} == {f"t3_p{n}" for n in range(1, 51)}
    assert cursor(third)["posts"]["newest"] == "t3_p1"


def test_long_backfill_leaves_a_backlog_for_later_fetches(http_server):
    fake = FakeReddit(http_server, newest_first(450, step=120))
    src = source(http_server, max_pages=2)
    since = NOW - timedelta(days=2)
    first = run(src, since=since)
    assert len(first.mentions) == 200
    assert cursor(first)["posts"] == {"newest": "t3_p1", "created": T0 - 60,
                                      "backlog": {"after": "t3_p200", "until": since.timestamp()}}
    fake.items.insert(0, post(7777, T0 + 10))
    seen = {m.source_id for m in first.mentions}
    state = first.state
    for _ in range(5):
        result = run(src, state)
        seen |= {m.source_id for m in result.mentions}
        state = result.state
        if "backlog" not in cursor(result)["posts"]:
            break
    assert seen == {i["data"]["name"] for i in fake.items}
    assert cursor(result)["posts"]["newest"] == "t3_p7777"


def test_deleted_anchor_falls_back_to_the_stored_time(http_server):
    fake = FakeReddit(http_server, newest_first(3, start=T0 - 3600))
    src = source(http_server)
    first = run(src, since=NOW - timedelta(days=1))
    assert cursor(first)["posts"]["newest"] == "t3_p1"
    del fake.items[0]  # the anchor is deleted: before=t3_p1 now answers nothing
    fake.items[:0] = [post(10, T0 - 60), post(11, T0 - 120)]
    second = run(src, first.state)
    assert [m.source_id for m in second.mentions] == ["t3_p10", "t3_p11"]
    assert [r.get("before") for r in fake.listing_requests[-2:]] == ["t3_p1", None]
    assert cursor(second)["posts"] == {"newest": "t3_p10", "created": T0 - 60}
    quiet = run(src, second.state)  # nothing new: the top is checked and ends at the anchor
    assert quiet.mentions == [] and quiet.requests == 2 and quiet.state == second.state


def test_subreddit_search_is_restricted(http_server):
    fake = FakeReddit(http_server, newest_first(2))
    result = run(source(http_server, subreddit="test"), since=NOW - timedelta(days=1))
    assert len(result.mentions) == 2
    (request,) = fake.listing_requests
    assert request["path"] == "/r/test/search" and request["restrict_sr"] == "1"


def test_comments_stream_is_filtered_by_the_query(http_server):
    fake = FakeReddit(http_server, newest_first(1))
    fake.comments = [
        reddit_comment(1, T0 - 10, "I switched to Listener last week"),
        reddit_comment(2, T0 - 20, "unrelated chatter"),
        reddit_comment(3, T0 - 30, "Wij gebruiken **listener** al een jaar", body_html=(
            '<div class="md"><p>Wij gebruiken <strong>listener</strong> al een jaar</p></div>')),
    ]
    src = source(http_server, subreddit="test", comments=True, query="listener")
    first = run(src, since=NOW - timedelta(days=1))
    ids = [m.source_id for m in first.mentions]
    assert ids == ["t3_p1", "t1_c1", "t1_c3"]
    dutch = first.mentions[2]
    assert dutch.text == "Wij gebruiken listener al een jaar" and dutch.title is None
    assert dutch.url == "https://www.reddit.com/r/test/comments/p1/a_thread/c3/"
    assert dutch.extra == {"type": "comment", "subreddit": "test", "post_title": "A thread", "post_id": "t3_p1",
                           "parent_id": "t3_p1"}
    state = cursor(first)
    assert state["comments"] == {"newest": "t1_c1", "created": T0 - 10}  # the stream, not only the matches
    fake.comments.insert(0, reddit_comment(4, T0 - 5, "listener again"))
    second = run(src, first.state)
    assert [m.source_id for m in second.mentions] == ["t1_c4"]
    assert fake.listing_requests[-1]["path"] == "/r/test/comments" and fake.listing_requests[-1]["before"] == "t1_c1"


@pytest.mark.parametrize(
    ("query", "text", "matches"),
    [
        ("listener", "We use LISTENER daily", True),
        ("acme listener", "acme ships a listener", True),
        ("acme listener", "acme ships", False),
        ('"social listening"', "great social listening tool", True),
        ('"social listening"', "listening to social media", False),
        ("acme OR globex", "globex is fine", True),
        ("acme -spam", "acme spam here", False),
        ("acme NOT spam", "acme is nice", True),
        ("title:acme AND listener", "acme listener", True),
        ('unbalanced "quote', "an unbalanced \"quote", True),
    ],
)
def test_query_matches(query, text, matches):
    assert query_matches(query, text) is matches


def test_rate_limit_headers_stop_paging_and_set_wait(http_server):
    fake = FakeReddit(http_server, newest_first(300, step=30))
    fake.headers = {"X-Ratelimit-Used": "100", "X-Ratelimit-Remaining": "0.0", "X-Ratelimit-Reset": "42"}
    src = source(http_server)
    since = NOW - timedelta(days=1)
    result = run(src, since=since)
    assert result.wait == 42 and result.requests == 2  # token + one page, then it stopped
    assert len(result.mentions) == 100
    assert cursor(result)["posts"]["backlog"] == {"after": "t3_p100", "until": since.timestamp()}
    fake.headers = {"X-Ratelimit-Remaining": "580.0", "X-Ratelimit-Reset": "400"}
    later = run(src, result.state)
    assert later.wait is None and len(later.mentions) == 200


def test_missing_fields_emoji_and_dutch_posts(http_server):
    items = [
        {"kind": "t3", "data": {"name": "t3_bare", "created_utc": T0 - 10}},
        post(2, T0 - 20, title="\U0001F3A7\U0001F525", selftext="", url="https://www.reddit.com/r/test/comments/p2/x/",
             is_self=True),
        post(3, T0 - 30, title="Luisteren naar klanten", selftext="Wat vinden jullie van **Acme**? Het werkt prima.",
             author="[deleted]", score=None, num_comments=None, over_18=None, subreddit=None),
        {"kind": "t5", "data": {"name": "t5_sub", "created_utc": T0 - 40}},  # a subreddit: skipped
        {"kind": "t3", "data": "broken"},
        {"kind": "t3", "data": {"title": "no name", "created_utc": T0 - 50}},
    ]
    FakeReddit(http_server, items)
    result = run(source(http_server), since=NOW - timedelta(days=1))
    bare, emoji, dutch = result.mentions
    assert bare.source_id == "t3_bare" and bare.text == "" and bare.url is None and bare.title is None
    assert bare.extra == {"type": "post"} and bare.score is None
    assert emoji.title == emoji.text == "\U0001F3A7\U0001F525" and "link" not in emoji.extra
    assert dutch.text == "Wat vinden jullie van **Acme**? Het werkt prima." and dutch.author is None
    assert dutch.language is None and dutch.extra == {"type": "post", "link": "https://example.com/3"}


def test_link_posts_keep_the_external_url_in_extra(http_server):
    FakeReddit(http_server, [post(1, T0 - 10)])
    (mention,) = run(source(http_server), since=NOW - timedelta(days=1)).mentions
    assert mention.url == "https://www.reddit.com/r/test/comments/p1/post_1/"
    assert mention.extra["link"] == "https://example.com/1"
    assert mention.text == mention.title == "Post 1 about listener"


def test_thing_mention_ignores_other_kinds():
    assert thing_mention({"kind": "more", "data": {"name": "x"}}) is None
    assert thing_mention({"kind": "t1", "data": {"id": "abc", "body": "hi"}}).source_id == "t1_abc"


@pytest.mark.parametrize(
    ("reply", "message", "status"),
    [
        (Reply(404, b'{"message": "Not Found", "error": 404}'), "HTTP 404 not found at http://127.0.0.1", 404),
        (Reply(403, b'{"reason": "private"}'), "r/test may be private", 403),
        (Reply(500, b"oops"), "HTTP 500 from 127.0.0.1", 500),
        (Reply(200, b'{"kind": "Listing", "data": {"children": [{"kind"'), "invalid JSON from 127.0.0.1", None),
        (Reply(200, b"<html><body>reddit is down</body></html>", {"Content-Type": "text/html"}), "invalid JSON", None),
        (Reply(200, b'{"kind": "t3", "data": {}}'), "unexpected response from 127.0.0.1: expected a Listing", None),
        (Reply(200, b"[1, 2]"), "unexpected response from 127.0.0.1: expected a Listing, got list", None),
    ],
)
def test_listing_errors_are_one_line(http_server, reply, message, status):
    FakeReddit(http_server)
    http_server.route("/r/test/search", reply)
    error = fetch_error(source(http_server, subreddit="test"), since=NOW - timedelta(days=1))
    assert message in str(error) and error.status == status


def test_unknown_subreddit_redirect_is_an_error(http_server):
    FakeReddit(http_server)
    http_server.route("/r/test/search", Reply(302, b"", {"Location": "/subreddits/search?q=test"}))
    http_server.route("/subreddits/search", body=b'{"kind": "Listing", "data": {"children": []}}')
    error = fetch_error(source(http_server, subreddit="test"), since=NOW - timedelta(days=1))
    assert str(error) == "r/test was redirected to /subreddits/search: check subreddit"


def test_429_keeps_retry_after(http_server):
    FakeReddit(http_server)
    http_server.route("/search", Reply(429, b"", {"Retry-After": "30"}))
    error = fetch_error(source(http_server), since=NOW - timedelta(days=1))
    assert error.retry_after == 30 and str(error) == "too many requests (429) from 127.0.0.1"


def test_secrets_stay_out_of_mentions_and_state(http_server):
    FakeReddit(http_server, newest_first(3))
    result = run(source(http_server), since=NOW - timedelta(days=1))
    dumped = repr(result)
    assert CLIENT_SECRET not in dumped and CLIENT_ID not in dumped and "tok-1" not in dumped

"""sources.bluesky against a real server on 127.0.0.1 playing the session and search XRPC methods."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from listener.config import parse_config
from listener.errors import ConfigError, FetchError
from listener.sources import FetchResult, SourceState, source_class
from listener.sources.bluesky import BlueskySource, jwt_expiry, post_mention
from listener.sources.http import HttpClient
from tests.httpserver import RecordedRequest, Reply, http_server  # noqa: F401  (fixture)

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)
SAMPLES = Path(__file__).resolve().parents[1].parent / "shared" / "samples" / "api" / "bluesky"
HANDLE, PASSWORD = "listener-test.bsky.social", "abcd-efgh-ijkl-mnop"
CREATE = "/xrpc/com.atproto.server.createSession"
REFRESH = "/xrpc/com.atproto.server.refreshSession"
SEARCH = "/xrpc/app.bsky.feed.searchPosts"


@pytest.fixture(autouse=True)
def credentials(monkeypatch):
    monkeypatch.setenv("BSKY_TEST_HANDLE", HANDLE)
    monkeypatch.setenv("BSKY_TEST_PASSWORD", PASSWORD)


def make_jwt(exp: datetime, kind: str, serial: int) -> str:
    """An unsigned JWT with an `exp` claim: the source reads the payload, never the signature."""

    def part(obj: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    claims = {"scope": kind, "sub": "did:plc:listenertest", "exp": int(exp.timestamp()), "jti": serial}
    return f"{part({'typ': 'at+jwt', 'alg': 'ES256K'})}.{part(claims)}.c2ln"


def iso(when: datetime) -> str:
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def post(n: int, at: datetime, text: str = "", **fields) -> dict:
    """A postView like searchPosts returns, with hand-written text."""
    record = {"$type": "app.bsky.feed.post", "createdAt": iso(at), "text": text or f"acme post number {n}",
              "langs": ["en"]}
    record.update(fields.pop("record", {}))
    view = {
        "uri": f"at://did:plc:author{n}/app.bsky.feed.post/3kpost{n:05d}",
        "cid": f"bafyreipost{n}",
        "author": {"did": f"did:plc:author{n}", "handle": f"author{n}.bsky.social", "displayName": f"Author {n}"},
        "record": record,
        "replyCount": 1, "repostCount": 2, "likeCount": 3, "quoteCount": 4,
        "indexedAt": iso(at + timedelta(milliseconds=300)),
        "labels": [],
    }
    view.update(fields)
    return view


def sort_at(view: dict) -> str:
    return min(view["record"]["createdAt"], view["indexedAt"])


class FakeBluesky:
    """createSession, refreshSession and searchPosts as the Bluesky entryway answers them."""

    def __init__(self, server, posts: list[dict] = ()):
        self.server = server
        self.posts = list(posts)
        self.access_lifetime = timedelta(hours=2)
        self.refresh_lifetime = timedelta(days=60)
        self.clock = NOW  # what `exp` claims are computed from
        self.valid_access: set[str] = set()
        self.valid_refresh: set[str] = set()
        self.expired_status = 400  # the reference PDS: 400 ExpiredToken; others 401
        self.search_headers: dict[str, str] = {}
        self.search_override = None  # a Reply to answer searches with instead
        self.serial = 0
        self.issued: list[tuple[str, str]] = []  # (accessJwt, refreshJwt) in the order given out
        server.route(CREATE, self.create_session)
        server.route(REFRESH, self.refresh_session)
        server.route(SEARCH, self.search)

    def issue(self) -> Reply:
        self.serial += 1
        access = make_jwt(self.clock + self.access_lifetime, "access", self.serial)
        refresh = make_jwt(self.clock + self.refresh_lifetime, "refresh", self.serial)
        self.valid_access.add(access)
        self.valid_refresh.add(refresh)
        self.issued.append((access, refresh))
        body = {"accessJwt": access, "refreshJwt": refresh, "handle": HANDLE, "did": "did:plc:listenertest",
                "active": True}
        return json_reply(body)

    def create_session(self, request: RecordedRequest) -> Reply:
        body = json.loads(request.body)
        if body != {"identifier": HANDLE, "password": PASSWORD}:
            return json_reply({"error": "AuthenticationRequired", "message": "Invalid identifier or password"}, 401)
        return self.issue()

    def refresh_session(self, request: RecordedRequest) -> Reply:
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        if token not in self.valid_refresh:
            return json_reply({"error": "ExpiredToken", "message": "Token has expired"}, 400)
        self.valid_refresh.discard(token)  # refresh tokens are single use
        return self.issue()

    def expire_tokens(self) -> None:
        self.valid_access.clear()

    def search(self, request: RecordedRequest) -> Reply:
        if self.search_override is not None:
            return self.search_override
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        if token not in self.valid_access:
            return json_reply({"error": "ExpiredToken", "message": "Token has expired"}, self.expired_status)
        query = {k: v[0] for k, v in parse_qs(urlsplit(request.path).query).items()}
        if not query.get("cursor", "0").isdigit():
            return json_reply({"error": "InvalidRequest", "message": "malformed cursor"}, 400)
        hits = sorted(self.posts, key=sort_at, reverse=True)
        if "since" in query:
            hits = [p for p in hits if sort_at(p) >= query["since"]]
        if "until" in query:
            hits = [p for p in hits if sort_at(p) < query["until"]]
        if "lang" in query:
            hits = [p for p in hits if query["lang"] in (p["record"].get("langs") or [])]
        start, limit = int(query.get("cursor", "0")), int(query.get("limit", "25"))
        page = hits[start:start + limit]
        body: dict = {"posts": page}
        if start + limit < len(hits):
            body["cursor"] = str(start + limit)
        return json_reply(body, headers=self.search_headers)

    def searches(self) -> list[dict[str, str]]:
        return [{k: v[0] for k, v in parse_qs(urlsplit(r.path).query).items()}
                for r in self.server.requests_to(SEARCH)]

    def paths(self) -> list[str]:
        return [r.path.partition("?")[0] for r in self.server.requests]


def json_reply(body, status: int = 200, headers: dict[str, str] | None = None) -> Reply:
    return Reply(status, json.dumps(body).encode(), {"Content-Type": "application/json; charset=utf-8", **(headers or {})})


def make_source(server, **options) -> BlueskySource:
    defaults = dict(query="acme", handle_env="BSKY_TEST_HANDLE", app_password_env="BSKY_TEST_PASSWORD",
                    base_url=server.base_url)
    return BlueskySource("bsky", BlueskySource.Options(**{**defaults, **options}))


def run_fetch(source: BlueskySource, state: SourceState = SourceState(), now: datetime = NOW,
              since: datetime | None = None) -> FetchResult:
    async def go() -> FetchResult:
        async with HttpClient() as http:
            return await source.fetch(state, http, now, since=since)

    return asyncio.run(go())


def fetch_error(source: BlueskySource, state: SourceState = SourceState(), **kwargs) -> FetchError:
    with pytest.raises(FetchError) as info:
        run_fetch(source, state, **kwargs)
    assert "\n" not in str(info.value)
    assert PASSWORD not in str(info.value)
    return info.value


def minutes_ago(n: float) -> datetime:
    return NOW - timedelta(minutes=n)


# --- options and registry -----------------------------------------------------------------------


def test_kind_is_registered_and_options_are_documented():
    assert source_class("bluesky") is BlueskySource
    for f in dataclasses.fields(BlueskySource.Options):
        assert f.metadata.get("help"), f.name
    secret = {f.name for f in dataclasses.fields(BlueskySource.Options) if f.metadata.get("secret")}
    assert secret == {"handle_env", "app_password_env"}
    options = BlueskySource.Options(query="acme")
    assert (options.base_url, options.max_pages, options.language) == ("https://bsky.social", 3, None)
    assert BlueskySource("b", options).hosts() == ["bsky.social"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"query": "  "}, "query must not be empty"),
        ({"query": "acme", "max_pages": 0}, "max_pages must be at least 1"),
        ({"query": "acme", "language": "Dutch!"}, "language must be a language code"),
        ({"query": "acme", "overlap": timedelta(seconds=-1)}, "overlap must not be negative"),
    ],
)
def test_bad_options_are_refused(options, message):
    with pytest.raises(ValueError, match=message):
        BlueskySource.Options(**options)


def test_config_reports_option_problems():
    data = {"topics": [{"name": "acme", "query": "acme"}],
            "sources": [{"name": "bsky", "kind": "bluesky", "query": ""},
                        {"name": "bsky2", "kind": "bluesky", "query": "acme", "app_password_env": "hunter2"}]}
    with pytest.raises(ConfigError) as info:
        parse_config(data)
    problems = " | ".join(info.value.problems)
    assert "sources[0]: query must not be empty" in problems
    assert "sources[1].app_password_env: must be the name of an environment variable" in problems


def test_jwt_expiry():
    assert jwt_expiry(make_jwt(NOW, "access", 1)) == NOW
    for bad in ("", "a.b", "a.!!!.c", "a." + base64.urlsafe_b64encode(b"[1]").decode() + ".c", "x.e30.y"):
        assert jwt_expiry(bad) is None


# --- recorded sample ----------------------------------------------------------------------------


def sample(name: str) -> dict:
    path = SAMPLES / name
    if not path.is_file():
        pytest.skip(f"{path} not present (../shared is not part of a fresh clone)")
    return json.loads(path.read_text())


def test_recorded_search_reply_through_fetch(http_server):
    cassette = sample("searchPosts_q_redistricting.with_http.json")
    fake = FakeBluesky(http_server)
    # The recorded headers, without those that described the recorded encoding of the body.
    headers = {k: v for k, v in cassette["headers"].items()
               if k.lower() not in ("content-encoding", "transfer-encoding", "content-length", "connection")}
    fake.search_override = Reply(cassette["status"], json.dumps(cassette["body"]).encode(), headers)
    since = datetime(2025, 5, 18, 12, 0, tzinfo=timezone.utc)
    result = run_fetch(make_source(http_server, query="redistricting", max_pages=1), since=since,
                       now=datetime(2025, 5, 19, 18, 0, tzinfo=timezone.utc))
    assert fake.searches() == [{"q": "redistricting", "sort": "latest", "limit": "100",
                                "since": "2025-05-18T12:00:00.000Z"}]
    posts = cassette["body"]["posts"]
    assert len(result.mentions) == len(posts) == 25
    assert result.wait is None  # RateLimit-Remaining 2983 of 3000
    assert result.requests == 2  # createSession + one page
    for view, m in zip(posts, result.mentions):
        did, _, rkey = view["uri"].removeprefix("at://").split("/")
        assert m.source_id == view["uri"]
        assert m.url == f"https://bsky.app/profile/{view['author']['handle']}/post/{rkey}"
        assert m.author == view["author"]["handle"] and m.extra["did"] == did
        assert m.published_at.tzinfo is timezone.utc and m.text
        assert m.language in ("en", None)
        assert m.likes == view["likeCount"] and m.reposts == view["repostCount"] and m.replies == view["replyCount"]
        json.dumps(m.extra)  # plain JSON values only
    assert result.mentions[0].hashtags == ("sociology",)  # in the text, without a facet
    assert result.mentions[-1].hashtags == ("txlege",)  # a tag facet
    # The page had a cursor and did not reach `since`: the window stays open below its oldest post.
    state = json.loads(result.state.cursor)
    assert state["hwm"] is None and state["until"] == "2025-05-19T00:16:50.191000Z"
    assert state["floor"] == "2025-05-18T12:00:00Z" and state["top"] == "2025-05-19T17:10:09.561858Z"


def test_recorded_posts_parse_alone():
    body = sample("searchPosts_q_redistricting.json")
    mentions = [post_mention(p) for p in body["posts"]]
    assert all(mentions) and len({m.source_id for m in mentions}) == 25
    assert sum(m.language is None for m in mentions) == 4  # posts without record.langs
    assert "\r" not in mentions[22].text and "\n\n\n" not in mentions[22].text


# --- sessions -------------------------------------------------------------------------------------


def test_first_fetch_signs_in_and_searches_since(http_server):
    fake = FakeBluesky(http_server, [post(i, minutes_ago(i)) for i in range(1, 6)] + [post(99, minutes_ago(600))])
    source = make_source(http_server)
    result = run_fetch(source, since=minutes_ago(120))
    assert fake.paths() == [CREATE, SEARCH]
    assert json.loads(http_server.requests[0].body) == {"identifier": HANDLE, "password": PASSWORD}
    search = http_server.requests_to(SEARCH)[0]
    assert search.headers["authorization"].startswith("Bearer ") and search.headers["authorization"][7:] in fake.valid_access
    assert fake.searches()[0]["since"] == iso(minutes_ago(120))
    assert [m.source_id for m in result.mentions] == [post(i, NOW)["uri"] for i in range(1, 6)]
    assert result.requests == 2
    for token in fake.valid_access | fake.valid_refresh:
        assert token not in result.state.cursor  # tokens stay in memory
        assert token not in repr(source._sessions.session)


def test_session_is_reused_then_refreshed_when_the_access_token_expires(http_server):
    fake = FakeBluesky(http_server, [post(1, minutes_ago(1))])
    source = make_source(http_server)
    state = run_fetch(source, since=minutes_ago(60)).state
    state = run_fetch(source, state, now=NOW + timedelta(minutes=30)).state
    assert fake.paths() == [CREATE, SEARCH, SEARCH]
    # 2 hours later the access JWT's exp has passed: refresh first, with the refresh token.
    fake.clock = NOW + timedelta(hours=2)
    result = run_fetch(source, state, now=NOW + timedelta(hours=2, seconds=-30))
    assert fake.paths() == [CREATE, SEARCH, SEARCH, REFRESH, SEARCH]
    assert http_server.requests_to(REFRESH)[0].headers["authorization"] == f"Bearer {fake.issued[0][1]}"
    assert http_server.requests_to(SEARCH)[-1].headers["authorization"] == f"Bearer {fake.issued[1][0]}"
    assert result.requests == 2


def test_expired_refresh_token_signs_in_again(http_server):
    fake = FakeBluesky(http_server, [post(1, minutes_ago(1))])
    source = make_source(http_server)
    state = run_fetch(source, since=minutes_ago(60)).state
    fake.valid_refresh.clear()  # revoked or expired on the server's side
    result = run_fetch(source, state, now=NOW + timedelta(hours=3))
    assert fake.paths() == [CREATE, SEARCH, REFRESH, CREATE, SEARCH]
    assert result.requests == 3


def test_refresh_token_past_its_exp_is_not_even_tried(http_server):
    fake = FakeBluesky(http_server, [post(1, minutes_ago(1))])
    fake.refresh_lifetime = timedelta(hours=3)
    source = make_source(http_server)
    state = run_fetch(source, since=minutes_ago(60)).state
    run_fetch(source, state, now=NOW + timedelta(hours=4))
    assert fake.paths() == [CREATE, SEARCH, CREATE, SEARCH]


@pytest.mark.parametrize("status", [400, 401])
def test_search_refused_with_an_expired_token_refreshes_and_retries_once(http_server, status):
    fake = FakeBluesky(http_server, [post(1, minutes_ago(1))])
    fake.expired_status = status
    source = make_source(http_server)
    state = run_fetch(source, since=minutes_ago(60)).state
    fake.expire_tokens()  # the JWT's exp is still ahead, but the server no longer takes it
    result = run_fetch(source, state, now=NOW + timedelta(minutes=10))
    assert fake.paths() == [CREATE, SEARCH, SEARCH, REFRESH, SEARCH]
    assert http_server.requests_to(SEARCH)[-1].headers["authorization"] == f"Bearer {fake.issued[1][0]}"
    assert result.requests == 3


def test_search_still_unauthorized_after_refresh_is_a_clear_error(http_server):
    fake = FakeBluesky(http_server, [post(1, minutes_ago(1))])
    source = make_source(http_server)
    run_fetch(source, since=minutes_ago(60))
    fake.search_override = json_reply({"error": "AuthenticationRequired"}, 401)
    error = fetch_error(source)
    assert error.status == 401
    assert str(error).startswith("Bluesky search at 127.0.0.1 refused a fresh session (HTTP 401)")
    assert "BSKY_TEST_PASSWORD" in str(error)
    assert fake.paths()[-3:] == [SEARCH, REFRESH, SEARCH]
    fake.search_override = None
    run_fetch(source)  # the refused session was dropped: sign in anew
    assert fake.paths()[-2:] == [CREATE, SEARCH]


def test_wrong_password_is_a_clear_error(http_server, monkeypatch):
    fake = FakeBluesky(http_server, [post(1, minutes_ago(1))])
    monkeypatch.setenv("BSKY_TEST_PASSWORD", "wrong-wrong-wrong")
    error = fetch_error(make_source(http_server))
    assert str(error) == (
        "Bluesky sign-in refused by 127.0.0.1 (HTTP 401): check that BSKY_TEST_HANDLE holds the account's "
        "handle and BSKY_TEST_PASSWORD an app password (Settings > Privacy and security > App passwords)"
    )
    assert "wrong-wrong" not in str(error)
    assert fake.paths() == [CREATE]


@pytest.mark.parametrize(("variable", "option"), [("BSKY_TEST_HANDLE", "handle_env"),
                                                   ("BSKY_TEST_PASSWORD", "app_password_env")])
def test_missing_environment_variable(http_server, monkeypatch, variable, option):
    FakeBluesky(http_server)
    monkeypatch.delenv(variable)
    error = fetch_error(make_source(http_server))
    assert str(error) == f"environment variable {variable} is not set (needed by {option})"
    assert http_server.requests == []


def test_sign_in_reply_without_tokens(http_server):
    http_server.route(CREATE, json_reply({"did": "did:plc:x"}))
    error = fetch_error(make_source(http_server))
    assert str(error) == "unexpected response from 127.0.0.1: createSession gave no accessJwt and refreshJwt"


# --- paging and the cursor ------------------------------------------------------------------------


def test_pages_with_cursor_and_second_fetch_gets_only_new_posts(http_server):
    fake = FakeBluesky(http_server, [post(i, minutes_ago(i / 2)) for i in range(1, 151)])
    source = make_source(http_server)
    first = run_fetch(source, since=minutes_ago(24 * 60))
    assert len(first.mentions) == 150
    assert [s.get("cursor") for s in fake.searches()] == [None, "100"]
    assert first.requests == 3  # createSession + 2 pages
    hwm = json.loads(first.state.cursor)["hwm"]
    assert hwm.startswith(iso(minutes_ago(0.5))[:19])
    # Three new posts, one of them created before the last fetch but indexed only now.
    late = post(1001, minutes_ago(2), indexedAt=iso(NOW + timedelta(minutes=1)))
    fake.posts += [post(1002, NOW + timedelta(minutes=1)), post(1003, NOW + timedelta(minutes=2)), late]
    second = run_fetch(source, first.state, now=NOW + timedelta(minutes=5))
    assert sorted(m.source_id for m in second.mentions) == sorted(p["uri"] for p in fake.posts[-3:])
    assert second.requests == 1  # the session was kept
    request = fake.searches()[-1]
    assert request["since"] == iso(datetime.fromisoformat(hwm.replace("Z", "+00:00")) - timedelta(minutes=5))
    assert "cursor" not in request
    # Nothing new: nothing returned, and the state is kept.
    third = run_fetch(source, second.state, now=NOW + timedelta(minutes=10))
    assert third.mentions == [] and json.loads(third.state.cursor)["hwm"] == json.loads(second.state.cursor)["hwm"]


def test_stopping_at_max_pages_keeps_the_gap_until_it_is_closed(http_server):
    fake = FakeBluesky(http_server, [post(i, minutes_ago(i)) for i in range(1, 251)])
    source = make_source(http_server, max_pages=2)
    first = run_fetch(source, since=minutes_ago(24 * 60))
    assert len(first.mentions) == 200
    state = json.loads(first.state.cursor)
    assert state["hwm"] is None and state["floor"] == "2026-11-19T12:00:00Z"
    assert state["top"] == "2026-11-20T11:59:00Z" and state["until"] == "2026-11-20T08:40:00Z"
    # Five new posts arrive; the next fetch first closes the gap below the oldest post it read.
    fake.posts += [post(2000 + i, NOW + timedelta(minutes=i)) for i in range(1, 6)]
    second = run_fetch(source, first.state, now=NOW + timedelta(minutes=10))
    assert fake.searches()[-1] == {"q": "acme", "sort": "latest", "limit": "100",
                                   "since": iso(minutes_ago(24 * 60)), "until": "2026-11-20T08:40:00.001Z"}
    assert len(second.mentions) == 50  # the rest of the window; the post at `until` was seen
    state = json.loads(second.state.cursor)
    assert "until" not in state and state["hwm"] == "2026-11-20T11:59:00Z"
    third = run_fetch(source, second.state, now=NOW + timedelta(minutes=15))
    assert len(third.mentions) == 5
    every = [m.source_id for r in (first, second, third) for m in r.mentions]
    assert len(every) == len(set(every)) == len(fake.posts) == 255


def test_posts_tied_at_the_stopping_point_are_neither_lost_nor_repeated(http_server):
    tied = minutes_ago(30)
    views = [post(i, minutes_ago(i / 10)) for i in range(1, 96)] + [post(i, tied) for i in range(96, 111)]
    fake = FakeBluesky(http_server, views + [post(i, minutes_ago(40 + i)) for i in range(111, 131)])
    source = make_source(http_server, max_pages=1)
    first = run_fetch(source, since=minutes_ago(24 * 60))
    assert json.loads(first.state.cursor)["until"] == "2026-11-20T11:30:00Z"  # five of the tied posts read
    second = run_fetch(source, first.state)
    assert fake.searches()[-1]["until"] == "2026-11-20T11:30:00.001Z"
    every = [m.source_id for r in (first, second) for m in r.mentions]
    assert len(every) == len(set(every)) == 130


def test_seen_posts_in_the_state_are_bounded(http_server):
    FakeBluesky(http_server, [post(i, minutes_ago(i / 1000)) for i in range(1, 1201)])
    result = run_fetch(make_source(http_server, max_pages=13), since=minutes_ago(60))
    assert len(result.mentions) == 1200
    state = json.loads(result.state.cursor)
    assert len(state["seen"]) == 1000 and "until" not in state
    assert len(result.state.cursor) < 40_000


def test_explicit_since_reaches_back_past_the_high_water_mark(http_server):
    fake = FakeBluesky(http_server, [post(i, minutes_ago(i * 60)) for i in range(1, 4)])
    source = make_source(http_server)
    first = run_fetch(source, since=minutes_ago(90))
    assert len(first.mentions) == 1
    again = run_fetch(source, first.state, since=minutes_ago(24 * 60))
    assert fake.searches()[-1]["since"] == iso(minutes_ago(24 * 60))
    assert len(again.mentions) == 2  # the one seen already is not returned twice


def test_unreadable_state_starts_afresh(http_server):
    fake = FakeBluesky(http_server, [post(1, minutes_ago(1))])
    for cursor in ("not json", "[]", '{"v": 99}', '{"v": 1, "hwm": 5, "seen": [1]}'):
        result = run_fetch(make_source(http_server), SourceState(cursor=cursor), since=minutes_ago(60))
        assert len(result.mentions) == 1
    assert all(s["since"] == iso(minutes_ago(60)) for s in fake.searches())


def test_hundred_new_posts_cost_one_or_two_requests(http_server):
    fake = FakeBluesky(http_server, [post(i, minutes_ago(i / 10)) for i in range(1, 101)])
    source = make_source(http_server)
    first = run_fetch(source, since=minutes_ago(60))
    fake.posts += [post(500 + i, NOW + timedelta(seconds=i)) for i in range(1, 101)]
    result = run_fetch(source, first.state, now=NOW + timedelta(minutes=2))
    assert len(result.mentions) == 100
    assert result.requests in (1, 2)


def test_language_option_is_sent(http_server):
    fake = FakeBluesky(http_server, [post(1, minutes_ago(1)), post(2, minutes_ago(2), record={"langs": ["nl"]})])
    result = run_fetch(make_source(http_server, language="nl"), since=minutes_ago(60))
    assert fake.searches()[0]["lang"] == "nl"
    assert [m.language for m in result.mentions] == ["nl"]


def test_server_ignoring_since_still_stops_at_the_floor(http_server):
    posts = [post(i, minutes_ago(i * 10)) for i in range(1, 40)]
    fake = FakeBluesky(http_server)
    fake.search_override = json_reply({"posts": posts, "cursor": "next"})
    result = run_fetch(make_source(http_server), since=minutes_ago(95))
    assert len(result.mentions) == 9 and len(fake.searches()) == 1
    assert "until" not in json.loads(result.state.cursor)


# --- rate limits and failures ---------------------------------------------------------------------


def test_rate_limit_headers_set_wait_and_stop_paging(http_server):
    fake = FakeBluesky(http_server, [post(i, minutes_ago(i / 2)) for i in range(1, 151)])
    date = datetime(2026, 11, 20, 12, 0, 5, tzinfo=timezone.utc)
    fake.search_headers = {"RateLimit-Limit": "3000", "RateLimit-Remaining": "0",
                           "RateLimit-Reset": str(int(date.timestamp()) + 120), "RateLimit-Policy": "3000;w=300",
                           "Date": format_datetime(date, usegmt=True)}
    result = run_fetch(make_source(http_server), since=minutes_ago(24 * 60))
    assert result.wait == 120
    assert len(fake.searches()) == 1 and len(result.mentions) == 100
    state = json.loads(result.state.cursor)
    assert state["until"] and state["hwm"] is None  # the rest after the reset, from where it stopped


def test_plenty_of_rate_limit_left_means_no_wait(http_server):
    fake = FakeBluesky(http_server, [post(1, minutes_ago(1))])
    fake.search_headers = {"RateLimit-Remaining": "2999", "RateLimit-Reset": str(int(NOW.timestamp()) + 300)}
    assert run_fetch(make_source(http_server), since=minutes_ago(60)).wait is None


def test_429_with_retry_after_propagates(http_server):
    fake = FakeBluesky(http_server)
    fake.search_override = Reply(429, b'{"error":"RateLimitExceeded"}', {"Retry-After": "30"})
    error = fetch_error(make_source(http_server))
    assert error.status == 429 and error.retry_after == 30
    assert str(error) == "too many requests (429) from 127.0.0.1"


def test_429_on_sign_in_propagates(http_server):
    http_server.route(CREATE, Reply(429, b'{"error":"RateLimitExceeded"}', {"Retry-After": "300"}))
    error = fetch_error(make_source(http_server))
    assert error.retry_after == 300


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        (Reply(500, b"oops"), "HTTP 500 from 127.0.0.1"),
        (Reply(404, b"not found"), "HTTP 404 not found at http://127.0.0.1:"),
        (Reply(200, b'{"posts": [{"uri": "at://did:plc:x/app.bsky.fe'), "invalid JSON from 127.0.0.1"),
        (Reply(200, b"<html><body>Service maintenance</body></html>", {"Content-Type": "text/html"}),
         "invalid JSON from 127.0.0.1"),
        (json_reply({"posts": {"uri": "x"}}), "unexpected response from 127.0.0.1: no posts list"),
        (json_reply([{"uri": "x"}]), "unexpected response from 127.0.0.1: no posts list"),
    ],
)
def test_failures_are_one_line_fetch_errors(http_server, reply, message):
    fake = FakeBluesky(http_server)
    fake.search_override = reply
    assert str(fetch_error(make_source(http_server))).startswith(message)


# --- mentions -------------------------------------------------------------------------------------


def fetch_posts(http_server, *views) -> list:
    FakeBluesky(http_server).search_override = json_reply({"posts": list(views)})
    return run_fetch(make_source(http_server), since=minutes_ago(600)).mentions


def test_dutch_post(http_server):
    view = post(7, minutes_ago(3), "Fietsen in de regen is niet erg 🚲 #Fietsen #regen.", record={
        "langs": ["nl-NL"],
        "facets": [{"index": {"byteStart": 35, "byteEnd": 43},
                    "features": [{"$type": "app.bsky.richtext.facet#tag", "tag": "Fietsen"}]}],
        "tags": ["Nederland"],
    })
    (m,) = fetch_posts(http_server, view)
    assert m.language == "nl"
    assert m.hashtags == ("fietsen", "nederland", "regen")
    assert m.text == "Fietsen in de regen is niet erg 🚲 #Fietsen #regen."
    assert m.url == "https://bsky.app/profile/author7.bsky.social/post/3kpost00007"
    assert m.author == "author7.bsky.social"
    assert m.published_at == minutes_ago(3)
    assert (m.likes, m.reposts, m.replies, m.score) == (3, 2, 1, None)
    assert m.extra == {"did": "did:plc:author7", "cid": "bafyreipost7", "quotes": 4,
                       "indexed_at": iso(minutes_ago(3) + timedelta(milliseconds=300))}


def test_emoji_only_post(http_server):
    (m,) = fetch_posts(http_server, post(8, minutes_ago(1), "🎉🔥🙌", record={"langs": []}))
    assert m.text == "🎉🔥🙌" and m.hashtags == () and m.language is None


def test_missing_optional_fields_and_nulls(http_server):
    bare = {"uri": "at://did:plc:bare/app.bsky.feed.post/3kbare", "record": {"text": "acme without extras",
                                                                             "createdAt": iso(minutes_ago(2))}}
    nulls = {"uri": "at://did:plc:nulls/app.bsky.feed.post/3knull", "cid": None, "author": None,
             "record": {"text": "acme with nulls", "langs": None, "facets": None, "tags": 5, "embed": None,
                        "createdAt": None, "reply": None},
             "likeCount": None, "repostCount": True, "replyCount": -1, "quoteCount": "4", "indexedAt": iso(minutes_ago(3))}
    handle_invalid = post(9, minutes_ago(4), author={"did": "did:plc:author9", "handle": "handle.invalid"})
    image_only = post(10, minutes_ago(5), record={"text": "", "embed": {"$type": "app.bsky.embed.images",
                      "images": [{"alt": "A cyclist in the rain"}, {"alt": ""}]}})
    nothing = post(11, minutes_ago(6), record={"text": "   "})
    junk = [None, "post", {"uri": "https://example.com/not-at"}, {"uri": "at://did:plc:x/app.bsky.feed.like/3k"}]
    mentions = fetch_posts(http_server, bare, *junk, nulls, handle_invalid, image_only, nothing)
    assert [m.source_id for m in mentions] == [bare["uri"], nulls["uri"], handle_invalid["uri"], image_only["uri"]]
    a, b, c, d = mentions
    assert (a.author, a.url, a.language, a.likes, a.hashtags) == (
        "did:plc:bare", "https://bsky.app/profile/did:plc:bare/post/3kbare", None, None, ())
    assert a.published_at == minutes_ago(2) and a.extra == {"did": "did:plc:bare"}
    assert (b.likes, b.reposts, b.replies, b.published_at) == (None, None, None, minutes_ago(3))
    assert c.author == "did:plc:author9" and c.url == "https://bsky.app/profile/did:plc:author9/post/3kpost00009"
    assert d.text == "A cyclist in the rain"
    assert all(post_mention(j) is None for j in junk)


def test_reply_and_backdated_post(http_server):
    view = post(12, minutes_ago(30), "acme reply", record={
        "reply": {"parent": {"uri": "at://did:plc:p/app.bsky.feed.post/3kp", "cid": "c"},
                  "root": {"uri": "at://did:plc:p/app.bsky.feed.post/3kp", "cid": "c"}}})
    future = post(13, minutes_ago(20), "acme from the future", record={"createdAt": iso(NOW + timedelta(days=1))})
    ahead, reply = fetch_posts(http_server, future, view)
    assert reply.extra["reply_to"] == "at://did:plc:p/app.bsky.feed.post/3kp"
    # A createdAt in the future sorts (and is published) at indexedAt, as the AppView does.
    assert ahead.published_at == minutes_ago(20) + timedelta(milliseconds=300)

"""sources.mastodon against a real server on 127.0.0.1 that plays a Mastodon instance."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from listener.config import parse_config
from listener.errors import ConfigError, FetchError
from listener.sources import FetchResult, SourceState, source_class
from listener.sources.http import HttpClient
from listener.sources.mastodon import MastodonSource, status_mention
from tests.httpserver import LoopbackServer, RecordedRequest, Reply, http_server  # noqa: F401  (fixture)

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)
SAMPLES = Path(__file__).resolve().parents[1].parent / "shared" / "samples" / "api" / "mastodon"
JSON = {"Content-Type": "application/json; charset=utf-8"}
TAG_LINK = '<a href="https://example.social/tags/python" class="mention hashtag">#<span>python</span></a>'


def status(n: int, *, minutes_ago: float = 0, content: str | None = None, **fields) -> dict:
    """A Status entity with id n, posted `minutes_ago` before NOW on the instance 'example'."""
    created = NOW - timedelta(minutes=minutes_ago)
    entity = {
        "id": str(n),
        "created_at": created.isoformat().replace("+00:00", "Z"),
        "uri": f"https://example.social/users/ann/statuses/{n}",
        "url": f"https://example.social/@ann/{n}",
        "content": content if content is not None else f"<p>Post number {n} about {TAG_LINK}</p>",
        "spoiler_text": "",
        "language": "en",
        "account": {"id": "7", "username": "ann", "acct": "ann", "display_name": "Ann"},
        "tags": [{"name": "python", "url": "https://example.social/tags/python"}],
        "favourites_count": 2,
        "reblogs_count": 1,
        "replies_count": 0,
        "reblog": None,
    }
    entity.update(fields)
    return entity


class FakeInstance:
    """The tag timeline and search of a Mastodon instance, with its id rules, over a list of statuses."""

    def __init__(self, server: LoopbackServer, statuses: list[dict] | None = None, headers: dict | None = None):
        self.statuses = list(statuses or [])
        self.headers = headers or {}
        server.route("/api/v1/timelines/tag/python", self.timeline)
        server.route("/api/v2/search", self.search)

    def page(self, request: RecordedRequest, *, since_key: str) -> list[dict]:
        query = parse_qs(urlsplit(request.path).query)
        limit = min(40, int(query.get("limit", ["20"])[0]))
        key = lambda s: int(s["id"])  # noqa: E731
        items = sorted(self.statuses, key=key, reverse=True)
        if "max_id" in query:
            items = [s for s in items if key(s) < int(query["max_id"][0])]
        if since_key in query:
            items = [s for s in items if key(s) > int(query[since_key][0])]
        return items[:limit]

    def timeline(self, request: RecordedRequest) -> Reply:
        return Reply(200, json.dumps(self.page(request, since_key="since_id")).encode(), {**JSON, **self.headers})

    def search(self, request: RecordedRequest) -> Reply:
        body = {"accounts": [], "statuses": self.page(request, since_key="min_id"), "hashtags": []}
        return Reply(200, json.dumps(body).encode(), {**JSON, **self.headers})


def options(server: LoopbackServer, **kwargs) -> MastodonSource.Options:
    kwargs.setdefault("tags", ("python",))
    kwargs.setdefault("instances", (server.base_url,))
    return MastodonSource.Options(**kwargs)


def run(opts: MastodonSource.Options, state: SourceState = SourceState(),
        since: datetime | None = None) -> FetchResult:
    async def go() -> FetchResult:
        async with HttpClient() as http:
            return await MastodonSource("m", opts).fetch(state, http, NOW, since=since)

    return asyncio.run(go())


def fetch_error(opts: MastodonSource.Options, state: SourceState = SourceState()) -> FetchError:
    with pytest.raises(FetchError) as info:
        run(opts, state)
    assert "\n" not in str(info.value)
    return info.value


def query_of(request: RecordedRequest) -> dict[str, list[str]]:
    return parse_qs(urlsplit(request.path).query)


def cursor(result: FetchResult) -> dict:
    return json.loads(result.state.cursor)


# --- the source contract ----------------------------------------------------------------------


def test_registered_kind_and_options():
    assert source_class("mastodon") is MastodonSource
    fields = {f.name: f for f in dataclasses.fields(MastodonSource.Options)}
    assert set(fields) == {"tags", "instances", "query", "token_env", "max_pages"}
    assert all(f.metadata["help"] and "\n" not in f.metadata["help"] for f in fields.values())
    assert fields["instances"].metadata["url"] is True
    assert fields["token_env"].metadata["secret"] is True
    source = MastodonSource("m", MastodonSource.Options(
        tags=("python",), instances=("https://Mastodon.Social", "https://fosstodon.org/")))
    assert source.hosts() == ["fosstodon.org", "mastodon.social"]
    assert MastodonSource.Options(tags=("python",)).instances == ("https://mastodon.social",)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "give at least one tag in tags, or a query (with token_env)"),
        ({"tags": ("#python",)}, "tags: write tags without '#' ('python', not '#python')"),
        ({"tags": ("two words",)}, "tags: 'two words' is not a hashtag (letters, digits and _ only)"),
        ({"query": "acme"}, "query needs token_env: Mastodon searches post text only for signed-in apps"),
        ({"tags": ("python",), "max_pages": 0}, "max_pages must be at least 1"),
        ({"tags": ("python",), "instances": ()}, "instances: give at least one instance URL"),
    ],
)
def test_option_checks(kwargs, message):
    with pytest.raises(ValueError) as info:
        MastodonSource.Options(**kwargs)
    assert str(info.value) == message


def test_option_check_shows_at_the_source_path_in_config():
    data = {
        "topics": [{"name": "acme", "query": "acme"}],
        "sources": [{"name": "masto", "kind": "mastodon", "tags": ["#acme"]}],
    }
    with pytest.raises(ConfigError) as info:
        parse_config(data)
    assert any(p.startswith("sources[0]") and "without '#'" in p for p in info.value.problems), info.value.problems


# --- recorded samples -------------------------------------------------------------------------

needs_samples = pytest.mark.skipif(not SAMPLES.is_dir(), reason="../shared/samples is not here")


def cassette(name: str) -> dict:
    return json.loads((SAMPLES / name).read_text(encoding="utf-8"))


def cassette_reply(name: str) -> Reply:
    """A recorded response as the loopback server's reply, with its recorded headers."""
    data = cassette(name)
    headers = {k: ", ".join(v) if isinstance(v, list) else str(v) for k, v in data["headers"].items()}
    return Reply(data["status"], json.dumps(data["body"]).encode(), headers)


@needs_samples
def test_recorded_hashtag_timeline(http_server):
    data = cassette("recorded_hashtag_tl_2.json")
    tag = urlsplit(data["request"]["uri"]).path.rsplit("/", 1)[1]
    http_server.route(f"/api/v1/timelines/tag/{tag}", cassette_reply("recorded_hashtag_tl_2.json"))
    result = run(options(http_server, tags=(tag,)))
    assert result.requests == 1 and result.wait is None  # 299 requests left
    (mention,) = result.mentions
    recorded = data["body"][0]
    assert mention.source_id == recorded["uri"]
    assert mention.url == recorded["url"]
    assert mention.text == "#hoot (hashtag toot)"
    assert mention.author == f"{recorded['account']['acct']}@127.0.0.1"  # a local account
    assert mention.language == recorded["language"]
    assert mention.hashtags == ("hoot",)
    assert mention.published_at == datetime(2026, 8, 1, 13, 55, 55, 867000, tzinfo=timezone.utc)
    assert (mention.likes, mention.reposts, mention.replies) == (0, 0, 0)
    assert mention.title is None
    assert cursor(result) == {http_server.base_url: {f"tags:{tag}": {"mark": recorded["id"]}}}


@needs_samples
@pytest.mark.parametrize("name", ["recorded_public_tl_anonymous_2.json", "recorded_hashtag_tl_2.json"])
def test_recorded_statuses_parse(name):
    for entity in cassette(name)["body"]:
        mention = status_mention(entity, "localhost")
        assert mention is not None and mention.source_id == entity["uri"]
        assert mention.text and "<" not in mention.text
        assert mention.author.endswith("@localhost")


@needs_samples
@pytest.mark.parametrize("name", ["status_entity_example.json", "status_view_example.json"])
def test_documented_status_entities(name):
    entity = json.loads((SAMPLES / name).read_text(encoding="utf-8"))
    mention = status_mention(entity, "mastodon.social")
    assert mention.source_id == entity["uri"]
    assert mention.url == entity["url"]
    assert mention.author == f"{entity['account']['acct']}@mastodon.social"
    assert mention.likes == entity["favourites_count"] and mention.reposts == entity["reblogs_count"]
    assert mention.replies == entity["replies_count"]
    assert mention.language == "en"
    assert mention.text and "<" not in mention.text and "&quot;" not in mention.text


@needs_samples
def test_documented_abridged_timeline_without_uri_or_account(http_server):
    body = (SAMPLES / "timelines_tag_cats_limit2.abridged.json").read_bytes()
    http_server.route("/api/v1/timelines/tag/cats", body=body, headers=JSON)
    first, second = run(options(http_server, tags=("cats",))).mentions
    assert first.source_id == "https://127.0.0.1/statuses/103206185588894565"  # no uri, no url: the id
    assert first.text == "#cats" and first.author is None and first.url is None
    assert second.text.startswith("Caught on the hop. \U0001F63A")
    assert second.hashtags == ("qualitätskatzen", "cats", "mastocats", "catsofmastodon", "greece", "agistri")


@needs_samples
def test_recorded_empty_search(http_server, monkeypatch):
    monkeypatch.setenv("MASTO_TOKEN", "secret-token-value")
    http_server.route("/api/v2/search", cassette_reply("recorded_search_2.json"))
    result = run(options(http_server, tags=(), query="mastodonpy_test", token_env="MASTO_TOKEN"))
    assert result.mentions == [] and result.requests == 1
    assert cursor(result) == {http_server.base_url: {}}


@needs_samples
def test_recorded_404(http_server):
    http_server.route("/api/v1/timelines/tag/nosuchtag", body=(SAMPLES / "timelines_tag_404.json").read_bytes(),
                      status=404, headers=JSON)
    error = fetch_error(options(http_server, tags=("nosuchtag",)))
    assert str(error) == (
        f"127.0.0.1:{http_server.port}: no tag timeline for #nosuchtag (HTTP 404); the tag is unknown on this "
        "instance (older Mastodon) or it does not serve the Mastodon API"
    )
    assert error.status == 404


# --- backfill, cursor, paging -------------------------------------------------------------------


def test_first_fetch_reads_back_to_since_then_only_new(http_server):
    instance = FakeInstance(http_server, [status(1000 - i, minutes_ago=i) for i in range(100)])
    opts = options(http_server)
    first = run(opts, since=NOW - timedelta(minutes=50))
    assert first.requests == 2  # 40 newer than since, then a page that crosses it
    assert len(first.mentions) == 51  # minutes 0..50
    assert all(m.published_at >= NOW - timedelta(minutes=50) for m in first.mentions)
    page1, page2 = (query_of(r) for r in http_server.requests)
    assert page1 == {"limit": ["40"]}
    assert page2 == {"limit": ["40"], "max_id": ["961"]}
    assert cursor(first) == {http_server.base_url: {"tags:python": {"mark": "1000"}}}

    instance.statuses += [status(1000 + i, minutes_ago=-i) for i in (1, 2, 3)]
    http_server.requests.clear()
    second = run(opts, first.state)
    assert [m.source_id.rsplit("/", 1)[1] for m in second.mentions] == ["1003", "1002", "1001"]
    assert second.requests == 1
    assert query_of(http_server.requests[0]) == {"limit": ["40"], "since_id": ["1000"]}
    assert cursor(second)[http_server.base_url]["tags:python"] == {"mark": "1003"}

    http_server.requests.clear()
    third = run(opts, second.state)
    assert third.mentions == [] and third.requests == 1
    assert third.state.cursor == second.state.cursor


def test_first_fetch_without_since_reads_one_page(http_server):
    FakeInstance(http_server, [status(1000 - i, minutes_ago=i) for i in range(100)])
    result = run(options(http_server))
    assert result.requests == 1 and len(result.mentions) == 40


def test_hundred_new_posts_cost_three_requests(http_server):
    instance = FakeInstance(http_server, [status(100, minutes_ago=60)])
    opts = options(http_server)
    state = run(opts).state
    instance.statuses += [status(200 + i, minutes_ago=30 - i * 0.1) for i in range(100)]
    http_server.requests.clear()
    result = run(opts, state)
    assert len(result.mentions) == 100
    assert result.requests == 3  # 40 a page is Mastodon's maximum: 40 + 40 + 20
    assert query_of(http_server.requests[1])["max_id"] == ["260"]
    assert cursor(result)[http_server.base_url]["tags:python"] == {"mark": "299"}


def test_stopping_at_max_pages_leaves_a_gap_the_next_fetch_reads_first(http_server):
    instance = FakeInstance(http_server, [status(100, minutes_ago=60)])
    opts = options(http_server, max_pages=2)
    state = run(opts).state
    instance.statuses += [status(200 + i, minutes_ago=30 - i * 0.1) for i in range(100)]
    first = run(opts, state)
    assert first.requests == 2 and len(first.mentions) == 80
    assert cursor(first)[http_server.base_url]["tags:python"] == {"mark": "100", "below": "220", "top": "299"}

    instance.statuses.append(status(400, minutes_ago=1))  # posted meanwhile: read after the gap
    http_server.requests.clear()
    second = run(opts, first.state)
    assert query_of(http_server.requests[0]) == {"limit": ["40"], "since_id": ["100"], "max_id": ["220"]}
    assert sorted(int(m.source_id.rsplit("/", 1)[1]) for m in second.mentions) == list(range(200, 220))
    assert cursor(second)[http_server.base_url]["tags:python"] == {"mark": "299"}

    third = run(opts, second.state)
    assert [m.source_id.rsplit("/", 1)[1] for m in third.mentions] == ["400"]


def test_backfill_with_a_cursor_keeps_the_cursor(http_server):
    FakeInstance(http_server, [status(1000 - i, minutes_ago=i) for i in range(10)])
    opts = options(http_server)
    state = SourceState(cursor=json.dumps({http_server.base_url: {"tags:python": {"mark": "1000"}}}))
    result = run(opts, state, since=NOW - timedelta(minutes=5))
    assert len(result.mentions) == 6
    assert "since_id" not in query_of(http_server.requests[0])
    assert cursor(result) == json.loads(state.cursor)


def test_unreadable_cursor_starts_afresh(http_server):
    FakeInstance(http_server, [status(5)])
    result = run(options(http_server), SourceState(cursor="not json {"))
    assert len(result.mentions) == 1 and cursor(result)[http_server.base_url]["tags:python"] == {"mark": "5"}


def test_tags_are_read_four_per_request(http_server):
    seen = []
    for tag in ("alpha", "epsilon"):
        http_server.route(f"/api/v1/timelines/tag/{tag}", lambda r: (seen.append(r.path), Reply(200, b"[]", JSON))[1])
    opts = options(http_server, tags=("Alpha", "beta", "gamma", "delta", "epsilon", "beta"))
    result = run(opts)
    assert result.requests == 2
    assert query_of(http_server.requests[0])["any[]"] == ["beta", "gamma", "delta"]
    assert "any[]" not in query_of(http_server.requests[1])
    assert set(cursor(result)[http_server.base_url]) == set()  # nothing read yet: no marks


def test_several_instances_one_request_each_and_shared_posts_once(http_server):
    shared = status(9, minutes_ago=1, uri="https://example.social/users/ann/statuses/9")
    remote = dict(shared, id="77", account={"acct": "ann@example.social", "display_name": "Ann"})
    with LoopbackServer() as other:
        FakeInstance(http_server, [shared, status(8, minutes_ago=2)])
        FakeInstance(other, [remote])
        result = run(options(http_server, instances=(http_server.base_url, other.base_url)))
    assert result.requests == 2
    assert [m.source_id.rsplit("/", 1)[1] for m in result.mentions] == ["9", "8"]
    assert result.mentions[0].author == "ann@127.0.0.1"  # local on the first instance
    assert cursor(result) == {
        http_server.base_url: {"tags:python": {"mark": "9"}},
        other.base_url: {"tags:python": {"mark": "77"}},
    }


def test_one_failing_instance_fails_the_fetch_and_is_named(http_server):
    with LoopbackServer() as other:
        FakeInstance(http_server, [status(1)])
        other.route("/api/v1/timelines/tag/python", status=401, body=b'{"error":"This API requires an authenticated user"}')
        error = fetch_error(options(http_server, instances=(http_server.base_url, other.base_url)))
    assert str(error) == (
        f"127.0.0.1:{other.port}: public tag timelines are disabled on this instance (HTTP 401); "
        "use another instance or set token_env"
    )


# --- errors -------------------------------------------------------------------------------------


def test_401_with_a_token_names_the_variable_not_the_token(http_server, monkeypatch):
    monkeypatch.setenv("MASTO_TOKEN", "s3cr3t-value")
    http_server.route("/api/v1/timelines/tag/python", status=401, body=b'{"error":"The access token is invalid"}')
    error = fetch_error(options(http_server, token_env="MASTO_TOKEN"))
    assert "MASTO_TOKEN" in str(error) and "s3cr3t" not in str(error)
    assert http_server.requests[0].headers["authorization"] == "Bearer s3cr3t-value"


def test_missing_token_variable(http_server, monkeypatch):
    monkeypatch.delenv("MASTO_TOKEN", raising=False)
    error = fetch_error(options(http_server, token_env="MASTO_TOKEN"))
    assert str(error) == "environment variable MASTO_TOKEN is not set (needed by token_env)"
    assert http_server.requests == []


def test_429_keeps_retry_after(http_server):
    http_server.route("/api/v1/timelines/tag/python", status=429, headers={"Retry-After": "120"}, body=b"{}")
    error = fetch_error(options(http_server))
    assert error.retry_after == 120 and error.status == 429
    assert str(error) == "too many requests (429) from 127.0.0.1"


def test_500(http_server):
    http_server.route("/api/v1/timelines/tag/python", status=500, body=b"oops")
    assert str(fetch_error(options(http_server))) == "HTTP 500 from 127.0.0.1"


def test_truncated_json(http_server):
    body = json.dumps([status(1)]).encode()[:-30]
    http_server.route("/api/v1/timelines/tag/python", body=body, headers=JSON)
    assert str(fetch_error(options(http_server))).startswith("invalid JSON from 127.0.0.1")


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b'{"error": "something"}', "expected a list of statuses, got an object"),
        (b"\n<!DOCTYPE html><html><body>Maintenance</body></html>", "an HTML page, not the API's JSON"),
    ],
)
def test_wrong_shape(http_server, body, reason):
    http_server.route("/api/v1/timelines/tag/python", body=body)
    assert str(fetch_error(options(http_server))) == f"unexpected response from 127.0.0.1:{http_server.port}: {reason}"


def test_junk_items_are_skipped(http_server):
    http_server.route("/api/v1/timelines/tag/python", body=json.dumps(["x", 3, {"no": "id"}, status(4)]).encode())
    (mention,) = run(options(http_server)).mentions
    assert mention.source_id.endswith("/4")


# --- what a mention carries -----------------------------------------------------------------------


def test_missing_optional_fields(http_server):
    bare = {"id": "12", "created_at": "2026-11-20T11:00:00Z", "content": "<p>Just words</p>"}
    http_server.route("/api/v1/timelines/tag/python", body=json.dumps([bare]).encode())
    (mention,) = run(options(http_server)).mentions
    assert mention.source_id == "https://127.0.0.1/statuses/12"
    assert mention.text == "Just words" and mention.url is None and mention.author is None
    assert mention.language is None and mention.hashtags == () and mention.title is None
    assert (mention.likes, mention.reposts, mention.replies) == (None, None, None)
    assert mention.published_at == datetime(2026, 11, 20, 11, 0, tzinfo=timezone.utc)


def test_nulls_everywhere(http_server):
    nulls = {k: None for k in status(1)} | {"id": "13"}
    http_server.route("/api/v1/timelines/tag/python", body=json.dumps([nulls]).encode())
    (mention,) = run(options(http_server)).mentions
    assert mention.text == "" and mention.published_at is None


def test_emoji_only_post(http_server):
    post = status(20, content="<p>\U0001F389\U0001F418</p>", tags=[], language=None)
    http_server.route("/api/v1/timelines/tag/python", body=json.dumps([post]).encode())
    (mention,) = run(options(http_server)).mentions
    assert mention.text == "\U0001F389\U0001F418" and mention.hashtags == ()


def test_dutch_post_with_content_warning_and_remote_author(http_server):
    post = status(
        21,
        content="<p>Het regent weer &amp; de trein is laat.<br>Typisch <a href=\"https://x.nl/tags/NS\">#<span>NS</span></a></p>",
        spoiler_text="Gemopper over het weer",
        language="nl",
        url="https://Mastodon.NL/@piet/21?utm_source=feed",
        account={"acct": "piet@mastodon.nl", "display_name": "Piet"},
        tags=[{"name": "NS"}],
        in_reply_to_id="3",
    )
    http_server.route("/api/v1/timelines/tag/python", body=json.dumps([post]).encode())
    (mention,) = run(options(http_server)).mentions
    assert mention.text == "Het regent weer & de trein is laat.\nTypisch #NS"
    assert mention.title == "Gemopper over het weer"
    assert mention.language == "nl" and mention.author == "piet@mastodon.nl"
    assert mention.url == "https://mastodon.nl/@piet/21"
    assert mention.hashtags == ("ns",)
    assert mention.extra == {"instance": "127.0.0.1", "status_id": "21", "display_name": "Piet", "reply": True}


def test_picture_without_words_uses_its_description(http_server):
    post = status(22, content="", media_attachments=[{"type": "image", "description": "A cat on a keyboard"}])
    http_server.route("/api/v1/timelines/tag/python", body=json.dumps([post]).encode())
    assert run(options(http_server)).mentions[0].text == "A cat on a keyboard"


def test_boost_is_read_as_the_boosted_post(http_server):
    original = status(5, minutes_ago=10, uri="https://other.example/users/bo/statuses/5",
                      url="https://other.example/@bo/5", account={"acct": "bo@other.example"})
    boost = status(30, content="", reblog=original, uri="https://example.social/users/ann/statuses/30/activity")
    http_server.route("/api/v1/timelines/tag/python", body=json.dumps([boost]).encode())
    result = run(options(http_server))
    (mention,) = result.mentions
    assert mention.source_id == "https://other.example/users/bo/statuses/5"
    assert mention.author == "bo@other.example" and mention.extra["boosted_by"] == "ann@127.0.0.1"
    assert cursor(result)[http_server.base_url]["tags:python"] == {"mark": "30"}  # paging uses the timeline's id


# --- rate limits, search --------------------------------------------------------------------------


def test_rate_limit_headers_set_wait_and_stop_paging(http_server):
    headers = {"Date": "Fri, 20 Nov 2026 12:00:00 GMT", "X-RateLimit-Limit": "300",
               "X-RateLimit-Remaining": "1", "X-RateLimit-Reset": "2026-11-20T12:01:30.000Z"}
    FakeInstance(http_server, [status(1000 - i, minutes_ago=i) for i in range(100)], headers=headers)
    result = run(options(http_server), since=NOW - timedelta(hours=5))
    assert result.requests == 1  # a full page, but the instance has no requests to spare
    assert result.wait == 90
    assert len(result.mentions) == 40
    assert cursor(result)[http_server.base_url]["tags:python"] == {"mark": "1000"}


def test_plenty_left_means_no_wait(http_server):
    FakeInstance(http_server, [status(1)], headers={"X-RateLimit-Remaining": "250",
                                                   "X-RateLimit-Reset": "2026-11-20T12:05:00Z"})
    assert run(options(http_server)).wait is None


def test_search_with_token_and_cursor(http_server, monkeypatch):
    monkeypatch.setenv("MASTO_TOKEN", "tok")
    instance = FakeInstance(http_server, [status(50, minutes_ago=5), status(40, minutes_ago=9)])
    opts = options(http_server, tags=(), query="acme foods", token_env="MASTO_TOKEN")
    first = run(opts, since=NOW - timedelta(days=1))
    assert len(first.mentions) == 2
    request = http_server.requests[0]
    assert request.path.startswith("/api/v2/search?")
    assert query_of(request) == {"q": ["acme foods"], "type": ["statuses"], "limit": ["40"]}
    assert request.headers["authorization"] == "Bearer tok"
    assert cursor(first) == {http_server.base_url: {"search:acme foods": {"mark": "50"}}}

    instance.statuses.append(status(60, minutes_ago=1))
    http_server.requests.clear()
    second = run(opts, first.state)
    assert query_of(http_server.requests[0])["min_id"] == ["50"]
    assert [m.source_id.rsplit("/", 1)[1] for m in second.mentions] == ["60"]


def test_search_results_at_or_below_the_mark_are_dropped(http_server, monkeypatch):
    # The server turns min_id into a created-at bound: results at the mark can come back.
    monkeypatch.setenv("MASTO_TOKEN", "tok")
    body = {"statuses": [status(60), status(50), status(45)]}
    http_server.route("/api/v2/search", body=json.dumps(body).encode())
    state = SourceState(cursor=json.dumps({http_server.base_url: {"search:acme": {"mark": "50"}}}))
    result = run(options(http_server, tags=(), query="acme", token_env="MASTO_TOKEN"), state)
    assert [m.source_id.rsplit("/", 1)[1] for m in result.mentions] == ["60"]
    assert cursor(result)[http_server.base_url]["search:acme"] == {"mark": "60"}


def test_search_wrong_shape(http_server, monkeypatch):
    monkeypatch.setenv("MASTO_TOKEN", "tok")
    http_server.route("/api/v2/search", body=b"[]")
    error = fetch_error(options(http_server, tags=(), query="acme", token_env="MASTO_TOKEN"))
    assert str(error) == f"unexpected response from 127.0.0.1:{http_server.port}: not a search result with statuses"


def test_several_failing_instances_are_counted(http_server):
    with LoopbackServer() as other:
        http_server.route("/api/v1/timelines/tag/python", status=500)
        other.route("/api/v1/timelines/tag/python", status=429, headers={"Retry-After": "60"})
        error = fetch_error(options(http_server, instances=(http_server.base_url, other.base_url)))
    assert str(error) == "HTTP 500 from 127.0.0.1 (and 1 more instance failed)"
    assert error.status == 500 and error.retry_after == 60  # the other instance asked to wait

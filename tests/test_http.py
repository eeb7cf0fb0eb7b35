"""sources.http against a real server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import gzip
import socket
import time
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest

from listener.errors import FetchError
from listener.sources.http import HttpClient, HttpSettings, Response, retry_after_seconds
from tests.httpserver import Reply, http_server  # noqa: F401  (fixture)


def fetch(url: str, settings: HttpSettings = HttpSettings(), **kwargs) -> Response:
    async def go() -> Response:
        async with HttpClient(settings) as http:
            return await http.get(url, **kwargs)

    return asyncio.run(go())


def fetch_error(url: str, settings: HttpSettings = HttpSettings(), **kwargs) -> FetchError:
    with pytest.raises(FetchError) as info:
        fetch(url, settings, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    return info.value


def test_get_returns_status_headers_body(http_server):
    url = http_server.route("/ok", body=b"hello", headers={"Content-Type": "text/plain", "ETag": '"v1"'})
    response = fetch(url, params={"q": "a b"})
    assert response.status == 200
    assert response.body == b"hello"
    assert response.headers["etag"] == '"v1"'
    assert response.headers["ETAG"] == '"v1"'
    assert response.url == url + "?q=a+b"
    assert http_server.requests[0].path == "/ok?q=a+b"


def test_sends_user_agent_and_extra_headers(http_server):
    url = http_server.route("/ua", body=b"x")
    fetch(url, headers={"Accept": "application/rss+xml"})
    headers = http_server.requests[0].headers
    assert headers["user-agent"] == HttpSettings().user_agent
    assert headers["user-agent"].startswith("listener/0.1 (+https://")
    assert headers["accept"] == "application/rss+xml"


def test_304_is_returned_not_raised(http_server):
    def conditional(request):
        if request.headers.get("if-none-match") == '"v1"':
            return Reply(304, headers={"ETag": '"v1"'})
        return Reply(200, b"body", {"ETag": '"v1"'})

    url = http_server.route("/cond", conditional)
    response = fetch(url, headers={"If-None-Match": '"v1"'})
    assert response.status == 304
    assert response.body == b""
    assert fetch(url).status == 200


def test_500_raises_with_status(http_server):
    url = http_server.route("/boom", status=500, body=b"oops")
    error = fetch_error(url)
    assert str(error) == "HTTP 500 from 127.0.0.1"
    assert error.status == 500
    assert error.retry_after is None


@pytest.mark.parametrize(
    ("status", "words"), [(401, "unauthorized"), (403, "forbidden"), (404, "not found"), (410, "gone")]
)
def test_client_errors_are_worded_plainly(http_server, status, words):
    url = http_server.route("/missing", status=status)
    error = fetch_error(url)
    assert str(error) == f"HTTP {status} {words} at {url}"
    assert error.status == status


def test_error_message_hides_secret_query_values(http_server):
    http_server.route("/api", status=404)
    error = fetch_error(http_server.url("/api?q=cats&api_key=s3cr3t&access_token=t0k"))
    assert "s3cr3t" not in str(error) and "t0k" not in str(error)
    assert "q=cats" in str(error)


def test_unknown_path_is_404(http_server):
    assert fetch_error(http_server.url("/nothing-here")).status == 404


def test_429_with_retry_after_seconds(http_server):
    url = http_server.route("/busy", status=429, headers={"Retry-After": "120"})
    error = fetch_error(url)
    assert str(error) == "too many requests (429) from 127.0.0.1"
    assert error.status == 429
    assert error.retry_after == 120.0


def test_503_with_retry_after_http_date(http_server):
    server_now = datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone.utc)
    headers = {
        "Date": format_datetime(server_now, usegmt=True),
        "Retry-After": format_datetime(server_now + timedelta(minutes=5), usegmt=True),
    }
    url = http_server.route("/maint", status=503, headers=headers)
    error = fetch_error(url)
    assert str(error) == "service unavailable (503) from 127.0.0.1"
    assert error.status == 503
    assert error.retry_after == 300.0  # measured against the server's Date, not our clock


def test_429_without_retry_after(http_server):
    error = fetch_error(http_server.route("/busy", status=429))
    assert error.retry_after is None


def test_retry_after_seconds():
    now = datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone.utc)
    assert retry_after_seconds("120", now) == 120.0
    assert retry_after_seconds(" 0 ", now) == 0.0
    assert retry_after_seconds("Wed, 01 May 2024 12:02:00 GMT", now) == 120.0
    assert retry_after_seconds("Wed, 01 May 2024 11:00:00 GMT", now) == 0.0  # in the past
    assert retry_after_seconds("Wed, 01 May 2024 12:02:00 GMT", now.replace(tzinfo=None)) == 120.0
    assert retry_after_seconds("soon", now) is None
    assert retry_after_seconds("-5", now) is None
    assert retry_after_seconds("", now) is None


def test_slow_response_times_out(http_server):
    url = http_server.route("/slow", body=b"late", delay=2.0)
    started = time.monotonic()
    error = fetch_error(url, HttpSettings(timeout=0.2))
    assert str(error) == "timed out after 0.2s fetching 127.0.0.1"
    assert time.monotonic() - started < 1.5


def test_slow_drip_body_hits_the_overall_deadline(http_server):
    # Each chunk arrives well within the timeout, but the whole body does not.
    url = http_server.route("/drip", body=b"x" * 20, chunk_size=1, chunk_delay=0.05, chunked=True)
    started = time.monotonic()
    error = fetch_error(url, HttpSettings(timeout=0.3))
    assert str(error) == "timed out after 0.3s fetching 127.0.0.1"
    assert time.monotonic() - started < 1.5


def test_oversized_body_with_content_length_is_refused_early(http_server):
    url = http_server.route("/big", body=b"x" * 5000)
    error = fetch_error(url, HttpSettings(max_bytes=1000))
    assert str(error) == "response from 127.0.0.1 is larger than 1000 bytes"


def test_claimed_content_length_above_cap_is_refused_before_reading(http_server):
    # The server claims 50 MB but sends nothing: we must not wait for it.
    url = http_server.route("/liar", body=b"", content_length=50_000_000)
    started = time.monotonic()
    error = fetch_error(url, HttpSettings(max_bytes=1000, timeout=5))
    assert "larger than 1000 bytes" in str(error)
    assert time.monotonic() - started < 2


def test_oversized_chunked_body_is_aborted(http_server):
    url = http_server.route("/stream", body=b"y" * 200_000, chunked=True, chunk_size=4096)
    error = fetch_error(url, HttpSettings(max_bytes=10_000))
    assert str(error) == "response from 127.0.0.1 is larger than 10000 bytes"
    assert "content-length" not in http_server.requests[0].headers


def test_body_at_the_cap_is_accepted(http_server):
    url = http_server.route("/exact", body=b"z" * 1000, chunked=True, chunk_size=100)
    assert fetch(url, HttpSettings(max_bytes=1000)).body == b"z" * 1000


def test_gzip_bomb_is_capped_after_decompression(http_server):
    bomb = gzip.compress(b"\0" * 5_000_000)
    assert len(bomb) < 10_000
    url = http_server.route("/gz", body=bomb, headers={"Content-Encoding": "gzip"})
    error = fetch_error(url, HttpSettings(max_bytes=100_000))
    assert "larger than 100000 bytes" in str(error)


def test_follows_redirects_and_reports_final_url(http_server):
    http_server.route("/old", status=301, headers={"Location": "/middle"})
    http_server.route("/middle", status=302, headers={"Location": http_server.url("/new")})
    http_server.route("/new", body=b"moved")
    response = fetch(http_server.url("/old"))
    assert response.body == b"moved"
    assert response.url == http_server.url("/new")
    assert [r.path for r in http_server.requests] == ["/old", "/middle", "/new"]


def test_too_many_redirects(http_server):
    url = http_server.route("/loop", status=302, headers={"Location": "/loop"})
    error = fetch_error(url)
    assert str(error) == "too many redirects (more than 5) from 127.0.0.1"
    assert len(http_server.requests) == 6


def test_connection_refused():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    error = fetch_error(f"http://127.0.0.1:{port}/feed")
    assert str(error).startswith("could not connect to 127.0.0.1: ")


@pytest.mark.parametrize("url", ["ftp://example.com/feed", "not a url", "http://"])
def test_invalid_url(url):
    assert str(fetch_error(url)).startswith("invalid URL: ")


def test_per_host_limit_actually_limits(http_server):
    http_server.route("/slowish", body=b"ok", delay=0.1)

    async def go() -> list[Response]:
        async with HttpClient(HttpSettings(per_host=2)) as http:
            return await asyncio.gather(*(http.get(http_server.url("/slowish")) for _ in range(6)))

    started = time.monotonic()
    responses = asyncio.run(go())
    assert [r.status for r in responses] == [200] * 6
    assert http_server.max_concurrent == 2
    assert time.monotonic() - started >= 0.28  # three waves of two


def test_concurrency_limits_the_requests_in_flight_in_all(http_server):
    http_server.route("/slowish", body=b"ok", delay=0.1)

    async def go() -> list[Response]:
        async with HttpClient(HttpSettings(per_host=4, concurrency=2)) as http:
            return await asyncio.gather(*(http.get(http_server.url("/slowish")) for _ in range(6)))

    assert [r.status for r in asyncio.run(go())] == [200] * 6
    assert http_server.max_concurrent == 2


def test_per_host_limit_is_per_host(http_server):
    # 127.0.0.1 and localhost are different hosts to the limiter (same server here).
    if socket.gethostbyname("localhost") != "127.0.0.1":
        pytest.skip("localhost does not resolve to 127.0.0.1 here")
    http_server.route("/slowish", body=b"ok", delay=0.1)
    urls = [http_server.url("/slowish"), http_server.url("/slowish").replace("127.0.0.1", "localhost")]

    async def go() -> None:
        async with HttpClient(HttpSettings(per_host=1)) as http:
            await asyncio.gather(*(http.get(url) for url in urls))

    asyncio.run(go())
    assert http_server.max_concurrent == 2


def test_timeout_does_not_count_waiting_for_the_host_slot(http_server):
    http_server.route("/slowish", body=b"ok", delay=0.12)

    async def go() -> list[Response]:  # 3 x 0.12 s in a row exceeds the 0.3 s timeout
        async with HttpClient(HttpSettings(per_host=1, timeout=0.3)) as http:
            return await asyncio.gather(*(http.get(http_server.url("/slowish")) for _ in range(3)))

    assert [r.status for r in asyncio.run(go())] == [200] * 3


def test_post_json_and_form(http_server):
    url = http_server.route("/token", body=b'{"access_token": "abc"}', headers={"Content-Type": "application/json"})

    async def go() -> tuple[Response, Response]:
        async with HttpClient() as http:
            first = await http.post(url, json={"grant_type": "client_credentials"})
            second = await http.post(url, data={"a": "1"}, headers={"Authorization": "Basic eDp5"})
            return first, second

    first, second = asyncio.run(go())
    assert first.json() == {"access_token": "abc"}
    sent_json, sent_form = http_server.requests
    assert sent_json.method == "POST"
    assert sent_json.headers["content-type"] == "application/json"
    assert sent_json.body == b'{"grant_type":"client_credentials"}'
    assert sent_form.headers["content-type"] == "application/x-www-form-urlencoded"
    assert sent_form.body == b"a=1"
    assert sent_form.headers["authorization"] == "Basic eDp5"


def test_response_json_error_is_a_fetch_error(http_server):
    response = fetch(http_server.route("/notjson", body=b"<html>"))
    with pytest.raises(FetchError, match="invalid JSON from 127.0.0.1"):
        response.json()

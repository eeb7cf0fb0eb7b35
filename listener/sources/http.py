"""The HTTP layer every source uses: one client, a timeout, a size cap, a per-host limit.

CPU-bound parsing of a response goes through `http.parse(fn, *args)`: in the worker processes the
client was given (`parser`, a `sources.parsing.ParsePool`: parsing on every core), else in a thread.
Whoever calls a source's fetch may ask for more work on what its parse returns in the same job
(`AfterParse`, the pipeline's matching): a feed then costs one trip to a worker process, not two.

Every failure is a `FetchError` with a fixed one-line message ("HTTP 404 not found at URL",
"too many requests (429) from HOST", "timed out after 20s fetching HOST"). The client never
retries: the pipeline schedules the next attempt, using `FetchError.retry_after` when the
server sent Retry-After. A 304 is a normal response, returned to the caller.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import email.utils
import functools
import json as jsonlib
import re
import ssl
from collections import Counter, OrderedDict
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Callable

import httpx

from listener.errors import FetchError, redact_url
from listener.sources.parsing import parse_then

if TYPE_CHECKING:  # pragma: no cover
    from listener.sources.parsing import ParsePool

__all__ = ["HttpSettings", "HttpClient", "Response", "retry_after_seconds", "http_date", "server_clock", "with_hint"]

MAX_REDIRECTS = 5
KEPT_HOSTS = 64  # hosts whose idle connections stay open for their next request (the most recently used)


@dataclass(frozen=True)
class HttpSettings:
    timeout: float = 20.0  # seconds for the whole request: connect, redirects and reading the body
    max_bytes: int = 10_000_000  # response-size cap, after decompression
    per_host: int = 2  # concurrent requests per host
    concurrency: int | None = None  # concurrent requests in all (None: only per host)
    user_agent: str = (
        "listener/0.1 (+https://github.com/listener-social/listener; self-hosted social listening)"
    )


@dataclass(frozen=True)
class Response:
    """A response read in full: status, headers (case-insensitive), body and the final URL."""

    status: int
    headers: httpx.Headers
    body: bytes
    url: str  # after redirects

    def json(self) -> Any:
        """The body parsed as JSON; FetchError when it is not JSON."""
        try:
            return jsonlib.loads(self.body)
        except (ValueError, RecursionError) as exc:
            reason = _one_line(str(exc)) if isinstance(exc, ValueError) else "nested too deeply"
            raise FetchError(f"invalid JSON from {_host(self.url)}: {reason}") from None

    def api_json(self, where: str) -> Any:
        """The body of a JSON API's answer; FetchError naming `where` for an HTML page (a login
        wall, a proxy's error page, a base URL that is not the API) or anything else not JSON."""
        if self.body.lstrip()[:1] == b"<":
            raise FetchError(f"unexpected response from {where}: an HTML page, not the API's JSON")
        return self.json()


@dataclass
class AfterParse:
    """Work on what a fetch's parse returns, run in the same job as the parse (set in AFTER_PARSE
    around a source's fetch): the first parse job of that fetch in a worker process also runs
    `fn(parsed, *args())`, `args` taken when the parse is sent. `parsed` is then what the parse
    returned (the very object the source got), `outcome` ("ok", fn's result) or ("error", exc), and
    `sent` the arguments used. Nothing runs without worker processes: the caller does it then."""

    fn: Callable[..., Any]
    args: Callable[[], tuple]
    parsed: Any = None
    outcome: tuple[str, Any] | None = None
    sent: tuple = ()


AFTER_PARSE: contextvars.ContextVar[AfterParse | None] = contextvars.ContextVar("after_parse", default=None)


class HttpClient:
    """httpx clients (one per host) with the settings applied; use `async with HttpClient() as http`.
    `parser` runs `parse` jobs (in worker processes); without one they run in a thread."""

    def __init__(self, settings: HttpSettings = HttpSettings(), parser: ParsePool | None = None):
        self.settings = settings
        self.parser = parser
        # One httpx client (its connection pool) per host, the KEPT_HOSTS last used kept: httpcore's pool
        # looks at every connection it holds on each request, and one shared pool kept 20 idle
        # connections for all hosts, so that with more hosts than that in a cycle every request opened
        # a new connection.
        self._clients: OrderedDict[str, httpx.AsyncClient] = OrderedDict()
        self._in_flight: Counter[str] = Counter()
        self._host_limits: dict[str, asyncio.Semaphore] = {}
        self._requests: asyncio.Semaphore | None = None  # settings.concurrency, made in the event loop

    async def __aenter__(self) -> HttpClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connections."""
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.aclose()

    async def _client(self, host: str) -> httpx.AsyncClient:
        """The client of `host`; making one closes the least recently used idle ones past KEPT_HOSTS."""
        client = self._clients.get(host)
        if client is not None:
            self._clients.move_to_end(host)
            return client
        idle = [h for h in self._clients if not self._in_flight[h]]
        for old in idle[:max(0, len(self._clients) + 1 - KEPT_HOSTS)]:
            await self._clients.pop(old).aclose()
        client = self._clients[host] = httpx.AsyncClient(
            follow_redirects=True,
            max_redirects=MAX_REDIRECTS,
            timeout=httpx.Timeout(self.settings.timeout),
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=max(1, self.settings.per_host)),
            headers={"User-Agent": self.settings.user_agent},
            verify=_tls_context(),
        )
        return client

    async def parse(self, fn: Callable[..., Any], *args: Any) -> Any:
        """`fn(*args)` off the event loop: CPU-bound parsing of a response. `fn` is a module-level
        function and its arguments picklable, as it may run in another process; its result or the
        exception it raised comes back."""
        after = AFTER_PARSE.get()
        if self.parser is not None and after is not None and after.outcome is None:
            after.outcome, after.sent = ("error", RuntimeError("not run")), after.args()  # only the first parse
            after.parsed, after.outcome = await self.parser.run(parse_then, fn, args, after.fn, after.sent)
            return after.parsed
        if self.parser is not None:
            return await self.parser.run(fn, *args)
        return await asyncio.to_thread(fn, *args)

    async def get(
        self, url: str, *, headers: dict[str, str] | None = None, params: dict[str, Any] | None = None
    ) -> Response:
        """GET url; the Response for 2xx, 3xx left over and 304; FetchError for anything else."""
        return await self.request("GET", url, headers=headers, params=params)

    async def post(
        self,
        url: str,
        *,
        headers: dict[str, str] | None = None,
        params: dict[str, Any] | None = None,
        json: Any = None,
        data: dict[str, Any] | None = None,
    ) -> Response:
        """POST a JSON (`json=`) or form (`data=`) body to url, with the same rules as get()."""
        return await self.request("POST", url, headers=headers, params=params, json=json, data=data)

    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: dict[str, str] | None = None,
        params: dict[str, Any] | None = None,
        json: Any = None,
        data: dict[str, Any] | None = None,
    ) -> Response:
        """Send one request and read the whole response under the timeout and size cap."""
        target = _parsed(url)  # parsed once: httpx takes the URL object as it is
        host = (target.host or "").lower() if target is not None else ""
        if not host:
            raise FetchError(f"invalid URL: {_display_url(url)}")
        # held from sending the request to the end of its body, never while it is parsed; the host's
        # first: waiting for it holds no slot of the others
        async with self._limit(host), self._all_limit():
            self._in_flight[host] += 1
            try:
                async with asyncio.timeout(self.settings.timeout):
                    return await self._send(method, url, target, host, headers, params, json, data)
            except TimeoutError:
                raise self._timed_out(host) from None
            finally:
                self._in_flight[host] -= 1
                if not self._in_flight[host]:
                    del self._in_flight[host]

    def _limit(self, host: str) -> asyncio.Semaphore:
        limit = self._host_limits.get(host)
        if limit is None:
            limit = self._host_limits[host] = asyncio.Semaphore(max(1, self.settings.per_host))
        return limit

    def _all_limit(self) -> contextlib.AbstractAsyncContextManager:
        if not self.settings.concurrency:
            return contextlib.nullcontext()
        if self._requests is None:
            self._requests = asyncio.Semaphore(self.settings.concurrency)
        return self._requests

    def _timed_out(self, host: str) -> FetchError:
        return FetchError(f"timed out after {self.settings.timeout:g}s fetching {host}")

    async def _send(
        self,
        method: str,
        url: str,
        target: httpx.URL,
        host: str,
        headers: dict[str, str] | None,
        params: dict[str, Any] | None,
        json: Any,
        data: dict[str, Any] | None,
    ) -> Response:
        try:
            client = await self._client(host)
            request = client.build_request(method, target, headers=headers, params=params, json=json, data=data)
            response = await client.send(request, stream=True)
        except (httpx.InvalidURL, httpx.UnsupportedProtocol):
            raise FetchError(f"invalid URL: {_display_url(url)}") from None
        except httpx.RequestError as exc:
            raise self._transport_error(exc, host) from None
        try:
            final_url = str(response.url)
            final_host = response.url.host or host
            _check_status(response.status_code, response.headers, final_url, final_host)
            if response.status_code == 304:  # read to its (empty) end, so that its connection is kept
                await self._read_capped(response, final_host)
                return Response(304, response.headers, b"", final_url)
            body = await self._read_capped(response, final_host)
            return Response(response.status_code, response.headers, body, final_url)
        except httpx.RequestError as exc:
            raise self._transport_error(exc, host) from None
        finally:
            await response.aclose()

    async def _read_capped(self, response: httpx.Response, host: str) -> bytes:
        cap = self.settings.max_bytes
        too_large = FetchError(f"response from {host} is larger than {cap} bytes")
        declared = response.headers.get("content-length", "")
        if declared.strip().isdigit() and int(declared) > cap:
            raise too_large
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():  # decompressed, so gzip bombs are capped too
            size += len(chunk)
            if size > cap:
                raise too_large
            chunks.append(chunk)
        return b"".join(chunks)

    def _transport_error(self, exc: httpx.RequestError, host: str) -> FetchError:
        reason = _one_line(str(exc)) or type(exc).__name__
        if isinstance(exc, httpx.TimeoutException):
            return self._timed_out(host)
        if isinstance(exc, httpx.TooManyRedirects):
            return FetchError(f"too many redirects (more than {MAX_REDIRECTS}) from {host}")
        if isinstance(exc, httpx.ConnectError):
            return FetchError(f"could not connect to {host}: {reason}")
        if isinstance(exc, httpx.DecodingError):
            return FetchError(f"could not decode the response from {host}: {reason}")
        return FetchError(f"connection to {host} failed: {reason}")


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """httpx's default verifying TLS context, built once per process (loading CAs takes ~20 ms)."""
    return httpx.create_ssl_context()


_PLAIN_STATUS = {401: "unauthorized", 403: "forbidden", 404: "not found", 410: "gone"}
_BUSY_STATUS = {429: "too many requests", 503: "service unavailable"}


def _check_status(status: int, headers: httpx.Headers, url: str, host: str) -> None:
    if status < 400:
        return
    if status in _BUSY_STATUS:
        raise FetchError(
            f"{_BUSY_STATUS[status]} ({status}) from {host}",
            retry_after=_retry_after(headers),
            status=status,
        )
    if status in _PLAIN_STATUS:
        raise FetchError(f"HTTP {status} {_PLAIN_STATUS[status]} at {_display_url(url)}", status=status)
    raise FetchError(f"HTTP {status} from {host}", status=status)


def _retry_after(headers: httpx.Headers) -> float | None:
    value = headers.get("retry-after")
    if not value:
        return None
    return retry_after_seconds(value, server_clock(headers, datetime.now(timezone.utc)))


def retry_after_seconds(value: str, now: datetime) -> float | None:
    """Seconds to wait from a Retry-After value: delay seconds or an HTTP-date; None if unreadable.

    A date in the past gives 0. A naive `now` is taken as UTC.
    """
    text = (value or "").strip()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    when = http_date(text)
    if when is None:
        return None
    if now.tzinfo is None:
        now = now.replace(tzinfo=timezone.utc)
    return max(0.0, (when - now).total_seconds())


def http_date(text: str) -> datetime | None:
    """An HTTP-date header value (`Date`, `Retry-After`) as an aware datetime, or None."""
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when is None:
        return None
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


def server_clock(headers: httpx.Headers, now: datetime) -> datetime:
    """The server's time by its Date header, else `now`: what a date it sends is measured against."""
    return http_date(headers.get("date", "")) or now


def with_hint(error: FetchError, hints: dict[int, str]) -> FetchError:
    """`error` with what its HTTP status means at this API appended (its status and Retry-After
    kept); `error` itself when `hints` has nothing for its status."""
    hint = hints.get(error.status or 0)
    if hint is None:
        return error
    return FetchError(f"{error}: {hint}", retry_after=error.retry_after, status=error.status)


@functools.lru_cache(maxsize=8192)  # the same URLs every cycle: parsing each was 6% of a 304 here
def _parsed(url: str) -> httpx.URL | None:
    try:
        return httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError):
        return None


def _host(url: str) -> str:
    target = _parsed(url)
    return (target.host or "").lower() if target is not None else ""


def _display_url(url: str) -> str:
    """The URL for a message: without credentials or secret-looking query values."""
    return redact_url(_one_line(url))[:300]


def _one_line(text: str) -> str:
    return " ".join(text.split())

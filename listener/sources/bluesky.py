"""Bluesky: full-text post search (`app.bsky.feed.searchPosts`), signed in with an app password.

Anonymous search was closed in 2025, so every search carries an access token. The source signs
in with `com.atproto.server.createSession` (the handle and app password come from the
environment variables named by `handle_env` and `app_password_env`) and keeps the session in
memory only: never in the state, which goes to the database. An access token lives about two
hours; its `exp` claim (read from the JWT payload, the signature is not checked) says when to
renew it with `com.atproto.server.refreshSession`, a minute before it expires. A refresh token
that is expired or refused leads to a new session. A search refused with 401, or with the
reference PDS's `400 ExpiredToken`, gets one refresh and one retry. The server limits
createSession to 30 per 5 minutes per account, which is why the session is reused.

Paging and the cursor. Results come newest first (`sort=latest`), ordered by the post's
"sortAt" time: the earlier of `record.createdAt` and `indexedAt`, which is also what the `since`
parameter (inclusive) filters on. A fetch asks for posts since a floor and follows the search
`cursor` down until a page has no cursor, no posts, or posts older than the floor (checked here
too, in case the server ignores `since`). The floor is `since` on the first fetch, later the
newest sortAt returned so far (the high-water mark) minus `overlap`: a post's createdAt can lag
its indexing by minutes, and such a post sorts below posts fetched earlier. Posts returned
recently are remembered in the state as short hashes of their URIs with their sortAt (at most
MAX_SEEN), so the overlap costs no duplicates.

A fetch that stops after `max_pages` (or because the rate limit is nearly spent) before reaching
the floor leaves a gap. The state then keeps the old high-water mark, the floor, the newest post
of this window and the oldest sortAt read so far; the next fetch searches the same window below
that point (`until`, exclusive, one millisecond later so that ties are read again and dropped as
seen), with a fresh search cursor, and only when the gap is closed does the high-water mark move
up to the newest post of the window. Posts that arrived in the meantime are read by the window
after. Continuing with `until` rather than a saved search cursor means no cursor can go stale and
no page offset grows without bound. Without any floor (no state and no `since`) a fetch reads at
most `max_pages` and starts from its newest post next time.

Rate limits: `RateLimit-Remaining` / `RateLimit-Reset` (epoch seconds) on a search reply; when
at most RATE_LIMIT_RESERVE requests remain, paging stops and FetchResult.wait is the time until
the reset (by the server's Date when it sends one). A 429 or 503 with Retry-After propagates as
the HttpClient's FetchError.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote, urlsplit

from listener.errors import FetchError, env_secret
from listener.sources import FetchResult, Mention, SourceState
from listener.sources.http import HttpClient, Response, http_date
from listener.sources.text import as_count, canonical_url, clean_text, parse_datetime

__all__ = ["BlueskySource", "post_mention", "jwt_expiry"]

PAGE_SIZE = 100  # the API's maximum `limit`
REFRESH_MARGIN = timedelta(seconds=60)  # renew an access token this long before it expires
RATE_LIMIT_RESERVE = 1  # stop paging when this few requests remain (one left for a refresh)
MAX_SEEN = 1000  # recently returned posts remembered in the state
WEB_APP = "https://bsky.app"
POST_COLLECTION = "app.bsky.feed.post"
STATE_VERSION = 1

_LANGUAGE_OPTION = re.compile(r"[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*")


class BlueskySource:
    """Posts from Bluesky's full-text search, newest first, via an app-password session."""

    kind = "bluesky"

    @dataclass(frozen=True)
    class Options:
        """Bluesky post search; needs a Bluesky account's handle and an app password."""

        query: str = field(metadata={
            "help": 'Search query in Bluesky\'s syntax: words, "exact phrase", #hashtag, from:handle',
        })
        language: str | None = field(default=None, metadata={
            "help": "Only posts tagged with this language (like nl); not set: every language",
        })
        handle_env: str = field(default="BLUESKY_HANDLE", metadata={
            "help": "Holds the account's handle (like acme.bsky.social)",
            "secret": True,
        })
        app_password_env: str = field(default="BLUESKY_APP_PASSWORD", metadata={
            "help": "Holds an app password "
                    "(Settings > Privacy and security > App passwords)",
            "secret": True,
        })
        max_pages: int = field(default=3, metadata={
            "help": "Most result pages (100 posts each) one fetch reads; the rest waits for the next fetch",
        })
        overlap: timedelta = field(default=timedelta(minutes=5), metadata={
            "help": "How far before the newest post seen a fetch looks again, for posts indexed late",
        })
        base_url: str = field(default="https://bsky.social", metadata={
            "help": "The account's PDS or entryway, which signs in and searches",
            "url": True,
        })

        def __post_init__(self) -> None:
            if not self.query.strip():
                raise ValueError("query must not be empty")
            if self.language is not None and not _LANGUAGE_OPTION.fullmatch(self.language):
                raise ValueError(f"language must be a language code like nl or pt-BR, not {self.language!r}")
            if self.max_pages < 1:
                raise ValueError("max_pages must be at least 1")
            if self.overlap < timedelta(0):
                raise ValueError("overlap must not be negative")

    def __init__(self, name: str, options: Options):
        self.name = name
        self.options = options
        self._session: _Session | None = None  # memory only, never in the state

    def hosts(self) -> list[str]:
        """The PDS / entryway host: sign-in and search both go there."""
        host = urlsplit(self.options.base_url).hostname
        return [host.lower()] if host else []

    async def fetch(self, state: SourceState, http: HttpClient, now: datetime,
                    since: datetime | None = None) -> FetchResult:
        """Search posts newer than the state's high-water mark (or `since`), page by page."""
        run = _Run(http, now, _credentials(self.options))
        options = self.options
        progress = _Progress.load(state.cursor)
        if progress.until is not None and since is None:  # go on below where the last fetch stopped
            floor, top, until = progress.floor, progress.top, progress.until
        else:
            earlier = progress.floor if progress.until is not None else (
                progress.hwm - options.overlap if progress.hwm is not None else None)
            floor = min((t for t in (since, earlier) if t is not None), default=None)
            top, until = None, None
        seen = dict(progress.seen)
        mentions: list[Mention] = []
        oldest: datetime | None = None  # the lowest point this fetch read down to
        search_cursor: str | None = None
        wait: float | None = None
        closed = False
        pages = 0
        while pages < options.max_pages:
            params: dict[str, Any] = {"q": options.query, "sort": "latest", "limit": PAGE_SIZE}
            if floor is not None:
                params["since"] = _iso_millis(floor)
            if until is not None:  # `until` is exclusive: one millisecond more keeps posts tied with it
                params["until"] = _iso_millis(until + timedelta(milliseconds=1))
            if options.language:
                params["lang"] = options.language
            if search_cursor is not None:
                params["cursor"] = search_cursor
            response = await self._search(run, params)
            pages += 1
            posts, next_cursor = _search_page(response)
            reached_floor = False
            for post in posts:
                sort_at = _sort_at(post)
                if floor is not None and sort_at is not None and sort_at < floor:
                    reached_floor = True  # also when the server did not apply `since`
                    continue
                uri = post.get("uri") if isinstance(post, dict) else None
                if not isinstance(uri, str) or not uri:
                    continue
                if sort_at is not None:
                    top = sort_at if top is None else max(top, sort_at)
                    oldest = sort_at if oldest is None else min(oldest, sort_at)
                key = _seen_key(uri)
                if key in seen:
                    continue
                if sort_at is not None:
                    seen[key] = _epoch_ms(sort_at)
                mention = post_mention(post)
                if mention is not None:
                    mentions.append(mention)
            wait, exhausted = _rate_limit(response, now)
            if reached_floor or not posts or not next_cursor:
                closed = True
                break
            search_cursor = next_cursor
            if exhausted:
                break
        resume_below = min((t for t in (oldest, until) if t is not None), default=None)
        if floor is None or resume_below is None:
            closed = True  # nothing older to catch up on, or no timestamp to continue from
        if closed:
            hwm = max((t for t in (top, progress.hwm, since) if t is not None), default=None)
            keep_from = hwm - options.overlap if hwm is not None else None
            new_progress = _Progress(hwm=hwm, seen=_pruned(seen, keep_from))
        else:
            new_progress = _Progress(hwm=progress.hwm, seen=_pruned(seen, floor), floor=floor, top=top,
                                     until=resume_below)
        return FetchResult(mentions, SourceState(cursor=new_progress.dump()), requests=run.requests, wait=wait)

    # --- the session ----------------------------------------------------------------------

    async def _search(self, run: _Run, params: dict[str, Any]) -> Response:
        """One searchPosts request with the session; one refresh and retry when it is refused."""
        url = self._xrpc("app.bsky.feed.searchPosts")
        session = await self._ensure_session(run)
        try:
            return await run.get(url, session, params)
        except FetchError as exc:
            if exc.status not in (400, 401):
                raise
        # An access token the server no longer takes: ExpiredToken (400) from the reference PDS,
        # 401 from others. A 400 may also be a bad query; the retry tells them apart.
        session = await self._refresh_or_sign_in(run, self._session)
        try:
            return await run.get(url, session, params)
        except FetchError as exc:
            host = _host(url)
            if exc.status == 401:
                self._session = None
                raise FetchError(
                    f"Bluesky search at {host} refused a fresh session (HTTP 401): check that the app "
                    f"password in {self.options.app_password_env} is not revoked and the account is active",
                    status=401,
                ) from None
            if exc.status == 400:
                raise FetchError(
                    f"Bluesky search at {host} refused the request (HTTP 400): check the query and "
                    "language options",
                    status=400,
                ) from None
            raise

    async def _ensure_session(self, run: _Run) -> _Session:
        session = self._session
        if session is None or session.login != run.handle or session.base_url != self.options.base_url:
            return await self._sign_in(run)
        if session.access_expires is not None and session.access_expires - REFRESH_MARGIN <= run.now:
            return await self._refresh_or_sign_in(run, session)
        return session

    async def _refresh_or_sign_in(self, run: _Run, session: _Session | None) -> _Session:
        if session is None or (session.refresh_expires is not None and session.refresh_expires <= run.now):
            return await self._sign_in(run)
        url = self._xrpc("com.atproto.server.refreshSession")
        try:
            response = await run.post(url, headers={"Authorization": f"Bearer {session.refresh}"})
        except FetchError as exc:
            if exc.status in (400, 401):  # ExpiredToken, InvalidToken, revoked: sign in again
                self._session = None
                return await self._sign_in(run)
            raise
        self._session = _Session.from_reply(response, run.handle, self.options.base_url, "refreshSession")
        return self._session

    async def _sign_in(self, run: _Run) -> _Session:
        self._session = None
        url = self._xrpc("com.atproto.server.createSession")
        try:
            response = await run.post(url, json={"identifier": run.handle, "password": run.password})
        except FetchError as exc:
            if exc.status in (400, 401):
                raise FetchError(
                    f"Bluesky sign-in refused by {_host(url)} (HTTP {exc.status}): check that "
                    f"{self.options.handle_env} holds the account's handle and {self.options.app_password_env} "
                    "an app password (Settings > Privacy and security > App passwords)",
                    status=exc.status,
                ) from None
            raise
        self._session = _Session.from_reply(response, run.handle, self.options.base_url, "createSession")
        return self._session

    def _xrpc(self, method: str) -> str:
        return f"{self.options.base_url.rstrip('/')}/xrpc/{method}"


# ---------------------------------------------------------------------------------------------
# Requests, session and state


@dataclass
class _Run:
    """One fetch: the client, the injected time, the credentials and the requests made."""

    http: HttpClient
    now: datetime
    credentials: tuple[str, str] = field(repr=False)  # (handle, app password)
    requests: int = 0

    @property
    def handle(self) -> str:
        return self.credentials[0]

    @property
    def password(self) -> str:
        return self.credentials[1]

    async def get(self, url: str, session: _Session, params: dict[str, Any]) -> Response:
        self.requests += 1
        headers = {"Authorization": f"Bearer {session.access}", "Accept": "application/json"}
        return await self.http.get(url, headers=headers, params=params)

    async def post(self, url: str, *, headers: dict[str, str] | None = None, json: Any = None) -> Response:
        self.requests += 1
        return await self.http.post(url, headers={"Accept": "application/json", **(headers or {})}, json=json)


@dataclass(frozen=True)
class _Session:
    login: str  # the handle signed in with
    base_url: str
    did: str
    access: str = field(repr=False)
    refresh: str = field(repr=False)
    access_expires: datetime | None
    refresh_expires: datetime | None

    @classmethod
    def from_reply(cls, response: Response, login: str, base_url: str, method: str) -> _Session:
        body = response.json()
        access = body.get("accessJwt") if isinstance(body, dict) else None
        refresh = body.get("refreshJwt") if isinstance(body, dict) else None
        if not isinstance(access, str) or not access or not isinstance(refresh, str) or not refresh:
            raise FetchError(
                f"unexpected response from {_host(response.url)}: {method} gave no accessJwt and refreshJwt"
            )
        did = body.get("did")
        return cls(login, base_url, did if isinstance(did, str) else "", access, refresh,
                   jwt_expiry(access), jwt_expiry(refresh))


def _credentials(options: BlueskySource.Options) -> tuple[str, str]:
    values = []
    for option in ("handle_env", "app_password_env"):
        name = getattr(options, option)
        value = env_secret(name, secret=option == "app_password_env")
        if value is None:
            raise FetchError(f"environment variable {name} is not set (needed by {option})")
        if not value.strip():
            raise FetchError(f"environment variable {name} is empty (needed by {option})")
        values.append(value.strip())
    return values[0].removeprefix("@"), values[1]


def jwt_expiry(token: str) -> datetime | None:
    """The `exp` claim of a JWT as a UTC datetime (the signature is not checked); None if unreadable."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, RecursionError):
        return None
    exp = claims.get("exp") if isinstance(claims, dict) else None
    if not isinstance(exp, (int, float)) or isinstance(exp, bool):
        return None
    return parse_datetime(exp)


@dataclass(frozen=True)
class _Progress:
    """The state's cursor: high-water mark, recently seen posts, and an unfinished window."""

    hwm: datetime | None = None  # newest sortAt of the last finished window
    seen: dict[str, int] = field(default_factory=dict)  # _seen_key(uri) -> sortAt in epoch ms
    until: datetime | None = None  # an unfinished window: the oldest sortAt read so far
    floor: datetime | None = None  # that window's `since`
    top: datetime | None = None  # newest sortAt found in that window

    @classmethod
    def load(cls, text: str | None) -> _Progress:
        """The progress kept in the state; an unreadable cursor starts afresh."""
        try:
            data = json.loads(text) if text else None
        except (ValueError, RecursionError):
            data = None
        if not isinstance(data, dict) or data.get("v") != STATE_VERSION:
            return cls()
        seen = data.get("seen")
        seen = {k: v for k, v in seen.items() if isinstance(v, int)} if isinstance(seen, dict) else {}
        return cls(
            hwm=_state_time(data.get("hwm")),
            seen=seen,
            until=_state_time(data.get("until")),
            floor=_state_time(data.get("floor")),
            top=_state_time(data.get("top")),
        )

    def dump(self) -> str:
        data: dict[str, Any] = {"v": STATE_VERSION, "hwm": _state_iso(self.hwm)}
        if self.until is not None:
            data.update(until=_state_iso(self.until), floor=_state_iso(self.floor), top=_state_iso(self.top))
        data["seen"] = self.seen
        return json.dumps(data, separators=(",", ":"))


def _state_time(value: Any) -> datetime | None:
    return parse_datetime(value) if isinstance(value, str) else None


def _state_iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def _pruned(seen: dict[str, int], keep_from: datetime | None) -> dict[str, int]:
    """The seen posts at or after keep_from, the newest MAX_SEEN of them."""
    floor_ms = _epoch_ms(keep_from) if keep_from is not None else None
    kept = [(k, v) for k, v in seen.items() if floor_ms is None or v >= floor_ms]
    kept.sort(key=lambda kv: kv[1], reverse=True)
    return dict(kept[:MAX_SEEN])


def _seen_key(uri: str) -> str:
    return hashlib.sha1(uri.encode("utf-8", "replace")).hexdigest()[:16]


def _epoch_ms(when: datetime) -> int:
    return int(when.timestamp() * 1000)


def _iso_millis(when: datetime) -> str:
    """A UTC datetime as the API's datetime syntax, truncated to milliseconds (since is inclusive)."""
    return when.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# ---------------------------------------------------------------------------------------------
# Responses


def _search_page(response: Response) -> tuple[list[Any], str | None]:
    body = response.json()
    if not isinstance(body, dict) or not isinstance(body.get("posts"), list):
        raise FetchError(f"unexpected response from {_host(response.url)}: no posts list in the search reply")
    cursor = body.get("cursor")
    return body["posts"], cursor if isinstance(cursor, str) and cursor else None


def _rate_limit(response: Response, now: datetime) -> tuple[float | None, bool]:
    """(seconds until the limit resets, whether paging should stop) from RateLimit-* headers."""
    remaining = _number(response.headers.get("ratelimit-remaining"))
    if remaining is None or remaining > RATE_LIMIT_RESERVE:
        return None, False
    reset = _number(response.headers.get("ratelimit-reset"))
    if reset is None:
        return None, True
    if reset < 1_000_000_000:  # a delay in seconds (the IETF draft) rather than an epoch time
        return reset, True
    clock = http_date(response.headers.get("date", "")) or now
    return max(0.0, reset - clock.timestamp()), True


def _number(value: str | None) -> float | None:
    try:
        number = float((value or "").strip())
    except ValueError:
        return None
    return number if number == number and abs(number) != float("inf") else None


def _host(url: str) -> str:
    return (urlsplit(url).hostname or "").lower()


# ---------------------------------------------------------------------------------------------
# Post views to mentions


def _sort_at(post: Any) -> datetime | None:
    """The post's sortAt: the earlier of record.createdAt and indexedAt (as the AppView sorts)."""
    if not isinstance(post, dict):
        return None
    record = post.get("record") if isinstance(post.get("record"), dict) else {}
    times = [parse_datetime(v) for v in (record.get("createdAt"), post.get("indexedAt")) if isinstance(v, str)]
    times = [t for t in times if t is not None]
    return min(times) if times else None


def post_mention(post: Any) -> Mention | None:
    """The mention of one postView from searchPosts; None without a post URI or any text."""
    if not isinstance(post, dict):
        return None
    uri = _str(post.get("uri"))
    did, rkey = _at_uri_parts(uri)
    if not did or not rkey:
        return None
    author = post.get("author") if isinstance(post.get("author"), dict) else {}
    record = post.get("record") if isinstance(post.get("record"), dict) else {}
    text = _plain(_str(record.get("text"))) or _embed_text(record.get("embed"))
    if not text:
        return None
    handle = _str(author.get("handle")).strip().lower()
    author_did = _str(author.get("did")).strip() or did
    profile = handle if handle and handle != "handle.invalid" else author_did
    # quote() encodes strictly: a lone surrogate ("\ud800" in the JSON) becomes U+FFFD first
    url = canonical_url(f"{WEB_APP}/profile/{quote(clean_text(profile), safe=':.')}/post/"
                        f"{quote(clean_text(rkey), safe='')}")
    extra: dict[str, Any] = {"did": author_did}
    if _str(post.get("cid")):
        extra["cid"] = post["cid"]
    if _count(post.get("quoteCount")) is not None:
        extra["quotes"] = _count(post.get("quoteCount"))
    if _str(post.get("indexedAt")) and parse_datetime(post["indexedAt"]) is not None:
        extra["indexed_at"] = post["indexedAt"]
    reply = record.get("reply") if isinstance(record.get("reply"), dict) else {}
    parent = reply.get("parent") if isinstance(reply.get("parent"), dict) else {}
    if _str(parent.get("uri")):
        extra["reply_to"] = parent["uri"]
    return Mention(
        source_id=uri,
        text=text,
        url=url,
        author=handle if handle and handle != "handle.invalid" else author_did,
        published_at=_sort_at(post),
        language=_language(record.get("langs")),
        hashtags=_hashtags(record, text),
        likes=_count(post.get("likeCount")),
        reposts=_count(post.get("repostCount")),
        replies=_count(post.get("replyCount")),
        extra=extra,
    )


def _at_uri_parts(uri: str) -> tuple[str, str]:
    """(did, rkey) of at://did/app.bsky.feed.post/rkey; empty strings when it is not a post URI."""
    if not uri.startswith("at://"):
        return "", ""
    parts = uri[len("at://"):].split("/")
    if len(parts) != 3 or parts[1] != POST_COLLECTION or not parts[0] or not parts[2]:
        return "", ""
    return parts[0], parts[2]


def _plain(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = re.sub(r"\n[ \t]*\n(?:[ \t]*\n)+", "\n\n", text)
    return text.strip()


def _embed_text(embed: Any) -> str:
    """Alt texts and link-card title of an embed: the text of a post that has none of its own."""
    if not isinstance(embed, dict):
        return ""
    parts: list[str] = []
    for image in _list(embed.get("images")):
        if isinstance(image, dict):
            parts.append(_str(image.get("alt")))
    parts.append(_str(embed.get("alt")))  # a video
    external = embed.get("external")
    if isinstance(external, dict):
        parts += [_str(external.get("title")), _str(external.get("description"))]
    parts.append(_embed_text(embed.get("media")))  # recordWithMedia
    return " ".join(" ".join(p.split()) for p in parts if p.strip())


def _language(langs: Any) -> str | None:
    """ISO 639-1 code of the first of record.langs: "en-US" -> "en"; None otherwise."""
    if not isinstance(langs, list) or not langs or not isinstance(langs[0], str):
        return None
    primary = re.split(r"[-_]", langs[0].strip(), maxsplit=1)[0].lower()
    return primary if re.fullmatch(r"[a-z]{2}", primary) else None


_TEXT_TAG = re.compile(r"(?:^|(?<=\s))[#\uff03]([^\s#\uff03]{1,64})")


def _hashtags(record: dict, text: str) -> tuple[str, ...]:
    """Tag facets, the record's own `tags`, and #tags in the text: lower-case, no '#'."""
    tags: list[str] = []
    for facet in _list(record.get("facets")):
        for feature in _list(facet.get("features") if isinstance(facet, dict) else None):
            if isinstance(feature, dict) and feature.get("$type") == "app.bsky.richtext.facet#tag":
                tags.append(_str(feature.get("tag")))
    tags += [_str(t) for t in _list(record.get("tags"))]
    for raw in _TEXT_TAG.findall(text):
        while raw and unicodedata.category(raw[-1]).startswith("P"):
            raw = raw[:-1]
        if raw and not raw.isdigit():
            tags.append(raw)
    cleaned = (t.strip().lstrip("#\uff03").lower() for t in tags)
    return tuple(dict.fromkeys(t for t in cleaned if t))


def _count(value: Any) -> int | None:
    return as_count(value, negative=False)


def _list(value: Any) -> list:
    return value if isinstance(value, list) else []


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""

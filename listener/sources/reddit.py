"""Reddit posts matching a search (and, optionally, a subreddit's new comments), over OAuth.

Reddit refuses anonymous API requests, so the source logs in as an app ("application-only
OAuth", client credentials grant): `POST {auth_url}/api/v1/access_token` with HTTP Basic
(client id : client secret) and `grant_type=client_credentials`. The bearer token it gets
(`access_token`, `expires_in` seconds) is kept in the source object, never in the state, and is
fetched again a minute before it expires, or once after a 401 (the request is then retried once).
Create the app at https://www.reddit.com/prefs/apps (type "script" or "web app").

Posts: `GET {base_url}/search?q=...&sort=new&limit=100&type=link&raw_json=1` (or
`/r/{subreddit}/search?...&restrict_sr=1`). Reddit's search API does not search comments (its
`type` takes sr, link and user), so `comments = true` reads a subreddit's comment stream instead,
`GET {base_url}/r/{subreddit}/comments?limit=100&raw_json=1`, and keeps the comments whose text
contains the query's words (see `query_matches`); it needs `subreddit`.

Each of these listings has its own part of the cursor (JSON: `{"posts": {...}, "comments": {...}}`):
`{"newest": fullname, "created": created_utc, "backlog": {"after": fullname|null, "until": ts}}`.

- First fetch: the listing is read from the top, newest first, paging with `after=`, until an
  item is older than `since` (or after one page without `since`).
- Later fetches: `before={newest}` returns the items just newer than the one we saw last, oldest
  page first, so paging with `before=` up to `max_pages` pages and stopping there keeps the
  cursor safe: it only moves up to what was returned. 100 new posts cost two requests (a full
  page asks for one more); a quiet fetch costs two as well, see the next point.
- When `before=` returns nothing, the anchor may have been deleted (then Reddit answers empty
  although newer posts exist), so the source reads the listing from the top down to the stored
  `created` time instead.
- `backlog` is a part still owed: where a top-down read ran out of `max_pages` (a long first
  backfill, or the deleted-anchor read), the next fetches continue it with `after=` down to its
  `until` time, after reading what is new. Reddit serves about 1,000 items of a listing; a backlog
  deeper than that ends there. `listener fetch --since` below the cursor owes the listing from
  the top down to `since` the same way.

`max_pages` counts the pages that brought items; a request that brought nothing new (an empty
`before=` answer, a look at the top that meets the anchor first) does not count, so quiet fetches
never starve a backlog. Every request, the token's included, is counted in `FetchResult.requests`.

Rate limits: Reddit sends `X-Ratelimit-Used`, `X-Ratelimit-Remaining` and `X-Ratelimit-Reset`
(seconds until the window resets) on API responses. When fewer than one request remains, the
source stops paging (keeping its cursor where it stopped) and sets `FetchResult.wait` to the
reset time. A 429 comes out of the HttpClient as a FetchError with Retry-After.
"""

from __future__ import annotations

import base64
import json
import re
import shlex
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from listener.errors import FetchError, env_secret, register_secret
from listener.sources import FetchResult, Mention, SourceState
from listener.sources.http import HttpClient, Response
from listener.sources.text import as_count, canonical_url, html_to_text, parse_datetime

__all__ = ["RedditSource", "parse_listing", "thing_mention", "query_matches", "LIMIT", "TOKEN_MARGIN"]

LIMIT = 100  # the most items a listing gives per request
TOKEN_MARGIN = timedelta(seconds=60)  # refresh the token this long before it expires
WEB = "https://www.reddit.com"
_SUBREDDIT = re.compile(r"[A-Za-z0-9_]{2,21}(\+[A-Za-z0-9_]{2,21})*")


class RedditSource:
    """Reddit posts matching a search, through the OAuth API (app-only login)."""

    kind = "reddit"

    @dataclass(frozen=True)
    class Options:
        """Reddit posts matching a search (optionally in one subreddit), newest first, over OAuth."""

        query: str = field(metadata={"help": "Search words, in Reddit's search syntax"})
        client_id_env: str = field(
            default="REDDIT_CLIENT_ID", metadata={"help": "Client id of your Reddit app", "secret": True}
        )
        client_secret_env: str = field(
            default="REDDIT_CLIENT_SECRET",
            metadata={"help": "Client secret of your Reddit app", "secret": True},
        )
        subreddit: str = field(
            default="", metadata={"help": "Search only this subreddit (name without r/; a+b for several)"}
        )
        comments: bool = field(
            default=False,
            metadata={"help": "Also read the subreddit's new comments; keep those with the query's words"},
        )
        max_pages: int = field(
            default=3,
            metadata={"help": "Most pages (of up to 100 items) read per listing and fetch; the rest waits"},
        )
        user_agent: str = field(
            default="",
            metadata={"help": 'User-Agent for Reddit, like "listener/0.1 (by /u/you)"; empty: the default'},
        )
        base_url: str = field(
            default="https://oauth.reddit.com", metadata={"help": "Address of the Reddit API", "url": True}
        )
        auth_url: str = field(
            default="https://www.reddit.com", metadata={"help": "Where access tokens come from", "url": True}
        )

        def __post_init__(self) -> None:
            if not self.query.strip():
                raise ValueError("query: give the words to search for")
            if self.subreddit and not _SUBREDDIT.fullmatch(self.subreddit):
                raise ValueError(
                    f"subreddit: {self.subreddit!r} is not a subreddit name (give it without r/)"
                )
            if self.comments and not self.subreddit:
                raise ValueError(
                    "comments = true needs subreddit: Reddit's search API does not search comments"
                )
            if self.max_pages < 1:
                raise ValueError(f"max_pages: must be at least 1, got {self.max_pages}")
            if "\n" in self.user_agent or "\r" in self.user_agent:
                raise ValueError("user_agent: must be one line")

    def __init__(self, name: str, options: Options):
        self.name = name
        self.options = options
        self._token: str | None = None
        self._token_expires: datetime | None = None
        self._token_client: str | None = None  # the client id the token belongs to

    def hosts(self) -> list[str]:
        """The API's host and the token endpoint's host."""
        hosts = []
        for url in (self.options.base_url, self.options.auth_url):
            host = urlsplit(url).hostname
            if host and host.lower() not in hosts:
                hosts.append(host.lower())
        return hosts

    async def fetch(self, state: SourceState, http: HttpClient, now: datetime,
                    since: datetime | None = None) -> FetchResult:
        """Read new posts (and comments) above the cursor, then any backlog, within `max_pages`."""
        stored = _load(state.cursor)
        run = _Run(self, http, now)
        sub = self.options.subreddit
        posts_path = f"/r/{sub}/search" if sub else "/search"
        posts_params = {"q": self.options.query, "sort": "new", "type": "link", "raw_json": 1}
        if sub:
            posts_params["restrict_sr"] = 1
        streams = {"posts": (posts_path, posts_params)}
        if self.options.comments:
            streams["comments"] = (f"/r/{sub}/comments", {"raw_json": 1})
        cursor: dict[str, Any] = {}
        mentions: dict[str, Mention] = {}
        for key, (path, params) in streams.items():
            items, cursor[key] = await run.stream(path, params, _Stream.load(stored.get(key)), since)
            for item in items:
                mention = thing_mention(item)
                if mention is None or mention.source_id in mentions:
                    continue
                if key == "comments" and not query_matches(self.options.query, mention.text):
                    continue
                mentions[mention.source_id] = mention
        saved = {k: v.dump() for k, v in cursor.items() if not v.empty}
        text = json.dumps(saved, sort_keys=True) if saved else None
        new_state = SourceState(state.etag, state.last_modified, text)
        return FetchResult(list(mentions.values()), new_state, requests=run.requests, wait=run.wait)

    # ---------------------------------------------------------------------------------- auth

    def _credentials(self) -> tuple[str, str]:
        values = []
        for option in ("client_id_env", "client_secret_env"):
            env_name = getattr(self.options, option)
            value = env_secret(env_name, secret=option == "client_secret_env") or ""
            if not value:
                raise FetchError(f"environment variable {env_name} is not set (needed by {option})")
            values.append(value)
        return values[0], values[1]

    async def access_token(self, http: HttpClient, now: datetime, run: _Run | None = None) -> str:
        """A bearer token for the API: the cached one, or a new one when it is (nearly) expired."""
        client_id, client_secret = self._credentials()
        if (self._token and self._token_client == client_id and self._token_expires is not None
                and now < self._token_expires - TOKEN_MARGIN):
            return self._token
        self._token = None
        basic = base64.b64encode(f"{client_id}:{client_secret}".encode()).decode("ascii")
        register_secret(basic)
        url = self.options.auth_url.rstrip("/") + "/api/v1/access_token"
        headers = {"Authorization": f"Basic {basic}", "Accept": "application/json", **self._ua()}
        if run is not None:
            run.requests += 1
        try:
            response = await http.post(url, headers=headers, data={"grant_type": "client_credentials"})
        except FetchError as error:
            if error.status in (401, 403):
                raise FetchError(
                    f"Reddit refused the app's credentials (HTTP {error.status} at {url}): check "
                    f"{self.options.client_id_env} and {self.options.client_secret_env} "
                    "(a script or web app's id and secret)",
                    status=error.status,
                ) from None
            raise
        body = response.json()
        token = body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            reason = body.get("error") if isinstance(body, dict) else None
            detail = f" ({reason})" if isinstance(reason, (str, int)) and not isinstance(reason, bool) else ""
            raise FetchError(
                f"Reddit gave no access token{detail} at {url}: check {self.options.client_id_env} and "
                f"{self.options.client_secret_env}"
            )
        expires_in = body.get("expires_in")
        seconds = _number(expires_in) if not isinstance(expires_in, str) else None
        seconds = 3600.0 if seconds is None else seconds
        self._token, self._token_client = token, client_id
        self._token_expires = now + timedelta(seconds=max(seconds, 0.0))
        return token

    def _ua(self) -> dict[str, str]:
        return {"User-Agent": self.options.user_agent} if self.options.user_agent.strip() else {}


@dataclass
class _Stream:
    """One listing's part of the cursor."""

    newest: str | None = None
    created: float | None = None
    backlog_after: str | None = None
    backlog_until: float | None = None
    has_backlog: bool = False

    @property
    def empty(self) -> bool:
        return self.newest is None and not self.has_backlog

    @classmethod
    def load(cls, data: Any) -> _Stream:
        if not isinstance(data, dict):
            return cls()
        newest = data.get("newest") if isinstance(data.get("newest"), str) else None
        created = _number(data.get("created"))
        backlog = data.get("backlog")
        if isinstance(backlog, dict):
            after = backlog.get("after") if isinstance(backlog.get("after"), str) else None
            return cls(newest, created, after, _number(backlog.get("until")), True)
        return cls(newest, created)

    def dump(self) -> dict[str, Any]:
        out: dict[str, Any] = {"newest": self.newest, "created": self.created}
        if self.has_backlog:
            out["backlog"] = {"after": self.backlog_after, "until": self.backlog_until}
        return out


def _load(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    try:
        data = json.loads(text)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


class _Run:
    """One fetch: requests made, the rate-limit wait, and the listing reads."""

    def __init__(self, source: RedditSource, http: HttpClient, now: datetime):
        self.source = source
        self.http = http
        self.now = now
        self.requests = 0
        self.wait: float | None = None
        self.stopped = False  # the rate limit is used up: no more requests in this fetch

    async def stream(self, path: str, params: dict[str, Any], old: _Stream,
                     since: datetime | None) -> tuple[list[dict[str, Any]], _Stream]:
        """The new items of one listing and its next cursor."""
        budget = [self.source.options.max_pages]
        since_ts = since.timestamp() if since is not None else None
        new = _Stream(old.newest, old.created, old.backlog_after, old.backlog_until, old.has_backlog)
        items: list[dict[str, Any]] = []
        top_complete = True

        if old.newest is not None:
            got, anchor, complete, first_empty = await self._up(path, params, old.newest, budget)
            items += got
            top_complete = complete
            if not complete:  # stopped on a full page: go on from its newest item next time
                new.newest = anchor
                new.created = next((_created(i) for i in got if _name(i) == anchor), old.created)
            if first_empty and old.created is not None and budget[0] > 0 and not self.stopped:
                # The anchor may be gone (deleted or removed from the listing): read from the top.
                got, after, done = await self._down(path, params, None, old.created, old.newest, budget)
                items += got
                if not done:
                    _owe(new, after, old.created)
        else:
            got, after, done = await self._down(path, params, None, since_ts, None, budget,
                                                one_page=since_ts is None)
            items += got
            if not done and since_ts is not None:
                _owe(new, after, since_ts)

        read_backlog = True
        if since_ts is not None and old.newest is not None:  # an explicit backfill (`fetch --since`)
            if new.has_backlog and new.backlog_until is not None and new.backlog_until < since_ts:
                # The backlog reaches below `since`, whose older items the pipeline would drop:
                # keep it for a later fetch; it covers this backfill too.
                read_backlog = False
            elif old.created is None or since_ts < old.created:
                _owe(new, None, since_ts, restart=True)

        if read_backlog and new.has_backlog and budget[0] > 0 and not self.stopped:
            before_backlog = new.backlog_after
            got, after, done = await self._down(path, params, before_backlog, new.backlog_until, None, budget)
            items += got
            if done:
                new.has_backlog, new.backlog_after, new.backlog_until = False, None, None
            else:
                new.backlog_after = after

        if top_complete:
            newest = _newest(items)
            if newest is not None and (new.created is None or (_created(newest) or 0) >= new.created):
                new.newest, new.created = _name(newest), _created(newest)
        return items, new

    async def _up(self, path: str, params: dict[str, Any], anchor: str,
                  budget: list[int]) -> tuple[list[dict[str, Any]], str, bool, bool]:
        """Pages newer than anchor, oldest first: (items, last anchor, complete, first answer empty)."""
        items: list[dict[str, Any]] = []
        first = True
        while budget[0] > 0 and not self.stopped:
            children, _ = await self._listing(path, {**params, "before": anchor})
            if not children:
                return items, anchor, True, first
            budget[0] -= 1
            first = False
            items += children
            name = _name(children[0])
            if name is None or len(children) < LIMIT:
                return items, anchor if name is None else name, True, False
            anchor = name
        return items, anchor, False, False

    async def _down(self, path: str, params: dict[str, Any], after: str | None, until: float | None,
                    stop_name: str | None, budget: list[int], one_page: bool = False
                    ) -> tuple[list[dict[str, Any]], str | None, bool]:
        """Pages from `after` (None: the top) down to `until`: (items, where to go on, done)."""
        items: list[dict[str, Any]] = []
        while budget[0] > 0 and not self.stopped:
            request = {**params, "after": after} if after else dict(params)
            children, next_after = await self._listing(path, request)
            if children and not _stops(children[0], until, stop_name):
                budget[0] -= 1  # a page that yields items counts; a look that finds nothing new does not
            for child in children:
                if _stops(child, until, stop_name):
                    return items, None, True
                items.append(child)
            if one_page or not children or not next_after:
                return items, None, True
            after = next_after
        return items, after, False

    async def _listing(self, path: str, params: dict[str, Any]) -> tuple[list[dict[str, Any]], str | None]:
        body = await self._get(path, {**params, "limit": LIMIT})
        host = urlsplit(self.source.options.base_url).hostname or self.source.options.base_url
        return listing_children(body, host)

    async def _get(self, path: str, params: dict[str, Any]) -> Any:
        url = self.source.options.base_url.rstrip("/") + path
        for attempt in (1, 2):
            token = await self.source.access_token(self.http, self.now, self)
            headers = {"Authorization": f"bearer {token}", "Accept": "application/json", **self.source._ua()}
            self.requests += 1
            try:
                response = await self.http.get(url, headers=headers, params=params)
            except FetchError as error:
                if error.status == 401 and attempt == 1:
                    self.source._token = None  # expired or revoked: get a new one and try once more
                    continue
                raise self._explained(error) from None
            self._rate_limit(response)
            if urlsplit(response.url).path.rstrip("/") != urlsplit(url).path.rstrip("/"):
                # Reddit sends a search in an unknown subreddit on to its subreddit search.
                where = f"r/{self.source.options.subreddit}" if self.source.options.subreddit else path
                raise FetchError(f"{where} was redirected to {urlsplit(response.url).path}: check subreddit")
            return response.json()
        raise AssertionError("unreachable")  # pragma: no cover

    def _explained(self, error: FetchError) -> FetchError:
        sub = self.source.options.subreddit
        hints = {
            401: "the API refused a fresh access token; check that the app is allowed to use the API",
            403: f"r/{sub} may be private, quarantined or banned" if sub else "the app may not search",
            404: f"r/{sub} may not exist; check subreddit" if sub else "check base_url",
        }
        hint = hints.get(error.status or 0)
        if hint is None:
            return error
        return FetchError(f"{error}: {hint}", retry_after=error.retry_after, status=error.status)

    def _rate_limit(self, response: Response) -> None:
        remaining = _number(response.headers.get("x-ratelimit-remaining"))
        reset = _number(response.headers.get("x-ratelimit-reset"))
        if remaining is not None and remaining < 1:
            self.stopped = True
            if reset is not None:
                self.wait = max(self.wait or 0.0, reset)


def _stops(thing: dict[str, Any], until: float | None, stop_name: str | None) -> bool:
    """Whether a top-down read ends at this item: the anchor it looks for, or older than `until`."""
    if stop_name is not None and _name(thing) == stop_name:
        return True
    created = _created(thing)
    return until is not None and created is not None and created < until


def _owe(stream: _Stream, after: str | None, until: float | None, restart: bool = False) -> None:
    """Record a part of the listing still to read: from `after` down to `until`.

    With a backlog already owed, the one reaching further down wins the `until`; the read goes on
    from the higher starting point (re-reading what lies between costs requests, never items).
    """
    if not stream.has_backlog:
        stream.has_backlog, stream.backlog_after, stream.backlog_until = True, after, until
        return
    if restart or after is None:
        stream.backlog_after = None
    if until is None or stream.backlog_until is None:
        stream.backlog_until = None
    else:
        stream.backlog_until = min(until, stream.backlog_until)
    if not restart and after is not None and stream.backlog_after is not None:
        stream.backlog_after = after  # continue from the newer gap; it reaches the older one too


def listing_children(body: Any, host: str = "reddit") -> tuple[list[dict[str, Any]], str | None]:
    """The things of a Listing (each `{"kind", "data"}`) and its `after`; FetchError for another shape."""
    data = body.get("data") if isinstance(body, dict) else None
    children = data.get("children") if isinstance(data, dict) else None
    if not isinstance(children, list):
        got = type(body).__name__ if not isinstance(body, dict) else f"an object of kind {body.get('kind')!r}"
        raise FetchError(f"unexpected response from {host}: expected a Listing, got {got}")
    after = data.get("after")
    return [c for c in children if isinstance(c, dict) and isinstance(c.get("data"), dict)], (
        after if isinstance(after, str) and after else None
    )


def parse_listing(body: Any) -> list[Mention]:
    """The mentions in a Listing (posts t3, comments t1; other kinds are skipped)."""
    children, _ = listing_children(body)
    mentions = (thing_mention(child) for child in children)
    return [m for m in mentions if m is not None]


def thing_mention(thing: dict[str, Any]) -> Mention | None:
    """A post (t3) or comment (t1) as a Mention; None for other kinds or without a fullname."""
    kind, data = thing.get("kind"), thing.get("data")
    if kind not in ("t1", "t3") or not isinstance(data, dict):
        return None
    name = _str(data.get("name")) or (f"{kind}_{data['id']}" if _str(data.get("id")) else None)
    if name is None:
        return None
    permalink = _str(data.get("permalink"))
    author = _str(data.get("author"))
    extra: dict[str, Any] = {"type": "post" if kind == "t3" else "comment"}
    subreddit = _str(data.get("subreddit"))
    if subreddit:
        extra["subreddit"] = subreddit
    if isinstance(data.get("over_18"), bool):
        extra["over_18"] = data["over_18"]
    if kind == "t3":
        title = _str(data.get("title"))
        text = _text(data.get("selftext_html"), data.get("selftext")) or (title or "")
        link = _str(data.get("url_overridden_by_dest")) or _str(data.get("url"))
        if link and not data.get("is_self") and link.startswith(("http://", "https://")):
            extra["link"] = canonical_url(link)
        replies = _int(data.get("num_comments"))
    else:
        title = None
        text = _text(data.get("body_html"), data.get("body"))
        for key, out in (("link_title", "post_title"), ("link_id", "post_id"), ("parent_id", "parent_id")):
            if _str(data.get(key)):
                extra[out] = data[key]
        replies = None
    return Mention(
        source_id=name,
        text=text,
        url=canonical_url(WEB + permalink) if permalink and permalink.startswith("/") else None,
        title=title,
        author=None if author in (None, "[deleted]") else author,
        published_at=parse_datetime(_number(data.get("created_utc"))),
        score=_int(data.get("score")),
        replies=replies,
        extra=extra,
    )


def query_matches(query: str, text: str) -> bool:
    """Whether text contains the query's words, case-insensitively: the local filter for comments.

    Every word or "quoted phrase" must occur (as a substring), except words after a `-` or `NOT`,
    which must not; `OR` between terms makes either one enough. Field prefixes such as `title:`
    and the word `AND` are ignored. Approximate by design: Reddit's own search never sees comments.
    """
    try:
        tokens = shlex.split(query)
    except ValueError:
        tokens = query.split()
    haystack = text.casefold()
    groups: list[list[str]] = [[]]  # OR-groups of required terms
    excluded: list[str] = []
    negate = False
    for token in tokens:
        if token == "OR":
            groups.append([])
            continue
        if token in ("AND", "&&"):
            continue
        if token in ("NOT", "-"):
            negate = True
            continue
        if token.startswith("-") and len(token) > 1:
            negate, token = True, token[1:]
        if ":" in token:
            token = token.split(":", 1)[1]
        token = token.strip().casefold()
        if token:
            (excluded if negate else groups[-1]).append(token)
        negate = False
    if any(term in haystack for term in excluded):
        return False
    groups = [g for g in groups if g]
    return not groups or any(all(term in haystack for term in group) for group in groups)


def _text(html: Any, markdown: Any) -> str:
    if isinstance(html, str) and html.strip():
        return html_to_text(html)
    return markdown.strip() if isinstance(markdown, str) else ""


def _newest(items: list[dict[str, Any]]) -> dict[str, Any] | None:
    dated = [i for i in items if _created(i) is not None and _name(i) is not None]
    return max(dated, key=lambda i: _created(i) or 0.0) if dated else None


def _name(thing: dict[str, Any]) -> str | None:
    data = thing.get("data")
    return _str(data.get("name")) if isinstance(data, dict) else None


def _created(thing: dict[str, Any]) -> float | None:
    data = thing.get("data")
    return _number(data.get("created_utc")) if isinstance(data, dict) else None


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def _int(value: Any) -> int | None:
    """A count from an int or a float (truncated); None for anything else, inf, NaN or beyond MAX_COUNT."""
    return as_count(value, floats=True)

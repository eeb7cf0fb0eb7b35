"""Mastodon: hashtag timelines on one or more instances, and keyword search with an access token.

Requests (Mastodon 4.x; servers that copy its API, such as Pleroma or GoToSocial, mostly work):

- `GET /api/v1/timelines/tag/FIRST?any[]=SECOND&any[]=THIRD&any[]=FOURTH&limit=40`: public on
  most instances. Mastodon applies at most four tags per request (TagFeed::LIMIT_PER_MODE
  counts the path's tag with the `any[]` ones), so `tags` are read in groups of four: three
  tags on two instances cost two requests. An instance answers an empty list, not an error,
  when the group's first tag was never used there, even if the others were; put the most
  common tag first.
- `GET /api/v2/search?q=QUERY&type=statuses&limit=40` with `Authorization: Bearer`, when
  `query` is set: full-text search only finds posts of accounts that opted in to search
  (Mastodon 4.2+), and its `min_id`/`max_id` are turned into created-at bounds by the server,
  so every result is also checked against the cursor here.

Paging is done with `max_id` (older than) and `since_id` (timelines) or `min_id` (search), both
newest first. The `Link` header is not followed: the tag timeline's links drop the `any[]`
parameters.

Cursor: JSON, per instance base URL, per feed ("tags:a,b" or "search:QUERY"), the newest status
id seen on that instance (`mark`). A fetch reads newest-first down to the mark, at most
`max_pages` pages per feed. When it stops before reaching the mark (more new posts than
`max_pages` pages, or the rate limit ran low), the cursor keeps the old mark plus the oldest id
read (`below`) and the newest (`top`): the next fetch reads the rest of that gap first, and only
then moves the mark to `top`. Nothing is skipped; nothing is read twice on purpose.

The first fetch (no mark) reads newest-first back to `since`, at most `max_pages` pages (that is
the backfill's bound); without `since` it reads one page. `listener fetch --since` with a mark
reads back to `since` again and leaves the cursor as it was (what it reads twice the pipeline
drops as duplicates).

One failing instance fails the whole fetch (the error names it, and how many others failed):
the pipeline records a fetch as a success or a failure, and a partial cursor would hide it.

Rate limits: `X-RateLimit-Remaining` / `X-RateLimit-Reset` (300 requests per 5 minutes per IP
or per account by default). When an instance has at most RATE_LIMIT_RESERVE requests left, its
paging stops and `FetchResult.wait` is the time until its reset. 429/503 come out of the
HttpClient as a FetchError with `retry_after`.

Mentions: source_id is the status `uri` (its ActivityPub id, the same on every instance), so a
post seen through two instances is one mention. A boost (`reblog`) is read as the boosted post
(with `boosted_by` in extra); public and tag timelines leave boosts out anyway.
"""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlsplit

from listener.errors import FetchError, env_secret
from listener.sources import FetchResult, Mention, SourceState
from listener.sources.http import HttpClient, Response, http_date
from listener.sources.text import as_count, canonical_url, html_to_text, parse_datetime

__all__ = ["MastodonSource", "status_mention"]

PAGE_SIZE = 40  # Mastodon's maximum `limit`
TAGS_PER_REQUEST = 4  # TagFeed::LIMIT_PER_MODE: the path's tag plus three `any[]`
RATE_LIMIT_RESERVE = 1  # stop paging an instance when it has this many requests left
_BAD_TAG = re.compile(r"[\s#/?&%]")


def _tags_problem(tags: tuple[str, ...]) -> str | None:
    for tag in tags:
        if not tag.strip():
            return "tags: a tag is empty"
        if tag.startswith("#"):
            # repr: a tag is echoed on one line whatever it holds ('#a\nb' in the config)
            return f"tags: write tags without '#' ({tag.lstrip('#')!r}, not {tag!r})"
        if _BAD_TAG.search(tag):
            return f"tags: {tag!r} is not a hashtag (letters, digits and _ only)"
    return None


class MastodonSource:
    """Public posts with given hashtags on Mastodon instances; keyword search with a token."""

    kind = "mastodon"

    @dataclass(frozen=True)
    class Options:
        """Hashtag timelines on one or more Mastodon instances (and keyword search with a token)."""

        tags: tuple[str, ...] = field(
            default=(), metadata={"help": "Hashtags to follow, without '#' (read four per request)"}
        )
        instances: tuple[str, ...] = field(
            default=("https://mastodon.social",),
            metadata={"help": "Base URLs of the instances to read", "url": True},
        )
        query: str | None = field(
            default=None,
            metadata={"help": "Keywords for full-text search of posts (needs token_env)"},
        )
        token_env: str | None = field(
            default=None,
            metadata={"help": "Access token (read scope) for search and closed timelines", "secret": True},
        )
        max_pages: int = field(
            default=5, metadata={"help": "Pages of 40 posts per tag group and instance per fetch"}
        )

        def __post_init__(self) -> None:
            if not self.instances:
                raise ValueError("instances: give at least one instance URL")
            if not self.tags and self.query is None:
                raise ValueError("give at least one tag in tags, or a query (with token_env)")
            problem = _tags_problem(self.tags)
            if problem:
                raise ValueError(problem)
            if self.query is not None and not self.query.strip():
                raise ValueError("query: the search query is empty")
            if self.query is not None and not self.token_env:
                raise ValueError("query needs token_env: Mastodon searches post text only for signed-in apps")
            if self.max_pages < 1:
                raise ValueError("max_pages must be at least 1")

    def __init__(self, name: str, options: Options):
        self.name = name
        self.options = options

    def hosts(self) -> list[str]:
        """The instances' hosts."""
        hosts = (urlsplit(url).hostname for url in self.options.instances)
        return sorted({h.lower() for h in hosts if h})

    async def fetch(self, state: SourceState, http: HttpClient, now: datetime,
                    since: datetime | None = None) -> FetchResult:
        """Read every instance's feeds from the cursor (or back to `since`); fail if any instance fails."""
        token = self._token()
        cursor = _read_cursor(state.cursor)
        instances = list(dict.fromkeys(url.rstrip("/") for url in self.options.instances))
        readers = [
            _InstanceReader(base, self._feeds(), token, self.options, http, now, since)
            for base in instances
        ]
        results = await asyncio.gather(
            *(reader.read(cursor.get(reader.base, {})) for reader in readers), return_exceptions=True
        )
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            first = errors[0]
            if not isinstance(first, FetchError):
                raise first
            more = len(errors) - 1
            message = str(first)
            if more:
                message += f" (and {more} more instance{'s' if more > 1 else ''} failed)"
            waits = [e.retry_after for e in errors if isinstance(e, FetchError) and e.retry_after is not None]
            raise FetchError(message, retry_after=max(waits, default=None), status=first.status)
        mentions: dict[str, Mention] = {}
        new_cursor: dict[str, dict[str, dict[str, str]]] = {}
        requests = 0
        wait: float | None = None
        for reader in readers:
            for mention in reader.mentions:
                mentions.setdefault(mention.source_id, mention)
            new_cursor[reader.base] = reader.marks
            requests += reader.requests
            if reader.wait is not None:
                wait = max(wait or 0.0, reader.wait)
        new_state = SourceState(
            etag=state.etag, last_modified=state.last_modified,
            cursor=json.dumps(new_cursor, sort_keys=True, separators=(",", ":")),
        )
        return FetchResult(list(mentions.values()), new_state, requests=requests, wait=wait)

    def _token(self) -> str | None:
        env = self.options.token_env
        if not env:
            return None
        value = (env_secret(env) or "").strip()
        if not value:
            raise FetchError(f"environment variable {env} is not set (needed by token_env)")
        return value

    def _feeds(self) -> list[_Feed]:
        tags = list(dict.fromkeys(t.strip().lower() for t in self.options.tags))
        feeds = []
        for start in range(0, len(tags), TAGS_PER_REQUEST):
            group = tags[start:start + TAGS_PER_REQUEST]
            feeds.append(_Feed(key="tags:" + ",".join(group), tags=tuple(group)))
        if self.options.query:
            feeds.append(_Feed(key="search:" + self.options.query.strip(), query=self.options.query.strip()))
        return feeds


@dataclass(frozen=True)
class _Feed:
    """One thing read on every instance: a group of up to four tags, or the search query."""

    key: str  # its key in the cursor
    tags: tuple[str, ...] = ()
    query: str | None = None


@dataclass
class _Walk:
    statuses: list[dict[str, Any]] = field(default_factory=list)  # kept: inside the bounds
    newest: str | None = None  # the newest id read
    oldest: str | None = None  # the oldest id read
    pages: int = 0
    reached: bool = False  # read down to the floor, to `since`, or to the end of the feed


class _InstanceReader:
    """Reads every feed on one instance, sharing its rate-limit budget."""

    def __init__(self, base: str, feeds: list[_Feed], token: str | None, options: MastodonSource.Options,
                 http: HttpClient, now: datetime, since: datetime | None):
        self.base = base
        self.host = (urlsplit(base).hostname or base).lower()  # the domain of local accounts
        self.label = urlsplit(base).netloc.lower() or base  # the instance in messages
        self.feeds = feeds
        self.token = token
        self.options = options
        self.http = http
        self.now = now
        self.since = since
        self.mentions: list[Mention] = []
        self.marks: dict[str, dict[str, str]] = {}
        self.requests = 0
        self.wait: float | None = None
        self.exhausted = False

    async def read(self, marks: dict[str, dict[str, str]]) -> None:
        for feed in self.feeds:
            entry = marks.get(feed.key, {})
            new_entry = await self._read_feed(feed, entry)
            if new_entry:
                self.marks[feed.key] = new_entry

    async def _read_feed(self, feed: _Feed, entry: dict[str, str]) -> dict[str, str]:
        max_pages = self.options.max_pages
        mark, below, top = entry.get("mark"), entry.get("below"), entry.get("top")
        if mark is None:  # first fetch of this feed: back to `since`, or one page
            walk = await self._walk(feed, floor=None, below=None, pages=max_pages if self.since else 1)
            self._keep(walk)
            return {"mark": walk.newest} if walk.newest else {}
        if self.since is not None:  # a backfill asked for: the cursor stays as it was
            walk = await self._walk(feed, floor=None, below=None, pages=max_pages)
            self._keep(walk)
            return entry
        walk = await self._walk(feed, floor=mark, below=below, pages=max_pages)
        self._keep(walk)
        newest = top if below else _newer(walk.newest, mark)
        if walk.reached:
            return {"mark": newest or mark}
        if walk.pages == 0 or walk.oldest is None:
            return entry
        return {"mark": mark, "below": walk.oldest, "top": newest or mark}

    def _keep(self, walk: _Walk) -> None:
        for status in walk.statuses:
            mention = status_mention(status, self.host)
            if mention is not None:
                self.mentions.append(mention)

    async def _walk(self, feed: _Feed, *, floor: str | None, below: str | None, pages: int) -> _Walk:
        """Pages newest-first from `below` (or the top) down to `floor` / `since`, at most `pages`."""
        walk = _Walk()
        while walk.pages < pages and not self.exhausted:
            statuses, count = await self._page(feed, floor, below)
            walk.pages += 1
            ids = [s["id"] for s in statuses]
            if not ids:
                walk.reached = True
                break
            newest, oldest = max(ids, key=_id_key), min(ids, key=_id_key)
            walk.newest = _newer(walk.newest, newest)
            for status in statuses:
                key = _id_key(status["id"])
                if floor is not None and key <= _id_key(floor):
                    continue
                if below is not None and key >= _id_key(below):
                    continue
                created = parse_datetime(status.get("created_at"))
                if self.since is not None and created is not None and created < self.since:
                    continue
                walk.statuses.append(status)
            if below is not None and _id_key(oldest) >= _id_key(below):
                walk.reached = True  # max_id is ignored: going on would read this page again
                break
            walk.oldest = oldest if walk.oldest is None else min(walk.oldest, oldest, key=_id_key)
            below = oldest
            created = [parse_datetime(s.get("created_at")) for s in statuses]
            if (
                count < PAGE_SIZE
                or (floor is not None and _id_key(oldest) <= _id_key(floor))
                or (self.since is not None and any(c is not None and c < self.since for c in created))
            ):
                walk.reached = True
                break
        return walk

    async def _page(self, feed: _Feed, floor: str | None,
                    below: str | None) -> tuple[list[dict[str, Any]], int]:
        """One request: the statuses that have an id (newest first) and how many items came."""
        headers = {"Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        params: dict[str, Any] = {"limit": PAGE_SIZE}
        if feed.query is not None:
            url = f"{self.base}/api/v2/search"
            params.update(q=feed.query, type="statuses")
            if floor is not None:
                params["min_id"] = floor
        else:
            url = f"{self.base}/api/v1/timelines/tag/{quote(feed.tags[0], safe='')}"
            if len(feed.tags) > 1:
                params["any[]"] = list(feed.tags[1:])
            if floor is not None:
                params["since_id"] = floor
        if below is not None:
            params["max_id"] = below
        self.requests += 1
        try:
            response = await self.http.get(url, headers=headers, params=params)
        except FetchError as exc:
            raise self._explain(exc, feed) from None
        self._note_rate_limit(response)
        if response.body.lstrip()[:1] == b"<":
            raise FetchError(f"unexpected response from {self.label}: an HTML page, not the API's JSON")
        body = response.json()
        if feed.query is not None:
            if not isinstance(body, dict) or not isinstance(body.get("statuses"), list):
                raise FetchError(f"unexpected response from {self.label}: not a search result with statuses")
            items = body["statuses"]
        else:
            if not isinstance(body, list):
                raise FetchError(
                    f"unexpected response from {self.label}: expected a list of statuses, got {_kind(body)}"
                )
            items = body
        statuses = []
        for item in items:
            if isinstance(item, dict) and isinstance(item.get("id"), (str, int)) and str(item["id"]).strip():
                statuses.append({**item, "id": str(item["id"]).strip()})
        return statuses, len(items)

    def _explain(self, exc: FetchError, feed: _Feed) -> FetchError:
        """The HttpClient's error, with what it means on this endpoint and what to do."""
        status = exc.status
        if status in (401, 403):
            if feed.query is not None or self.token:
                what = "search" if feed.query is not None else "the tag timeline"
                reason = (f"{self.label}: {what} refused the access token in {self.options.token_env} "
                          f"(HTTP {status}); check the token and its read scope")
            else:
                reason = (f"{self.label}: public tag timelines are disabled on this instance "
                          f"(HTTP {status}); use another instance or set token_env")
            return FetchError(reason, status=status)
        if status in (404, 410):
            if feed.query is not None:
                reason = f"{self.label}: no search API here (HTTP {status}); is it a Mastodon server?"
            else:
                reason = (f"{self.label}: no tag timeline for #{feed.tags[0]} (HTTP {status}); the tag is "
                          "unknown on this instance (older Mastodon) or it does not serve the Mastodon API")
            return FetchError(reason, status=status)
        return exc

    def _note_rate_limit(self, response: Response) -> None:
        remaining = response.headers.get("x-ratelimit-remaining", "").strip()
        if not remaining.isdigit() or int(remaining) > RATE_LIMIT_RESERVE:
            return
        self.exhausted = True
        reset = parse_datetime(response.headers.get("x-ratelimit-reset", ""))
        if reset is None:
            return
        clock = http_date(response.headers.get("date", "")) or self.now
        self.wait = max(self.wait or 0.0, max(0.0, (reset - clock).total_seconds()))


def status_mention(status: dict[str, Any], host: str) -> Mention | None:
    """A Mention from a Mastodon Status entity read on instance `host` (a boost: the boosted post)."""
    shown = status.get("reblog") if isinstance(status.get("reblog"), dict) else status
    account = shown.get("account") if isinstance(shown.get("account"), dict) else {}
    url = _text(shown.get("url")) or _text(shown.get("uri"))
    status_id = _text(shown.get("id"))
    source_id = _text(shown.get("uri")) or url
    if source_id is None and status_id:
        source_id = f"https://{host}/statuses/{status_id}"
    if source_id is None:
        return None
    text = html_to_text(_text(shown.get("content")) or "")
    if not text:  # a picture without words: its descriptions are the words
        media = shown.get("media_attachments") if isinstance(shown.get("media_attachments"), list) else []
        text = "\n".join(d for m in media if isinstance(m, dict) and (d := _text(m.get("description"))))
    tags = shown.get("tags") if isinstance(shown.get("tags"), list) else []
    hashtags = tuple(dict.fromkeys(
        name.lower().lstrip("#") for t in tags if isinstance(t, dict) and (name := _text(t.get("name")))
    ))
    extra: dict[str, Any] = {"instance": host}
    if status_id:
        extra["status_id"] = status_id
    if display_name := _text(account.get("display_name")):
        extra["display_name"] = display_name
    if shown is not status:
        extra["boosted_by"] = _acct(status.get("account"), host)
    if shown.get("in_reply_to_id"):
        extra["reply"] = True
    if shown.get("sensitive") is True:
        extra["sensitive"] = True
    return Mention(
        source_id=source_id,
        text=text,
        url=canonical_url(url) if url else None,
        title=_text(shown.get("spoiler_text")),
        author=_acct(account, host),
        published_at=parse_datetime(shown.get("created_at")),
        language=_language(shown.get("language")),
        hashtags=hashtags,
        likes=_count(shown.get("favourites_count")),
        reposts=_count(shown.get("reblogs_count")),
        replies=_count(shown.get("replies_count")),
        extra=extra,
    )


def _acct(account: Any, host: str) -> str | None:
    """`user@domain`: Mastodon gives local accounts as `user` only."""
    if not isinstance(account, dict):
        return None
    acct = _text(account.get("acct")) or _text(account.get("username"))
    if not acct:
        return None
    acct = acct.lstrip("@")
    return acct if "@" in acct else f"{acct}@{host}"


def _language(value: Any) -> str | None:
    code = re.split(r"[-_]", _text(value) or "", maxsplit=1)[0].lower()
    return code if len(code) == 2 and code.isalpha() else None


def _count(value: Any) -> int | None:
    return as_count(value, negative=False)


def _text(value: Any) -> str | None:
    if isinstance(value, (str, int)) and not isinstance(value, bool):
        text = str(value).strip()
        return text or None
    return None


def _id_key(status_id: str) -> tuple[int, str]:
    """Order of status ids: Mastodon's are decimal snowflakes, others fixed-length sortable strings."""
    return (len(status_id), status_id)


def _newer(a: str | None, b: str | None) -> str | None:
    if a is None or b is None:
        return a or b
    return max(a, b, key=_id_key)


def _kind(value: Any) -> str:
    return "an object" if isinstance(value, dict) else type(value).__name__


def _read_cursor(cursor: str | None) -> dict[str, dict[str, dict[str, str]]]:
    """The stored marks; an unreadable cursor counts as none (the next fetch starts afresh)."""
    if not cursor:
        return {}
    try:
        data = json.loads(cursor)
    except ValueError:
        return {}
    if not isinstance(data, dict):
        return {}
    out: dict[str, dict[str, dict[str, str]]] = {}
    for base, feeds in data.items():
        if not isinstance(feeds, dict):
            continue
        out[base] = {
            key: {k: v for k, v in entry.items() if k in ("mark", "below", "top") and isinstance(v, str)}
            for key, entry in feeds.items()
            if isinstance(entry, dict) and isinstance(entry.get("mark"), str)
        }
    return out

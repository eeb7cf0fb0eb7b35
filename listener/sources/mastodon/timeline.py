"""Reading one Mastodon instance's feeds newest first, down to each feed's mark in the cursor.

Requests (Mastodon 4.x; servers that copy its API, such as Pleroma or GoToSocial, mostly work):

- `GET /api/v1/timelines/tag/FIRST?any[]=SECOND&any[]=THIRD&any[]=FOURTH&limit=40`: public on
  most instances. Mastodon applies at most four tags per request (TagFeed::LIMIT_PER_MODE
  counts the path's tag with the `any[]` ones), so `tags` are read in groups of four.
- `GET /api/v2/search?q=QUERY&type=statuses&limit=40` with `Authorization: Bearer`, when
  `query` is set: its `min_id`/`max_id` are turned into created-at bounds by the server, so every
  result is also checked against the cursor here.

Paging is done with `max_id` (older than) and `since_id` (timelines) or `min_id` (search), both
newest first. The `Link` header is not followed: the tag timeline's links drop the `any[]`
parameters. When the instance has at most RATE_LIMIT_RESERVE requests left, its paging stops
and the wait until its reset is kept.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

from listener.errors import FetchError
from listener.sources import Mention, ratelimit
from listener.sources.http import HttpClient, Response
from listener.sources.mastodon.statuses import status_mention
from listener.sources.text import parse_datetime

if TYPE_CHECKING:  # pragma: no cover
    from listener.sources.mastodon import MastodonSource

__all__ = ["Feed", "InstanceReader", "PAGE_SIZE", "TAGS_PER_REQUEST"]

PAGE_SIZE = 40  # Mastodon's maximum `limit`
TAGS_PER_REQUEST = 4  # TagFeed::LIMIT_PER_MODE: the path's tag plus three `any[]`
RATE_LIMIT_RESERVE = 1  # stop paging an instance when it has this many requests left


@dataclass(frozen=True)
class Feed:
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


class InstanceReader:
    """Reads every feed on one instance, sharing its rate-limit budget."""

    def __init__(self, base: str, feeds: list[Feed], token: str | None, options: MastodonSource.Options,
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

    async def _read_feed(self, feed: Feed, entry: dict[str, str]) -> dict[str, str]:
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

    async def _walk(self, feed: Feed, *, floor: str | None, below: str | None, pages: int) -> _Walk:
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

    async def _page(self, feed: Feed, floor: str | None,
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
        body = response.api_json(self.label)
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

    def _explain(self, exc: FetchError, feed: Feed) -> FetchError:
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
        left = ratelimit.remaining(response.headers, "x-ratelimit-remaining")
        if left is None or left > RATE_LIMIT_RESERVE:
            return
        self.exhausted = True
        reset = ratelimit.reset_wait(response.headers, "x-ratelimit-reset", self.now)
        if reset is not None:
            self.wait = max(self.wait or 0.0, reset)


def _id_key(status_id: str) -> tuple[int, str]:
    """Order of status ids: Mastodon's are decimal snowflakes, others fixed-length sortable strings."""
    return (len(status_id), status_id)


def _newer(a: str | None, b: str | None) -> str | None:
    if a is None or b is None:
        return a or b
    return max(a, b, key=_id_key)


def _kind(value: Any) -> str:
    return "an object" if isinstance(value, dict) else type(value).__name__

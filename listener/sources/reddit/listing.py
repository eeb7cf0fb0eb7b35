"""Reading one Reddit listing under its part of the cursor: new items first, then any backlog.

A listing's part of the cursor (`Stream`) is
`{"newest": fullname, "created": created_utc, "backlog": {"after": fullname|null, "until": ts}}`.

- First fetch: the listing is read from the top, newest first, paging with `after=`, until an
  item is older than `since` (or after one page without `since`).
- Later fetches: `before={newest}` returns the items just newer than the one we saw last, oldest
  page first, so paging with `before=` up to `max_pages` pages and stopping there keeps the
  cursor safe: it only moves up to what was returned. 100 new posts cost two requests (a full
  page asks for one more); a quiet fetch costs two as well, see the next point.
- When `before=` returns nothing, the anchor may have been deleted (then Reddit answers empty
  although newer posts exist), so the listing is read from the top down to the stored `created`
  time instead.
- `backlog` is a part still owed: where a top-down read ran out of `max_pages` (a long first
  backfill, or the deleted-anchor read), the next fetches continue it with `after=` down to its
  `until` time, after reading what is new. Reddit serves about 1,000 items of a listing; a backlog
  deeper than that ends there. `listener fetch --since` below the cursor owes the listing from
  the top down to `since` the same way.

`max_pages` counts the pages that brought items; a request that brought nothing new (an empty
`before=` answer, a look at the top that meets the anchor first) does not count, so quiet fetches
never starve a backlog. When the rate limit is used up (fewer than one request left), paging
stops where it is and the wait until the reset is kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from listener.errors import FetchError
from listener.sources import ratelimit
from listener.sources.fields import number
from listener.sources.http import HttpClient, Response, with_hint
from listener.sources.reddit.auth import AppToken, request_headers
from listener.sources.reddit.things import created, fullname, listing_children

if TYPE_CHECKING:  # pragma: no cover
    from listener.sources.reddit import RedditSource

__all__ = ["LIMIT", "Stream", "ListingRun"]

LIMIT = 100  # the most items a listing gives per request

Things = list[dict[str, Any]]


@dataclass
class Stream:
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
    def load(cls, data: Any) -> Stream:
        if not isinstance(data, dict):
            return cls()
        newest = data.get("newest") if isinstance(data.get("newest"), str) else None
        backlog = data.get("backlog")
        if isinstance(backlog, dict):
            after = backlog.get("after") if isinstance(backlog.get("after"), str) else None
            return cls(newest, number(data.get("created")), after, number(backlog.get("until")), True)
        return cls(newest, number(data.get("created")))

    def dump(self) -> dict[str, Any]:
        out: dict[str, Any] = {"newest": self.newest, "created": self.created}
        if self.has_backlog:
            out["backlog"] = {"after": self.backlog_after, "until": self.backlog_until}
        return out

    def owe(self, after: str | None, until: float | None, restart: bool = False) -> None:
        """Record a part of the listing still to read: from `after` down to `until`.

        With a backlog already owed, the one reaching further down wins the `until`; the read goes on
        from the higher starting point (re-reading what lies between costs requests, never items).
        """
        if not self.has_backlog:
            self.has_backlog, self.backlog_after, self.backlog_until = True, after, until
            return
        if restart or after is None:
            self.backlog_after = None
        if until is None or self.backlog_until is None:
            self.backlog_until = None
        else:
            self.backlog_until = min(until, self.backlog_until)
        if not restart and after is not None and self.backlog_after is not None:
            self.backlog_after = after  # continue from the newer gap; it reaches the older one too


class ListingRun:
    """One fetch: requests made, the rate-limit wait, and the listing reads."""

    def __init__(self, options: RedditSource.Options, auth: AppToken, http: HttpClient, now: datetime):
        self.options = options
        self.auth = auth
        self.http = http
        self.now = now
        self.requests = 0
        self.wait: float | None = None
        self.stopped = False  # the rate limit is used up: no more requests in this fetch

    async def stream(self, path: str, params: dict[str, Any], old: Stream,
                     since: datetime | None) -> tuple[Things, Stream]:
        """The new items of one listing and its next cursor."""
        budget = [self.options.max_pages]
        since_ts = since.timestamp() if since is not None else None
        new = Stream(old.newest, old.created, old.backlog_after, old.backlog_until, old.has_backlog)
        items: Things = []
        top_complete = True

        if old.newest is not None:
            got, anchor, complete, first_empty = await self._up(path, params, old.newest, budget)
            items += got
            top_complete = complete
            if not complete:  # stopped on a full page: go on from its newest item next time
                new.newest = anchor
                new.created = next((created(i) for i in got if fullname(i) == anchor), old.created)
            if first_empty and old.created is not None and budget[0] > 0 and not self.stopped:
                # The anchor may be gone (deleted or removed from the listing): read from the top.
                got, after, done = await self._down(path, params, None, old.created, old.newest, budget)
                items += got
                if not done:
                    new.owe(after, old.created)
        else:
            got, after, done = await self._down(path, params, None, since_ts, None, budget,
                                                one_page=since_ts is None)
            items += got
            if not done and since_ts is not None:
                new.owe(after, since_ts)

        read_backlog = True
        if since_ts is not None and old.newest is not None:  # an explicit backfill (`fetch --since`)
            if new.has_backlog and new.backlog_until is not None and new.backlog_until < since_ts:
                # The backlog reaches below `since`, whose older items the pipeline would drop:
                # keep it for a later fetch; it covers this backfill too.
                read_backlog = False
            elif old.created is None or since_ts < old.created:
                new.owe(None, since_ts, restart=True)

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
            if newest is not None and (new.created is None or (created(newest) or 0) >= new.created):
                new.newest, new.created = fullname(newest), created(newest)
        return items, new

    async def _up(self, path: str, params: dict[str, Any], anchor: str,
                  budget: list[int]) -> tuple[Things, str, bool, bool]:
        """Pages newer than anchor, oldest first: (items, last anchor, complete, first answer empty)."""
        items: Things = []
        first = True
        while budget[0] > 0 and not self.stopped:
            children, _ = await self._listing(path, {**params, "before": anchor})
            if not children:
                return items, anchor, True, first
            budget[0] -= 1
            first = False
            items += children
            name = fullname(children[0])
            if name is None or len(children) < LIMIT:
                return items, anchor if name is None else name, True, False
            anchor = name
        return items, anchor, False, False

    async def _down(self, path: str, params: dict[str, Any], after: str | None, until: float | None,
                    stop_name: str | None, budget: list[int], one_page: bool = False
                    ) -> tuple[Things, str | None, bool]:
        """Pages from `after` (None: the top) down to `until`: (items, where to go on, done)."""
        items: Things = []
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

    async def _listing(self, path: str, params: dict[str, Any]) -> tuple[Things, str | None]:
        body = await self._get(path, {**params, "limit": LIMIT})
        host = urlsplit(self.options.base_url).hostname or self.options.base_url
        return listing_children(body, host)

    async def _get(self, path: str, params: dict[str, Any]) -> Any:
        url = self.options.base_url.rstrip("/") + path
        for attempt in (1, 2):
            token, fetched = await self.auth.token(self.http, self.now)
            self.requests += fetched + 1
            try:
                response = await self.http.get(url, headers=request_headers(self.options, f"bearer {token}"),
                                               params=params)
            except FetchError as error:
                if error.status == 401 and attempt == 1:
                    self.auth.forget()  # expired or revoked: get a new one and try once more
                    continue
                raise self._explained(error) from None
            self._rate_limit(response)
            if urlsplit(response.url).path.rstrip("/") != urlsplit(url).path.rstrip("/"):
                # Reddit sends a search in an unknown subreddit on to its subreddit search.
                where = f"r/{self.options.subreddit}" if self.options.subreddit else path
                raise FetchError(f"{where} was redirected to {urlsplit(response.url).path}: check subreddit")
            return response.json()
        raise AssertionError("unreachable")  # pragma: no cover

    def _explained(self, error: FetchError) -> FetchError:
        sub = self.options.subreddit
        return with_hint(error, {
            401: "the API refused a fresh access token; check that the app is allowed to use the API",
            403: f"r/{sub} may be private, quarantined or banned" if sub else "the app may not search",
            404: f"r/{sub} may not exist; check subreddit" if sub else "check base_url",
        })

    def _rate_limit(self, response: Response) -> None:
        left = ratelimit.remaining(response.headers, "x-ratelimit-remaining")
        if left is not None and left < 1:
            self.stopped = True
            reset = ratelimit.reset_wait(response.headers, "x-ratelimit-reset", self.now)
            if reset is not None:
                self.wait = max(self.wait or 0.0, reset)


def _stops(thing: dict[str, Any], until: float | None, stop_name: str | None) -> bool:
    """Whether a top-down read ends at this item: the anchor it looks for, or older than `until`."""
    if stop_name is not None and fullname(thing) == stop_name:
        return True
    when = created(thing)
    return until is not None and when is not None and when < until


def _newest(items: Things) -> dict[str, Any] | None:
    dated = [i for i in items if created(i) is not None and fullname(i) is not None]
    return max(dated, key=lambda i: created(i) or 0.0) if dated else None

"""Bluesky: full-text post search (`app.bsky.feed.searchPosts`), signed in with an app password.

- `session`: signing in, refreshing, and one search request on the session (memory only);
- `progress`: what the cursor keeps between fetches;
- `posts`: search replies and postViews as mentions;
- here: the source, its options, and the paging described below.

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

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from listener.sources import FetchResult, Mention, SourceBase, SourceState, ratelimit
from listener.sources.bluesky.posts import post_mention, search_page, sort_at
from listener.sources.bluesky.progress import Progress, epoch_ms, iso_millis, pruned, seen_key
from listener.sources.bluesky.session import Calls, Sessions, credentials, host, jwt_expiry
from listener.sources.http import HttpClient, Response
from listener.sources.text import url_hosts

__all__ = ["BlueskySource", "post_mention", "jwt_expiry"]

PAGE_SIZE = 100  # the API's maximum `limit`
RATE_LIMIT_RESERVE = 1  # stop paging when this few requests remain (one left for a refresh)

_LANGUAGE_OPTION = re.compile(r"[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*")


class BlueskySource(SourceBase):
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
        super().__init__(name, options)
        self._sessions = Sessions(options)  # the session lives as long as the source object

    def hosts(self) -> list[str]:
        """The PDS / entryway host: sign-in and search both go there."""
        return url_hosts(self.options.base_url)

    async def fetch(self, state: SourceState, http: HttpClient, now: datetime,
                    since: datetime | None = None) -> FetchResult:
        """Search posts newer than the state's high-water mark (or `since`), page by page."""
        calls = Calls(http, now, credentials(self.options))
        options = self.options
        progress = Progress.load(state.cursor)
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
                params["since"] = iso_millis(floor)
            if until is not None:  # `until` is exclusive: one millisecond more keeps posts tied with it
                params["until"] = iso_millis(until + timedelta(milliseconds=1))
            if options.language:
                params["lang"] = options.language
            if search_cursor is not None:
                params["cursor"] = search_cursor
            response = await self._sessions.search(calls, params)
            pages += 1
            posts, next_cursor = search_page(response, host(response.url))
            reached_floor = False
            for post in posts:
                when = sort_at(post)
                if floor is not None and when is not None and when < floor:
                    reached_floor = True  # also when the server did not apply `since`
                    continue
                uri = post.get("uri") if isinstance(post, dict) else None
                if not isinstance(uri, str) or not uri:
                    continue
                if when is not None:
                    top = when if top is None else max(top, when)
                    oldest = when if oldest is None else min(oldest, when)
                key = seen_key(uri)
                if key in seen:
                    continue
                if when is not None:
                    seen[key] = epoch_ms(when)
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
            new_progress = Progress(hwm=hwm, seen=pruned(seen, keep_from))
        else:
            new_progress = Progress(hwm=progress.hwm, seen=pruned(seen, floor), floor=floor, top=top,
                                     until=resume_below)
        return FetchResult(mentions, SourceState(cursor=new_progress.dump()), requests=calls.requests, wait=wait)


def _rate_limit(response: Response, now: datetime) -> tuple[float | None, bool]:
    """(seconds until the limit resets, whether paging should stop) from RateLimit-* headers."""
    left = ratelimit.remaining(response.headers, "ratelimit-remaining")
    if left is None or left > RATE_LIMIT_RESERVE:
        return None, False
    return ratelimit.reset_wait(response.headers, "ratelimit-reset", now), True

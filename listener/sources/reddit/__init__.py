"""Reddit posts matching a search (and, optionally, a subreddit's new comments), over OAuth.

Posts: `GET {base_url}/search?q=...&sort=new&limit=100&type=link&raw_json=1` (or
`/r/{subreddit}/search?...&restrict_sr=1`). Reddit's search API does not search comments (its
`type` takes sr, link and user), so `comments = true` reads a subreddit's comment stream instead,
`GET {base_url}/r/{subreddit}/comments?limit=100&raw_json=1`, and keeps the comments whose text
contains the query's words (see `search.query_matches`); it needs `subreddit`.

Each of these listings has its own part of the cursor (JSON: `{"posts": {...}, "comments": {...}}`),
read as `listing` describes. Every request, the token's included, is counted in
`FetchResult.requests`.

- `auth`: the app-only OAuth token (kept in memory, never in the state) and the request headers;
- `listing`: one listing read under its part of the cursor, within `max_pages` and the rate limit;
- `things`: posts and comments as mentions;
- `search`: the comments' filter, Reddit's search syntax read roughly.

Rate limits: Reddit sends `X-Ratelimit-Used`, `X-Ratelimit-Remaining` and `X-Ratelimit-Reset`
(seconds until the window resets) on API responses. When fewer than one request remains, the
source stops paging (keeping its cursor where it stopped) and sets `FetchResult.wait` to the
reset time. A 429 comes out of the HttpClient as a FetchError with Retry-After.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from listener.sources import FetchResult, Mention, SourceBase, SourceState
from listener.sources.cursor import dump_cursor, load_cursor
from listener.sources.http import HttpClient
from listener.sources.text import url_hosts
from listener.sources.reddit.auth import TOKEN_MARGIN, AppToken
from listener.sources.reddit.listing import LIMIT, ListingRun, Stream
from listener.sources.reddit.search import query_matches
from listener.sources.reddit.things import parse_listing, thing_mention

__all__ = ["RedditSource", "parse_listing", "thing_mention", "query_matches", "LIMIT", "TOKEN_MARGIN"]

_SUBREDDIT = re.compile(r"[A-Za-z0-9_]{2,21}(\+[A-Za-z0-9_]{2,21})*")


class RedditSource(SourceBase):
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
        super().__init__(name, options)
        self._auth = AppToken(options)  # the token lives as long as the source object

    def hosts(self) -> list[str]:
        """The API's host and the token endpoint's host."""
        return url_hosts(self.options.base_url, self.options.auth_url)

    async def fetch(self, state: SourceState, http: HttpClient, now: datetime,
                    since: datetime | None = None) -> FetchResult:
        """Read new posts (and comments) above the cursor, then any backlog, within `max_pages`."""
        stored = load_cursor(state.cursor)
        run = ListingRun(self.options, self._auth, http, now)
        cursor: dict[str, Any] = {}
        mentions: dict[str, Mention] = {}
        for key, (path, params) in self._listings().items():
            items, cursor[key] = await run.stream(path, params, Stream.load(stored.get(key)), since)
            for item in items:
                mention = thing_mention(item)
                if mention is None or mention.source_id in mentions:
                    continue
                if key == "comments" and not query_matches(self.options.query, mention.text):
                    continue
                mentions[mention.source_id] = mention
        saved = {k: v.dump() for k, v in cursor.items() if not v.empty}
        new_state = SourceState(state.etag, state.last_modified, dump_cursor(saved) if saved else None)
        return FetchResult(list(mentions.values()), new_state, requests=run.requests, wait=run.wait)

    def _listings(self) -> dict[str, tuple[str, dict[str, Any]]]:
        """The listings read, by their key in the cursor: (path, query parameters)."""
        sub = self.options.subreddit
        posts_params: dict[str, Any] = {"q": self.options.query, "sort": "new", "type": "link", "raw_json": 1}
        if sub:
            posts_params["restrict_sr"] = 1
        listings = {"posts": (f"/r/{sub}/search" if sub else "/search", posts_params)}
        if self.options.comments:
            listings["comments"] = (f"/r/{sub}/comments", {"raw_json": 1})
        return listings

"""Hacker News stories and comments that match a search, from the Algolia HN Search API.

One request is `GET {base_url}/api/v1/search_by_date?query=...&tags=(story,comment)
&numericFilters=created_at_i>=LO[,created_at_i<=HI]&hitsPerPage=100&page=0`: the hits in a time
window, newest first. Algolia serves at most 1,000 hits of one query (page * hitsPerPage < 1000),
so the source never pages deep: it pages by narrowing the window. After a full page, the next
request asks for `created_at_i<=` the oldest second of that page (the hits at that second come
again and are dropped by objectID). Only when one second holds a whole page does it ask for
page 1, 2, ... of the same window.

The cursor (JSON in `SourceState.cursor`) is
`{"after": T, "ids": [...], "backlog": [[LO, HI], ...]}`:

- `after` is the high-water mark, the newest `created_at_i` returned, and `ids` the objectIDs
  returned at that second. The next fetch asks for `created_at_i>=after` and skips those ids, so
  a hit indexed a moment later in the same second is not lost and none comes twice.
- `backlog` lists time windows (`LO <= created_at_i <= HI`) not yet read in full. A fetch reads
  at most `max_pages` pages (an answer with nothing new in it, as a quiet fetch gets, does not
  count, so quiet fetches never starve the backlog). When there are more new hits than that, it
  returns the newest ones first (freshest mentions, for alerts), moves `after` up to them, and
  records the part it did not reach as a backlog window; the rest of the same fetch's pages,
  and later fetches, read the backlog windows, newest first, and drop each from the cursor once
  read in full. So the cursor never skips anything it did not return: what is above `after` is
  new, what is in the backlog is still owed. Hits on a backlog window's bounds may come twice;
  the pipeline dedups them by (source, source_id). At most MAX_BACKLOG windows are kept (the
  oldest are dropped) so a query that always has more hits than `max_pages` allows cannot grow
  the cursor forever.

First fetch: the window starts at `since` (now minus the source's `backfill`); a long backfill
with many hits is read over several fetches through the backlog. A later `since` (`listener
fetch --since`) older than the cursor adds the window from `since` to the cursor as a backlog.
Without cursor and without `since`, one page of the newest hits is read.

The API sends no rate-limit headers (its documented limit is 10,000 requests an hour per IP); a
429 comes out of the HttpClient as a FetchError with Retry-After. Algolia indexes new items
within a minute or so; an item indexed later than that with an older `created_at_i` than the
cursor's is not seen (the API has no "indexed since" filter).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from listener.errors import FetchError
from listener.sources import FetchResult, Mention, SourceBase, SourceState
from listener.sources.cursor import dump_cursor, load_cursor
from listener.sources.fields import as_count, identifier, nonblank
from listener.sources.http import HttpClient, Response, with_hint
from listener.sources.text import canonical_url, html_to_text, parse_datetime, url_hosts

__all__ = ["HackerNewsSource", "parse_hits", "HITS_PER_PAGE", "MAX_HITS", "MAX_BACKLOG"]

HITS_PER_PAGE = 100
MAX_HITS = 1000  # Algolia's paginationLimitedTo: hits beyond this in one query are never served
MAX_BACKLOG = 20
ITEM_URL = "https://news.ycombinator.com/item?id={}"


class HackerNewsSource(SourceBase):
    """Hacker News stories and comments matching a search (Algolia HN Search API)."""

    kind = "hackernews"

    @dataclass(frozen=True)
    class Options:
        """Hacker News stories and comments matching a search, newest first, from hn.algolia.com."""

        query: str = field(metadata={"help": "Search words, as typed in the search box at hn.algolia.com"})
        stories: bool = field(default=True, metadata={"help": "Include stories (links, Ask HN, Show HN)"})
        comments: bool = field(default=True, metadata={"help": "Include comments"})
        max_pages: int = field(
            default=5,
            metadata={"help": "Most pages (of up to 100 hits) read per fetch; the rest waits for the next"},
        )
        base_url: str = field(
            default="https://hn.algolia.com", metadata={"help": "Address of the HN Search API", "url": True}
        )
        item_url: str = field(
            default=ITEM_URL,
            metadata={"help": "Where a story or comment is read, {} standing for its id (a mirror, or a test server)"},
        )

        def __post_init__(self) -> None:
            if not self.query.strip():
                raise ValueError("query: give the words to search for")
            if not (self.stories or self.comments):
                raise ValueError("stories and comments are both false: nothing would be fetched")
            if self.max_pages < 1:
                raise ValueError(f"max_pages: must be at least 1, got {self.max_pages}")
            if self.item_url.count("{}") != 1 or not self.item_url.startswith(("http://", "https://")):
                raise ValueError("item_url: an http(s) URL with one {} where the item's id goes")

    def hosts(self) -> list[str]:
        """The API's host."""
        return url_hosts(self.options.base_url)

    @property
    def tags(self) -> str:
        """The `tags` filter: story, comment or both."""
        if self.options.stories and self.options.comments:
            return "(story,comment)"
        return "story" if self.options.stories else "comment"

    async def fetch(self, state: SourceState, http: HttpClient, now: datetime,
                    since: datetime | None = None) -> FetchResult:
        """Read the new hits above the cursor, then the backlog, within `max_pages` pages."""
        cursor = _Cursor.load(state.cursor)
        run = _Run(self, http, self.options.max_pages)
        since_ts = int(since.timestamp()) if since is not None else None

        backlog = list(cursor.backlog)
        if cursor.after is not None and since_ts is not None and since_ts < cursor.after:
            backlog.insert(0, (since_ts, cursor.after - 1))  # an explicit backfill below the cursor

        if cursor.after is not None:
            lo, skip = cursor.after, set(cursor.ids)
        else:
            lo, skip = since_ts, set()
        top = await run.window(lo, None, skip, single_page=lo is None)
        after, ids = cursor.after, set(cursor.ids)
        if top.newest is not None and (after is None or top.newest > after):
            after, ids = top.newest, set()
        if top.newest is not None and top.newest == after:
            ids |= top.ids_at_newest
        if top.remaining is not None:
            backlog.insert(0, top.remaining)

        left: list[tuple[int, int]] = []
        for lo_b, hi_b in _merge(backlog):
            if since_ts is not None and lo_b < since_ts:
                # The pipeline drops hits older than `since`: leave that part owed for later.
                left.append((lo_b, min(hi_b, since_ts - 1)))
                if hi_b < since_ts:
                    continue
                lo_b = since_ts
            if run.budget <= 0:
                left.append((lo_b, hi_b))
                continue
            done = await run.window(lo_b, hi_b, set())
            if done.remaining is not None:
                left.append(done.remaining)
        new_cursor = _Cursor(after, sorted(ids), _merge(left)[:MAX_BACKLOG])
        new_state = SourceState(state.etag, state.last_modified, new_cursor.dump())
        return FetchResult(list(run.mentions.values()), new_state, requests=run.requests)


@dataclass
class _Window:
    newest: int | None = None  # newest created_at_i returned from this window
    ids_at_newest: set[str] = field(default_factory=set)
    remaining: tuple[int, int] | None = None  # the part of the window not read (budget ran out)


class _Run:
    """One fetch: the request budget, the requests made and the mentions found so far."""

    def __init__(self, source: HackerNewsSource, http: HttpClient, budget: int):
        self.source = source
        self.http = http
        self.budget = budget
        self.requests = 0
        self.mentions: dict[str, Mention] = {}

    async def window(self, lo: int | None, hi: int | None, skip: set[str],
                     single_page: bool = False) -> _Window:
        """Read hits with lo <= created_at_i <= hi (either open), newest first, narrowing hi."""
        out = _Window()
        page = 0
        while True:
            if self.budget <= 0:
                if lo is not None and hi is not None:
                    out.remaining = (lo, hi)
                return out
            filters = []
            if lo is not None:
                filters.append(f"created_at_i>={lo}")
            if hi is not None:
                filters.append(f"created_at_i<={hi}")
            params: dict[str, Any] = {"query": self.source.options.query, "tags": self.source.tags,
                                      "hitsPerPage": HITS_PER_PAGE, "page": page}
            if filters:
                params["numericFilters"] = ",".join(filters)
            body = await self._get(params)
            hits, total = _hits_and_total(body, self.source.options.base_url)
            found = len(self.mentions)
            stamps = []
            for hit in hits:
                stamp = _stamp(hit)
                object_id = _object_id(hit)
                if stamp is not None:
                    stamps.append(stamp)
                if object_id is None or object_id in skip:
                    continue
                mention = hit_mention(hit, self.source.options.item_url)
                if mention is None:
                    continue
                self.mentions.setdefault(object_id, mention)
                if stamp is not None:
                    if out.newest is None or stamp > out.newest:
                        out.newest, out.ids_at_newest = stamp, {object_id}
                    elif stamp == out.newest:
                        out.ids_at_newest.add(object_id)
            complete = single_page or len(hits) < HITS_PER_PAGE or (
                total is not None and total <= (page + 1) * HITS_PER_PAGE
            )
            if len(self.mentions) > found or not complete:
                self.budget -= 1  # an answer with nothing new in it does not count against max_pages
            if complete or not stamps:
                return out
            oldest = min(stamps)
            if hi is not None and oldest >= hi:  # a whole page in one second: page through it
                page += 1
                if (page + 1) * HITS_PER_PAGE > MAX_HITS:
                    return out  # over 1,000 hits in one second: Algolia serves no more of them
            else:
                hi, page = oldest, 0

    async def _get(self, params: dict[str, Any]) -> Any:
        url = self.source.options.base_url.rstrip("/") + "/api/v1/search_by_date"
        self.requests += 1
        try:
            response: Response = await self.http.get(
                url, headers={"Accept": "application/json"}, params=params
            )
        except FetchError as error:
            raise with_hint(error, _HINTS) from None
        return response.json()


_HINTS = {
    404: "check base_url (the API lives at https://hn.algolia.com/api/v1/)",
    400: "the query or its filters were refused; simplify query",
}


def _hits_and_total(body: Any, base_url: str) -> tuple[list[dict[str, Any]], int | None]:
    host = urlsplit(base_url).hostname or base_url
    if not isinstance(body, dict) or not isinstance(body.get("hits"), list):
        got = type(body).__name__ if not isinstance(body, dict) else "an object without a hits list"
        raise FetchError(f"unexpected response from {host}: expected search results, got {got}")
    total = body.get("nbHits")
    hits = [hit for hit in body["hits"] if isinstance(hit, dict)]
    return hits, total if isinstance(total, int) and not isinstance(total, bool) else None


def parse_hits(body: Any, base_url: str = "https://hn.algolia.com") -> list[Mention]:
    """The mentions in one search response; FetchError when it is not a search response."""
    hits, _ = _hits_and_total(body, base_url)
    mentions = (hit_mention(hit) for hit in hits)
    return [m for m in mentions if m is not None]


def hit_mention(hit: dict[str, Any], item_url: str = ITEM_URL) -> Mention | None:
    """One Algolia hit (story or comment, any schema since 2014) as a Mention; None without an id."""
    object_id = _object_id(hit)
    if object_id is None:
        return None
    tags = hit.get("_tags") if isinstance(hit.get("_tags"), list) else []
    comment_text = nonblank(hit.get("comment_text"))
    is_comment = "comment" in tags or ("story" not in tags and comment_text is not None)
    title = nonblank(hit.get("title"))
    extra: dict[str, Any] = {"type": "comment" if is_comment else "story"}
    if is_comment:
        text = html_to_text(comment_text or "")
        mention_title = None
        for key in ("story_title", "story_id", "parent_id"):
            value = hit.get(key)
            if isinstance(value, (str, int)) and not isinstance(value, bool) and value != "":
                extra[key] = value
        story_url = nonblank(hit.get("story_url"))
        if story_url:
            extra["link"] = canonical_url(story_url)
    else:
        text = html_to_text(nonblank(hit.get("story_text")) or "") or (title or "")
        mention_title = title
        link = nonblank(hit.get("url"))
        if link:
            extra["link"] = canonical_url(link)
    stamp = hit.get("created_at_i")
    published = parse_datetime(stamp) if isinstance(stamp, (int, float)) else None
    return Mention(
        source_id=object_id,
        text=text,
        url=item_url.replace("{}", object_id),
        title=mention_title,
        author=nonblank(hit.get("author")),
        published_at=published or parse_datetime(hit.get("created_at")),
        score=as_count(hit.get("points"), floats=True),
        replies=as_count(hit.get("num_comments"), floats=True),
        extra=extra,
    )


def _object_id(hit: dict[str, Any]) -> str | None:
    return identifier(hit.get("objectID"))


def _stamp(hit: dict[str, Any]) -> int | None:
    value = hit.get("created_at_i")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return int(value)
    when = parse_datetime(hit.get("created_at"))
    return int(when.timestamp()) if when is not None else None


def _merge(windows: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Backlog windows newest first, overlapping ones joined."""
    out: list[tuple[int, int]] = []
    for lo, hi in sorted(windows, key=lambda w: w[1], reverse=True):
        if out and hi >= out[-1][0]:
            out[-1] = (min(lo, out[-1][0]), out[-1][1])
        else:
            out.append((lo, hi))
    return out


@dataclass(frozen=True)
class _Cursor:
    after: int | None = None
    ids: list[str] = field(default_factory=list)
    backlog: list[tuple[int, int]] = field(default_factory=list)

    @classmethod
    def load(cls, text: str | None) -> _Cursor:
        """The stored cursor; an unreadable one counts as none (the fetch starts from `since`)."""
        data = load_cursor(text)
        after = data.get("after")
        after = after if isinstance(after, int) and not isinstance(after, bool) else None
        raw_ids = data.get("ids")
        ids = [i for i in raw_ids if isinstance(i, str)] if isinstance(raw_ids, list) else []
        backlog = []
        for window in data.get("backlog") or []:
            if (isinstance(window, list) and len(window) == 2
                    and all(isinstance(v, int) and not isinstance(v, bool) for v in window)
                    and window[0] <= window[1]):
                backlog.append((window[0], window[1]))
        return cls(after, ids, backlog)

    def dump(self) -> str | None:
        if self.after is None and not self.backlog:
            return None
        return dump_cursor({"after": self.after, "ids": self.ids, "backlog": [list(w) for w in self.backlog]})

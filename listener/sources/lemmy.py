"""Lemmy: posts (and optionally comments) matching a search, on one instance, newest first.

Request (Lemmy 0.19's v3 API, public): `GET /api/v3/search?q=QUERY&type_=Posts&sort=New&
listing_type=All&limit=50&page=N`, answering `{"posts": [PostView, ...]}` (`type_=Comments`
answers `{"comments": [CommentView, ...]}`). The instance searches every community it knows,
local or federated; `community` narrows it to one (`community_name`).

The search has no time filter and pages by number, so a fetch reads pages 1, 2, ... newest
first until it reaches the cursor (or `since`), a short page, or `max_pages`.

Cursor: JSON, per kind ("posts", "comments"), the newest (published, id) read (`mark`).
Comparing the pair, not the time alone, keeps a post published in the same microsecond as the
mark. When a fetch stops at `max_pages` before reaching the mark, the cursor keeps the mark and
notes where to go on (`pending`: the next page number, the oldest item read, the newest): the
next fetch resumes at that page, skips what it already returned (new posts push older ones to
later pages, never to earlier ones) and moves the mark only once the gap is read. A post deleted
meanwhile pulls the pages up by one and may let one post at the boundary slip.

A post that reaches the instance late by federation with a `published` older than the mark is
not seen: the search sorts by `published`.

The first fetch reads back to `since` (at most `max_pages` pages: the backfill's bound), or one
page without `since`; `listener fetch --since` with a cursor reads back to `since` and leaves the
cursor as it was (what is read twice the pipeline drops as a duplicate).

Rate limits: Lemmy sends no rate-limit headers. Lemmy 0.19 answers errors, rate limiting
included (`rate_limit_error`; search allows 60 requests per 10 minutes per IP by default), with
HTTP 400; the error says so. A 429 from a proxy in front comes out of the HttpClient with its
Retry-After.

Mentions: source_id and url are the post's `ap_id` (its canonical ActivityPub URL, the same on
every instance); the linked page of a link post is in extra["link"]. The body is Markdown and
becomes plain text here. `language_id` is the instance's own number for a language, not a code:
language is left to detection.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from listener.errors import FetchError
from listener.sources import FetchResult, Mention, SourceBase, SourceState
from listener.sources.cursor import dump_cursor, load_cursor
from listener.sources.fields import as_count, mapping, stripped
from listener.sources.http import HttpClient
from listener.sources.text import canonical_url, parse_datetime, url_hosts

__all__ = ["LemmySource", "post_mention", "comment_mention", "markdown_to_text"]

PAGE_SIZE = 50  # Lemmy's maximum `limit`

Key = tuple[datetime, int]  # (published, id): the order of the search's results


class LemmySource(SourceBase):
    """Posts (and comments) on a Lemmy instance that match a search."""

    kind = "lemmy"

    @dataclass(frozen=True)
    class Options:
        """Posts (and optionally comments) matching a search on a Lemmy instance."""

        query: str = field(metadata={"help": "Search words (Lemmy finds them in titles and bodies)"})
        instance: str = field(
            default="https://lemmy.world", metadata={"help": "Base URL of the Lemmy instance", "url": True}
        )
        community: str | None = field(
            default=None, metadata={"help": "Only this community (name, or name@instance)"}
        )
        comments: bool = field(
            default=False, metadata={"help": "Search comments too (one more request per fetch)"}
        )
        max_pages: int = field(default=3, metadata={"help": "Pages of 50 results per fetch, for each kind"})

        def __post_init__(self) -> None:
            if not self.query.strip():
                raise ValueError("query: the search query is empty")
            if self.community is not None and not self.community.strip().lstrip("!"):
                raise ValueError("community: the community name is empty")
            if self.max_pages < 1:
                raise ValueError("max_pages must be at least 1")

    def hosts(self) -> list[str]:
        """The instance's host."""
        return url_hosts(self.options.instance)

    async def fetch(self, state: SourceState, http: HttpClient, now: datetime,
                    since: datetime | None = None) -> FetchResult:
        """Search posts (and comments) newest first, down to the cursor or `since`."""
        reader = _Reader(self.options, http, since)
        cursor = {kind: entry for kind, entry in load_cursor(state.cursor).items() if isinstance(entry, dict)}
        kinds = ["posts", "comments"] if self.options.comments else ["posts"]
        new_cursor: dict[str, Any] = {}
        mentions: dict[str, Mention] = {}
        for kind in kinds:
            entry = await reader.read(kind, cursor.get(kind, {}))
            if entry:
                new_cursor[kind] = entry
        for mention in reader.mentions:
            mentions.setdefault(mention.source_id, mention)
        new_state = SourceState(
            etag=state.etag, last_modified=state.last_modified,
            cursor=dump_cursor(new_cursor),
        )
        return FetchResult(list(mentions.values()), new_state, requests=reader.requests)


@dataclass
class _Walk:
    items: list[tuple[Key, dict[str, Any]]] = field(default_factory=list)  # kept: inside the bounds
    newest: Key | None = None
    oldest: Key | None = None
    pages: int = 0
    reached: bool = False  # read down to the floor, to `since`, or to the end of the results


class _Reader:
    def __init__(self, options: LemmySource.Options, http: HttpClient, since: datetime | None):
        self.options = options
        self.http = http
        self.since = since
        self.base = options.instance.rstrip("/")
        self.host = (urlsplit(self.base).hostname or self.base).lower()
        self.requests = 0
        self.mentions: list[Mention] = []

    async def read(self, kind: str, entry: dict[str, Any]) -> dict[str, Any]:
        """Read one kind from its cursor entry; the entry to keep."""
        max_pages = self.options.max_pages
        mark = _key(entry.get("mark"))
        if mark is None:  # first fetch: back to `since`, or one page
            pages = max_pages if self.since else 1
            walk = await self._walk(kind, floor=None, below=None, start=1, pages=pages)
            self._keep(kind, walk)
            return {"mark": _dump(walk.newest)} if walk.newest else {}
        if self.since is not None:  # a backfill asked for: the cursor stays as it was
            walk = await self._walk(kind, floor=None, below=None, start=1, pages=max_pages)
            self._keep(kind, walk)
            return entry
        pending = entry.get("pending") if isinstance(entry.get("pending"), dict) else None
        below = _key(pending.get("below")) if pending else None
        top = _key(pending.get("top")) if pending else None
        page = pending.get("page") if pending else None
        if below is None or top is None or not isinstance(page, int) or page < 1:
            below = top = None
            page = 1
        walk = await self._walk(kind, floor=mark, below=below, start=page, pages=max_pages)
        self._keep(kind, walk)
        newest = top if top is not None else max(filter(None, [walk.newest, mark]))
        if walk.reached:
            return {"mark": _dump(newest)}
        if walk.pages == 0 or walk.oldest is None:
            return entry
        oldest = min(filter(None, [walk.oldest, below]))
        return {
            "mark": _dump(mark),
            "pending": {"page": page + walk.pages, "below": _dump(oldest), "top": _dump(newest)},
        }

    def _keep(self, kind: str, walk: _Walk) -> None:
        for _, view in walk.items:
            make = post_mention if kind == "posts" else comment_mention
            mention = make(view, self.host)
            if mention is not None:
                self.mentions.append(mention)

    async def _walk(self, kind: str, *, floor: Key | None, below: Key | None, start: int,
                    pages: int) -> _Walk:
        """Pages from page `start` newest-first down to `floor` / `since`, at most `pages` pages."""
        walk = _Walk()
        page = start
        while walk.pages < pages:
            views, count = await self._page(kind, page)
            walk.pages += 1
            page += 1
            if not views:  # nothing usable on this page
                if count < PAGE_SIZE:
                    walk.reached = True
                    break
                continue
            keys = [key for key, _ in views]
            walk.newest = max(filter(None, [walk.newest, max(keys)]))
            walk.oldest = min(filter(None, [walk.oldest, min(keys)]))
            for key, view in views:
                if floor is not None and key <= floor:
                    continue
                if below is not None and key >= below:
                    continue
                if self.since is not None and key[0] < self.since:
                    continue
                walk.items.append((key, view))
            if (
                count < PAGE_SIZE
                or (floor is not None and min(keys) <= floor)
                or (self.since is not None and min(keys)[0] < self.since)
            ):
                walk.reached = True
                break
        return walk

    async def _page(self, kind: str, page: int) -> tuple[list[tuple[Key, dict[str, Any]]], int]:
        """One search request: (key, view) of the results with an id and a time; how many came."""
        params: dict[str, Any] = {
            "q": self.options.query.strip(),
            "type_": "Posts" if kind == "posts" else "Comments",
            "sort": "New",
            "listing_type": "All",
            "limit": PAGE_SIZE,
            "page": page,
        }
        if self.options.community:
            params["community_name"] = self.options.community.strip().lstrip("!")
        self.requests += 1
        try:
            response = await self.http.get(
                f"{self.base}/api/v3/search", headers={"Accept": "application/json"}, params=params
            )
        except FetchError as exc:
            raise self._explain(exc) from None
        body = response.api_json(self.host)
        if not isinstance(body, dict) or not isinstance(body.get(kind), list):
            raise FetchError(f"unexpected response from {self.host}: not a Lemmy search result with {kind}")
        inner = "post" if kind == "posts" else "comment"
        views = []
        for view in body[kind]:
            item = view.get(inner) if isinstance(view, dict) else None
            if not isinstance(item, dict):
                continue
            item_id, published = item.get("id"), parse_datetime(item.get("published"))
            if not isinstance(item_id, int) or isinstance(item_id, bool) or published is None:
                continue
            views.append(((published, item_id), view))
        return views, len(body[kind])

    def _explain(self, exc: FetchError) -> FetchError:
        status = exc.status
        if status == 400:
            return FetchError(
                f"{self.host} refused the search (HTTP 400): Lemmy answers 400 for its errors, rate limiting "
                "included (about 60 searches per 10 minutes per IP); fetch less often or lower max_pages",
                status=status,
            )
        if status in (401, 403):
            return FetchError(f"{self.host}: search is not public on this instance (HTTP {status}); "
                              "use another instance", status=status)
        if status in (404, 410):
            return FetchError(f"{self.host}: no Lemmy API at {self.base}/api/v3/search (HTTP {status}); "
                              "check instance", status=status)
        return exc


def post_mention(view: dict[str, Any], host: str) -> Mention | None:
    """A Mention from a Lemmy PostView read on instance `host`; None for a deleted or removed post."""
    post = _live(view, "post")
    source_id = _source_id(post, host, "post")
    if post is None or source_id is None:
        return None
    title = stripped(post.get("name"))
    extra: dict[str, Any] = {"instance": host, "post_id": post.get("id"), **_community(view)}
    if link := stripped(post.get("url")):
        extra["link"] = canonical_url(link)
    if post.get("nsfw") is True:
        extra["nsfw"] = True
    text = markdown_to_text(stripped(post.get("body")) or "") or title or ""
    return _mention(view, post, source_id, text=text, title=title, replies="comments", extra=extra)


def comment_mention(view: dict[str, Any], host: str) -> Mention | None:
    """A Mention from a Lemmy CommentView; None for a deleted or removed comment."""
    comment = _live(view, "comment")
    source_id = _source_id(comment, host, "comment")
    if comment is None or source_id is None:
        return None
    post = mapping(view.get("post"))
    extra: dict[str, Any] = {"instance": host, "comment_id": comment.get("id")}
    if post_title := stripped(post.get("name")):
        extra["post_title"] = post_title
    if post_url := stripped(post.get("ap_id")):
        extra["post_url"] = canonical_url(post_url)
    extra.update(_community(view))
    text = markdown_to_text(stripped(comment.get("content")) or "")
    return _mention(view, comment, source_id, text=text, title=None, replies="child_count", extra=extra)


def _live(view: dict[str, Any], key: str) -> dict[str, Any] | None:
    """The view's post or comment object; None when it is missing, deleted or removed."""
    item = view.get(key)
    if not isinstance(item, dict) or item.get("deleted") is True or item.get("removed") is True:
        return None
    return item


def _source_id(item: dict[str, Any] | None, host: str, kind: str) -> str | None:
    """The item's `ap_id` (its ActivityPub URL), else its address on `host` by id; None without either."""
    if item is None:
        return None
    item_id = item.get("id")
    return stripped(item.get("ap_id")) or (f"https://{host}/{kind}/{item_id}" if isinstance(item_id, int) else None)


def _community(view: dict[str, Any]) -> dict[str, str]:
    """`{"community": "name@host"}` when the view names its community."""
    community = _actor(view.get("community"))
    return {"community": community} if community else {}


def _mention(view: dict[str, Any], item: dict[str, Any], source_id: str, *, text: str, title: str | None,
             replies: str, extra: dict[str, Any]) -> Mention:
    """What a post and a comment share: where it lives, who wrote it when, its votes (`replies`
    names the count of answers: a post's comments, a comment's children)."""
    counts = mapping(view.get("counts"))
    ap_id = stripped(item.get("ap_id"))
    return Mention(
        source_id=source_id,
        text=text,
        url=canonical_url(ap_id) if ap_id else None,
        title=title,
        author=_actor(view.get("creator")),
        published_at=parse_datetime(item.get("published")),
        likes=as_count(counts.get("upvotes"), negative=False),
        replies=as_count(counts.get(replies), negative=False),
        score=as_count(counts.get("score")),
        extra=extra,
    )


_MD_FENCE = re.compile(r"^\s*(```|~~~).*$", re.MULTILINE)
_MD_IMAGE = re.compile(r"!\[([^\]]*)\]\([^)]*\)")
_MD_LINK = re.compile(r"\[([^\]]+)\]\((?:[^()\s]|\([^()]*\))*(?:\s+\"[^\"]*\")?\)")
_MD_SPOILER = re.compile(r"^\s*:::\s*(?:spoiler\s*)?", re.MULTILINE)
_MD_LINE_START = re.compile(r"^\s{0,3}(?:#{1,6}\s+|(?:>\s?)+|[-*+]\s+|\d{1,9}[.)]\s+)", re.MULTILINE)
_MD_RULE = re.compile(r"^\s*(?:[-*_]\s*){3,}$", re.MULTILINE)
_MD_MARKS = re.compile(r"\*\*|__|~~|`")
_MD_ESCAPE = re.compile(r"\\([\\`*_{}\[\]()#+\-.!>~|])")
_SPACES = re.compile(r"[^\S\n]+")


def markdown_to_text(markdown: str) -> str:
    """Plain text of Lemmy's Markdown: link and image syntax, emphasis, headings, quotes dropped.

    Link text and image alt text stay; the URLs go. Lines are kept, blank lines dropped, runs
    of spaces made one, as sources.text.html_to_text does for HTML.
    """
    text = _MD_FENCE.sub("", markdown)
    text = _MD_IMAGE.sub(r"\1", text)
    text = _MD_LINK.sub(r"\1", text)
    text = _MD_RULE.sub("", text)
    text = _MD_SPOILER.sub("", text)
    text = _MD_LINE_START.sub("", text)
    text = _MD_MARKS.sub("", text)
    text = _MD_ESCAPE.sub(r"\1", text)
    lines = (_SPACES.sub(" ", line).strip() for line in text.splitlines())
    return "\n".join(line for line in lines if line)


def _actor(person: Any) -> str | None:
    """`name@host` of a Lemmy person or community, the host taken from its actor_id."""
    if not isinstance(person, dict):
        return None
    name = stripped(person.get("name"))
    if not name:
        return None
    try:
        host = urlsplit(stripped(person.get("actor_id")) or "").hostname
    except ValueError:  # a malformed actor URL ("http://[x"): the name alone
        host = None
    return f"{name}@{host.lower()}" if host else name


def _key(value: Any) -> Key | None:
    """A stored [published ISO, id] pair back as a Key; None when unreadable."""
    if not isinstance(value, list) or len(value) != 2:
        return None
    published, item_id = parse_datetime(value[0]), value[1]
    if published is None or not isinstance(item_id, int) or isinstance(item_id, bool):
        return None
    return (published, item_id)


def _dump(key: Key) -> list[Any]:
    return [key[0].isoformat(), key[1]]

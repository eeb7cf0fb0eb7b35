"""Reddit's JSON as mentions: the things of a Listing, posts (t3) and comments (t1).

Text comes from the `*_html` field when there is one (Reddit's rendering of the Markdown, asked
for with `raw_json=1`), else from the Markdown as it is. A thing is identified by its fullname
(`t3_abc`); its time is `created_utc`, epoch seconds.
"""

from __future__ import annotations

from typing import Any

from listener.errors import FetchError
from listener.sources import Mention
from listener.sources.fields import as_count, nonblank, number
from listener.sources.text import canonical_url, html_to_text, parse_datetime

__all__ = ["listing_children", "parse_listing", "thing_mention", "fullname", "created", "WEB"]

WEB = "https://www.reddit.com"


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
    name = nonblank(data.get("name")) or (f"{kind}_{data['id']}" if nonblank(data.get("id")) else None)
    if name is None:
        return None
    permalink = nonblank(data.get("permalink"))
    author = nonblank(data.get("author"))
    extra: dict[str, Any] = {"type": "post" if kind == "t3" else "comment"}
    subreddit = nonblank(data.get("subreddit"))
    if subreddit:
        extra["subreddit"] = subreddit
    if isinstance(data.get("over_18"), bool):
        extra["over_18"] = data["over_18"]
    if kind == "t3":
        title = nonblank(data.get("title"))
        text = _text(data.get("selftext_html"), data.get("selftext")) or (title or "")
        link = nonblank(data.get("url_overridden_by_dest")) or nonblank(data.get("url"))
        if link and not data.get("is_self") and link.startswith(("http://", "https://")):
            extra["link"] = canonical_url(link)
        replies = as_count(data.get("num_comments"), floats=True)
    else:
        title = None
        text = _text(data.get("body_html"), data.get("body"))
        for key, out in (("link_title", "post_title"), ("link_id", "post_id"), ("parent_id", "parent_id")):
            if nonblank(data.get(key)):
                extra[out] = data[key]
        replies = None
    return Mention(
        source_id=name,
        text=text,
        url=canonical_url(WEB + permalink) if permalink and permalink.startswith("/") else None,
        title=title,
        author=None if author in (None, "[deleted]") else author,
        published_at=parse_datetime(number(data.get("created_utc"))),
        score=as_count(data.get("score"), floats=True),
        replies=replies,
        extra=extra,
    )


def fullname(thing: dict[str, Any]) -> str | None:
    """The thing's fullname (`t3_abc`), the anchor `before=` and `after=` page from."""
    data = thing.get("data")
    return nonblank(data.get("name")) if isinstance(data, dict) else None


def created(thing: dict[str, Any]) -> float | None:
    """The thing's `created_utc` in epoch seconds."""
    data = thing.get("data")
    return number(data.get("created_utc")) if isinstance(data, dict) else None


def _text(html: Any, markdown: Any) -> str:
    if isinstance(html, str) and html.strip():
        return html_to_text(html)
    return markdown.strip() if isinstance(markdown, str) else ""

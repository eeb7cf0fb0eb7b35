"""Bluesky's search replies as mentions: the page of postViews, and one postView as a Mention.

A post's time is its "sortAt", the earlier of `record.createdAt` and `indexedAt`, as the AppView
sorts and filters by it. A post without text of its own (an image, a video, a link card) takes
its alt texts and card title as text. Hashtags come from tag facets, the record's `tags` and
#tags written in the text.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime
from typing import Any
from urllib.parse import quote

from listener.errors import FetchError
from listener.sources import Mention
from listener.sources.fields import as_count, items, language_code, mapping, string
from listener.sources.http import Response
from listener.sources.text import canonical_url, clean_text, parse_datetime

__all__ = ["search_page", "sort_at", "post_mention", "WEB_APP"]

WEB_APP = "https://bsky.app"
POST_COLLECTION = "app.bsky.feed.post"


def search_page(response: Response, host: str) -> tuple[list[Any], str | None]:
    """The posts of one searchPosts reply and its cursor; FetchError for another shape."""
    body = response.json()
    if not isinstance(body, dict) or not isinstance(body.get("posts"), list):
        raise FetchError(f"unexpected response from {host}: no posts list in the search reply")
    cursor = body.get("cursor")
    return body["posts"], cursor if isinstance(cursor, str) and cursor else None


def sort_at(post: Any) -> datetime | None:
    """The post's sortAt: the earlier of record.createdAt and indexedAt (as the AppView sorts)."""
    if not isinstance(post, dict):
        return None
    record = mapping(post.get("record"))
    times = [parse_datetime(v) for v in (record.get("createdAt"), post.get("indexedAt")) if isinstance(v, str)]
    times = [t for t in times if t is not None]
    return min(times) if times else None


def post_mention(post: Any) -> Mention | None:
    """The mention of one postView from searchPosts; None without a post URI or any text."""
    if not isinstance(post, dict):
        return None
    uri = string(post.get("uri"))
    did, rkey = _at_uri_parts(uri)
    if not did or not rkey:
        return None
    author, record = mapping(post.get("author")), mapping(post.get("record"))
    text = _plain(string(record.get("text"))) or _embed_text(record.get("embed"))
    if not text:
        return None
    handle = string(author.get("handle")).strip().lower()
    author_did = string(author.get("did")).strip() or did
    profile = handle if handle and handle != "handle.invalid" else author_did
    # quote() encodes strictly: a lone surrogate ("\ud800" in the JSON) becomes U+FFFD first
    url = canonical_url(f"{WEB_APP}/profile/{quote(clean_text(profile), safe=':.')}/post/"
                        f"{quote(clean_text(rkey), safe='')}")
    extra: dict[str, Any] = {"did": author_did}
    if string(post.get("cid")):
        extra["cid"] = post["cid"]
    if (quotes := as_count(post.get("quoteCount"), negative=False)) is not None:
        extra["quotes"] = quotes
    if string(post.get("indexedAt")) and parse_datetime(post["indexedAt"]) is not None:
        extra["indexed_at"] = post["indexedAt"]
    parent = mapping(mapping(record.get("reply")).get("parent"))
    if string(parent.get("uri")):
        extra["reply_to"] = parent["uri"]
    langs = record.get("langs")
    return Mention(
        source_id=uri,
        text=text,
        url=url,
        author=profile,
        published_at=sort_at(post),
        language=language_code(langs[0]) if isinstance(langs, list) and langs else None,
        hashtags=_hashtags(record, text),
        likes=as_count(post.get("likeCount"), negative=False),
        reposts=as_count(post.get("repostCount"), negative=False),
        replies=as_count(post.get("replyCount"), negative=False),
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
    for image in items(embed.get("images")):
        if isinstance(image, dict):
            parts.append(string(image.get("alt")))
    parts.append(string(embed.get("alt")))  # a video
    external = embed.get("external")
    if isinstance(external, dict):
        parts += [string(external.get("title")), string(external.get("description"))]
    parts.append(_embed_text(embed.get("media")))  # recordWithMedia
    return " ".join(" ".join(p.split()) for p in parts if p.strip())


_TEXT_TAG = re.compile(r"(?:^|(?<=\s))[#\uff03]([^\s#\uff03]{1,64})")


def _hashtags(record: dict, text: str) -> tuple[str, ...]:
    """Tag facets, the record's own `tags`, and #tags in the text: lower-case, no '#'."""
    tags: list[str] = []
    for facet in items(record.get("facets")):
        for feature in items(facet.get("features") if isinstance(facet, dict) else None):
            if isinstance(feature, dict) and feature.get("$type") == "app.bsky.richtext.facet#tag":
                tags.append(string(feature.get("tag")))
    tags += [string(t) for t in items(record.get("tags"))]
    for raw in _TEXT_TAG.findall(text):
        while raw and unicodedata.category(raw[-1]).startswith("P"):
            raw = raw[:-1]
        if raw and not raw.isdigit():
            tags.append(raw)
    cleaned = (t.strip().lstrip("#\uff03").lower() for t in tags)
    return tuple(dict.fromkeys(t for t in cleaned if t))

"""Searching stored mentions with the topic query language, as `listener search` (and the
dashboard) asks: the store's full-text index narrows, the query's own matcher decides."""

from __future__ import annotations

from listener.query import parse
from listener.store import MentionStore


def search_mentions(store: MentionStore, query: str, *, topic: str | None = None, limit: int = 50) -> list[dict]:
    """The stored mentions matching `query` (of `topic`, when given), newest first, at most `limit`:
    one JSON-ready dict per mention with the columns of the `mentions` table (README: "The database").

    QuerySyntaxError (naming the position) when `query` does not parse."""
    rows = store.search(parse(query), limit=limit, topic=topic)
    for r in rows:
        r.pop("hashtag_list", None)
    return rows

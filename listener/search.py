"""Searching stored mentions with the topic query language, as `listener search` (and the
dashboard, with its filters) asks: the store's full-text index narrows, the query's own matcher decides."""

from __future__ import annotations

from listener.query import parse
from listener.store import MentionFilter, MentionStore


def search_mentions(store: MentionStore, query: str, *, topic: str | None = None, limit: int = 50) -> list[dict]:
    """The stored mentions matching `query` (of `topic`, when given), newest first, at most `limit`:
    one JSON-ready dict per mention with the columns of the `mentions` table (README: "The database").

    QuerySyntaxError (naming the position) when `query` does not parse."""
    rows = store.search(parse(query), limit=limit, topic=topic)
    for r in rows:
        r.pop("hashtag_list", None)
    return rows


def filtered_mentions(store: MentionStore, where: MentionFilter, query: str = "", *, limit: int = 50,
                      before: tuple[str, int] | None = None, after_id: int | None = None) -> list[dict]:
    """A page of stored mentions newest first that pass `where` and `query` (the topic query syntax,
    as `listener search`; blank: no query), with their topics and hashtags (`topic_list`,
    `hashtag_list`): the dashboard's stream and its exports. `before` and `after_id` page it (see
    `DashboardReads.filtered_mentions`).

    QuerySyntaxError (naming the position) when `query` does not parse."""
    return store.filtered_mentions(where, parse(query) if query.strip() else None, limit=limit, before=before,
                                   after_id=after_id)

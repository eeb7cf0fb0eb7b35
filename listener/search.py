"""Searching stored mentions with the topic query language, as `listener search` (and the
dashboard, with its filters) asks: the store's full-text index narrows, the query's own matcher decides."""

from __future__ import annotations

from listener.query import Query, parse, prepare
from listener.store import MentionFilter, MentionStore


def matches_stored(query: Query, row: dict) -> bool:
    """Whether a stored mention (a row with `text`, `title`, `author` and `hashtag_list`) matches `query`."""
    tags = (row.get("hashtag_list") or "").split()
    return query.matches(prepare(row["text"], title=row["title"], hashtags=tags, author=row["author"]))


def search_mentions(store: MentionStore, query: str, *, topic: str | None = None, limit: int = 50) -> list[dict]:
    """The stored mentions matching `query` (of `topic`, when given), newest first, at most `limit`:
    one JSON-ready dict per mention with the columns of the `mentions` table (README: "The database").

    QuerySyntaxError (naming the position) when `query` does not parse."""
    q = parse(query)
    rows = store.search(q.to_fts5(), lambda row: matches_stored(q, row), limit=limit, topic=topic)
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
    if not query.strip():
        return store.filtered_mentions(where, limit=limit, before=before, after_id=after_id)
    q = parse(query)
    return store.filtered_mentions(where, fts=q.to_fts5(), accept=lambda row: matches_stored(q, row), limit=limit,
                                   before=before, after_id=after_id)

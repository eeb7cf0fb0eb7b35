"""The newest stored mentions that a query matches, on PostgreSQL: pages of candidates newest first,
narrowed by the full-text index (`mentions.words @@ Query.to_tsquery()`), decided by the query itself."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

from listener.store.postgres.connection import PostgresBase

if TYPE_CHECKING:  # pragma: no cover
    from listener.query import Query

# candidates in the first page (per row wanted, at least; it doubles up to the most)
PAGE_PER_ROW, PAGE_MIN, PAGE_MAX = 10, 200, 5000


def first_matching(db: PostgresBase, columns: str, source: str, conds: Sequence[str], params: Sequence[Any],
                   query: Query | None, limit: int, *, at: str = "m.published_at", mid: str = "m.id") -> list[Any]:
    """The first `limit` rows of `SELECT columns FROM source` (its columns include the mention's
    `MENTION_COLUMNS`) that pass `conds` (%s placeholders, `params`) and that `query` matches (every
    row, when None), newest first by `at`, then `mid` (the walked index's published_at and mention id).

    The full-text index narrows each page of candidates, `Query.matches_stored` decides; pages go on
    from the last candidate (a keyset) until `limit` rows match or none are left. PostgreSQL's planner
    picks how to find a page: the time index walked newest first, the words' GIN index, or both."""
    tsquery = query.to_tsquery() if query is not None else None
    where = [*conds, *(["m.words @@ %s::tsquery"] if tsquery else [])]
    fixed = [*params, *([tsquery] if tsquery else [])]
    page = limit if query is None else min(max(PAGE_PER_ROW * limit, PAGE_MIN), PAGE_MAX)
    out: list[Any] = []
    last: tuple[str, int] | None = None
    while True:
        conditions = where + ([f"({at}, {mid}) < (%s::timestamptz, %s::bigint)"] if last else [])
        rows = db._dicts(f"SELECT {columns} FROM {source}" + (" WHERE " + " AND ".join(conditions) if conditions else "")
                         + f" ORDER BY {at} DESC, {mid} DESC LIMIT {int(page)}", [*fixed, *(last or ())])
        if query is None:
            return rows
        for row in rows:
            if query.matches_stored(row):
                out.append(row)
                if len(out) >= limit:
                    return out
        if len(rows) < page:
            return out
        last = (rows[-1]["published_at"], rows[-1]["id"])
        page = min(2 * page, PAGE_MAX)

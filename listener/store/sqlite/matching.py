"""The newest stored mentions that a query matches, on SQLite: an index walked newest first in windows
checked against the full-text index (FTS5), then FTS5 narrowing the rest of the walk or leading it."""

from __future__ import annotations

import json
import sqlite3
from typing import TYPE_CHECKING, Any, Iterator, Sequence

from listener.errors import StoreError
from listener.store.sqlite.connection import SQLiteBase

if TYPE_CHECKING:  # pragma: no cover
    from listener.query import Query

# rows in the first window (per row of the page, at least; it doubles up to the most), rows walked in
# windows at most, how far apart a window's ids may lie (mentions stored out of order of time), and
# the share of all mentions that FTS5 may match (as the windows' spans show) to lead
WINDOW_PER_ROW, WINDOW_MIN, WINDOW_MAX, WALK_MAX, SPREAD, LEAD_SHARE = 10, 200, 5000, 20_000, 50, 0.01
FTS_IN_SPAN = "SELECT rowid FROM mentions_fts WHERE mentions_fts MATCH ? AND rowid >= ? AND rowid <= ?"
FTS_ROWIDS = "IN (SELECT rowid FROM mentions_fts WHERE mentions_fts MATCH ?)"
FTS_IDS = "SELECT rowid AS id FROM mentions_fts WHERE mentions_fts MATCH ?"
IDS = "SELECT value AS id FROM json_each(?)"


def first_matching(db: SQLiteBase, columns: str, source: str, conds: Sequence[str], params: Sequence[Any],
                   query: Query | None, limit: int, *, at: str = "m.published_at", mid: str = "m.id") -> list[Any]:
    """The first `limit` rows of `SELECT columns FROM source` (its columns include the mention's `m.*`)
    that pass `conds` and that `query` matches (every row, when None), newest first by `at`, then `mid`
    (the walked index's published_at and mention id). FTS5 narrows, `Query.matches_stored` decides.

    Words that match most mentions fill a page from the newest few hundred rows, so the index is
    walked newest first in windows (keys only), each checked against FTS5 over its own span of ids
    (not all its matches); the few rows found are read whole. When the windows have not filled the
    page, the rest is walked with FTS5's matches as a list, or, when they look few, from FTS5 itself
    (looked up, then sorted). The same rows every way. StoreError in one line when the search fails."""
    fts = query.to_fts5() if query is not None else None
    order = f" ORDER BY {at} DESC, {mid} DESC"

    def select(what: str, more: Sequence[str], more_params: Sequence[Any], window: int | None = None, *,
               ids: tuple[str, Any] | None = None) -> tuple[str, list[Any]]:
        """SELECT `what` of the rows that pass, newest first, and its parameters; from `ids` (a query
        of mention ids, its parameter) when given: CROSS JOIN keeps it SQLite's outer loop, each row
        looked up by id."""
        where = [*conds, *more] + ([f"{mid} = f.id"] if ids else [])
        start = f"SELECT {what} FROM ({ids[0]}) AS f CROSS JOIN {source}" if ids else f"SELECT {what} FROM {source}"
        return (start + (" WHERE " + " AND ".join(where) if where else "") + order
                + (f" LIMIT {int(window)}" if window is not None else ""), [*([ids[1]] if ids else []), *params, *more_params])

    def after(last: tuple[int, str] | None) -> tuple[list[str], list[Any]]:
        if last is None:
            return [], []
        return [f"({at} < ? OR ({at} = ? AND {mid} < ?))"], [last[1], last[1], last[0]]

    out: list[Any] = []

    def take(found: Iterator[Any]) -> bool:
        """Add the rows `query` matches to the page; whether it is full."""
        for row in found:
            if query.matches_stored(row):  # type: ignore[union-attr]
                out.append(row)
                if len(out) >= limit:
                    return True
        return False

    try:
        if query is None:
            return list(db._dicts(*select(columns, [], [], limit)))
        last, lead = None, False
        if fts:
            window, walked, in_fts, spanned = min(max(WINDOW_PER_ROW * limit, WINDOW_MIN), WINDOW_MAX), 0, 0, 0
            while walked < WALK_MAX:
                keys = db.conn.execute(*select(f"{mid}, {at}", *after(last), window)).fetchall()
                if not keys:
                    return out
                lo, hi = min(k for k, _ in keys), max(k for k, _ in keys)
                if hi - lo > SPREAD * window:
                    break  # stored in no order of time: each window's span would hold most of FTS5's matches
                span = {rowid for rowid, in db.conn.execute(FTS_IN_SPAN, (fts, lo, hi))}
                hits = sorted(k for k, _ in keys if k in span)
                if hits and take(db._dicts(*select(columns, [], [], ids=(IDS, json.dumps(hits))))):
                    return out
                if len(keys) < window:
                    return out
                last = keys[-1]
                walked, in_fts, spanned = walked + len(keys), in_fts + len(span), spanned + hi - lo + 1
                if in_fts / spanned <= LEAD_SHARE:
                    lead = True
                    break
                window = min(2 * window, WINDOW_MAX)
        more, more_params = after(last)
        if fts and not lead:
            more, more_params = [*more, f"m.id {FTS_ROWIDS}"], [*more_params, fts]
        take(db._dicts(*select(columns, more, more_params, ids=(FTS_IDS, fts) if lead else None)))
    except sqlite3.OperationalError as exc:
        raise StoreError(f"search failed: {exc}") from exc
    return out

"""A user's own SQL (or a ready query) on the mention database, as `listener sql` (and the
dashboard) runs it: read-only and time-limited, `:now` bound to the moment it is asked, every value
as people read it and JSON-ready."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import Any, Mapping

from listener.store import QueryResult, iso, run_readonly


def run_user_sql(database: str | Path, sql: str, params: Mapping[str, str], now: datetime, *,
                 time_limit: float = 30.0) -> QueryResult:
    """Run `sql` with `params` bound (`:now` is `now` unless given); StoreError when it is not a
    read-only query, fails or runs out of time."""
    bound = dict(params)
    if "now" not in bound and re.search(r":now\b", sql):
        bound["now"] = iso(now)
    result = run_readonly(database, sql, bound, time_limit=time_limit)
    result.rows[:] = [tuple(_tidy(v) for v in r) for r in result.rows]
    return result


def _tidy(value: Any) -> Any:
    """A value as people read it: -0.0 (SQLite's round(-0.001, 2)) is 0.0; blobs are shown by size."""
    if isinstance(value, float) and value == 0:
        return 0.0
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    return value

"""Periods as every engine's rollup reads see them: the whole UTC hours or days a period holds and
the pieces it cuts at either end (those are counted from the mentions), and counts added up per key."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Iterable, Sequence

from listener.store.types import Counts


def hour_floor(dt: datetime) -> datetime:
    """The UTC hour `dt` falls in."""
    return dt.astimezone(timezone.utc).replace(minute=0, second=0, microsecond=0)


def whole_and_cut(start: datetime, end: datetime, unit: timedelta) -> tuple[datetime, datetime, list[tuple[datetime, datetime]]]:
    """[start, end) as the whole UTC `unit`s (hours, days) [lo, hi) it holds and the pieces of the units
    it cuts at either end (lo >= hi when it holds none: then the one piece is all of it)."""
    size = int(unit.total_seconds())

    def floor(dt: datetime) -> datetime:
        return datetime.fromtimestamp(int(dt.timestamp()) // size * size, timezone.utc)

    lo = floor(start) if floor(start) == start else floor(start) + unit
    hi = floor(end)
    if lo >= hi:
        return lo, hi, [(start, end)] if start < end else []
    return lo, hi, [(a, b) for a, b in ((start, lo), (hi, end)) if a < b]


def add_counts(into: dict[str, Counts], key: str, counts: Sequence[int | None]) -> None:
    """Add (mentions, negative, neutral, positive) to `key`'s in `into`."""
    old = into.get(key, (0, 0, 0, 0))
    into[key] = tuple(a + (b or 0) for a, b in zip(old, counts))  # type: ignore[assignment]


def add_authors(into: dict[str, list[int]], rows: Iterable[Sequence]) -> None:
    """Add rows of (author, mentions, engagement, negative, neutral, positive) to `into`'s per author."""
    for author, *counts in rows:
        old = into.setdefault(author, [0, 0, 0, 0, 0])
        for i, c in enumerate(counts):
            old[i] += c or 0

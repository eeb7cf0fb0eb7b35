"""Stored mentions out, as `listener export` writes them, oldest first: JSON Lines (the format
`listener import` and `listener alerts test --replay` read, `listener.tools.jsonl`) or CSV with the
same columns, lists as space-separated words."""

from __future__ import annotations

import csv
from datetime import datetime
from typing import IO, TYPE_CHECKING

from listener.tools.jsonl import EXPORT_COLUMNS, export_line, export_record

if TYPE_CHECKING:  # the CLI imports FORMATS at start-up: the store only when it exports
    from listener.store import MentionStore

FORMATS = ("jsonl", "csv")


def export_mentions(store: MentionStore, out: IO[str], fmt: str = "jsonl", *, since: datetime | None = None,
                    topic: str | None = None) -> None:
    """Write the mentions published since `since` (UTC; all when None) of `topic` (all when None)
    to `out` in `fmt`, one of FORMATS."""
    if fmt not in FORMATS:
        raise ValueError(f"export format {fmt!r} is not one of {', '.join(FORMATS)}")
    writer = csv.writer(out) if fmt == "csv" else None
    if writer:
        writer.writerow(EXPORT_COLUMNS)
    for m in store.iter_mentions(since=since, topic=topic):
        row = export_record(m)
        if writer:
            writer.writerow([" ".join(v) if isinstance(v, list) else v for v in row.values()])
        else:
            out.write(export_line(row) + "\n")

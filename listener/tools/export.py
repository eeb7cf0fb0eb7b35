"""Stored mentions out, as `listener export` writes them, oldest first: JSON Lines (the format
`listener import` and `listener alerts test --replay` read, `listener.tools.jsonl`) or CSV with the
same columns, lists as space-separated words."""

from __future__ import annotations

import csv
from datetime import datetime
from typing import IO, TYPE_CHECKING, Iterable

from listener.tools.jsonl import EXPORT_COLUMNS, export_line, export_record

if TYPE_CHECKING:  # the CLI imports FORMATS at start-up: the store only when it exports
    from listener.store import MentionStore
    from listener.store.rows import ExportedMention

FORMATS = ("jsonl", "csv")


def export_mentions(store: MentionStore, out: IO[str], fmt: str = "jsonl", *, since: datetime | None = None,
                    topic: str | None = None) -> None:
    """Write the mentions published since `since` (UTC; all when None) of `topic` (all when None)
    to `out` in `fmt`, one of FORMATS."""
    write_mentions(store.iter_mentions(since=since, topic=topic), out, fmt)


def write_mentions(mentions: Iterable[ExportedMention], out: IO[str], fmt: str = "jsonl", *, header: bool = True) -> None:
    """Write stored mentions (rows with their `topic_list` and `hashtag_list`, as the store gives them)
    to `out` in `fmt`, one of FORMATS: `export_mentions`, and the dashboard's filtered lists (in
    batches: `header` False for CSV's second batch on)."""
    if fmt not in FORMATS:
        raise ValueError(f"export format {fmt!r} is not one of {', '.join(FORMATS)}")
    writer = csv.writer(out) if fmt == "csv" else None
    if writer and header:
        writer.writerow(EXPORT_COLUMNS)
    for m in mentions:
        row = export_record(m)
        if writer:
            writer.writerow([" ".join(v) if isinstance(v, list) else v for v in row.values()])
        else:
            out.write(export_line(row) + "\n")

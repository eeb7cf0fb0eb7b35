"""`listener import`: load a JSON Lines file (the export and replay format) back into the database.

Each line is matched to the configured topics as if its source had just fetched it (the
configured source of that name when there is one, so its `topics` apply; else a plain source
named after the line's `source`), stored with the fetch's dedup rules (same source and id, or the
same canonical URL, is one mention), and scored with the configured model. Sentiment written in
the file is ignored and recomputed. Sources' fetch state (cursors, validators, health) is never
touched: an import next to a running daemon is safe.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from itertools import islice
from pathlib import Path
from typing import Callable

from listener.config import Config, SourceConfig
from listener.errors import ListenerError
from listener.pipeline import score_pending, to_rows
from listener.tools.jsonl import read_jsonl
from listener.store import MentionStore
from listener.sources import Mention

BATCH = 500  # lines per transaction


@dataclass
class ImportReport:
    lines: int = 0
    bad: int = 0  # lines that could not be read (reported one by one, left out)
    new: int = 0
    duplicates: int = 0  # already stored: same source and id, or same URL (engagement refreshed)
    unmatched: int = 0  # matched no topic: not stored
    scored: int = 0

    def summary(self) -> str:
        bad = f", {self.bad} bad (left out)" if self.bad else ""
        return (f"{self.lines} line{'s' if self.lines != 1 else ''} read: {self.new} new, "
                f"{self.duplicates} already stored, {self.unmatched} matching no topic{bad}; {self.scored} scored")


def import_jsonl(config: Config, store: MentionStore, path: str | Path, model_factory: Callable[[], object] | None,
                 now: datetime, *, on_batch: Callable[[ImportReport], None] | None = None,
                 on_error: Callable[[str], None] | None = None) -> ImportReport:
    """Import a JSON Lines file, BATCH lines per transaction; score what is new when a model is given.

    A bad line is passed to `on_error` ("FILE:LINE: what is wrong") and left out; without
    `on_error` the first one stops the import (ListenerError)."""
    report = ImportReport()
    sources: dict[str, SourceConfig] = {}

    def bad(message: str) -> None:
        report.bad += 1
        report.lines += 1
        if on_error is None:
            raise ListenerError(message)
        on_error(message)

    lines = iter(read_jsonl(path, on_error=bad))
    while chunk := list(islice(lines, BATCH)):
        report.lines += len(chunk)
        by_source: dict[str, list[Mention]] = {}
        for name, mention in chunk:
            by_source.setdefault(name, []).append(mention)
        for name, mentions in by_source.items():
            if name not in sources:
                try:
                    sources[name] = config.source(name)
                except KeyError:
                    sources[name] = SourceConfig(name=name, kind="import", options=None)
            rows, unmatched = to_rows(sources[name], mentions, config.topics, now)
            saved = store.save_mentions(rows)
            report.new += len(saved.new_ids)
            report.duplicates += saved.updated
            report.unmatched += unmatched
        if on_batch:
            on_batch(report)
    if model_factory is not None and store.count_unscored():
        report.scored = score_pending(store, model_factory(), now)
    return report

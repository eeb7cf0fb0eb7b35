"""Reading labelled sentiment TSV files (columns text, label[, language])."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from listener.errors import ListenerError


@dataclass(frozen=True)
class Example:
    text: str
    label: int
    language: str | None = None


def read_tsv(path: str | Path) -> list[Example]:
    """Read a UTF-8 TSV with a header row: `text`, `label` (0/1/2) and optional `language`."""
    path = Path(path)
    if not path.exists():
        raise ListenerError(f"{path}: file not found")
    csv.field_size_limit(10_000_000)
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)
        if not reader.fieldnames or "text" not in reader.fieldnames or "label" not in reader.fieldnames:
            raise ListenerError(f"{path}: needs a header row with columns 'text' and 'label'")
        out = []
        for line, row in enumerate(reader, start=2):
            label = (row.get("label") or "").strip()
            if label not in ("0", "1", "2"):
                raise ListenerError(f"{path}:{line}: label {label!r} is not 0, 1 or 2")
            out.append(Example(row["text"] or "", int(label), (row.get("language") or "").strip() or None))
    return out

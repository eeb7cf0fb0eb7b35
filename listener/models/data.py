"""Labelled sentiment TSV files (columns text, label[, language]), read and written."""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Iterable

from listener.errors import ListenerError


_UNQUOTED = re.compile(r"[\t\r\n]+")  # what ends a field or a line in a file without quoting


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


def write_tsv(examples: Iterable[Example], out: IO[str]) -> int:
    """Write `examples` as `read_tsv` reads them: a header row (`text`, `label`, `language`), then one a
    line; tabs and line breaks in a text become spaces, as the format has no quoting. How many."""
    out.write("text\tlabel\tlanguage\n")
    n = 0
    for n, e in enumerate(examples, start=1):
        out.write(f"{_UNQUOTED.sub(' ', e.text)}\t{e.label}\t{e.language or ''}\n")
    return n

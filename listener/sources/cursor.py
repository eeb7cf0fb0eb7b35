"""A source's cursor as the store keeps it: one JSON object in `SourceState.cursor`.

Each source decides what its object holds (marks, backlogs, seen ids); how it is written and
read back is the same for all: compact JSON with sorted keys, and an unreadable cursor (not JSON,
not an object, nested beyond reason) read as none, so that the next fetch starts afresh instead
of failing for ever.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["load_cursor", "dump_cursor"]


def load_cursor(text: str | None) -> dict[str, Any]:
    """The object a previous fetch kept; {} when there is none or it cannot be read."""
    if not text:
        return {}
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        return {}
    return data if isinstance(data, dict) else {}


def dump_cursor(data: dict[str, Any]) -> str:
    """The text to keep in the state for `data`."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"))

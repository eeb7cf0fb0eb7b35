"""Typed readers of values from outside: a field of an API's JSON (or a parsed feed) as the type
the source expects, or nothing.

An API may put anything where its documentation promises a string or a count (null, a number as
text, an object, a float, a value beyond what the store can hold); a reader returns the promised
type, or None (or an empty value), and never raises. One reader per shape, shared by every source.
"""

from __future__ import annotations

import math
import re
from typing import Any

__all__ = ["MAX_COUNT", "as_count", "number", "string", "nonblank", "stripped", "identifier", "mapping",
           "items", "language_code"]

MAX_COUNT = 2**63 - 1  # the largest count the store can hold (SQLite INTEGER); a bigger one is no count


def as_count(value: object, *, floats: bool = False, negative: bool = True) -> int | None:
    """A count (likes, points, ...) from a JSON value: an int in SQLite's range, else None. `floats`
    also takes a finite float (truncated, as some APIs send 12.0); `negative` allows scores below 0."""
    if isinstance(value, bool):
        return None
    if floats and isinstance(value, float):
        if not math.isfinite(value):
            return None
        value = int(value)
    if not isinstance(value, int) or abs(value) > MAX_COUNT or (not negative and value < 0):
        return None
    return value


def number(value: object) -> float | None:
    """A finite number from a JSON number or its text ("598.0" in a header); None otherwise."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            return None
    if not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def string(value: object) -> str:
    """The string, or "" for anything else."""
    return value if isinstance(value, str) else ""


def nonblank(value: object) -> str | None:
    """The string as it is when it holds more than white space; None otherwise."""
    return value if isinstance(value, str) and value.strip() else None


def stripped(value: object) -> str | None:
    """The string without surrounding white space; None when that leaves nothing, or for a non-string."""
    return (value.strip() or None) if isinstance(value, str) else None


def identifier(value: object) -> str | None:
    """An id or a text that APIs send as a string or a number (not a bool): stripped text, or None."""
    if isinstance(value, (str, int)) and not isinstance(value, bool):
        return str(value).strip() or None
    return None


def mapping(value: object) -> dict[str, Any]:
    """The object, or {} for anything else (a missing or null nested object)."""
    return value if isinstance(value, dict) else {}


def items(value: object) -> list[Any]:
    """The list, or [] for anything else."""
    return value if isinstance(value, list) else []


_LANGUAGE_SUBTAG = re.compile(r"[-_]")
_ISO_639_1 = re.compile(r"[a-z]{2}")


def language_code(value: object) -> str | None:
    """The ISO 639-1 code of a language tag: "en-US" -> "en", "NL" -> "nl", "pt_BR" -> "pt"; None
    for anything else ("eng", "x", not a string)."""
    if not isinstance(value, str):
        return None
    primary = _LANGUAGE_SUBTAG.split(value.strip(), maxsplit=1)[0].lower()
    return primary if _ISO_639_1.fullmatch(primary) else None

"""How config paths and values are written in problem messages: `alerts[2].window`, `"10 min"`, `got an array`."""

from __future__ import annotations

import json
import re
from typing import Any

BARE_KEY_RE = re.compile(r"[A-Za-z0-9_-]+")


def toml_key(key: str) -> str:
    return key if BARE_KEY_RE.fullmatch(key) else json.dumps(key, ensure_ascii=False)


def join(path: str, key: str) -> str:
    return f"{path}.{toml_key(key)}" if path else toml_key(key)


def type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "table"
    return "date/time"


UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def one_line(text: str) -> str:
    """Text for a one-line message: control characters, line and paragraph separators escaped,
    lone surrogates replaced."""
    text = UNPRINTABLE.sub(lambda m: m[0].encode("unicode_escape").decode("ascii"), text)
    return text.encode("utf-8", "replace").decode("utf-8") if not text.isascii() else text


def show(value: Any) -> str:
    """A value as a message shows it: strings in double quotes, long ones shortened."""
    if isinstance(value, str):
        text = value if len(value) <= 60 else value[:57] + "..."
        return json.dumps(text, ensure_ascii=False)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if hasattr(value, "isoformat"):  # a TOML date, time or date-time
        return value.isoformat()
    return type_name(value)


def got(value: Any) -> str:
    if isinstance(value, (list, dict)):
        return f"got {'an' if isinstance(value, list) else 'a'} {type_name(value)}"
    return f"got {type_name(value)} {show(value)}"

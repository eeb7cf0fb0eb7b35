"""Values written as TOML, the way config.toml spells them (durations as "15m", times as "08:00")."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import time, timedelta
from pathlib import Path
from typing import Any

from listener.config.durations import format_duration
from listener.config.text import toml_key


def toml_string(text: str) -> str:
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, Path):
        return toml_string(str(value))
    if isinstance(value, timedelta):
        return toml_string(format_duration(value))
    if isinstance(value, time):
        return toml_string(value.strftime("%H:%M"))
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        if not value:
            return "{}"
        return "{ " + ", ".join(f"{toml_key(k)} = {toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")

"""Durations as config.toml writes them: "30s", "10m", "1h", "7d", "2w", or combined like "1h30m"."""

from __future__ import annotations

import re
from datetime import timedelta

from listener.config.text import show

DURATION_RE = re.compile(r"(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")
DURATION_UNITS = (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60), ("s", 1))
DURATION_HINT = "a duration like 30s, 10m, 1h, 7d"


def parse_duration(value: str) -> timedelta:
    """Parse "30s", "10m", "1h", "7d", "2w" or combinations in that order ("1h30m"); ValueError if not."""
    if not isinstance(value, str):
        raise ValueError(f"{show(value)} is not {DURATION_HINT}")
    if value == "0":
        return timedelta(0)
    match = DURATION_RE.fullmatch(value)
    if not value or match is None:
        raise ValueError(f"{show(value)} is not {DURATION_HINT}")
    seconds = sum(int(n) * unit for n, (_, unit) in zip(match.groups(), DURATION_UNITS) if n)
    try:
        return timedelta(seconds=seconds)
    except OverflowError:
        raise ValueError(f"{show(value)} is too long a duration") from None


def format_duration(td: timedelta) -> str:
    """Write a timedelta the way parse_duration reads it, in whole seconds: 5400s -> "1h30m"."""
    seconds = int(td.total_seconds())
    if seconds < 0:
        raise ValueError(f"negative duration {td}")
    if seconds == 0:
        return "0s"
    parts = []
    for unit, size in DURATION_UNITS[1:]:  # days at most: "7d" reads better than "1w"
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)

"""The Bluesky source's cursor: the high-water mark, the posts seen recently, an unfinished window.

The fetch loop (in the package) decides what to read; this is what it keeps between fetches. Posts
seen are kept as short hashes of their URIs with their sortAt in epoch milliseconds, at most
MAX_SEEN of them, so the overlap a fetch reads again costs no duplicates.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from listener.sources.cursor import dump_cursor, load_cursor
from listener.sources.text import parse_datetime

__all__ = ["Progress", "MAX_SEEN", "STATE_VERSION", "seen_key", "epoch_ms", "pruned", "iso_millis"]

MAX_SEEN = 1000  # recently returned posts remembered in the state
STATE_VERSION = 1


@dataclass(frozen=True)
class Progress:
    """The state's cursor: high-water mark, recently seen posts, and an unfinished window."""

    hwm: datetime | None = None  # newest sortAt of the last finished window
    seen: dict[str, int] = field(default_factory=dict)  # seen_key(uri) -> sortAt in epoch ms
    until: datetime | None = None  # an unfinished window: the oldest sortAt read so far
    floor: datetime | None = None  # that window's `since`
    top: datetime | None = None  # newest sortAt found in that window

    @classmethod
    def load(cls, text: str | None) -> Progress:
        """The progress kept in the state; an unreadable cursor, or another version's, starts afresh."""
        data = load_cursor(text)
        if data.get("v") != STATE_VERSION:
            return cls()
        seen = data.get("seen")
        seen = {k: v for k, v in seen.items() if isinstance(v, int)} if isinstance(seen, dict) else {}
        return cls(
            hwm=_state_time(data.get("hwm")),
            seen=seen,
            until=_state_time(data.get("until")),
            floor=_state_time(data.get("floor")),
            top=_state_time(data.get("top")),
        )

    def dump(self) -> str:
        data: dict[str, Any] = {"v": STATE_VERSION, "hwm": _state_iso(self.hwm)}
        if self.until is not None:
            data.update(until=_state_iso(self.until), floor=_state_iso(self.floor), top=_state_iso(self.top))
        data["seen"] = self.seen
        return dump_cursor(data)


def pruned(seen: dict[str, int], keep_from: datetime | None) -> dict[str, int]:
    """The seen posts at or after keep_from, the newest MAX_SEEN of them."""
    floor_ms = epoch_ms(keep_from) if keep_from is not None else None
    kept = [(k, v) for k, v in seen.items() if floor_ms is None or v >= floor_ms]
    kept.sort(key=lambda kv: kv[1], reverse=True)
    return dict(kept[:MAX_SEEN])


def seen_key(uri: str) -> str:
    """How a post is remembered: 16 hex digits of the SHA-1 of its URI."""
    return hashlib.sha1(uri.encode("utf-8", "replace")).hexdigest()[:16]


def epoch_ms(when: datetime) -> int:
    return int(when.timestamp() * 1000)


def iso_millis(when: datetime) -> str:
    """A UTC datetime as the API's datetime syntax, truncated to milliseconds (since is inclusive)."""
    return when.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _state_time(value: Any) -> datetime | None:
    return parse_datetime(value) if isinstance(value, str) else None


def _state_iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None

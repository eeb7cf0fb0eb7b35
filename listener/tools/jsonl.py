"""The JSON Lines format of mentions, written and read here: what `listener export --format jsonl`
writes and what `listener import` and `listener alerts test --replay` read, one mention per line:

    {"source": "mastodon", "id": "1", "published_at": "2026-11-20T10:00:00Z", "text": "..."}

with optional `url`, `author`, `title`, `language` (strings), `hashtags` (a list of strings),
`likes`, `reposts`, `replies` and `score` (whole numbers); null is the same as absent. Other
fields (`sentiment`, ...) are ignored.

Every line is checked field by field; a bad one is one message naming the file, the line and
the field (`mentions.jsonl:12: "likes" must be a whole number, not an object`).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Callable, Iterator

from listener.errors import ListenerError
from listener.sources import Mention
from listener.sources.fields import MAX_COUNT
from listener.sources.text import clean_text, parse_datetime

REQUIRED = ("source", "id", "published_at", "text")
TEXT_FIELDS = ("url", "author", "title", "language")
COUNT_FIELDS = ("likes", "reposts", "replies", "score")
MAX_LINE = 10_000_000  # bytes: a longer line is refused


EXPORT_COLUMNS = ("source", "id", "published_at", "text", "url", "author", "title", "language", "hashtags", "likes",
                  "reposts", "replies", "score", "topics", "sentiment", "p_negative", "p_neutral", "p_positive",
                  "sentiment_score", "model")  # what `listener export` writes, in this order


def export_record(stored: dict) -> dict:
    """A stored mention (Store.iter_mentions) as an export record: EXPORT_COLUMNS, lists for the lists."""
    record = {**stored, "id": stored["source_id"], "hashtags": (stored.get("hashtag_list") or "").split(),
              "topics": (stored.get("topic_list") or "").split()}
    return {k: record.get(k) for k in EXPORT_COLUMNS}


def export_line(record: dict) -> str:
    """One JSON Lines line of an export record (empty fields left out), without the newline."""
    return json.dumps({k: v for k, v in record.items() if v not in (None, [])}, ensure_ascii=False)


class LineError(ListenerError):
    """One line of a JSON Lines file that cannot be read as a mention."""


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "true/false", int: "a number", float: "a number", str: "a string", list: "a list",
            dict: "an object"}.get(type(value), type(value).__name__)


def parse_line(data: dict) -> tuple[str, Mention]:
    """(source, Mention) from one decoded line; LineError naming the first bad field."""
    missing = [k for k in REQUIRED if data.get(k) in (None, "")]
    if missing:
        raise LineError("missing " + ", ".join(f'"{k}"' for k in missing))
    source, raw_id, text = data["source"], data["id"], data["text"]
    if not isinstance(source, str):
        raise LineError(f'"source" must be a string, not {_kind(source)}')
    source = clean_text(source).strip()
    if not source:
        raise LineError('"source" must be a name, not only control characters or spaces')
    if isinstance(raw_id, bool) or not isinstance(raw_id, (str, int)):
        raise LineError(f'"id" must be a string or a whole number, not {_kind(raw_id)}')
    if not isinstance(text, str):
        raise LineError(f'"text" must be a string, not {_kind(text)}')
    published = parse_datetime(data["published_at"]) if isinstance(data["published_at"], (str, int, float)) else None
    if published is None:
        raise LineError(f'"published_at" {_show(data["published_at"])} is not an ISO-8601 time')
    fields: dict[str, Any] = {}
    for key in TEXT_FIELDS:
        value = data.get(key)
        if value is not None and not isinstance(value, str):
            raise LineError(f'"{key}" must be a string, not {_kind(value)}')
        fields[key] = value or None
    for key in COUNT_FIELDS:
        value = data.get(key)
        if isinstance(value, float) and math.isfinite(value) and value.is_integer():
            value = int(value)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise LineError(f'"{key}" must be a whole number, not {_kind(value)}')
        if value is not None and abs(value) > MAX_COUNT:
            raise LineError(f'"{key}" {value} is out of range')
        fields[key] = value
    hashtags = data.get("hashtags")
    if hashtags is not None and (not isinstance(hashtags, list) or not all(isinstance(h, str) for h in hashtags)):
        raise LineError(f'"hashtags" must be a list of strings, not {_kind(hashtags)}'
                        if not isinstance(hashtags, list) else '"hashtags" must be a list of strings')
    return source, Mention(source_id=str(raw_id), text=text, published_at=published, hashtags=tuple(hashtags or ()),
                           **fields)


def _show(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=True) if not isinstance(value, str) else ascii(value)
    return text if len(text) <= 60 else text[:57] + "..."


def read_jsonl(path: str | Path, on_error: Callable[[str], None] | None = None) -> Iterator[tuple[str, Mention]]:
    """(source, Mention) per line. A bad line is an error "FILE:LINE: what is wrong": raised
    (ListenerError) without `on_error`, else passed to it and the line left out."""
    path = Path(path)
    if not path.exists():
        raise ListenerError(f"{path}: file not found")
    if path.is_dir():
        raise ListenerError(f"{path}: is a folder, not a JSON Lines file")
    with path.open("rb") as fh:
        for n, raw in enumerate(fh, 1):
            try:
                item = _decode(raw)
            except LineError as exc:
                if on_error is None:
                    raise ListenerError(f"{path}:{n}: {exc}") from None
                on_error(f"{path}:{n}: {exc}")
                continue
            if item is not None:
                yield item


def _decode(raw: bytes) -> tuple[str, Mention] | None:
    if len(raw) > MAX_LINE:
        raise LineError(f"line longer than {MAX_LINE:,} bytes")
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise LineError(f"not UTF-8 (byte 0x{raw[exc.start]:02x} at column {exc.start + 1})") from None
    line = line.lstrip("\ufeff").strip()  # a byte order mark some editors write
    if not line:
        return None
    try:
        data = json.loads(line)
    except RecursionError:
        raise LineError("not JSON (nested too deeply)") from None
    except json.JSONDecodeError as exc:
        raise LineError(f"not JSON ({exc.msg} at column {exc.colno})") from None
    except ValueError as exc:  # an integer of more than 4,300 digits
        raise LineError(f"not JSON we read ({' '.join(str(exc).split())[:80]})") from None
    if not isinstance(data, dict):
        raise LineError(f"expected a JSON object, not {_kind(data)}")
    return parse_line(data)

"""What a page is asked to show, read from its URL: a time range (24 h, 7 d, 30 d or custom local
dates) and the mention filters (topic, sentiment, source, language, hashtag, author, query), and
the same written back as a URL's query string (links from a chart or a table to the mentions)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Mapping
from urllib.parse import urlencode

from listener.digest.figures import local_midnight
from listener.errors import ListenerError
from listener.models import LABELS as SENTIMENTS  # the labels, in the model's order
from listener.store import MentionFilter, parse_iso

RANGES = {"24h": timedelta(hours=24), "7d": timedelta(days=7), "30d": timedelta(days=30)}
FIELDS = ("topic", "sentiment", "source", "language", "hashtag", "author")


class BadFilter(ListenerError):
    """A filter in the URL that cannot be read (a date, a range): shown to the user as it is."""


@dataclass(frozen=True)
class TimeRange:
    key: str  # 24h / 7d / 30d / custom
    start: datetime
    end: datetime
    params: dict[str, str] = field(default_factory=dict)  # how the URL says it

    @property
    def hours(self) -> int:
        return round((self.end - self.start).total_seconds() / 3600)


def time_range(params: Mapping[str, str], now: datetime, tz, default: str = "7d") -> TimeRange:
    """`range=24h|7d|30d` ending now, `from`/`to` local dates (both days included), or exact
    `start`/`end` UTC times (a chart's bar)."""
    if params.get("start") or params.get("end"):
        try:
            start = parse_iso(params["start"]) if params.get("start") else now - RANGES[default]
            end = parse_iso(params["end"]) if params.get("end") else now
        except ValueError:
            raise BadFilter("start and end are times like 2026-11-20T14:00:00Z") from None
        return TimeRange("custom", start.astimezone(timezone.utc), end.astimezone(timezone.utc),
                         {k: params[k] for k in ("start", "end") if params.get(k)})
    if params.get("from") or params.get("to"):
        try:
            first = date.fromisoformat(params["from"]) if params.get("from") else now.astimezone(tz).date()
            last = date.fromisoformat(params["to"]) if params.get("to") else now.astimezone(tz).date()
        except ValueError:
            raise BadFilter("from and to are dates like 2026-11-20") from None
        if last < first:
            raise BadFilter(f"to ({last}) is before from ({first})")
        return TimeRange("custom", local_midnight(first, tz), local_midnight(last + timedelta(days=1), tz),
                         {"from": first.isoformat(), "to": last.isoformat()})
    key = params.get("range") or default
    if key not in RANGES:
        raise BadFilter(f"range is one of {', '.join(RANGES)} (or from/to dates)")
    end = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)  # through the current hour
    return TimeRange(key, end - RANGES[key], end, {"range": key})


@dataclass(frozen=True)
class Selection:
    """The mention list a page shows: its filters, query and time range (None: all time)."""

    where: MentionFilter
    query: str
    range: TimeRange | None

    def params(self, **changes: str | None) -> dict[str, str]:
        """The URL parameters that say this selection (with `changes`; None drops one)."""
        out = {f: getattr(self.where, f) for f in FIELDS if getattr(self.where, f)}
        if self.query:
            out["q"] = self.query
        out.update(self.range.params if self.range else {})
        for k, v in changes.items():
            if v is None:
                out.pop(k, None)
            else:
                out[k] = v
        return out

    def url(self, path: str, **changes: str | None) -> str:
        query = urlencode(self.params(**changes))
        return f"{path}?{query}" if query else path


def selection(params: Mapping[str, str], now: datetime, tz) -> Selection:
    """The filters of a mention list from its URL; the range only when one is given."""
    values = {f: (params.get(f) or "").strip() or None for f in FIELDS}
    if values["sentiment"] and values["sentiment"] not in SENTIMENTS:
        raise BadFilter(f"sentiment is one of {', '.join(SENTIMENTS)}")
    if values["hashtag"]:
        values["hashtag"] = values["hashtag"].lstrip("#").lower()
    given = any(params.get(k) for k in ("range", "from", "to", "start", "end"))
    span = time_range(params, now, tz) if given else None
    where = MentionFilter(**values, start=span.start if span else None, end=span.end if span else None)
    return Selection(where, (params.get("q") or "").strip(), span)

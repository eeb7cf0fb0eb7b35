"""How numbers and times read in alerts: one place for the wording every message shares."""

from __future__ import annotations

from datetime import datetime, timedelta, tzinfo

from listener.config import format_duration
from listener.store import parse_iso


def percent(x: float) -> str:
    return f"{100 * x:.0f}%"


def fmt_count(n: float) -> str:
    return f"{n:.0f}" if abs(n - round(n)) < 1e-9 or n >= 10 else f"{n:.1f}"


def fmt_rate(rate: float) -> str:
    return f"{rate:.0f}" if rate >= 10 else f"{rate:.1f}"


def format_window(window: timedelta) -> str:
    """`hour` for 1h (reads "in the last hour"), else the duration (`30m`, `2h`)."""
    return "hour" if window == timedelta(hours=1) else format_duration(window)


def local_time(at: datetime, tz: tzinfo, *, with_day: bool = False, now: datetime | None = None) -> str:
    """`11:05 CET`, with the weekday and date when `with_day` or when `at` is not on `now`'s local day."""
    local = at.astimezone(tz)
    zone = local.tzname() or str(tz)
    if with_day or (now is not None and local.date() != now.astimezone(tz).date()):
        return f"{local:%a %d %b %H:%M} {zone}"
    return f"{local:%H:%M} {zone}"


def shown_time(value: datetime | str | None, tz: tzinfo, default: str = "-") -> str:
    """`Mon 23 Nov 14:05 CET`: a stored time (ISO-8601 text or a datetime) as people read it, in the
    display zone, named; `default` when there is none."""
    at = parse_iso(value) if isinstance(value, str) else value
    return local_time(at, tz, with_day=True) if at is not None else default


def duration_words(d: timedelta) -> str:
    """`45 min`, `3 h 20 min`, `2 days 4 h`."""
    minutes = int(d.total_seconds() // 60)
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{days} day{'s' if days != 1 else ''}" + (f" {hours} h" if hours else "")
    if hours:
        return f"{hours} h" + (f" {mins} min" if mins else "")
    return f"{mins} min"


def engagement_text(e: dict, none: str = "") -> str:
    """`12 likes, 3 reposts, score 40`: a mention's engagement as people read it; `none` when it has none."""
    parts = [f"{e[k]} {k}" for k in ("likes", "reposts", "replies") if e.get(k)]
    if e.get("score"):
        parts.append(f"score {e['score']}")
    return ", ".join(parts) or none


def mention_meta(e: dict, *more: str, none: str = "") -> str:
    """`author, source, engagement[, more]`: the line under a quoted mention, empty parts left out."""
    return ", ".join(x for x in [e.get("author") or "", e.get("source") or "", engagement_text(e, none), *more] if x)

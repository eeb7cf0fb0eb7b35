"""Words and numbers of the digest as people read them, shared by every renderer."""

from __future__ import annotations

from typing import Sequence
from zoneinfo import ZoneInfo

from listener.alerts.wording import percent
from listener.config import Config
from listener.digest.figures import SENTIMENTS
from listener.store import parse_iso


def fmt_change(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:+.0f}%"


fmt_share = percent  # one wording for a share everywhere (listener.alerts.wording)


def fmt_net(x: float | None) -> str:
    return "n/a" if x is None else f"{x:+.2f}"


def local_time_of(at: str, tz: ZoneInfo, fmt: str = "%H:%M") -> str:
    return parse_iso(at).astimezone(tz).strftime(fmt)


def alert_line(a: dict, tz: ZoneInfo) -> str:
    what = [f"#{a['labels']['hashtag']}"] if "hashtag" in a["labels"] else []
    what += [f"{k}={v}" for k, v in a["labels"].items() if k not in ("topic", "hashtag")]
    return " ".join([local_time_of(a["at"], tz), a["state"].upper(), a["rule"], *what]) + (f": {a['summary']}" if a["summary"] else "")


def incident_line(i: dict, tz: ZoneInfo) -> str:
    span = f"{local_time_of(i['opened_at'], tz)}-{local_time_of(i['closed_at'], tz) if i['closed_at'] else 'still open'}"
    tags = " ".join(f"#{h}" for h in i["hashtags"])
    peak = f", peak {i['peak']:.0f}/h" if i["peak"] else ""
    return (f"{span} incident {i['id']}" + (f" {tags}" if tags else "") + f" ({', '.join(i['rules'])}{peak}, "
            f"{i['notifications']} notification{'s' if i['notifications'] != 1 else ''})"
            + (f": {i['summary']}" if i["summary"] else ""))


def volume_line(t: dict) -> str:
    return (f"{fmt_change(t['change_vs_previous_day'])} vs previous day ({t['previous_day']}), "
            f"{fmt_change(t['change_vs_average_7d'])} vs 7-day average ({t['average_7d']:g})")


def sentiment_line(t: dict) -> str:
    return ", ".join(f"{s} {t['sentiment'][s]} ({fmt_share(t['sentiment_share'][s])})" for s in SENTIMENTS)


def net_line(t: dict) -> str:
    return f"{fmt_net(t['net_sentiment_change'])} vs previous day ({fmt_net(t['previous_net_sentiment'])})"


def failing_line(f: dict, tz: ZoneInfo) -> str:
    if f["errors"]:
        what = f"{f['errors']} failed fetch{'es' if f['errors'] != 1 else ''}"
        if f["ok"]:
            what += f", {f['ok']} good"
    else:
        what = "no fetch that day, failing since " + local_time_of(f["failing_since"], tz, "%a %d %H:%M")
    return f"{f['source']}: {what}" + (f": {f['error']}" if f["error"] else "")


def subject(config: Config, digest: dict) -> str:
    prefix = config.email.subject_prefix if config.email else "[listener]"
    parts = [f"{t['topic']} {t['mentions']} ({fmt_change(t['change_vs_previous_day'])})" for t in digest["topics"]]
    return f"{prefix} Daily digest {digest['date']}: " + ", ".join(parts)


SPARKS = "▁▂▃▄▅▆▇█"


def sparkline(values: Sequence[int]) -> str:
    top = max(values, default=0)
    if not top:
        return SPARKS[0] * len(values)
    return "".join(SPARKS[min(len(SPARKS) - 1, round(v / top * (len(SPARKS) - 1)))] for v in values)


def day_hours(t: dict, digest: dict) -> list[int]:
    """Mentions per hour of the digest's day (from the hourly series)."""
    hourly = t["hourly"]
    return [sum(hourly[s][i] for s in SENTIMENTS) for i, h in enumerate(hourly["hours"])
            if h >= digest["start"][:13] and h < digest["end"]]

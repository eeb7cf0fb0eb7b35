"""Every figure of one local day's digest, per topic, as a plain dict (JSON-ready): what the
renderers format and the dashboard can reuse. Counts come from the hourly rollups."""

from __future__ import annotations

import json
from datetime import date, datetime, time, timedelta, timezone
from typing import Mapping, Sequence
from zoneinfo import ZoneInfo

from listener.config import Config
from listener.errors import ListenerError
from listener.models import LABELS as SENTIMENTS  # the labels, in the model's order
from listener.store import MentionStore, iso
from listener.sources.text import clip, is_web_url


COLORS = {"negative": "#d64545", "neutral": "#a0aab4", "positive": "#2f9e44"}
TOP_HASHTAGS = 10
EXAMPLES = 3  # most engaged mentions per sentiment
HISTORY_DAYS = 7
ZERO = (0, 0, 0, 0)


def local_midnight(day: date, tz: ZoneInfo) -> datetime:
    """The start of `day` in `tz`, in UTC."""
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(timezone.utc)


def day_bounds(day: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """[start, end) of a local day, in UTC: 2026-11-21 in Europe/Amsterdam is 2026-11-20T23:00Z to 2026-11-21T23:00Z."""
    return local_midnight(day, tz), local_midnight(day + timedelta(days=1), tz)


def yesterday(now: datetime, tz: ZoneInfo) -> date:
    """The local date before `now`'s local date."""
    return now.astimezone(tz).date() - timedelta(days=1)


def relative_change(value: float, base: float) -> float | None:
    """Relative change (0.25 = +25%); None when there is nothing to compare with."""
    return round(value / base - 1, 4) if base else None


def net_sentiment(counts: Sequence[int]) -> float | None:
    """(positive - negative) / (positive + negative) of counts (mentions, negative, neutral, positive); None with neither."""
    _, neg, _, pos = counts
    return round((pos - neg) / (pos + neg), 4) if pos + neg else None


def _split(counts: Sequence[int]) -> dict[str, int]:
    return dict(zip(SENTIMENTS, counts[1:]))


def _shares(counts: Sequence[int]) -> dict[str, float]:
    n = counts[0]
    return {s: round(c / n, 4) if n else 0.0 for s, c in zip(SENTIMENTS, counts[1:])}


def _ranked(counts: Mapping[str, Sequence[int]], key_name: str, total: int) -> list[dict]:
    rows = sorted(counts.items(), key=lambda kv: (-kv[1][0], kv[0]))
    return [{key_name: k or None, "mentions": c[0], **_split(c), "share": round(c[0] / total, 4) if total else 0.0}
            for k, c in rows]


def _example(row: dict) -> dict:
    text = " ".join((row.get("text") or row.get("title") or "").split())
    return {"id": row["id"], "sentiment": row["sentiment"], "engagement": row["engagement"],
            "likes": row["likes"], "reposts": row["reposts"], "replies": row["replies"], "score": row["score"],
            "sentiment_score": round(row["sentiment_score"], 4) if row["sentiment_score"] is not None else None,
            "url": row["url"] if is_web_url(row["url"]) else None, "author": row["author"], "source": row["source"], "published_at": row["published_at"],
            "title": row["title"], "text": clip(text)}


def _alert(event: dict, rule_topics: Mapping[str, str | None]) -> dict:
    """An alert event; its topic is its `topic` label, else its rule's topic (None for source down, most sql rules)."""
    labels = json.loads(event["labels"])
    return {"rule": event["rule"], "labels": labels, "topic": labels.get("topic") or rule_topics.get(event["rule"]),
            "state": event["state"], "at": event["at"], "value": event["value"], "summary": event["summary"] or ""}


def _incident(row: dict) -> dict:
    """An incident open at some time of the day: one line of the digest however many alerts it grouped."""
    return {"id": row["id"], "opened_at": row["opened_at"], "closed_at": row["closed_at"], "peak": row["peak"],
            "peak_at": row["peak_at"], "hashtags": row["hashtags"], "rules": row["rules"],
            "summary": row["summary"] or "", "notifications": row["notifications"]}


def failing_sources(store: MentionStore, start: datetime, end: datetime) -> list[dict]:
    """Sources that failed in [start, end): a failed fetch that day, or an error streak that covered it."""
    out = []
    for s in store.source_failures(start, end):
        in_streak = s["consecutive_errors"] > 0 and s["failing_since"] is not None and s["failing_since"] < iso(end)
        if s["errors"] or in_streak:
            out.append({"source": s["source"], "errors": s["errors"], "ok": s["ok"],
                        "error": s["error"] or s["last_error"], "consecutive_errors": s["consecutive_errors"],
                        "failing_since": s["failing_since"]})
    return out


def _watched(config: Config, failure: dict, topics: Sequence[str]) -> bool:
    """A failure worth reporting: a configured source feeding one of `topics` that failed that day, or
    is enabled and was in an error streak (a removed or disabled source's old streak is not news)."""
    if not config.topics_fed_by([failure["source"]]) & set(topics):
        return False
    return failure["errors"] > 0 or config.source(failure["source"]).enabled


def _topic_section(store: MentionStore, config: Config, name: str, day: date, tz: ZoneInfo,
                   alerts: list[dict], failing: list[dict]) -> dict:
    days = [day - timedelta(days=k) for k in range(HISTORY_DAYS, -1, -1)]  # the 7 days before, then the day
    bounds = [local_midnight(d, tz) for d in days] + [local_midnight(day + timedelta(days=1), tz)]
    start, end = bounds[-2], bounds[-1]
    daily = [c.get("", ZERO) for c in store.rollup_counts("topic", name, bounds)]
    today, previous = daily[-1], daily[-2]
    average = sum(c[0] for c in daily[:-1]) / HISTORY_DAYS
    net, previous_net = net_sentiment(today), net_sentiment(previous)

    sources = store.rollup_counts("source", name, [start, end])[0]
    languages = store.rollup_counts("language", name, [start, end])[0]
    top_tags = sorted(store.rollup_counts("hashtag", name, [start, end])[0].items(),
                      key=lambda kv: (-kv[1][0], kv[0]))[:TOP_HASHTAGS]
    earlier, before = store.rollup_counts("hashtag", name, [bounds[0], bounds[-3], start], keys=[t for t, _ in top_tags])
    hashtags = []
    for tag, c in top_tags:
        prev = before.get(tag, ZERO)[0]
        hashtags.append({"hashtag": tag, "mentions": c[0], **_split(c), "previous_day": prev,
                         "change": relative_change(c[0], prev), "new": prev == 0 and earlier.get(tag, ZERO)[0] == 0})

    hour = bounds[-HISTORY_DAYS - 1].replace(minute=0, second=0, microsecond=0)  # the chart: the day and 6 before
    hourly = store.topic_hourly_counts(name, hour, end)
    hours = []
    while hour < end:
        hours.append(iso(hour))
        hour += timedelta(hours=1)
    top = store.top_mentions(name, start, end, ("positive", "negative"), EXAMPLES)
    return {
        "topic": name,
        "mentions": today[0],
        "previous_day": previous[0],
        "change_vs_previous_day": relative_change(today[0], previous[0]),
        "average_7d": round(average, 2),
        "change_vs_average_7d": relative_change(today[0], average),
        "sentiment": _split(today),
        "sentiment_share": _shares(today),
        "net_sentiment": net,
        "previous_net_sentiment": previous_net,
        "net_sentiment_change": round(net - previous_net, 4) if net is not None and previous_net is not None else None,
        "by_source": _ranked(sources, "source", today[0]),
        "by_language": _ranked(languages, "language", today[0]),
        "hashtags": hashtags,
        "most_engaged": {s: [_example(r) for r in top[s]] for s in ("positive", "negative")},
        "incidents": [_incident(i) for i in store.incidents(start, end) if i["topic"] == name],
        "alerts": [a for a in alerts if a["topic"] == name],
        "failing_sources": [f["source"] for f in failing if name in config.topics_fed_by([f["source"]])],
        "daily": [{"date": d.isoformat(), "mentions": c[0], **_split(c), "net_sentiment": net_sentiment(c)}
                  for d, c in zip(days[1:], daily[1:])],
        "hourly": {"hours": hours, **{s: [hourly.get(x, ZERO)[i + 1] for x in hours] for i, s in enumerate(SENTIMENTS)}},
    }


def build_digest(store: MentionStore, config: Config, day: date, topics: Sequence[str] | None = None) -> dict:
    """Every figure of one local day's digest, per topic, as a plain dict (JSON-ready)."""
    known = [t.name for t in config.topics]
    names = list(topics or config.digest.topics or known)
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ListenerError(f"no topic named {unknown[0]!r} in the config (known: {', '.join(known) or 'none'})")
    tz = config.digest.tzinfo
    start, end = day_bounds(day, tz)
    rule_topics = {r.name: r.topic for r in config.alerts}
    alerts = [_alert(e, rule_topics) for e in store.alert_events(start, end) if e["state"] in ("firing", "resolved")]
    failing = [f for f in failing_sources(store, start, end) if _watched(config, f, names)]
    return {
        "date": day.isoformat(),
        "weekday": day.strftime("%A"),
        "timezone": config.digest.timezone,
        "start": iso(start),
        "end": iso(end),
        "topics": [_topic_section(store, config, n, day, tz, alerts, failing) for n in names],
        "other_alerts": [a for a in alerts if a["topic"] not in known],  # source down, sql rules
        "failing_sources": failing,
    }

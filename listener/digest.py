"""The daily digest: one local day per topic, built from the rollups, mailed once a day.

`build_digest` gathers every figure into one plain dict (what `listener digest --format json`
prints); the renderers (`print_text`, `render_markdown`, `render_html`, `render_charts`) only
format it. The day runs from local midnight to local midnight in `[digest] timezone`, converted
to UTC (23 or 25 hours on a daylight-saving day). Counts are scored mentions, read from the hourly
rollups (`topic_hourly`, `hashtag_hourly`, `topic_breakdown_hourly`), so a digest costs the same
on a database of a thousand mentions or of millions.

Per topic:
- volume, its change against the previous day and against the average of the 7 days before;
- the sentiment split and net sentiment, (positive - negative) / (positive + negative), and its
  change against the previous day (in points);
- volume by source and by language;
- the top hashtags with their change against the previous day; `new` marks a hashtag not seen
  in the 7 days before;
- the most engaged positive and negative mentions (likes + reposts + replies + score);
- the alerts of the day (alert events `firing` and `resolved`) and the failing sources feeding it;
- the series behind the charts: mentions per hour by sentiment over 7 days, net sentiment per day.

`send_digest_if_due` is the daemon's job: once `[digest] at` has passed (local time), it queues
yesterday's digest unless the outbox already has it. The outbox message id is fixed per day,
recipients and topics, so a digest is queued once, whatever restarts or repeated calls happen.
"""

from __future__ import annotations

import base64
import hashlib
import html
import io
import json
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Iterable, Mapping, Sequence
from zoneinfo import ZoneInfo

from listener.alerts.wording import percent
from listener.config import Config
from listener.errors import ListenerError
from listener.store import Store, iso, parse_iso
from sources.text import is_web_url

SENTIMENTS = ("negative", "neutral", "positive")
COLORS = {"negative": "#d64545", "neutral": "#a0aab4", "positive": "#2f9e44"}
TOP_HASHTAGS = 10
EXAMPLES = 3  # most engaged mentions per sentiment
HISTORY_DAYS = 7
ZERO = (0, 0, 0, 0)


# ---------------------------------------------------------------- days
def local_midnight(day: date, tz: ZoneInfo) -> datetime:
    """The start of `day` in `tz`, in UTC."""
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(timezone.utc)


def day_bounds(day: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """[start, end) of a local day, in UTC: 2026-11-21 in Europe/Amsterdam is 2026-11-20T23:00Z to 2026-11-21T23:00Z."""
    return local_midnight(day, tz), local_midnight(day + timedelta(days=1), tz)


def yesterday(now: datetime, tz: ZoneInfo) -> date:
    """The local date before `now`'s local date."""
    return now.astimezone(tz).date() - timedelta(days=1)


# ---------------------------------------------------------------- the figures
def _change(value: float, base: float) -> float | None:
    """Relative change (0.25 = +25%); None when there is nothing to compare with."""
    return round(value / base - 1, 4) if base else None


def _net(counts: Sequence[int]) -> float | None:
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
            "title": row["title"], "text": text if len(text) <= 280 else text[:279] + "…"}


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


def failing_sources(store: Store, start: datetime, end: datetime) -> list[dict]:
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
    if not any(_feeds(config, failure["source"], t) for t in topics):
        return False
    return failure["errors"] > 0 or config.source(failure["source"]).enabled


def _feeds(config: Config, source: str, topic: str) -> bool:
    try:
        src = config.source(source)
    except KeyError:
        return False
    return not src.topics or topic in src.topics


def _topic_section(store: Store, config: Config, name: str, day: date, tz: ZoneInfo,
                   alerts: list[dict], failing: list[dict]) -> dict:
    days = [day - timedelta(days=k) for k in range(HISTORY_DAYS, -1, -1)]  # the 7 days before, then the day
    bounds = [local_midnight(d, tz) for d in days] + [local_midnight(day + timedelta(days=1), tz)]
    start, end = bounds[-2], bounds[-1]
    daily = [c.get("", ZERO) for c in store.rollup_counts("topic", name, bounds)]
    today, previous = daily[-1], daily[-2]
    average = sum(c[0] for c in daily[:-1]) / HISTORY_DAYS
    net, previous_net = _net(today), _net(previous)

    sources = store.rollup_counts("source", name, [start, end])[0]
    languages = store.rollup_counts("language", name, [start, end])[0]
    top_tags = sorted(store.rollup_counts("hashtag", name, [start, end])[0].items(),
                      key=lambda kv: (-kv[1][0], kv[0]))[:TOP_HASHTAGS]
    earlier, before = store.rollup_counts("hashtag", name, [bounds[0], bounds[-3], start], keys=[t for t, _ in top_tags])
    hashtags = []
    for tag, c in top_tags:
        prev = before.get(tag, ZERO)[0]
        hashtags.append({"hashtag": tag, "mentions": c[0], **_split(c), "previous_day": prev,
                         "change": _change(c[0], prev), "new": prev == 0 and earlier.get(tag, ZERO)[0] == 0})

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
        "change_vs_previous_day": _change(today[0], previous[0]),
        "average_7d": round(average, 2),
        "change_vs_average_7d": _change(today[0], average),
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
        "failing_sources": [f["source"] for f in failing if _feeds(config, f["source"], name)],
        "daily": [{"date": d.isoformat(), "mentions": c[0], **_split(c), "net_sentiment": _net(c)}
                  for d, c in zip(days[1:], daily[1:])],
        "hourly": {"hours": hours, **{s: [hourly.get(x, ZERO)[i + 1] for x in hours] for i, s in enumerate(SENTIMENTS)}},
    }


def build_digest(store: Store, config: Config, day: date, topics: Sequence[str] | None = None) -> dict:
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


# ---------------------------------------------------------------- formatting helpers
def fmt_change(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:+.0f}%"


fmt_share = percent  # one wording for a share everywhere (listener.alerts.wording)


def fmt_net(x: float | None) -> str:
    return "n/a" if x is None else f"{x:+.2f}"


def _local(at: str, tz: ZoneInfo, fmt: str = "%H:%M") -> str:
    return parse_iso(at).astimezone(tz).strftime(fmt)


def _alert_line(a: dict, tz: ZoneInfo) -> str:
    what = [f"#{a['labels']['hashtag']}"] if "hashtag" in a["labels"] else []
    what += [f"{k}={v}" for k, v in a["labels"].items() if k not in ("topic", "hashtag")]
    return " ".join([_local(a["at"], tz), a["state"].upper(), a["rule"], *what]) + (f": {a['summary']}" if a["summary"] else "")


def _incident_line(i: dict, tz: ZoneInfo) -> str:
    span = f"{_local(i['opened_at'], tz)}-{_local(i['closed_at'], tz) if i['closed_at'] else 'still open'}"
    tags = " ".join(f"#{h}" for h in i["hashtags"])
    peak = f", peak {i['peak']:.0f}/h" if i["peak"] else ""
    return (f"{span} incident {i['id']}" + (f" {tags}" if tags else "") + f" ({', '.join(i['rules'])}{peak}, "
            f"{i['notifications']} notification{'s' if i['notifications'] != 1 else ''})"
            + (f": {i['summary']}" if i["summary"] else ""))


def _engagement(e: dict) -> str:
    parts = [f"{e[k]} {k}" for k in ("likes", "reposts", "replies") if e.get(k)]
    if e.get("score"):
        parts.append(f"score {e['score']}")
    return ", ".join(parts) or "no engagement"


def _volume_line(t: dict) -> str:
    return (f"{fmt_change(t['change_vs_previous_day'])} vs previous day ({t['previous_day']}), "
            f"{fmt_change(t['change_vs_average_7d'])} vs 7-day average ({t['average_7d']:g})")


def _sentiment_line(t: dict) -> str:
    return ", ".join(f"{s} {t['sentiment'][s]} ({fmt_share(t['sentiment_share'][s])})" for s in SENTIMENTS)


def _net_line(t: dict) -> str:
    return f"{fmt_net(t['net_sentiment_change'])} vs previous day ({fmt_net(t['previous_net_sentiment'])})"


def _failing_line(f: dict, tz: ZoneInfo) -> str:
    if f["errors"]:
        what = f"{f['errors']} failed fetch{'es' if f['errors'] != 1 else ''}"
        if f["ok"]:
            what += f", {f['ok']} good"
    else:
        what = "no fetch that day, failing since " + _local(f["failing_since"], tz, "%a %d %H:%M")
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


def _day_hours(t: dict, digest: dict) -> list[int]:
    """Mentions per hour of the digest's day (from the hourly series)."""
    hourly = t["hourly"]
    return [sum(hourly[s][i] for s in SENTIMENTS) for i, h in enumerate(hourly["hours"])
            if h >= digest["start"][:13] and h < digest["end"]]


# ---------------------------------------------------------------- text (rich)
def print_text(digest: dict, console) -> None:
    """Print the digest to a rich console: tables, a sentiment bar, daily bars and an hourly sparkline."""
    from rich.table import Table
    from rich.text import Text

    from listener.terminal import styled

    tz = ZoneInfo(digest["timezone"])
    console.print(styled(f"Daily digest {digest['weekday']} {digest['date']}", style="bold"))
    console.print(styled(f"{digest['timezone']}: {digest['start']} to {digest['end']}. Counts are scored mentions.",
                       style="dim"))
    for t in digest["topics"]:
        console.print()
        console.rule(Text(t["topic"], style="bold"), align="left")
        head = Table.grid(padding=(0, 2))
        head.add_row("Mentions", Text(str(t["mentions"]), style="bold"), _volume_line(t))
        bar = Text()
        width = 24
        for s, mark in zip(SENTIMENTS, "-=+"):
            cells = round(t["sentiment_share"][s] * width)
            bar.append(mark * cells, style=f"{COLORS[s]}")
        head.add_row("Sentiment", bar, _sentiment_line(t))
        head.add_row("Net sentiment", styled(fmt_net(t["net_sentiment"]), style="bold"), _net_line(t))
        head.add_row("Hours", Text(sparkline(_day_hours(t, digest)), style="cyan"), "mentions per hour, 00:00 to 24:00 local")
        console.print(head)
        console.print()
        days = Table("last 7 days", "mentions", "", "net", box=None, padding=(0, 1), title_justify="left")
        top = max((d["mentions"] for d in t["daily"]), default=0) or 1
        for d in t["daily"]:
            label = date.fromisoformat(d["date"]).strftime("%a %d")
            days.add_row(label, str(d["mentions"]), Text("█" * round(20 * d["mentions"] / top), style="cyan"),
                         fmt_net(d["net_sentiment"]))
        console.print(days)
        if t["by_source"] or t["by_language"]:
            mix = Table("source", "mentions", "share", box=None, padding=(0, 1))
            for r in t["by_source"]:
                mix.add_row(r["source"], str(r["mentions"]), fmt_share(r["share"]))
            langs = Table("language", "mentions", "share", box=None, padding=(0, 1))
            for r in t["by_language"]:
                langs.add_row(r["language"] or "unknown", str(r["mentions"]), fmt_share(r["share"]))
            grid = Table.grid(padding=(0, 4))
            grid.add_row(mix, langs)
            console.print()
            console.print(grid)
        if t["hashtags"]:
            tags = Table("hashtag", "mentions", "previous day", "change", box=None, padding=(0, 1))
            for h in t["hashtags"]:
                tags.add_row(f"#{h['hashtag']}", str(h["mentions"]), str(h["previous_day"]),
                             Text("new", style="bold magenta") if h["new"] else fmt_change(h["change"]))
            console.print()
            console.print(tags)
        for s in ("positive", "negative"):
            if t["most_engaged"][s]:
                console.print()
                console.print(styled(f"Most engaged {s}:", style=f"bold {COLORS[s]}"))
                for i, e in enumerate(t["most_engaged"][s], 1):
                    console.print(f"  {i}. {e['text']}", highlight=False)
                    meta = ", ".join(x for x in [e["author"] or "", e["source"], _engagement(e)] if x)
                    console.print(styled(f"     ({meta}) {e['url'] or ''}".rstrip(), style="dim"))
        if t["incidents"]:
            console.print()
            console.print(Text("Incidents:", style="bold"))
            for i in t["incidents"]:
                console.print(styled(f"  {_incident_line(i, tz)}"))
        if t["alerts"]:
            console.print()
            console.print(Text("Alerts:", style="bold"))
            for a in t["alerts"]:
                console.print(f"  {_alert_line(a, tz)}", highlight=False)
        if t["failing_sources"]:
            console.print()
            console.print(Text("Data may be incomplete: failing " + ", ".join(t["failing_sources"]), style="yellow"))
    if digest["other_alerts"]:
        console.print()
        console.print(Text("Other alerts:", style="bold"))
        for a in digest["other_alerts"]:
            console.print(f"  {_alert_line(a, tz)}", highlight=False)
    if digest["failing_sources"]:
        console.print()
        console.print(Text("Failing sources:", style="bold yellow"))
        for f in digest["failing_sources"]:
            console.print(f"  {_failing_line(f, tz)}", highlight=False)


def render_text(digest: dict, width: int = 100) -> str:
    """The text rendering without colours (what `print_text` shows, as a string)."""
    from listener.terminal import console

    buf = io.StringIO()
    print_text(digest, console(file=buf, width=width))
    return buf.getvalue()


# ---------------------------------------------------------------- Markdown
def _md(text: str) -> str:
    """Escape what would break a Markdown table or turn into markup; one line (a newline in an
    author or a post must not start a line of its own)."""
    out = " ".join(text.split()).replace("\\", "\\\\").replace("|", "\\|")
    for ch in "*_`[]<>#":
        out = out.replace(ch, "\\" + ch)
    return out


def render_markdown(digest: dict) -> str:
    """The digest as Markdown (also the plain-text part of the email)."""
    tz = ZoneInfo(digest["timezone"])
    out = [f"# Daily digest {digest['weekday']} {digest['date']}", "",
           f"{digest['timezone']}: {digest['start']} to {digest['end']}. Counts are scored mentions.", ""]
    for t in digest["topics"]:
        out += [f"## {t['topic']}", "",
                "| | |", "| --- | --- |",
                f"| Mentions | **{t['mentions']}**: {_volume_line(t)} |",
                f"| Sentiment | {_sentiment_line(t)} |",
                f"| Net sentiment | **{fmt_net(t['net_sentiment'])}**: {_net_line(t)} |",
                f"| Hours | `{sparkline(_day_hours(t, digest))}` |", ""]
        out += ["| day | mentions | negative | neutral | positive | net |", "| --- | ---: | ---: | ---: | ---: | ---: |"]
        out += [f"| {date.fromisoformat(d['date']).strftime('%a')} {d['date']} | {d['mentions']} | {d['negative']} | "
                f"{d['neutral']} | {d['positive']} | {fmt_net(d['net_sentiment'])} |" for d in t["daily"]]
        out.append("")
        if t["by_source"]:
            out += ["| source | mentions | share |", "| --- | ---: | ---: |"]
            out += [f"| {_md(r['source'])} | {r['mentions']} | {fmt_share(r['share'])} |" for r in t["by_source"]]
            out.append("")
        if t["by_language"]:
            out += ["| language | mentions | share |", "| --- | ---: | ---: |"]
            out += [f"| {r['language'] or 'unknown'} | {r['mentions']} | {fmt_share(r['share'])} |" for r in t["by_language"]]
            out.append("")
        if t["hashtags"]:
            out += ["| hashtag | mentions | previous day | change |", "| --- | ---: | ---: | ---: |"]
            out += [f"| \\#{_md(h['hashtag'])} | {h['mentions']} | {h['previous_day']} | "
                    f"{'**new**' if h['new'] else fmt_change(h['change'])} |" for h in t["hashtags"]]
            out.append("")
        for s in ("positive", "negative"):
            if t["most_engaged"][s]:
                out += [f"**Most engaged {s}**", ""]
                for i, e in enumerate(t["most_engaged"][s], 1):
                    meta = ", ".join(x for x in [e["author"] or "", e["source"], _engagement(e)] if x)
                    link = f" <{e['url']}>" if e["url"] else ""
                    out.append(f"{i}. {_md(e['text'])} ({_md(meta)}){link}")
                out.append("")
        if t["incidents"]:
            out += ["**Incidents**", ""] + [f"- {_md(_incident_line(i, tz))}" for i in t["incidents"]] + [""]
        if t["alerts"]:
            out += ["**Alerts**", ""] + [f"- {_md(_alert_line(a, tz))}" for a in t["alerts"]] + [""]
        if t["failing_sources"]:
            out += [f"Data may be incomplete: failing {', '.join(t['failing_sources'])}.", ""]
    if digest["other_alerts"]:
        out += ["## Other alerts", ""] + [f"- {_md(_alert_line(a, tz))}" for a in digest["other_alerts"]] + [""]
    if digest["failing_sources"]:
        out += ["## Failing sources", ""] + [f"- {_md(_failing_line(f, tz))}" for f in digest["failing_sources"]] + [""]
    out += ["-- listener", ""]
    return "\n".join(out)


# ---------------------------------------------------------------- charts
def chart_names(digest: dict) -> list[str]:
    return [f"{t['topic']}-{kind}" for t in digest["topics"] for kind in ("volume", "net")]


def render_charts(digest: dict, dpi: int = 200) -> dict[str, bytes]:
    """PNG charts per topic: `TOPIC-volume` (mentions per hour over 7 days, stacked by sentiment)
    and `TOPIC-net` (net sentiment per day). Drawn at 720 x 260 CSS pixels, `dpi` / 100 times sharper."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    tz = ZoneInfo(digest["timezone"])
    out: dict[str, bytes] = {}
    for t in digest["topics"]:
        hourly = t["hourly"]
        hours = [parse_iso(h) for h in hourly["hours"]]
        fig = Figure(figsize=(7.2, 2.6), dpi=100)
        ax = fig.add_subplot()
        x = list(range(len(hours)))
        bottom = [0] * len(hours)
        for s in SENTIMENTS:
            ax.bar(x, hourly[s], bottom=bottom, width=1.0, color=COLORS[s], label=s, linewidth=0)
            bottom = [b + v for b, v in zip(bottom, hourly[s])]
        day_start = next((i for i, h in enumerate(hourly["hours"]) if h >= digest["start"][:13]), 0)
        ax.axvspan(day_start - 0.5, len(hours) - 0.5, color="#eef2f7", linewidth=0, zorder=0)  # the digest's day
        ticks = [i for i, h in enumerate(hours) if h.astimezone(tz).hour == 0]
        ax.set_xticks(ticks, [hours[i].astimezone(tz).strftime("%a %d") for i in ticks])
        ax.set_xlim(-0.5, len(hours) - 0.5)
        ax.set_title(f"{t['topic']}: mentions per hour, last 7 days ({digest['timezone']})", loc="left", fontsize=10)
        ax.legend(loc="upper left", fontsize=8, frameon=False, ncols=3)
        ax.set_ylim(0, max(max(bottom, default=0) * 1.25, 1))
        _style(ax)
        out[f"{t['topic']}-volume"] = _png(FigureCanvasAgg(fig), fig, dpi)

        fig = Figure(figsize=(7.2, 2.6), dpi=100)
        ax = fig.add_subplot()
        labels = [date.fromisoformat(d["date"]).strftime("%a %d") for d in t["daily"]]
        values = [d["net_sentiment"] or 0.0 for d in t["daily"]]
        ax.bar(labels, values, color=[COLORS["positive"] if v >= 0 else COLORS["negative"] for v in values], width=0.6)
        for i, d in enumerate(t["daily"]):
            v = d["net_sentiment"]
            ax.annotate(fmt_net(v), (i, v or 0.0), textcoords="offset points", xytext=(0, 4 if (v or 0) >= 0 else -12),
                        ha="center", fontsize=8, color="#3e4c59")
        ax.axhline(0, color="#52606d", linewidth=0.8)
        ax.set_ylim(-1.1, 1.1)
        ax.set_title(f"{t['topic']}: net sentiment per day, (positive - negative) / (positive + negative)",
                     loc="left", fontsize=10)
        _style(ax)
        out[f"{t['topic']}-net"] = _png(FigureCanvasAgg(fig), fig, dpi)
    return out


def _style(ax) -> None:
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.tick_params(labelsize=8, colors="#52606d")
    ax.grid(axis="y", color="#e4e7eb", linewidth=0.6)
    ax.set_axisbelow(True)


def _png(canvas, fig, dpi: int) -> bytes:
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None})
    return buf.getvalue()


def data_uris(charts: Mapping[str, bytes]) -> dict[str, str]:
    """Chart name -> `data:image/png;base64,...` (an HTML file that stands on its own)."""
    return {name: "data:image/png;base64," + base64.b64encode(png).decode() for name, png in charts.items()}


def content_id(name: str, day: str) -> str:
    return f"{name}.{day}@listener"


# ---------------------------------------------------------------- HTML
def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


_CELL = "padding:4px 8px;border-bottom:1px solid #e4e7eb;"


def _table(head: Sequence[str], rows: Iterable[Sequence[str]], right_from: int = 1) -> str:
    """A small table; cells are already HTML."""
    th = "".join(f'<th align="{"right" if i >= right_from else "left"}" style="{_CELL}color:#52606d;font-weight:600;">'
                 f"{_e(h)}</th>" for i, h in enumerate(head))
    body = "".join("<tr>" + "".join(f'<td align="{"right" if i >= right_from else "left"}" style="{_CELL}">{c}</td>'
                                    for i, c in enumerate(r)) + "</tr>" for r in rows)
    return (f'<table role="presentation" cellspacing="0" cellpadding="0" style="border-collapse:collapse;font-size:13px;'
            f'width:100%;"><tr>{th}</tr>{body}</table>')


def _kpi(label: str, value: str, note: str) -> str:
    return (f'<td valign="top" width="33%" style="padding:10px 12px;background:#f5f7fa;border-radius:6px;">'
            f'<div style="font-size:12px;color:#52606d;">{_e(label)}</div>'
            f'<div style="font-size:24px;font-weight:700;color:#1f2933;">{_e(value)}</div>'
            f'<div style="font-size:12px;color:#52606d;">{note}</div></td>')


def _bar(t: dict) -> str:
    cells = "".join(f'<td width="{max(1, round(100 * t["sentiment_share"][s]))}%" style="background:{COLORS[s]};height:10px;'
                    f'font-size:0;line-height:0;">&nbsp;</td>' for s in SENTIMENTS if t["sentiment"][s])
    if not cells:
        cells = '<td style="background:#e4e7eb;height:10px;font-size:0;line-height:0;">&nbsp;</td>'
    legend = " &nbsp; ".join(f'<span style="color:{COLORS[s]};">&#9632;</span> {s} {t["sentiment"][s]} '
                             f'({fmt_share(t["sentiment_share"][s])})' for s in SENTIMENTS)
    return (f'<table role="presentation" width="100%" cellspacing="0" cellpadding="0" style="border-collapse:collapse;'
            f'margin:10px 0 4px;"><tr>{cells}</tr></table><div style="font-size:12px;color:#52606d;">{legend}</div>')


def _h3(text: str) -> str:
    return f'<h3 style="font-size:14px;margin:18px 0 6px;color:#1f2933;">{_e(text)}</h3>'


def _examples_html(items: list[dict], sentiment: str) -> str:
    lis = []
    for e in items:
        meta = ", ".join(x for x in [e["author"] or "", e["source"], _engagement(e)] if x)
        link = (f' <a href="{_e(e["url"])}" style="color:#1c64d9;">{_e(e["url"])}</a>' if e["url"] else "")
        lis.append(f'<li style="margin:0 0 8px;">{_e(e["text"])}<br><span style="font-size:12px;color:#52606d;">'
                   f"{_e(meta)}</span>{link}</li>")
    return (_h3(f"Most engaged {sentiment}") + f'<ol style="margin:0;padding-left:20px;font-size:13px;border-left:3px solid '
            f'{COLORS[sentiment]};">' + "".join(lis) + "</ol>")


def render_html(digest: dict, images: Mapping[str, str]) -> str:
    """The digest as an email-safe HTML page (tables, inline styles); `images` maps chart name -> img src
    (`cid:...` in the email, data: URIs in a file)."""
    tz = ZoneInfo(digest["timezone"])
    parts = [f'<h1 style="font-size:22px;margin:0 0 4px;">Daily digest {_e(digest["weekday"])} {_e(digest["date"])}</h1>'
             f'<div style="font-size:13px;color:#52606d;">{_e(digest["timezone"])}: {_e(digest["start"])} to '
             f'{_e(digest["end"])}. Counts are scored mentions.</div>']
    for t in digest["topics"]:
        name = t["topic"]
        parts.append(f'<h2 style="font-size:18px;margin:28px 0 10px;padding-top:14px;border-top:2px solid #e4e7eb;">'
                     f"{_e(name)}</h2>")
        neg_share = t["sentiment_share"]["negative"]
        parts.append('<table role="presentation" width="100%" cellspacing="8" cellpadding="0" style="margin:0 -8px;"><tr>'
                     + _kpi("Mentions", str(t["mentions"]),
                            f'{_e(fmt_change(t["change_vs_previous_day"]))} vs previous day ({t["previous_day"]})<br>'
                            f'{_e(fmt_change(t["change_vs_average_7d"]))} vs 7-day average ({t["average_7d"]:g})')
                     + _kpi("Net sentiment", fmt_net(t["net_sentiment"]),
                            f'{_e(fmt_net(t["net_sentiment_change"]))} vs previous day '
                            f'({_e(fmt_net(t["previous_net_sentiment"]))})')
                     + _kpi("Negative", fmt_share(neg_share), f'{t["sentiment"]["negative"]} of {t["mentions"]} mentions')
                     + "</tr></table>")
        parts.append(_bar(t))
        for kind, alt in (("volume", "mentions per hour over 7 days, by sentiment"), ("net", "net sentiment per day")):
            src = images.get(f"{name}-{kind}")
            if src:
                parts.append(f'<img src="{_e(src)}" alt="{_e(name)}: {alt}" width="720" '
                             f'style="display:block;width:100%;max-width:720px;height:auto;margin:14px 0 0;border:0;">')
        mix = []
        if t["by_source"]:
            mix.append(_h3("Sources") + _table(["source", "mentions", "share"], [
                [_e(r["source"]), str(r["mentions"]), fmt_share(r["share"])] for r in t["by_source"]]))
        if t["by_language"]:
            mix.append(_h3("Languages") + _table(["language", "mentions", "share"], [
                [_e(r["language"] or "unknown"), str(r["mentions"]), fmt_share(r["share"])] for r in t["by_language"]]))
        if mix:
            parts.append('<table role="presentation" width="100%" cellspacing="0" cellpadding="0"><tr>'
                         + "".join(f'<td valign="top" width="50%" style="padding-right:12px;">{m}</td>' for m in mix)
                         + "</tr></table>")
        if t["hashtags"]:
            new_badge = ('<span style="background:#7c3aed;color:#fff;border-radius:3px;padding:1px 5px;font-size:11px;'
                         'font-weight:700;">NEW</span>')
            parts.append(_h3("Hashtags") + _table(["hashtag", "mentions", "previous day", "change"], [
                [f"#{_e(h['hashtag'])}", str(h["mentions"]), str(h["previous_day"]),
                 new_badge if h["new"] else _e(fmt_change(h["change"]))] for h in t["hashtags"]]))
        for s in ("positive", "negative"):
            if t["most_engaged"][s]:
                parts.append(_examples_html(t["most_engaged"][s], s))
        if t["incidents"]:
            parts.append(_h3("Incidents") + '<ul style="margin:0;padding-left:20px;font-size:13px;">'
                         + "".join(f"<li>{_e(_incident_line(i, tz))}</li>" for i in t["incidents"]) + "</ul>")
        if t["alerts"]:
            parts.append(_h3("Alerts") + '<ul style="margin:0;padding-left:20px;font-size:13px;">'
                         + "".join(f"<li>{_e(_alert_line(a, tz))}</li>" for a in t["alerts"]) + "</ul>")
        if t["failing_sources"]:
            parts.append(f'<p style="font-size:13px;color:#8d2b0b;background:#fff4e5;padding:6px 10px;border-radius:4px;">'
                         f'Data may be incomplete: failing {_e(", ".join(t["failing_sources"]))}.</p>')
    if digest["other_alerts"]:
        parts.append('<h2 style="font-size:18px;margin:28px 0 10px;">Other alerts</h2><ul style="font-size:13px;">'
                     + "".join(f"<li>{_e(_alert_line(a, tz))}</li>" for a in digest["other_alerts"]) + "</ul>")
    if digest["failing_sources"]:
        parts.append('<h2 style="font-size:18px;margin:28px 0 10px;">Failing sources</h2><ul style="font-size:13px;">'
                     + "".join(f"<li>{_e(_failing_line(f, tz))}</li>" for f in digest["failing_sources"]) + "</ul>")
    parts.append('<p style="font-size:12px;color:#7b8794;margin-top:28px;">-- listener</p>')
    return ('<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<title>Daily digest {_e(digest["date"])}</title></head>'
            '<body style="margin:0;padding:0;background:#eef1f4;">'
            '<table role="presentation" width="100%" cellspacing="0" cellpadding="0" style="background:#eef1f4;"><tr>'
            '<td align="center" style="padding:24px 12px;">'
            '<table role="presentation" width="760" cellspacing="0" cellpadding="0" style="width:100%;max-width:760px;'
            'background:#ffffff;border-radius:8px;"><tr><td style="padding:24px 20px;font-family:-apple-system,'
            "'Segoe UI',Roboto,Helvetica,Arial,sans-serif;color:#1f2933;font-size:14px;line-height:1.45;\">"
            + "".join(parts) + "</td></tr></table></td></tr></table></body></html>\n")


# ---------------------------------------------------------------- the email
def message_id(day: date, recipients: Sequence[str], topics: Sequence[str]) -> str:
    """Fixed per (day, recipient list, topics): `<digest-2026-11-21.1a2b3c4d5e@listener>`."""
    key = ",".join(sorted(recipients)) + "|" + ",".join(sorted(topics))
    return f"<digest-{day.isoformat()}.{hashlib.sha1(key.encode()).hexdigest()[:10]}@listener>"


def _recipients(config: Config) -> list[str]:
    if config.email is None:
        raise ListenerError("no [email] section in the config: add one (from, to, host) to mail the digest")
    recipients = list(config.digest.to or config.email.to)
    if not recipients:
        raise ListenerError("no recipients for the digest: set [digest] to or [email] to")
    return recipients


def _topics(config: Config, topics: Sequence[str] | None) -> list[str]:
    return list(topics or config.digest.topics or [t.name for t in config.topics])


def queue_digest(config: Config, store: Store, day: date, now: datetime,
                 topics: Sequence[str] | None = None) -> tuple[str, bool]:
    """Queue the day's digest email (HTML with inline charts, Markdown as plain text) in one transaction.

    Returns (message id, queued); queued is False when the outbox already has this digest.
    """
    recipients = _recipients(config)
    names = _topics(config, topics)
    mid = message_id(day, recipients, names)
    if store.outbox_has(mid):
        return mid, False
    digest = build_digest(store, config, day, names)
    charts = render_charts(digest)
    cids = {name: content_id(name, digest["date"]) for name in charts}
    body_html = render_html(digest, {name: f"cid:{cid}" for name, cid in cids.items()})
    payload = {"images": [{"cid": cids[name], "data": base64.b64encode(png).decode()} for name, png in charts.items()]}
    with store.transaction():
        queued = store.enqueue(message_id=mid, channel="email", kind="digest", recipients=recipients,
                               subject=subject(config, digest), body_text=render_markdown(digest),
                               body_html=body_html, payload=payload, now=now)
    return mid, queued


@dataclass(frozen=True)
class SendResult:
    message_id: str
    queued: bool  # False: this digest was already in the outbox
    sent_at: str | None  # when it was delivered (now or before), None while still queued
    error: str | None  # the last delivery error while it is still queued


def send_digest(config: Config, store: Store, day: date, now: datetime,
                topics: Sequence[str] | None = None) -> SendResult:
    """`listener digest --send`: queue the digest (once) and deliver the outbox now."""
    from listener.notify import deliver

    mid, queued = queue_digest(config, store, day, now, topics)
    deliver(config, store, now)
    status = store.outbox_status(mid) or {}
    return SendResult(mid, queued, status.get("sent_at"), status.get("last_error"))


def send_digest_if_due(config: Config, store: Store, now: datetime) -> bool:
    """The daemon's job (run it every minute): queue yesterday's digest once `[digest] at` has passed.

    True when it queued one. Nothing when the digest is disabled or there is no [email]; never
    twice for the same day and recipients (the outbox has its message id), also after a restart.
    A run missed at `at` is made up later the same day; a day that has passed is not sent late.
    A day on which nothing was collected (no fetch, no mention stored: listener was not installed
    or not running) gets no digest, rather than an empty one.
    """
    d = config.digest
    if not d.enabled or config.email is None or not (d.to or config.email.to) or not _topics(config, None):
        return False
    local = now.astimezone(d.tzinfo)
    if local.time() < d.at:
        return False
    day = local.date() - timedelta(days=1)
    if not store.collected_between(*day_bounds(day, d.tzinfo)):
        return False  # listener was not running that day (a fresh install): nothing to report on
    return queue_digest(config, store, day, now)[1]

"""The digest in a terminal (rich): tables, a sentiment bar, daily bars and an hourly sparkline."""

from __future__ import annotations

import io
from datetime import date
from zoneinfo import ZoneInfo

from rich.text import Text

from listener.digest.figures import COLORS, SENTIMENTS
from listener.alerts.wording import mention_meta
from listener.digest.format import (alert_line, day_hours, failing_line, fmt_change, fmt_net,
                                    fmt_share, incident_line, net_line, sentiment_line, sparkline,
                                    volume_line)


def print_text(digest: dict, console) -> None:
    """Print the digest to a rich console: tables, a sentiment bar, daily bars and an hourly sparkline."""
    from rich.table import Table

    from listener.terminal import styled

    tz = ZoneInfo(digest["timezone"])
    console.print(styled(f"Daily digest {digest['weekday']} {digest['date']}", style="bold"))
    console.print(styled(f"{digest['timezone']}: {digest['start']} to {digest['end']}. Counts are scored mentions.",
                       style="dim"))
    for t in digest["topics"]:
        console.print()
        console.rule(Text(t["topic"], style="bold"), align="left")
        head = Table.grid(padding=(0, 2))
        head.add_row("Mentions", Text(str(t["mentions"]), style="bold"), volume_line(t))
        bar = Text()
        width = 24
        for s, mark in zip(SENTIMENTS, "-=+"):
            cells = round(t["sentiment_share"][s] * width)
            bar.append(mark * cells, style=f"{COLORS[s]}")
        head.add_row("Sentiment", bar, sentiment_line(t))
        head.add_row("Net sentiment", styled(fmt_net(t["net_sentiment"]), style="bold"), net_line(t))
        head.add_row("Hours", Text(sparkline(day_hours(t, digest)), style="cyan"), "mentions per hour, 00:00 to 24:00 local")
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
                    meta = mention_meta(e, none="no engagement")
                    console.print(styled(f"     ({meta}) {e['url'] or ''}".rstrip(), style="dim"))
        _section(console, "Incidents:", [incident_line(i, tz) for i in t["incidents"]])
        _section(console, "Alerts:", [alert_line(a, tz) for a in t["alerts"]])
        if t["failing_sources"]:
            console.print()
            console.print(Text("Data may be incomplete: failing " + ", ".join(t["failing_sources"]), style="yellow"))
    _section(console, "Other alerts:", [alert_line(a, tz) for a in digest["other_alerts"]])
    _section(console, "Failing sources:", [failing_line(f, tz) for f in digest["failing_sources"]], "bold yellow")


def _section(console, heading: str, lines: list[str], style: str = "bold") -> None:
    """A headed list of lines (data: shown as typed), after a blank line; nothing when it is empty."""
    if lines:
        console.print()
        console.print(Text(heading, style=style))
        for line in lines:
            console.print(f"  {line}", highlight=False)


def render_text(digest: dict, width: int = 100) -> str:
    """The text rendering without colours (what `print_text` shows, as a string)."""
    from listener.terminal import console

    buf = io.StringIO()
    print_text(digest, console(file=buf, width=width))
    return buf.getvalue()

"""The digest as Markdown (the plain-text part of its mail)."""

from __future__ import annotations

from datetime import date
from zoneinfo import ZoneInfo

from listener.alerts.wording import mention_meta
from listener.digest.format import (alert_line, day_hours, failing_line, fmt_change, fmt_net,
                                    fmt_share, incident_line, net_line, sentiment_line, sparkline,
                                    volume_line)
from listener.sources.text import clean_text


def _md(text: str) -> str:
    """Escape what would break a Markdown table or turn into markup; one line (a newline in an
    author or a post must not start a line of its own)."""
    out = " ".join(clean_text(text).split()).replace("\\", "\\\\").replace("|", "\\|")
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
                f"| Mentions | **{t['mentions']}**: {volume_line(t)} |",
                f"| Sentiment | {sentiment_line(t)} |",
                f"| Net sentiment | **{fmt_net(t['net_sentiment'])}**: {net_line(t)} |",
                f"| Hours | `{sparkline(day_hours(t, digest))}` |", ""]
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
                    meta = mention_meta(e, none="no engagement")
                    link = f" <{e['url']}>" if e["url"] else ""
                    out.append(f"{i}. {_md(e['text'])} ({_md(meta)}){link}")
                out.append("")
        if t["incidents"]:
            out += ["**Incidents**", ""] + [f"- {_md(incident_line(i, tz))}" for i in t["incidents"]] + [""]
        if t["alerts"]:
            out += ["**Alerts**", ""] + [f"- {_md(alert_line(a, tz))}" for a in t["alerts"]] + [""]
        if t["failing_sources"]:
            out += [f"Data may be incomplete: failing {', '.join(t['failing_sources'])}.", ""]
    if digest["other_alerts"]:
        out += ["## Other alerts", ""] + [f"- {_md(alert_line(a, tz))}" for a in digest["other_alerts"]] + [""]
    if digest["failing_sources"]:
        out += ["## Failing sources", ""] + [f"- {_md(failing_line(f, tz))}" for f in digest["failing_sources"]] + [""]
    out += ["-- listener", ""]
    return "\n".join(out)

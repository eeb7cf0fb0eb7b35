"""The digest as one HTML page (the mail's HTML part, or a page on its own with the charts inlined)."""

from __future__ import annotations

import html
from typing import Iterable, Mapping, Sequence
from zoneinfo import ZoneInfo

from listener.digest.figures import COLORS, SENTIMENTS
from listener.alerts.wording import mention_meta
from listener.digest.format import (alert_line, failing_line, fmt_change, fmt_net, fmt_share,
                                    incident_line)


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
        meta = mention_meta(e, none="no engagement")
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
                         + "".join(f"<li>{_e(incident_line(i, tz))}</li>" for i in t["incidents"]) + "</ul>")
        if t["alerts"]:
            parts.append(_h3("Alerts") + '<ul style="margin:0;padding-left:20px;font-size:13px;">'
                         + "".join(f"<li>{_e(alert_line(a, tz))}</li>" for a in t["alerts"]) + "</ul>")
        if t["failing_sources"]:
            parts.append(f'<p style="font-size:13px;color:#8d2b0b;background:#fff4e5;padding:6px 10px;border-radius:4px;">'
                         f'Data may be incomplete: failing {_e(", ".join(t["failing_sources"]))}.</p>')
    if digest["other_alerts"]:
        parts.append('<h2 style="font-size:18px;margin:28px 0 10px;">Other alerts</h2><ul style="font-size:13px;">'
                     + "".join(f"<li>{_e(alert_line(a, tz))}</li>" for a in digest["other_alerts"]) + "</ul>")
    if digest["failing_sources"]:
        parts.append('<h2 style="font-size:18px;margin:28px 0 10px;">Failing sources</h2><ul style="font-size:13px;">'
                     + "".join(f"<li>{_e(failing_line(f, tz))}</li>" for f in digest["failing_sources"]) + "</ul>")
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

"""Alert messages a PR person reads: the subject and first lines in plain words, times in the
digest's time zone with the zone named, then the examples with links, then the statistics.

Everything here only renders: text from posts is data (escaped in HTML, never markup), and the
outbox rows are written by the engine in the same transaction as the state change.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Mapping

from listener.alerts.incidents import Member, Notice, member_key
from listener.alerts.kinds import AlertKind, Observation
from listener.alerts.machine import RuleSpec, Transition, label_order
from listener.notify.message_ids import alert_message_id
from listener.alerts.wording import duration_words, fmt_rate, local_time, mention_meta
from listener.config import Config
from listener.store import parse_iso
from listener.sources.text import is_web_url

STATE_WORD = {"firing": "FIRING", "update": "UPDATE", "repeat": "FIRING", "resolved": "RESOLVED"}
SEVERITY_ORDER = ("info", "warning", "critical")
NEW_HASHTAG_WITHIN = timedelta(days=1)  # "the hashtag was unknown until ..." when first seen this recently


@dataclass(frozen=True)
class Message:
    subject: str  # one line, whatever a hashtag or a summary in it holds
    text: str
    html: str
    payload: dict  # the webhook JSON, less `text`

    def __post_init__(self) -> None:
        object.__setattr__(self, "subject", " ".join(self.subject.split()))


def describe(labels: Mapping[str, str], kind: str = "") -> str:
    """`#mcdstories (mcdonalds)`, `(acme)`, `source news-nl`, or `k=v, ...`."""
    if kind == "source_down":
        return f"source {labels.get('source')}"
    if "hashtag" in labels:
        return f"#{labels['hashtag']} ({labels.get('topic')})"
    if set(labels) == {"topic"}:
        return f"({labels['topic']})"
    return ", ".join(f"{k}={v}" for k, v in sorted(labels.items(), key=label_order))


def _link(example: dict) -> str | None:
    """An example's URL when it may be a link (http or https: never `javascript:`, whatever is stored)."""
    url = example.get("url")
    return url if is_web_url(url) else None


def escape(text: str) -> str:
    return html.escape(text, quote=True)


# ---------------------------------------------------------------- incidents
def headline(lead: Mapping, tz, now: datetime) -> str:
    """The lead alert in plain words: `#tag (topic): 38 posts in the last hour, 68% negative; ...`."""
    labels, details, summary = lead["labels"], lead.get("details") or {}, lead.get("summary") or ""
    text = f"{_name(labels)}: {summary}" if summary else _name(labels)
    first = parse_iso(details.get("first_seen"))
    if lead["kind"] == "backlash" and first and now - first <= NEW_HASHTAG_WITHIN:
        text += f"; the hashtag was unknown until {local_time(first, tz, now=now)}"
    return text


def incident_message(config: Config, notice: Notice, specs: Mapping[str, RuleSpec], kinds: Mapping[str, AlertKind],
                     examples: list[dict]) -> Message:
    incident, tz, now = notice.incident, config.digest.tzinfo, notice.at
    prefix = config.email.subject_prefix if config.email else "[listener]"
    lead = incident.lead or {}
    title = headline(lead, tz, now)
    if notice.state == "update":
        lead_key = member_key(lead.get("rule", ""), lead.get("labels") or {})
        grown = [f"#{m.hashtag}" if m.hashtag else m.rule for m in notice.new if m.key != lead_key]
        subject = f"{prefix} UPDATE {title}" + (f"; now also {', '.join(grown)}" if grown else "")
    elif notice.state == "resolved":
        lasted = duration_words(now - incident.opened_at)
        subject = (f"{prefix} RESOLVED {_name(lead.get('labels') or {'topic': incident.topic})}: quiet again after {lasted}"
                   + (f"; peak {fmt_rate(incident.peak)} mentions/h" if incident.peak else ""))
    else:
        subject = f"{prefix} {STATE_WORD[notice.state]} {title}"
    opened = local_time(incident.opened_at, tz, with_day=True)
    lines = [subject.removeprefix(prefix).strip(), ""]
    if notice.state == "resolved":
        lines.append(f"The incident that opened {opened} is over: none of its alerts has fired for a while "
                     f"(closed {local_time(now, tz, now=now)}).")
        if incident.peak:
            lines.append(f"At its peak ({local_time(incident.peak_at, tz, now=now)}): {fmt_rate(incident.peak)} "
                         "mentions an hour.")
    else:
        lines.append(f"Since {opened}; this message {local_time(now, tz, now=now)}.")
    if incident.hashtags:
        lines.append("Hashtags involved: " + ", ".join(f"#{h}" for h in incident.hashtags) + ".")
    agreeing = _agreeing(notice.members) if notice.members else [", ".join(incident.rules)]
    lines.append("Rules that agree: " + "; ".join(agreeing) + ".")
    member_specs = [specs[r] for r in incident.rules if r in specs]
    severity = max((s.severity for s in member_specs), key=SEVERITY_ORDER.index, default="warning")
    rule_labels = {k: v for s in member_specs for k, v in s.labels.items()}
    lines.append(f"Severity: {severity}." + (" Labels: " + ", ".join(f"{k}={v}" for k, v in rule_labels.items())
                                             if rule_labels else ""))
    heading = "Most engaged negative mentions:" if lead.get("kind") in ("backlash", "negative_spike") else "Examples:"
    numbers = []
    for m in notice.members:
        kind = kinds.get(m.rule)
        explained = kind.explain(Observation(m.labels, True, None, m.summary, m.details)) if kind and m.details else []
        numbers.append((f"{m.rule} {describe(m.labels)}" + (" (inhibited by the backlash)" if m.inhibited else ""),
                        explained))
    text, body = _bodies(lines, heading, examples, numbers)
    payload = {"incident": incident.id, "state": notice.state, "topic": incident.topic,
               "hashtags": list(incident.hashtags), "rules": list(incident.rules), "severity": severity,
               "summary": lead.get("summary"), "labels": lead.get("labels"),
               "details": json.loads(json.dumps(lead.get("details") or {}, default=str)),
               "links": [_link(e) for e in examples if _link(e)]}
    return Message(subject, text, body, payload)


def _name(labels: Mapping[str, str]) -> str:
    """`acme` for the topic itself, `#tag (acme)` for a hashtag of it."""
    return labels["topic"] if set(labels) == {"topic"} else describe(labels)




def _agreeing(members: tuple[Member, ...]) -> list[str]:
    """`hijack (backlash) on #tag`, `volume (volume_spike) on acme, inhibited by the backlash`."""
    out = []
    for m in members:
        what = f"#{m.hashtag}" if m.hashtag else m.labels.get("topic", "")
        kind = "" if m.rule == m.kind else f" ({m.kind})"
        out.append(f"{m.rule}{kind}" + (f" on {what}" if what else "") + (", inhibited by the backlash" if m.inhibited else ""))
    return out


# ---------------------------------------------------------------- alerts outside incidents
def instance_message(config: Config, spec: RuleSpec, kind: AlertKind | None, t: Transition, examples: list[dict]) -> Message:
    """A source-down notice, or an alert of a rule without a topic (sql)."""
    prefix = config.email.subject_prefix if config.email else "[listener]"
    tz = config.digest.tzinfo
    word = STATE_WORD.get(t.state, t.state.upper())
    if spec.kind == "source_down":
        what = "failing" if t.state != "resolved" else "fetching again"
        subject = f"{prefix} {word} source down: {t.labels.get('source')} {what}"
        explained = [f"The source {t.labels.get('source')} failed its last fetches: {t.details.get('error', '')}",
                     "Alerts on the topics it feeds are held (a gap in the data is not a quiet period) until it recovers."]
    else:
        subject = f"{prefix} {word} {spec.name} {describe(t.labels, spec.kind)}" + (f": {t.summary}" if t.summary else "")
        explained = kind.explain(Observation(t.labels, True, t.value, t.summary, t.details)) if kind and t.details else []
    lines = [subject.removeprefix(prefix).strip(), "", f"This message {local_time(t.at, tz, with_day=True)}.",
             f"Severity: {spec.severity}."]
    text, body = _bodies(lines, "Examples:", examples, [(spec.name, explained)])
    payload = {"rule": spec.name, "state": t.state, "labels": t.labels, "severity": spec.severity,
               "summary": t.summary, "details": json.loads(json.dumps(t.details, default=str)),
               "links": [_link(e) for e in examples if _link(e)]}
    return Message(subject, text, body, payload)


# ---------------------------------------------------------------- shared parts
def _bodies(lines: list[str], heading: str, examples: list[dict], numbers: list[tuple[str, list[str]]]) -> tuple[str, str]:
    """Plain-text and HTML bodies: the plain-words lines, the examples, then the numbers."""
    text = list(lines)
    html_parts = [f"<h2>{escape(lines[0])}</h2>", "<p>" + "<br>".join(escape(x) for x in lines[2:]) + "</p>"]
    if examples:
        text += ["", heading]
        items = []
        for i, e in enumerate(examples, 1):
            meta = mention_meta(e, e.get("sentiment") or "unscored")
            body = " ".join((e.get("text") or e.get("title") or "").split())[:280]
            text.append(f"{i}. {body}")
            url = _link(e)
            text.append(f"   ({meta}) {url or ''}".rstrip())
            link = f' <a href="{escape(url)}">{escape(url)}</a>' if url else ""
            items.append(f"<li>{escape(body)}<br><small>{escape(meta)}</small>{link}</li>")
        html_parts += [f"<h3>{escape(heading)}</h3>", "<ol>" + "".join(items) + "</ol>"]
    shown = [(name, explained) for name, explained in numbers if explained]
    if shown:
        text += ["", "The numbers:"]
        html_parts.append("<h3>The numbers</h3>")
        for name, explained in shown:
            text += [f"- {name}:"] + [f"  {x}" for x in explained]
            html_parts.append(f"<p><b>{escape(name)}</b><br>" + "<br>".join(escape(x) for x in explained) + "</p>")
    text += ["", "-- listener"]
    return "\n".join(text) + "\n", "<html><body>" + "".join(html_parts) + "<p>-- listener</p></body></html>"


def slack_escape(text: str) -> str:
    """Slack-style chat text: `&`, `<` and `>` escaped, so a post's `<!channel>` or `<url|label>` stays text."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def outbox_rows(config: Config, channels: tuple[str, ...], message: Message, kind: str, identity: tuple[str, ...],
                now: datetime) -> list[dict]:
    """One outbox row per channel (no [email] section: email is skipped, the alert is only recorded)."""
    rows = []
    for channel in dict.fromkeys(channels):
        mid = alert_message_id(identity, now, channel)
        if channel == "email":
            if config.email is None:
                continue
            rows.append({"message_id": mid, "channel": "email", "kind": kind, "recipients": list(config.email.to),
                         "subject": message.subject, "body_text": message.text, "body_html": message.html,
                         "payload": None, "now": now})
        else:  # a [[webhooks]] name (the config checks it exists)
            payload = {"text": slack_escape(f"{message.subject}\n{message.text}")[:3500], **message.payload}
            rows.append({"message_id": mid, "channel": f"webhook:{channel}", "kind": kind, "recipients": [],
                         "subject": message.subject, "body_text": message.text, "body_html": None,
                         "payload": payload, "now": now})
    return rows

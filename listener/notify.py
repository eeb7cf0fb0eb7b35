"""Notifications: render alerts, queue them in the outbox, deliver the outbox by email (SMTP).

A notification is written to the `outbox` table in the same transaction as the state change that
caused it. `deliver` sends what is due, with retries and exponential backoff (30 s doubling up to
5 minutes, for as long as it takes: an SMTP outage loses nothing). Each message carries a fixed
Message-ID, so a message re-sent after a crash is the same message.
"""

from __future__ import annotations

import email.policy
import json
import smtplib
import socket
import ssl
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from typing import TYPE_CHECKING

from listener.config import Config, EmailConfig, resolve_secret
from listener.errors import ListenerError
from listener.store import Store

if TYPE_CHECKING:  # pragma: no cover
    from listener.alerts import Observation, RuleSpec

RETRY_FIRST = timedelta(seconds=30)
RETRY_MAX = timedelta(minutes=5)
STATE_WORD = {"firing": "FIRING", "resolved": "RESOLVED", "repeat": "FIRING", "pending": "PENDING"}


class DeliveryError(ListenerError):
    """A notification could not be delivered now; it stays queued and is retried."""


# ---------------------------------------------------------------- rendering
def alert_subject(config: Config, spec: "RuleSpec", obs: "Observation", state: str) -> str:
    from listener.alerts import describe

    prefix = config.email.subject_prefix if config.email else "[listener]"
    if spec.kind == "source_down":
        what = "failing" if state != "resolved" else "fetching again"
        return f"{prefix} {STATE_WORD[state]} source down: {obs.labels.get('source')} {what}"
    summary = f": {obs.summary}" if obs.summary else ""
    return f"{prefix} {STATE_WORD[state]} {spec.name} {describe(spec, obs.labels)}{summary}"


def _explain(spec: "RuleSpec", obs: "Observation") -> list[str]:
    """The numbers behind an alert, one sentence a line."""
    d = obs.details
    lines = []
    if spec.kind == "source_down":
        return [f"The source {obs.labels.get('source')} failed its last fetches: {d.get('error', '')}",
                "Alerts on the topics it feeds are held (a gap in the data is not a quiet period) until it recovers."]
    if "count" in d and "window" in d:
        lines.append(f"Mentions in the last {d['window']}: {d['count']}.")
    if "expected" in d:
        usual = f"{d['expected']:g}"
        lines.append(f"Usual for this time of day: {usual} (median of the same window on each earlier day: "
                     f"{', '.join(f'{s:g}' for s in d.get('baseline_samples', []))}).")
        if d.get("new_hashtag"):
            lines.append(f"The hashtag is new (no history): compared with a floor of {d.get('floor', 1):g}.")
        lines.append(f"Ratio: {d.get('ratio', 0):g}x usual; Poisson test p = {d.get('poisson_p', 1):.2g}.")
    if "usual_negative_share" in d:
        lines.append(f"Negative: {100 * d.get('negative_share', 0):.0f}% (usual for the topic: "
                     f"{100 * d['usual_negative_share']:.0f}%); binomial test p = {d.get('binomial_p', 1):.2g}.")
    if "query" in d:
        lines.append(f"Query: {d['query']}")
    if "row" in d:
        lines.append("Row: " + ", ".join(f"{k} = {v}" for k, v in d["row"].items()))
    return lines


def alert_bodies(spec: "RuleSpec", obs: "Observation", state: str, examples: list[dict], *,
                 now: datetime, active_since: datetime) -> tuple[str, str]:
    """Plain-text and HTML bodies of an alert notification."""
    from listener.alerts import describe, escape

    title = f"{STATE_WORD[state]}: {spec.name} on {describe(spec, obs.labels)}"
    if state == "resolved":
        title += " has resolved"
    when = [f"Condition true since {active_since:%Y-%m-%d %H:%M} UTC; this notice {now:%Y-%m-%d %H:%M} UTC.",
            f"Severity: {spec.severity}." + (" Labels: " + ", ".join(f"{k}={v}" for k, v in spec.labels.items())
                                             if spec.labels else "")]
    lines = [title, "", *_explain(spec, obs), "", *when]
    html_parts = [f"<h2>{escape(title)}</h2>", "<p>" + "<br>".join(escape(x) for x in _explain(spec, obs)) + "</p>",
                  "<p>" + "<br>".join(escape(x) for x in when) + "</p>"]
    if examples:
        heading = "Most engaged negative mentions:" if spec.kind in ("backlash", "negative_spike") else "Examples:"
        lines += ["", heading]
        items = []
        for i, e in enumerate(examples, 1):
            meta = ", ".join(x for x in [e.get("author") or "", e.get("source") or "",
                                         _engagement(e), f"{e.get('sentiment') or 'unscored'}"] if x)
            text = " ".join((e.get("text") or e.get("title") or "").split())[:280]
            lines.append(f"{i}. {text}")
            lines.append(f"   ({meta}) {e.get('url') or ''}".rstrip())
            link = f' <a href="{escape(e["url"])}">{escape(e["url"])}</a>' if e.get("url") else ""
            items.append(f"<li>{escape(text)}<br><small>{escape(meta)}</small>{link}</li>")
        html_parts += [f"<h3>{escape(heading)}</h3>", "<ol>" + "".join(items) + "</ol>"]
    lines += ["", "-- listener"]
    body_html = "<html><body>" + "".join(html_parts) + "<p>-- listener</p></body></html>"
    return "\n".join(lines) + "\n", body_html


def _engagement(e: dict) -> str:
    parts = [f"{e[k]} {k}" for k in ("likes", "reposts", "replies") if e.get(k)]
    if e.get("score"):
        parts.append(f"score {e['score']}")
    return ", ".join(parts)


def alert_examples(store: Store, spec: "RuleSpec", obs: "Observation", now: datetime, window: timedelta) -> list[dict]:
    d = obs.details
    if spec.kind == "source_down" or not spec.topic:
        return []
    if spec.kind == "keyword":
        ids = d.get("mention_ids") or []
        return store.examples(None, now - window, now, sentiment=None, ids=ids, limit=5) if ids else []
    sentiment = None if spec.kind == "volume_spike" else "negative"
    return store.examples(spec.topic, now - window, now, sentiment=sentiment, hashtag=obs.labels.get("hashtag"), limit=5)


def queue_alert(store: Store, config: Config, spec: "RuleSpec", obs: "Observation", state: str, now: datetime, *,
                active_since: datetime) -> int:
    """Queue an alert notification on each of the rule's channels; returns how many were queued."""
    from listener.alerts import message_id

    rule = next((r for r in config.alerts if r.name == spec.name), None)
    window = rule.window if rule else timedelta(hours=1)
    examples = alert_examples(store, spec, obs, now, window) if state != "resolved" else []
    subject = alert_subject(config, spec, obs, state)
    text, body_html = alert_bodies(spec, obs, state, examples, now=now, active_since=active_since)
    queued = 0
    for channel in spec.channels:
        kind = "source_down" if spec.kind == "source_down" else "alert"
        mid = message_id(spec.name, obs.labels, state, now, channel)
        if channel == "email":
            if config.email is None:
                continue  # no [email] section: alerts are only recorded (listener alerts shows them)
            queued += store.enqueue(message_id=mid, channel="email", kind=kind, recipients=list(config.email.to),
                                    subject=subject, body_text=text, body_html=body_html, payload=None, now=now)
        else:  # a [[webhooks]] name (the config checks it exists)
            payload = {"text": f"{subject}\n{text}"[:3500], "rule": spec.name, "state": state,
                       "labels": obs.labels, "severity": spec.severity, "summary": obs.summary,
                       "details": json.loads(json.dumps(obs.details, default=str)),
                       "links": [e["url"] for e in examples if e.get("url")]}
            queued += store.enqueue(message_id=mid, channel=f"webhook:{channel}", kind=kind, recipients=[],
                                    subject=subject, body_text=text, body_html=None, payload=payload, now=now)
    return queued


# ---------------------------------------------------------------- delivery
MAIL_POLICY = email.policy.SMTP.clone(max_line_length=998)  # RFC 5322's limit: subjects stay on one line


def build_email(email: EmailConfig, row: dict) -> EmailMessage:
    msg = EmailMessage(policy=MAIL_POLICY)
    msg["From"] = email.sender
    msg["To"] = ", ".join(row["recipients"])
    msg["Subject"] = row["subject"]
    msg["Message-ID"] = row["message_id"]
    msg["Date"] = format_datetime(datetime.fromisoformat(row["created_at"].replace("Z", "+00:00")))
    msg["X-Listener-Kind"] = row["kind"]
    msg.set_content(row["body_text"])
    if row.get("body_html"):
        msg.add_alternative(row["body_html"], subtype="html")
        for image in (row.get("payload") or {}).get("images", []):  # inline charts (cid:...)
            import base64

            msg.get_payload()[1].add_related(base64.b64decode(image["data"]), maintype="image", subtype="png",
                                             cid=f"<{image['cid']}>")
    return msg


def smtp_connect(email: EmailConfig) -> smtplib.SMTP:
    timeout = email.timeout.total_seconds()
    try:
        if email.security == "ssl":
            conn: smtplib.SMTP = smtplib.SMTP_SSL(email.host, email.port, timeout=timeout,
                                                  context=ssl.create_default_context())
        else:
            conn = smtplib.SMTP(email.host, email.port, timeout=timeout)
            if email.security == "starttls":
                conn.starttls(context=ssl.create_default_context())
        if email.username_env and email.password_env:
            try:
                conn.login(resolve_secret("email.username_env", email.username_env),
                           resolve_secret("email.password_env", email.password_env))
            except smtplib.SMTPAuthenticationError as exc:
                conn.close()
                raise DeliveryError(f"SMTP server {email.host}:{email.port} refused the login of "
                                    f"${email.username_env}: ({exc.smtp_code}) {_one_line(exc.smtp_error.decode(errors='replace'))}"
                                    ) from None
        return conn
    except (OSError, smtplib.SMTPException) as exc:
        raise DeliveryError(f"cannot reach SMTP server {email.host}:{email.port}: {_one_line(exc)}") from exc


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def post_webhook(config: Config, row: dict) -> None:
    """POST a queued webhook notification; DeliveryError (retried later) unless the answer is 2xx."""
    import httpx

    name = row["channel"].split(":", 1)[1]
    try:
        hook = config.webhook(name)
    except KeyError:
        raise DeliveryError(f"webhook {name!r} is no longer in the config") from None
    url = resolve_secret(f"webhooks.{name}.url_env", hook.url_env)
    try:
        response = httpx.post(url, json=row["payload"], timeout=hook.timeout.total_seconds(),
                              headers={"User-Agent": "listener", "Idempotency-Key": row["message_id"]})
    except httpx.HTTPError as exc:
        raise DeliveryError(f"webhook {name}: {type(exc).__name__}: {_one_line(exc)}") from exc
    if not 200 <= response.status_code < 300:
        raise DeliveryError(f"webhook {name}: HTTP {response.status_code}")


def retry_delay(attempts: int) -> timedelta:
    """30 s, 1 min, 2 min, 4 min, then every 5 minutes."""
    return min(RETRY_FIRST * (2 ** max(attempts, 0)), RETRY_MAX)


def deliver(config: Config, store: Store, now: datetime) -> tuple[int, int]:
    """Send every due notification; returns (sent, failed). Failures stay queued with a retry time."""
    due = store.due_notifications(now)
    if not due:
        return 0, 0
    sent = failed = 0
    for r in (r for r in due if r["channel"].startswith("webhook:")):
        try:
            post_webhook(config, r)
        except ListenerError as exc:  # DeliveryError, or the URL's variable is not set
            failed += 1
            store.mark_failed(r["id"], str(exc), now + retry_delay(r["attempts"]))
        else:
            sent += 1
            store.mark_sent(r["id"], now)
    email_rows = [r for r in due if r["channel"] == "email"]
    if email_rows:
        if config.email is None:
            for r in email_rows:
                store.mark_failed(r["id"], "no [email] section in the config", now + RETRY_MAX)
            return sent, failed + len(email_rows)
        try:
            conn = smtp_connect(config.email)
        except (DeliveryError, ListenerError) as exc:
            for r in email_rows:
                store.mark_failed(r["id"], str(exc), now + retry_delay(r["attempts"]))
            return sent, failed + len(email_rows)
        try:
            for r in email_rows:
                try:
                    conn.send_message(build_email(config.email, r))
                except (smtplib.SMTPException, OSError, socket.timeout) as exc:
                    failed += 1
                    store.mark_failed(r["id"], f"SMTP: {_one_line(exc)}", now + retry_delay(r["attempts"]))
                    if isinstance(exc, (smtplib.SMTPServerDisconnected, OSError)):
                        break
                    continue
                store.mark_sent(r["id"], now)
                sent += 1
        finally:
            try:
                conn.quit()
            except (smtplib.SMTPException, OSError):
                pass
    return sent, failed

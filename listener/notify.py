"""Notifications: deliver the outbox by email (SMTP) and to chat webhooks.

A notification is written to the `outbox` table in the same transaction as the state change that
caused it (alerts render theirs in `listener.alerts.messages`, the digest in `listener.digest`).
`deliver` sends what is due, with retries and exponential backoff (30 s doubling up to
5 minutes, for as long as it takes: an SMTP outage loses nothing). Each message carries a fixed
Message-ID, so a message re-sent after a crash is the same message.
"""

from __future__ import annotations

import email.policy
import smtplib
import socket
import ssl
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime

from listener.config import Config, EmailConfig, resolve_secret
from listener.errors import ListenerError
from listener.store import Store

RETRY_FIRST = timedelta(seconds=30)
RETRY_MAX = timedelta(minutes=5)


class DeliveryError(ListenerError):
    """A notification could not be delivered now; it stays queued and is retried."""


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

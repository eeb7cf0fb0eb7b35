"""Notifications: deliver the outbox by email (SMTP) and to chat webhooks.

A notification is written to the `outbox` table in the same transaction as the state change that
caused it (alerts render theirs in `listener.alerts.messages`, the digest in `listener.digest`).
`deliver` sends what is due. Every row and every channel fails on its own: a webhook with a
malformed URL does not keep the email rows from going out. A failure worth retrying (a server
down, a timeout, a 5xx or 429 answer) is retried with exponential backoff (`[notify]
retry_first` doubling up to `retry_max`, 30 s and 5 minutes by default, for as long as it takes:
an SMTP outage loses nothing); one that no retry can fix (a 4xx answer, a URL that is not one)
is given up and kept with its error. Each message carries a fixed Message-ID, so a message
re-sent after a crash is the same message.
"""

from __future__ import annotations

import email.policy
import smtplib
import socket
import ssl
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime

from dataclasses import dataclass, field

from listener.config import Config, EmailConfig, NotifyConfig, resolve_secret
from listener.errors import ListenerError, error_text
from listener.store import Store

RETRYABLE_STATUS = frozenset({408, 425, 429})  # 4xx answers that mean "not now" rather than "never"


class DeliveryError(ListenerError):
    """A notification could not be delivered. `retry`: whether trying again later can help (it
    stays queued) or not (it is given up, with this error)."""

    def __init__(self, message: str, retry: bool = True):
        self.retry = retry
        super().__init__(error_text(message))


@dataclass
class DeliveryReport:
    """What one `deliver` did: counts, and the errors by channel (for the daemon's log line)."""

    sent: int = 0
    failed: int = 0  # queued again for a retry
    given_up: int = 0
    errors: dict[str, str] = field(default_factory=dict)  # channel -> last error

    def __iter__(self):  # sent, failed = deliver(...)
        return iter((self.sent, self.failed + self.given_up))

    def summary(self) -> str:
        parts = [f"{self.sent} sent"]
        if self.failed:
            parts.append(f"{self.failed} failed (queued for retry)")
        if self.given_up:
            parts.append(f"{self.given_up} given up")
        reasons = "; ".join(f"{channel}: {error}" for channel, error in self.errors.items())
        return ", ".join(parts) + (f": {reasons}" if reasons else "")


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
        request = httpx.Request("POST", url, json=row["payload"],
                                headers={"User-Agent": "listener", "Idempotency-Key": row["message_id"]})
        if request.url.scheme not in ("http", "https") or not request.url.host:
            raise httpx.UnsupportedProtocol("not an http(s) URL with a host")
    except (httpx.InvalidURL, httpx.UnsupportedProtocol, ValueError, TypeError) as exc:
        raise DeliveryError(f"webhook {name}: ${hook.url_env} is not a usable URL ({_one_line(exc)}): "
                            "fix it; this message is given up", retry=False) from None
    try:
        with httpx.Client(timeout=hook.timeout.total_seconds()) as client:
            response = client.send(request)
    except httpx.HTTPError as exc:
        raise DeliveryError(f"webhook {name}: {type(exc).__name__}: {_one_line(exc)}") from exc
    status = response.status_code
    if not 200 <= status < 300:
        retry = status >= 500 or status in RETRYABLE_STATUS or status < 400
        raise DeliveryError(f"webhook {name}: HTTP {status} {response.reason_phrase}"
                            + ("" if retry else " (the server refuses it: not retried)"), retry=retry)


def retry_delay(attempts: int, notify: NotifyConfig | None = None) -> timedelta:
    """`retry_first` (30 s), doubled per earlier attempt, at most `retry_max` (5 min)."""
    notify = notify or NotifyConfig()
    return min(notify.retry_first * (2 ** min(max(attempts, 0), 30)), notify.retry_max)


def deliver(config: Config, store: Store, now: datetime) -> DeliveryReport:
    """Send every due notification. Each row fails on its own: retried later when that can help,
    else given up with its error; the email rows go out whatever the webhooks do."""
    report = DeliveryReport()
    due = store.due_notifications(now)

    def failed(row: dict, exc: BaseException) -> None:
        retry = getattr(exc, "retry", True)
        message = error_text(exc)
        report.errors[row["channel"]] = message
        if retry:
            report.failed += 1
            store.mark_failed(row["id"], message, now + retry_delay(row["attempts"], config.notify))
        else:
            report.given_up += 1
            store.mark_given_up(row["id"], message, now)

    for r in (r for r in due if r["channel"] != "email"):
        try:
            if not r["channel"].startswith("webhook:"):
                raise DeliveryError(f"unknown channel {r['channel']!r}", retry=False)
            post_webhook(config, r)
        except Exception as exc:  # noqa: BLE001 - one row's failure never blocks another
            failed(r, exc)
        else:
            report.sent += 1
            store.mark_sent(r["id"], now)
    email_rows = [r for r in due if r["channel"] == "email"]
    if email_rows:
        _deliver_email(config, store, email_rows, now, report, failed)
    return report


def _deliver_email(config: Config, store: Store, rows: list[dict], now: datetime, report: DeliveryReport,
                   failed) -> None:
    if config.email is None:
        for r in rows:
            failed(r, DeliveryError("no [email] section in the config"))
        return
    try:
        conn = smtp_connect(config.email)
    except Exception as exc:  # noqa: BLE001 - DeliveryError, a login variable not set, ...
        for r in rows:
            failed(r, exc)
        return
    try:
        for i, r in enumerate(rows):
            try:
                message = build_email(config.email, r)
            except Exception as exc:  # noqa: BLE001 - a row that cannot become a mail is given up alone
                failed(r, DeliveryError(f"cannot build the mail: {type(exc).__name__}: {_one_line(exc)}", retry=False))
                continue
            try:
                conn.send_message(message)
            except smtplib.SMTPRecipientsRefused as exc:
                failed(r, DeliveryError(f"SMTP: every recipient refused: {_one_line(exc)}", retry=False))
                continue
            except (smtplib.SMTPException, OSError, socket.timeout) as exc:
                permanent = isinstance(exc, smtplib.SMTPResponseException) and 500 <= exc.smtp_code < 600
                failed(r, DeliveryError(f"SMTP: {_one_line(exc)}", retry=not permanent))
                if isinstance(exc, (smtplib.SMTPServerDisconnected, OSError)):
                    for rest in rows[i + 1:]:  # the connection is gone: the rest waits for the retry
                        failed(rest, DeliveryError(f"SMTP: {_one_line(exc)}"))
                    break
                continue
            store.mark_sent(r["id"], now)
            report.sent += 1
    finally:
        try:
            conn.quit()
        except (smtplib.SMTPException, OSError):
            pass

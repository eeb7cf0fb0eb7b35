"""The `email` channel: queued rows as mail over SMTP (plain, STARTTLS or TLS; login from the
environment), one connection for all the rows due at once."""

from __future__ import annotations

import base64
import email.policy
import smtplib
import socket
import ssl
from collections.abc import Iterable, Iterator
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime

from listener.config import EmailConfig, resolve_secret
from listener.notify.channel import DELIVERED, Channel, Delivery, DeliveryError, one_line

MAIL_POLICY = email.policy.SMTP.clone(max_line_length=998)  # RFC 5322's limit: subjects stay on one line


def build_email(config: EmailConfig, row: dict) -> EmailMessage:
    """The mail of one outbox row: plain text, HTML with its inline charts (cid:...), fixed Message-ID."""
    msg = EmailMessage(policy=MAIL_POLICY)
    msg["From"] = config.sender
    msg["To"] = ", ".join(row["recipients"])
    msg["Subject"] = row["subject"]
    msg["Message-ID"] = row["message_id"]
    msg["Date"] = format_datetime(datetime.fromisoformat(row["created_at"].replace("Z", "+00:00")))
    msg["X-Listener-Kind"] = row["kind"]
    msg.set_content(row["body_text"])
    if row.get("body_html"):
        msg.add_alternative(row["body_html"], subtype="html")
        for image in (row.get("payload") or {}).get("images", []):
            msg.get_payload()[1].add_related(base64.b64decode(image["data"]), maintype="image", subtype="png",
                                             cid=f"<{image['cid']}>")
    return msg


def smtp_connect(config: EmailConfig) -> smtplib.SMTP:
    """An open, logged-in SMTP connection; DeliveryError naming the server otherwise."""
    timeout = config.timeout.total_seconds()
    try:
        if config.security == "ssl":
            conn: smtplib.SMTP = smtplib.SMTP_SSL(config.host, config.port, timeout=timeout,
                                                  context=ssl.create_default_context())
        else:
            conn = smtplib.SMTP(config.host, config.port, timeout=timeout)
            if config.security == "starttls":
                conn.starttls(context=ssl.create_default_context())
        if config.username_env and config.password_env:
            try:
                conn.login(resolve_secret("email.username_env", config.username_env, secret=False),
                           resolve_secret("email.password_env", config.password_env))
            except smtplib.SMTPAuthenticationError as exc:
                conn.close()
                reply = one_line(Exception(exc.smtp_error.decode(errors="replace")))
                raise DeliveryError(f"SMTP server {config.host}:{config.port} refused the login of "
                                    f"${config.username_env}: ({exc.smtp_code}) {reply}") from None
        return conn
    except (OSError, smtplib.SMTPException) as exc:
        raise DeliveryError(f"cannot reach SMTP server {config.host}:{config.port}: {one_line(exc)}") from exc


class EmailChannel(Channel):
    def __init__(self, config: EmailConfig | None):
        self.config = config

    def send_all(self, rows: Iterable[dict]) -> Iterator[tuple[dict, Delivery]]:
        rows = list(rows)
        if not rows:
            return
        if self.config is None:
            yield from ((r, Delivery("no [email] section in the config")) for r in rows)
            return
        try:
            conn = smtp_connect(self.config)
        except Exception as exc:  # noqa: BLE001 - DeliveryError, a login variable not set, ...
            yield from ((r, Delivery.failed(exc)) for r in rows)
            return
        try:
            for i, row in enumerate(rows):
                try:
                    message = build_email(self.config, row)
                except Exception as exc:  # noqa: BLE001 - a row that cannot become a mail is given up alone
                    yield row, Delivery(f"cannot build the mail: {type(exc).__name__}: {one_line(exc)}", retry=False)
                    continue
                try:
                    conn.send_message(message)
                except smtplib.SMTPRecipientsRefused as exc:
                    codes = [code for code, _ in exc.recipients.values()]
                    permanent = bool(codes) and all(500 <= code < 600 for code in codes)
                    yield row, Delivery(f"SMTP: every recipient refused: {one_line(exc)}", retry=not permanent)
                    if 421 in codes:  # the server closed the session: the rest waits for the retry
                        yield from ((r, Delivery(f"SMTP: {one_line(exc)}")) for r in rows[i + 1:])
                        return
                    continue
                except (smtplib.SMTPException, OSError, socket.timeout) as exc:
                    permanent = isinstance(exc, smtplib.SMTPResponseException) and 500 <= exc.smtp_code < 600
                    yield row, Delivery(f"SMTP: {one_line(exc)}", retry=not permanent)
                    if isinstance(exc, (smtplib.SMTPServerDisconnected, OSError)):
                        # the connection is gone: the rest waits for the retry
                        yield from ((r, Delivery(f"SMTP: {one_line(exc)}")) for r in rows[i + 1:])
                        return
                    continue
                yield row, DELIVERED
        finally:
            try:
                conn.quit()
            except (smtplib.SMTPException, OSError):
                pass

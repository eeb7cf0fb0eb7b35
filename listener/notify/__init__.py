"""Notifications: deliver the outbox, one class per channel.

A notification is written to the `outbox` table in the same transaction as the state change that
caused it (alerts render theirs in `listener.alerts.messages`, the digest in `listener.digest`).
`deliver` sends what is due through its channel (`email`: `notify.email`, `webhook:NAME`:
`notify.webhook`; what a channel is: `notify.channel`). Every row and every channel fails on its
own: a webhook with a malformed URL does not keep the email rows from going out. A failure worth
retrying (a server down, a timeout, a 5xx or 429 answer) is retried with exponential backoff
(`[notify] retry_first` doubling up to `retry_max`, 30 s and 5 minutes by default, for as long as
it takes: an SMTP outage loses nothing); one that no retry can fix (a 4xx answer, a URL that is
not one) is given up and kept with its error. Each message carries a fixed Message-ID, so a
message re-sent after a crash is the same message.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from listener.config import Config, NotifyConfig
from listener.notify.channel import Channel, Delivery, DeliveryError
from listener.notify.email import EmailChannel, build_email, smtp_connect
from listener.notify.webhook import WebhookChannel
from listener.store import MentionStore

__all__ = ["deliver", "DeliveryReport", "DeliveryError", "Delivery", "Channel", "channel_for", "retry_delay",
           "build_email", "smtp_connect"]


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


class _Unknown(Channel):
    def __init__(self, name: str):
        self.name = name

    def send(self, row: dict) -> None:
        raise DeliveryError(f"unknown channel {self.name!r}", retry=False)


def channel_for(config: Config, name: str) -> Channel:
    """The channel an outbox row's `channel` names: `email` or `webhook:NAME`."""
    if name == "email":
        return EmailChannel(config.email)
    if name.startswith("webhook:"):
        return WebhookChannel(config, name.split(":", 1)[1])
    return _Unknown(name)


def retry_delay(attempts: int, notify: NotifyConfig | None = None) -> timedelta:
    """`retry_first` (30 s), doubled per earlier attempt, at most `retry_max` (5 min)."""
    notify = notify or NotifyConfig()
    return min(notify.retry_first * (2 ** min(max(attempts, 0), 30)), notify.retry_max)


CLAIM_TTL = timedelta(minutes=10)  # a worker's claim on the notifications it is sending (its timeouts fit in it)


def deliver(config: Config, store: MentionStore, now: datetime, *, worker: str | None = None) -> DeliveryReport:
    """Send every due notification, channel by channel (webhooks first, then one SMTP session for
    the mail). Each row fails on its own: retried later when that can help, else given up. With
    `worker` (a daemon among several), only the due ones it claims: each is sent by one worker."""
    report = DeliveryReport()
    by_channel: dict[str, list[dict]] = {}
    due = store.claim_due_notifications(worker, now, CLAIM_TTL) if worker else store.due_notifications(now)
    for row in due:
        by_channel.setdefault(row["channel"], []).append(row)
    for name in sorted(by_channel, key=lambda n: n == "email"):
        for row, delivery in channel_for(config, name).send_all(by_channel[name]):
            _record(config, store, now, report, row, delivery)
    return report


def _record(config: Config, store: MentionStore, now: datetime, report: DeliveryReport, row: dict,
            delivery: Delivery) -> None:
    if delivery.delivered:
        report.sent += 1
        store.mark_sent(row["id"], now)
        return
    report.errors[row["channel"]] = delivery.error or ""
    if delivery.retry:
        report.failed += 1
        store.mark_failed(row["id"], delivery.error, now + retry_delay(row["attempts"], config.notify))
    else:
        report.given_up += 1
        store.mark_given_up(row["id"], delivery.error, now)

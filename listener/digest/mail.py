"""The digest's mail: queued once per day, recipients and topics (a fixed Message-ID), sent by
the daemon once `[digest] at` has passed."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Sequence

from listener.config import Config
from listener.digest.charts import render_charts
from listener.digest.figures import build_digest, day_bounds
from listener.digest.format import subject
from listener.digest.html import render_html
from listener.digest.markdown import render_markdown
from listener.errors import ListenerError
from listener.notify.message_ids import content_id, digest_message_id
from listener.store import MentionStore


def _recipients(config: Config) -> list[str]:
    if config.email is None:
        raise ListenerError("no [email] section in the config: add one (from, to, host) to mail the digest")
    recipients = list(config.digest.to or config.email.to)
    if not recipients:
        raise ListenerError("no recipients for the digest: set [digest] to or [email] to")
    return recipients


def digest_topics(config: Config, topics: Sequence[str] | None) -> list[str]:
    return list(topics or config.digest.topics or [t.name for t in config.topics])


def queue_digest(config: Config, store: MentionStore, day: date, now: datetime,
                 topics: Sequence[str] | None = None) -> tuple[str, bool]:
    """Queue the day's digest email (HTML with inline charts, Markdown as plain text) in one transaction.

    Returns (message id, queued); queued is False when the outbox already has this digest.
    """
    recipients = _recipients(config)
    names = digest_topics(config, topics)
    mid = digest_message_id(day, recipients, names)
    if store.outbox_has(mid):
        return mid, False
    digest = build_digest(store, config, day, names)
    charts = render_charts(digest)
    cids = {name: content_id(name, digest["date"]) for name in charts}
    body_html = render_html(digest, {name: f"cid:{cid}" for name, cid in cids.items()})
    payload = {"images": [{"cid": cids[name], "data": base64.b64encode(png).decode()} for name, png in charts.items()]}
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


def send_digest(config: Config, store: MentionStore, day: date, now: datetime,
                topics: Sequence[str] | None = None) -> SendResult:
    """`listener digest --send`: queue the digest (once) and deliver the outbox now."""
    from listener.notify import deliver

    mid, queued = queue_digest(config, store, day, now, topics)
    deliver(config, store, now)
    status = store.outbox_status(mid) or {}
    return SendResult(mid, queued, status.get("sent_at"), status.get("last_error"))


def send_digest_if_due(config: Config, store: MentionStore, now: datetime) -> bool:
    """The daemon's job (run it every minute): queue yesterday's digest once `[digest] at` has passed.

    True when it queued one. Nothing when the digest is disabled or there is no [email]; never
    twice for the same day and recipients (the outbox has its message id), also after a restart.
    A run missed at `at` is made up later the same day; a day that has passed is not sent late.
    A day on which nothing was collected (no fetch, no mention stored: listener was not installed
    or not running) gets no digest, rather than an empty one.
    """
    d = config.digest
    if not d.enabled or config.email is None or not (d.to or config.email.to) or not digest_topics(config, None):
        return False
    local = now.astimezone(d.tzinfo)
    if local.time() < d.at:
        return False
    day = local.date() - timedelta(days=1)
    if not store.collected_between(*day_bounds(day, d.tzinfo)):
        return False  # listener was not running that day (a fresh install): nothing to report on
    return queue_digest(config, store, day, now)[1]

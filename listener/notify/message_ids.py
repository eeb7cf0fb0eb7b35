"""What identifies a message: its fixed Message-ID, which is also the outbox's key (a notice or digest
queued twice, or re-sent after a crash, is the same message), and the Content-IDs of its inline
images. Every id is `<...@listener>`."""

from __future__ import annotations

import hashlib
from datetime import date, datetime
from typing import Sequence

from listener.store import iso

DOMAIN = "listener"


def _hash(text: str, length: int) -> str:
    return hashlib.sha1(text.encode()).hexdigest()[:length]


def alert_message_id(identity: tuple[str, ...], now: datetime, channel: str) -> str:
    """An alert notice's id (`identity` ends with its state): `<3f2a...9c.firing@listener>`."""
    return f"<{_hash('|'.join((*identity, iso(now), channel)), 20)}.{identity[-1]}@{DOMAIN}>"


def digest_message_id(day: date, recipients: Sequence[str], topics: Sequence[str]) -> str:
    """Fixed per (day, recipient list, topics): `<digest-2026-11-21.1a2b3c4d5e@listener>`."""
    key = ",".join(sorted(recipients)) + "|" + ",".join(sorted(topics))
    return f"<digest-{day.isoformat()}.{_hash(key, 10)}@{DOMAIN}>"


def content_id(name: str, day: str) -> str:
    """An inline image's Content-ID (`cid:` in the HTML): `volume.2026-11-21@listener`."""
    return f"{name}.{day}@{DOMAIN}"

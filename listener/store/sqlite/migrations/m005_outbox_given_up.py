"""Migration m005: outbox given up. Released: never edited; a change is a new migration."""

from __future__ import annotations

import sqlite_utils


def up(db: sqlite_utils.Database) -> None:
    """A notification that cannot ever be delivered (a webhook answering 404) is given up, not retried."""
    db.executescript(
        """
        ALTER TABLE outbox ADD COLUMN given_up_at TEXT;
        DROP INDEX outbox_pending;
        CREATE INDEX outbox_pending ON outbox(next_attempt_at) WHERE sent_at IS NULL AND given_up_at IS NULL;
        """
    )

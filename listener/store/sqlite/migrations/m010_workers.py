"""Migration m010: several workers on one database. Released: never edited; a change is a new migration."""

from __future__ import annotations

import sqlite_utils


def up(db: sqlite_utils.Database) -> None:
    """Leases (a source's fetch, the leader's jobs) held by one worker until they expire, kept after
    release as who did it last; and claims of single mentions to score and notifications to deliver."""
    db.executescript(
        """
        CREATE TABLE leases (
            name TEXT PRIMARY KEY,           -- fetch:SOURCE, leader
            worker TEXT NOT NULL,            -- host:pid of the worker holding it (or that held it last)
            acquired_at TEXT NOT NULL,       -- when that worker took it (renewals keep it)
            expires_at TEXT NOT NULL,        -- free from then on; set to the release time on release
            released_at TEXT
        ) WITHOUT ROWID;
        CREATE TABLE work_claims (
            kind TEXT NOT NULL,              -- score (a mention id) / deliver (an outbox id)
            item INTEGER NOT NULL,
            worker TEXT NOT NULL,
            expires_at TEXT NOT NULL,
            PRIMARY KEY (kind, item)
        ) WITHOUT ROWID;
        CREATE INDEX work_claims_expiry ON work_claims(kind, expires_at);
        """
    )

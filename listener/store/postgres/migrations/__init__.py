"""The PostgreSQL engine's schema, as the migrations that build it, applied in order on open and
recorded in `_migrations` (`PostgresBase.migrate`); each is a list of SQL statements.

The same tables, columns and views as on SQLite (documented in the README, stable for users'
SQL), in PostgreSQL's types: times are `timestamptz` (UTC), days `date`. The mention tables are
partitioned by month of `published_at`, so that retention drops whole partitions. The rollups are
kept by this schema's triggers, with the same contract as SQLite's (`listener.store.interface`).
A migration is never edited once released; a change is a new one.
"""

from __future__ import annotations

from listener.store.postgres.migrations import p001_mentions, p002_state, p003_reader, p004_workers

# (name recorded in `_migrations`, its statements), in the order they run
MIGRATIONS: list[tuple[str, list[str]]] = [
    ("p001_mentions", p001_mentions.STATEMENTS),
    ("p002_state", p002_state.STATEMENTS),
    ("p003_reader", p003_reader.STATEMENTS),
    ("p004_workers", p004_workers.STATEMENTS),
]

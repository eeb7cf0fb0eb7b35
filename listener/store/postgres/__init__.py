"""The mention database on PostgreSQL: the engine for teams that outgrow one machine, behind the
same `listener.store.MentionStore` as SQLite (`[database] url = "postgresql://..."`).

`PostgresStore` is put together from one part per group of the interface, as `SQLiteStore` is;
`connection` holds the pool, transactions and migrations every part builds on.
"""

from listener.store.postgres.alert_reads import PostgresAlertReads
from listener.store.postgres.alert_state import PostgresAlertState
from listener.store.postgres.connection import PostgresBase
from listener.store.postgres.corrections import PostgresCorrections
from listener.store.postgres.dashboard import PostgresDashboard
from listener.store.postgres.digest_reads import PostgresDigestReads
from listener.store.postgres.ingest import PostgresIngest
from listener.store.postgres.logs import PostgresLogs
from listener.store.postgres.mentions import PostgresMentions
from listener.store.postgres.outbox import PostgresOutbox
from listener.store.postgres.pruning import PostgresPruning
from listener.store.postgres.readonly import PostgresReadOnly
from listener.store.postgres.sources import PostgresSourceReads
from listener.store.postgres.transfer import PostgresTransfer
from listener.store.postgres.workers import PostgresWorkers


class PostgresStore(PostgresIngest, PostgresSourceReads, PostgresMentions, PostgresReadOnly, PostgresAlertReads,
                    PostgresDigestReads, PostgresDashboard, PostgresAlertState, PostgresWorkers, PostgresOutbox, PostgresPruning,
                    PostgresLogs, PostgresCorrections, PostgresTransfer):
    """The mention database on the PostgreSQL server at `url` (migrated on open)."""


__all__ = ["PostgresStore", "PostgresBase"]

"""p004: several workers on one database: leases held until they expire (kept after release as who
did it last), and claims of single mentions to score and notifications to deliver."""

STATEMENTS = [
    """CREATE TABLE leases (
        name text PRIMARY KEY,                -- fetch:SOURCE, leader
        worker text NOT NULL,                 -- host:pid of the worker holding it (or that held it last)
        acquired_at timestamptz NOT NULL,     -- when that worker took it (renewals keep it)
        expires_at timestamptz NOT NULL,      -- free from then on
        released_at timestamptz
    )""",
    """CREATE TABLE work_claims (
        kind text NOT NULL,                   -- score (a mention id) / deliver (an outbox id)
        item bigint NOT NULL,
        worker text NOT NULL,
        expires_at timestamptz NOT NULL,
        PRIMARY KEY (kind, item)
    )""",
    "CREATE INDEX work_claims_expiry ON work_claims (kind, expires_at)",
]

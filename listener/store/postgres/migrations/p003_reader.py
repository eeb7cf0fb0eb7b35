"""p003: `listener_reader`, the role users' read-only SQL runs as (`listener sql`, `sql` alert rules):
it can read the documented tables and views of this schema and nothing else (no writes, no other
schemas, no server files: `pg_read_file` and `COPY ... TO` a file stay the superuser's).

A role belongs to the whole server, not to one database: it is created only when missing (another
database on the server, or another process migrating at the same time, may have made it). It never
logs in: the store's own user switches to it for one transaction (`SET LOCAL ROLE`), so that user is
made a member. A user that may not create roles needs an administrator to run, once per server,
`CREATE ROLE listener_reader NOLOGIN; GRANT listener_reader TO <the user>`.
"""

READER = "listener_reader"

# what users' SQL may read: the tables and views documented in the README (stable for users' SQL)
READABLE = ("mentions", "mention_topics", "hashtags", "corrections", "sources", "fetches", "topic_hourly",
            "hashtag_hourly", "topic_breakdown_hourly", "topic_author_daily", "alert_state", "alert_events",
            "rule_evaluations", "incidents", "outbox", "job_runs", "_migrations",
            "topic_daily", "hashtag_daily", "mention_details")

_SETUP = f"""\
CREATE ROLE {READER} NOLOGIN; GRANT {READER} TO <the user listener connects as>"""

STATEMENTS = [
    f"""DO $$
    BEGIN
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{READER}') THEN
            BEGIN
                CREATE ROLE {READER} NOLOGIN;
            EXCEPTION
                WHEN duplicate_object OR unique_violation THEN NULL;  -- made at the same time elsewhere
                WHEN insufficient_privilege THEN
                    RAISE EXCEPTION 'the user % may not create the role {READER} that read-only SQL runs as: '
                        'an administrator can, once per server: {_SETUP}', current_user;
            END;
        END IF;
        IF NOT pg_has_role(current_user, '{READER}', 'MEMBER') THEN
            BEGIN
                GRANT {READER} TO CURRENT_USER;
            EXCEPTION WHEN insufficient_privilege OR invalid_grant_operation THEN
                RAISE EXCEPTION 'the user % may not switch to the role {READER} that read-only SQL runs as: '
                    'an administrator can let it (GRANT {READER} TO %)', current_user, current_user;
            END;
        END IF;
        EXECUTE format('GRANT USAGE ON SCHEMA %I TO {READER}', current_schema());
    END $$""",
    f"GRANT SELECT ON {', '.join(READABLE)} TO {READER}",
]

"""PostgreSQL's own side of users' SQL (`listener sql`, `sql` alert rules): the role it runs as reads
the documented tables and views and nothing else, a query cannot leave that role or its time limit,
the ready queries answer the same on both engines, and `listener sql` runs on a postgresql:// URL.
(What both engines share is in test_store_contract.py.)"""

from __future__ import annotations

import json
import time

import psycopg
import pytest
from click.testing import CliRunner

from listener.cli import cli
from listener.errors import StoreError
from listener.store import Store, check_select, open_store, run_readonly
from listener.store.postgres.migrations.p003_reader import READABLE, READER
from listener.store.queries import QUERIES
from tests.test_sql_queries import NOW, fill

ESCAPES = [  # (users' SQL, what the refusal says)
    ("SELECT set_config('role', 'none', true), pg_read_file('/etc/hostname')", "set_config is not allowed"),
    ("SELECT query_to_xml('select 1', true, false, '')", "query_to_xml is not allowed"),
    ("SELECT * FROM ts_stat('SELECT to_tsvector(pg_read_file(''/etc/hostname''))')", "ts_stat is not allowed"),
    ('SELECT U&"set\\005fconfig"(\'role\', \'none\', true)', "Unicode escapes"),
    ("SELECT pg_advisory_lock(1)", "advisory lock is not allowed"),
    ("SELECT 1; RESET ROLE", "one query at a time"),
    ("RESET ROLE", "RESET is not allowed"),
    ("set role listener", "SET is not allowed"),
    ("DO $$ BEGIN PERFORM 1; END $$", "DO is not allowed"),
    ("COPY mentions TO '/tmp/listener-mentions.csv'", "COPY is not allowed"),
    ("/* a comment */ (INSERT INTO sources (name, kind) VALUES ('x', 'rss'))", "INSERT is not allowed"),
    ("WITH gone AS (DELETE FROM outbox RETURNING id) SELECT * FROM gone", "DELETE in a WITH is not allowed"),
    ("SELECT * FROM sources FOR UPDATE", "read-only transaction"),
    ("SELECT pg_read_file('/etc/hostname')", "permission denied for function pg_read_file"),
    ("SELECT * FROM private.secrets", "permission denied for schema private"),
    ("SELECT nextval('outbox_id_seq')", "permission denied for sequence outbox_id_seq"),
]


@pytest.fixture
def pg_store(pg_url):
    with psycopg.connect(pg_url, autocommit=True) as conn:  # as the store's own user: a schema users may not read
        conn.execute("CREATE SCHEMA private")
        conn.execute("CREATE TABLE private.secrets AS SELECT 'hunter2' AS password")
    store = open_store(pg_url)
    yield store
    store.close()


def as_reader(url: str, sql: str) -> None:
    """Run `sql` as the reader role directly, without the store's checks in between."""
    with psycopg.connect(url) as conn, conn.transaction():
        conn.execute(f"SET LOCAL ROLE {READER}")
        conn.execute(sql)


def test_the_reader_role_reads_the_documented_tables_and_nothing_else(pg_store, pg_url):
    """(What the role cannot stop, switching back to the session's own user, the store refuses: below.)"""
    for name in READABLE:
        as_reader(pg_url, f"SELECT * FROM {name} LIMIT 1")
    for sql in ("INSERT INTO sources (name, kind) VALUES ('x', 'rss')", "UPDATE mentions SET text = ''",
                "COPY mentions TO '/tmp/listener-mentions.csv'", "COPY (SELECT 1) TO PROGRAM 'true'",
                "SELECT pg_read_file('/etc/hostname')", "SELECT pg_ls_dir('.')", "SELECT * FROM private.secrets",
                "SELECT * FROM mention_keys", "CREATE TABLE mine (x int)"):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            as_reader(pg_url, sql)


@pytest.mark.parametrize("sql, refusal", ESCAPES, ids=[r for _, r in ESCAPES])
def test_users_sql_cannot_leave_the_reader_role_or_its_one_query(pg_store, sql, refusal):
    with pytest.raises(StoreError, match=refusal) as failed:
        pg_store.read_only_query(sql)
    assert "\n" not in str(failed.value) and "hunter2" not in str(failed.value)
    assert pg_store.read_only_query("SELECT current_user, count(*) FROM sources").rows == [(READER, 0)]


def test_a_long_query_stops_at_its_time_limit_and_the_connection_is_whole_again(pg_store):
    started = time.monotonic()
    with pytest.raises(StoreError, match=r"query stopped after the 0.3s time limit"):
        pg_store.read_only_query("SELECT pg_sleep(5)", time_limit=0.3)
    assert time.monotonic() - started < 2
    with pytest.raises(StoreError, match="time limit"):  # as many rows as it can make, fetched after the plan
        pg_store.read_only_query("SELECT count(*) FROM generate_series(1, 1000000000)", time_limit=0.3)
    assert pg_store.read_only_query("SELECT x FROM generate_series(1, 5) x", max_rows=2).rows == [(1,), (2,)]
    with pg_store.transaction() as conn:  # the pool's connection is the store's own again: no role, no limit
        assert conn.execute("SELECT current_user AS u, current_setting('statement_timeout') AS t, "
                            "current_setting('transaction_read_only') AS ro").fetchone() == {"u": "listener", "t": "0",
                                                                                          "ro": "off"}


def test_values_read_as_on_sqlite_and_parameters_are_named_as_there(pg_store):
    result = pg_store.read_only_query(
        "SELECT :now::timestamptz AS at, (:now::timestamptz)::date AS day, sum(x) AS total, round(1.0 * 2 / 3, 2) AS ratio,"
        " interval '90 minutes' AS took, '{\"a\": 1}'::jsonb AS doc, '%' || :word AS pct, ':word' AS literal"
        " FROM (VALUES (1::bigint), (2)) v(x)", {"now": NOW, "word": "x"})
    assert result.columns == ["at", "day", "total", "ratio", "took", "doc", "pct", "literal"]
    assert result.rows == [(NOW, NOW[:10], 3, 0.67, "01:30:00", '{"a": 1}', "%x", ":word")]
    assert [type(v) for v in result.rows[0][2:4]] == [int, float]


def test_a_rules_sql_is_compiled_on_the_server(pg_store, pg_url):
    params = ("now", "window_start")
    assert check_select("SELECT topic, count(*) AS value FROM topic_hourly WHERE hour >= :window_start "
                        "AND hour < :now GROUP BY topic", params, location=pg_url) is None
    assert "column \"nope\" does not exist" in check_select("SELECT nope FROM topic_hourly", params, location=pg_url)
    assert "permission denied for schema private" in check_select("SELECT * FROM private.secrets", params,
                                                                  location=pg_url)
    assert "set_config is not allowed" in check_select("SELECT set_config('a', 'b', true)", params, location=pg_url)
    # PostgreSQL's dialect is not SQLite's: each is compiled by its own engine
    assert check_select("SELECT now() - interval '1 day'", params) is not None
    assert check_select("SELECT now() - interval '1 day'", params, location=pg_url) is None


def test_every_ready_query_answers_the_same_on_both_engines(pg_store, tmp_path):
    fill(pg_store)
    with Store(tmp_path / "m.db") as sqlite:
        fill(sqlite)
        for query in QUERIES.values():
            wanted = sqlite.read_only_query(query.sql, {"now": NOW})
            got = pg_store.read_only_query(query.postgresql, {"now": NOW})
            assert wanted.rows, query.name  # the data answers every question
            assert (got.columns, got.rows) == (wanted.columns, wanted.rows), query.name
            assert [[type(v) for v in r] for r in got.rows] == [[type(v) for v in r] for r in wanted.rows], query.name
        for view in ("topic_daily", "hashtag_daily", "mention_details"):
            sql = f"SELECT * FROM {view} ORDER BY 1, 2, 3"
            assert pg_store.read_only_query(sql).rows == sqlite.read_only_query(sql).rows, view


def test_listener_sql_runs_on_a_postgresql_url(pg_store, pg_url, tmp_path):
    fill(pg_store)
    (tmp_path / "config.toml").write_text(f'[database]\nurl = "{pg_url}"\n\n[[topics]]\nname = "acme"\nquery = "acme"\n')
    base = ["--config", str(tmp_path / "config.toml"), "sql"]
    runner = CliRunner()
    result = runner.invoke(cli, [*base, "--query", "angry-this-week", "--param", f"now={NOW}", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)[0] == {"topic": "acme", "hashtag": "fail", "negative": 3, "mentions": 4,
                                            "negative_share": 0.75}
    result = runner.invoke(cli, [*base, "--csv", "SELECT source, count(*) AS n FROM mentions GROUP BY 1 ORDER BY 1"])
    assert result.exit_code == 0 and result.output.splitlines() == ["source,n", "blog,2", "feed,11", "forum,1"]
    result = runner.invoke(cli, [*base, "DELETE FROM mentions"])
    assert result.exit_code == 1 and "DELETE is not allowed: the database is read-only here" in result.output
    assert run_readonly(pg_url, "SELECT count(*) FROM mentions").rows == [(14,)]


def test_listener_sql_on_a_database_listener_never_opened_says_so(pg_server):
    url = pg_server.create_database(f"empty{time.monotonic_ns() % 10**9}")
    with pytest.raises(StoreError, match=r"holds no mentions yet \(run `listener init` or `listener fetch` first\)"):
        run_readonly(url, "SELECT 1")
    with pytest.raises(StoreError, match="cannot open database"):
        run_readonly(url.rsplit("/", 1)[0] + "/nowhere", "SELECT 1")


def test_a_user_that_may_not_grant_the_role_is_told_what_to_ask_for(pg_server):
    owner = f"app{time.monotonic_ns() % 10**9}"  # roles belong to the server, shared by every test on it
    pg_server.execute(f"CREATE ROLE {owner} LOGIN")
    pg_server.execute(f'CREATE DATABASE "{owner}" OWNER {owner}')
    url = pg_server.url(owner).replace(f"{pg_server.user}@", f"{owner}@")
    with pytest.raises(StoreError, match=rf"the user {owner} may not switch to the role {READER} .*"
                                         rf"\(GRANT {READER} TO {owner}\)"):
        open_store(url)
    pg_server.execute(f"GRANT {READER} TO {owner}")  # the role is there already: made by another database
    with open_store(url) as store:
        assert store.read_only_query("SELECT current_user, count(*) FROM mentions").rows == [(READER, 0)]
        with pytest.raises(StoreError, match="permission denied for function pg_read_file"):
            store.read_only_query("SELECT pg_read_file('/etc/hostname')")

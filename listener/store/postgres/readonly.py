"""Users' SQL on PostgreSQL (`listener sql`, `sql` alert rules): one query in a read-only transaction,
stopped at its time limit, run as `listener_reader` (migration p003), the role that reads the
documented tables and views and nothing else; and a check that a rule's SQL compiles on the server.

Users write PostgreSQL's own SQL, with parameters named as on SQLite (`:now`; `:now::date` is a cast
of one). The query runs as a cursor (`DECLARE ... CURSOR FOR`), so it is one SELECT, WITH, VALUES or
TABLE query and nothing else: no second statement after a `;`, no SET, no COPY, no DO block. The role
cannot write, read another schema, or reach the server's files, and the transaction is read-only.
What a role cannot guard against is a query that changes the role it runs as while it runs
(`set_config('role', ...)`, or SQL given as text to a function that runs it): those functions are
refused by name, before the query reaches the server.
"""

from __future__ import annotations

import re
import time
from contextlib import contextmanager
from typing import Any, Iterator, Mapping, Sequence

from listener.errors import StoreError, redact
from listener.store.postgres.connection import CONNECT_TIMEOUT, PostgresBase, _iso_loaders, describe
from listener.store.postgres.migrations.p003_reader import READER
from listener.store.types import QueryResult

QUERY_WORDS = ("select", "with", "values", "table")  # what a query begins with
# the first words of PostgreSQL's other statements: each refused by name
STATEMENT_WORDS = frozenset(
    "abort alter analyze begin call checkpoint close cluster comment commit copy create deallocate declare delete "
    "discard do drop end execute explain fetch grant import insert listen load lock merge move notify prepare "
    "reassign refresh reindex release reset revoke rollback savepoint security set show start truncate unlisten "
    "update vacuum".split())
# names that may appear nowhere in users' SQL, not even in its strings: (name, what it is, why not)
FORBIDDEN = (
    ("set_config", "the function set_config", "it could change the role the query runs as"),
    ("query_to_xml|query_to_xmlschema|query_to_xml_and_xmlschema", "the function query_to_xml",
     "it runs SQL given as text"),
    ("cursor_to_xml|cursor_to_xmlschema", "the function cursor_to_xml", "it runs SQL given as text"),
    ("ts_stat", "the function ts_stat", "it runs SQL given as text"),
    ("ts_rewrite", "the function ts_rewrite", "it runs SQL given as text"),
    ("dblink\\w*", "dblink", "it connects to other databases"),
    ("pg_(?:try_)?advisory_\\w+", "an advisory lock", "it would outlive the query"),
)
_FORBIDDEN = [(re.compile(rf"(?<![\w$])(?:{names})(?![\w$])", re.IGNORECASE), what, why) for names, what, why in FORBIDDEN]
_ESCAPED_NAME = re.compile(r'u&"', re.IGNORECASE)  # U&"..." could spell any of them
_READ_ONLY = ("the database is read-only here (one SELECT, WITH, VALUES or TABLE query on the mention tables and "
              "views: no writes, no COPY, no server files, no other schemas)")
_CURSOR = "listener_user_sql"
# the parts of SQL where nothing is code: strings ('...', E'...' with backslashes, $tag$...$tag$),
# quoted names, comments (/* */ nest)
_SPECIAL = re.compile(r"""(?P<e>(?<![\w$])[eE]')|'|"|--|/\*|(?<![\w$])\$(?:[^\W\d]\w*)?\$""")
_PARAM = re.compile(r"(?<!:):([^\W\d]\w*)")


def _segments(sql: str) -> Iterator[tuple[bool, str]]:
    """`sql` in pieces, in order: (is code, text); strings, quoted names and comments are not code."""
    i, n = 0, len(sql)
    while i < n:
        m = _SPECIAL.search(sql, i)
        if m is None:
            yield True, sql[i:]
            return
        if m.start() > i:
            yield True, sql[i:m.start()]
        start, token = m.start(), m.group()
        if token in ("'", '"') or m.group("e"):
            quote, j = token[-1], m.end()
            while j < n:
                if m.group("e") and sql[j] == "\\":
                    j += 2
                elif sql[j] == quote:
                    if sql.startswith(quote * 2, j):
                        j += 2
                    else:
                        j += 1
                        break
                else:
                    j += 1
        elif token == "--":
            j = sql.find("\n", start)
            j = n if j < 0 else j
        elif token == "/*":
            depth, j = 1, m.end()
            while j < n and depth:
                if sql.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif sql.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
        else:  # $tag$ ... $tag$
            j = sql.find(token, m.end())
            j = n if j < 0 else j + len(token)
        yield False, sql[start:min(j, n)]
        i = j


def bind(sql: str, params: Mapping[str, Any] | Sequence[Any] | None) -> tuple[str, list[Any]]:
    """`sql` with its parameters as PostgreSQL's `$1`, `$2`, ...: `:name` for a mapping (a name not
    in it is left alone), `?` for a sequence; and the values in that order."""
    if not params:
        return sql, []
    values: list[Any] = []
    numbers: dict[str, int] = {}

    def named(m: re.Match) -> str:
        name = m.group(1)
        if name not in params:  # type: ignore[operator]
            return m.group()
        if name not in numbers:
            values.append(params[name])  # type: ignore[index]
            numbers[name] = len(values)
        return f"${numbers[name]}"

    def positional(m: re.Match) -> str:
        if len(values) >= len(params):
            raise StoreError(f"SQL error: more ? in the query than the {len(params)} values given")
        values.append(params[len(values)])  # type: ignore[index]
        return f"${len(values)}"

    pattern, repl = (_PARAM, named) if isinstance(params, Mapping) else (re.compile(r"\?"), positional)
    return "".join(pattern.sub(repl, text) if code else text for code, text in _segments(sql)), values


def refusal(sql: str) -> str | None:
    """Why `sql` may not run as read-only SQL, in one line; None when it may try (the server decides the rest)."""
    for pattern, what, why in _FORBIDDEN:
        if pattern.search(sql):
            return f"{what} is not allowed in read-only SQL: {why}"
    if _ESCAPED_NAME.search(sql):
        return 'a name in Unicode escapes (U&"...") is not allowed in read-only SQL: it could spell a function refused here'
    code = " ".join(text for is_code, text in _segments(sql) if is_code)
    first = re.match(r"[\s(]*([a-z]+)", code.lower())
    if first and first.group(1) in STATEMENT_WORDS:
        return f"{first.group(1).upper()} is not allowed: {_READ_ONLY}"
    return None


def _result_loaders(cur) -> None:
    """Values as SQLite's would be: numeric as an int when whole (a sum) or a float (a ratio), and the
    types without a plain Python value as their text (intervals, JSON, times without a zone, ...)."""
    from psycopg.adapt import Loader
    from psycopg.types.string import TextLoader

    class NumberLoader(Loader):
        def load(self, data) -> int | float:
            text = bytes(data).decode()
            return int(text) if text.lstrip("-").isdigit() else float(text)

    cur.adapters.register_loader("numeric", NumberLoader)
    for name in ("interval", "timestamp", "time", "timetz", "uuid", "json", "jsonb", "inet", "cidr", "money", "xml"):
        cur.adapters.register_loader(name, TextLoader)


def _failure(exc: Exception, time_limit: float) -> StoreError:
    """A server's refusal of users' SQL as one line naming what failed."""
    import psycopg.errors as e

    message = describe(exc)
    if isinstance(exc, e.QueryCanceled):
        return StoreError(f"query stopped after the {time_limit:g}s time limit")
    if isinstance(exc, e.FeatureNotSupported) and "data-modifying" in message:
        return StoreError(f"INSERT, UPDATE or DELETE in a WITH is not allowed: {_READ_ONLY}")
    if isinstance(exc, e.ReadOnlySqlTransaction):
        return StoreError(f"{message}: {_READ_ONLY}")
    if isinstance(exc, e.SyntaxError) and "multiple commands" in message:
        return StoreError("SQL error: one query at a time (nothing after its ;)")
    if isinstance(exc, e.InsufficientPrivilege):
        return StoreError(f"{message}: read-only SQL runs as {READER}, which reads the mention tables and views only")
    return StoreError(f"SQL error: {message}")


@contextmanager
def _as_reader(conn, time_limit: float | None) -> Iterator[Any]:
    """A read-only transaction on `conn` as the reader role, every statement stopped after `time_limit`
    seconds; always rolled back."""
    import psycopg

    with conn.transaction():
        conn.execute("SET TRANSACTION READ ONLY")
        if time_limit is not None:
            conn.execute(f"SET LOCAL statement_timeout = {max(1, int(time_limit * 1000))}")
        try:
            conn.execute(f"SET LOCAL ROLE {READER}")
        except (psycopg.errors.InvalidParameterValue, psycopg.errors.InsufficientPrivilege) as exc:
            raise StoreError(f"read-only SQL needs the role {READER} ({describe(exc)}): opening the database with "
                             "listener makes it (run `listener init` or `listener fetch` first)") from exc
        yield conn
        raise psycopg.Rollback()


def run_on(conn, sql: str, params: Mapping[str, Any] | Sequence[Any] | None, *, time_limit: float,
           max_rows: int | None) -> QueryResult:
    """Run users' `sql` on the open connection `conn` (not in a transaction) as read-only SQL."""
    import psycopg
    from psycopg.rows import tuple_row

    problem = refusal(sql)
    if problem:
        raise StoreError(problem)
    text, values = bind(sql, params)
    deadline = time.monotonic() + time_limit
    result = None
    try:
        with _as_reader(conn, time_limit) as tx:
            cur = psycopg.RawServerCursor(tx, _CURSOR, row_factory=tuple_row)
            _result_loaders(cur)
            cur.execute(text, values or None)
            columns = [c.name for c in cur.description or ()]
            left = deadline - time.monotonic()
            if left <= 0:
                raise StoreError(f"query stopped after the {time_limit:g}s time limit")
            tx.execute(f"SET LOCAL statement_timeout = {max(1, int(left * 1000))}")
            rows = cur.fetchmany(max_rows) if max_rows else cur.fetchall()
            result = QueryResult(columns, list(rows))
    except psycopg.Error as exc:
        raise _failure(exc, time_limit) from exc
    return result  # type: ignore[return-value]


@contextmanager
def _connection(url: str) -> Iterator[Any]:
    """A connection of its own to `url`, set up as the engine's (UTC, times as ISO text)."""
    import psycopg

    try:
        conn = psycopg.connect(url, connect_timeout=CONNECT_TIMEOUT, application_name="listener sql",
                               options="-c TimeZone=UTC -c client_encoding=UTF8")
    except psycopg.Error as exc:
        raise StoreError(f"cannot open database {redact(url)}: {describe(exc)}") from exc
    try:
        _iso_loaders(conn)
        yield conn
    finally:
        conn.close()


def run_readonly(url: str, sql: str, params: Mapping[str, Any] | Sequence[Any] | None = None, *,
                 time_limit: float = 30.0, max_rows: int | None = None) -> QueryResult:
    """Run users' SQL on the PostgreSQL database at `url` as read-only SQL (`listener sql`)."""
    with _connection(url) as conn:
        if conn.execute("SELECT to_regclass('_migrations') IS NULL").fetchone()[0]:
            raise StoreError(f"database {redact(url)} holds no mentions yet (run `listener init` or `listener fetch` first)")
        conn.rollback()
        return run_on(conn, sql, params, time_limit=time_limit, max_rows=max_rows)


def check_select(url: str, sql: str, params: Sequence[str] = ()) -> str | None:
    """Why `sql` would fail as read-only SQL on the database at `url` (compiled there, as the reader,
    its parameters NULL, nothing run), or None. StoreError when the server cannot be asked."""
    import psycopg

    problem = refusal(sql)
    if problem:
        return problem
    text, values = bind(sql, {name: None for name in params})
    with _connection(url) as conn:
        try:
            with _as_reader(conn, 10.0) as tx:
                psycopg.RawServerCursor(tx, _CURSOR).execute(text, values or None)  # planned, not fetched
        except psycopg.Error as exc:
            return str(_failure(exc, 10.0))
    return None


class PostgresReadOnly(PostgresBase):
    """`interface.ReadOnlySQL` on PostgreSQL: a connection of the pool, as the reader role."""

    def read_only_query(self, sql: str, params: Mapping[str, Any] | Sequence[Any] | None = None, *,
                        time_limit: float = 30.0, max_rows: int | None = None) -> QueryResult:
        import psycopg_pool

        try:
            with self.pool.connection() as conn:
                return run_on(conn, sql, params, time_limit=time_limit, max_rows=max_rows)
        except psycopg_pool.PoolTimeout as exc:
            raise StoreError(f"no connection to {redact(self.url)} within {CONNECT_TIMEOUT} s") from exc

"""Whole tables in and out of the PostgreSQL database (`interface.Transfer`), for `listener db copy`:
written rows get what the engine keeps beside them (a mention's key and search words, the month's
partitions), and the id sequences continue after the highest copied id."""

from __future__ import annotations

from typing import Any, Iterator, Mapping, Sequence

from listener.errors import StoreError
from listener.store.postgres.ingest import search_vector
from listener.store.postgres.partitions import PostgresPartitions
from listener.store.transfer import TABLES
from listener.store.types import parse_iso

INTERNAL = {"mentions": {"words"}}  # the engine's own columns: not part of the documented table
PARTITIONED = {"mentions", "mention_topics", "hashtags"}
IDS = {"mentions": "mention_keys", "fetches": "fetches", "corrections": "corrections", "alert_events": "alert_events",
       "incidents": "incidents", "outbox": "outbox"}  # table -> the table whose identity gives its ids


class PostgresTransfer(PostgresPartitions):
    """`interface.Transfer` on PostgreSQL."""

    def _table(self, table: str) -> str:
        if table not in TABLES:
            raise StoreError(f"unknown table {table!r} (known: {', '.join(TABLES)})")
        return table

    def table_columns(self, table: str) -> list[str]:
        return [r["column_name"] for r in self._dicts(
            """SELECT column_name FROM information_schema.columns
               WHERE table_schema = current_schema() AND table_name = %s ORDER BY ordinal_position""",
            (self._table(table),)) if r["column_name"] not in INTERNAL.get(table, ())]

    def _key(self, table: str) -> list[str]:
        return [r["attname"] for r in self._dicts(
            """SELECT a.attname FROM pg_index i JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, n) ON true
               JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
               WHERE i.indrelid = %s::regclass AND i.indisprimary ORDER BY k.n""", (table,))]

    def read_table(self, table: str, *, batch: int = 5000) -> Iterator[list[dict[str, Any]]]:
        columns = ", ".join(f'"{c}"' for c in self.table_columns(table))
        order = ", ".join(f'"{c}"' for c in self._key(table)) or "1"
        rows: list[dict[str, Any]] = []
        for r in self._stream(f"SELECT {columns} FROM {table} ORDER BY {order}", batch=batch):
            rows.append(r)
            if len(rows) == batch:
                yield rows
                rows = []
        if rows:
            yield rows

    def write_rows(self, table: str, rows: Sequence[Mapping[str, Any]]) -> None:
        if not rows:
            return
        self._table(table)
        if table in PARTITIONED:
            self._ensure_partitions(parse_iso(r["published_at"]) for r in rows)
        columns = list(rows[0])
        values = [[r[c] for c in columns] for r in rows]
        if table == "mentions":
            columns.append("words")
            for v, r in zip(values, rows):
                v.append(search_vector(r["text"], r["title"]))
        with self.transaction() as conn, conn.cursor() as cur:
            if table == "mentions":
                cur.executemany("INSERT INTO mention_keys (id, source, source_id, url, published_at) VALUES (%s, %s, %s, %s, %s)",
                                [(r["id"], r["source"], r["source_id"], r["url"], r["published_at"]) for r in rows])
            with cur.copy(f"COPY {table} ({', '.join(chr(34) + c + chr(34) for c in columns)}) FROM STDIN") as copy:
                for v in values:
                    copy.write_row(v)

    def clear_table(self, table: str) -> None:
        with self.transaction() as conn:
            conn.execute(f"DELETE FROM {self._table(table)}")

    def count_rows(self, table: str) -> int:
        return self._one(f"SELECT count(*) AS n FROM {self._table(table)}")["n"]

    def finish_copy(self) -> None:
        with self.transaction() as conn:
            for table in sorted(set(IDS.values())):
                conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                             f"coalesce((SELECT max(id) FROM {table}), 0) + 1, false)")
        with self.transaction() as conn:
            conn.execute("ANALYZE")

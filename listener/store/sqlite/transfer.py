"""Whole tables in and out of the SQLite file (`interface.Transfer`), for `listener db copy`."""

from __future__ import annotations

from typing import Any, Iterator, Mapping, Sequence

from listener.errors import StoreError
from listener.store.sqlite.connection import SQLiteBase
from listener.store.transfer import TABLES


class SQLiteTransfer(SQLiteBase):
    """`interface.Transfer` on SQLite."""

    def _table(self, table: str) -> str:
        if table not in TABLES:
            raise StoreError(f"unknown table {table!r} (known: {', '.join(TABLES)})")
        return table

    def table_columns(self, table: str) -> list[str]:
        return [r[1] for r in self.conn.execute(f"PRAGMA table_info({self._table(table)})")]

    def read_table(self, table: str, *, batch: int = 5000) -> Iterator[list[dict[str, Any]]]:
        keys = [r[1] for r in sorted((r for r in self.conn.execute(f"PRAGMA table_info({self._table(table)})") if r[5]),
                                     key=lambda r: r[5])]
        cur = self.conn.execute(f"SELECT * FROM {table} ORDER BY {', '.join(keys) or 'rowid'}")
        names = [c[0] for c in cur.description]
        while rows := cur.fetchmany(batch):
            yield [dict(zip(names, r)) for r in rows]

    def write_rows(self, table: str, rows: Sequence[Mapping[str, Any]]) -> None:
        if not rows:
            return
        columns = list(rows[0])
        with self.transaction():
            self.conn.executemany(
                f"INSERT INTO {self._table(table)} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
                [tuple(r[c] for c in columns) for r in rows])
            if table == "mentions":
                self._index_text((r["id"], r["title"], r["text"]) for r in rows)

    def clear_table(self, table: str) -> None:
        with self.transaction():
            self.conn.execute(f"DELETE FROM {self._table(table)}")

    def count_rows(self, table: str) -> int:
        return self.conn.execute(f"SELECT count(*) FROM {self._table(table)}").fetchone()[0]

    def finish_copy(self) -> None:
        self.conn.execute("ANALYZE")  # INTEGER PRIMARY KEY ids already continue after the highest

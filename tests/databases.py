"""The engines a test runs on: the `database` fixture runs each test that takes it twice, on SQLite
(`[sqlite]` in its id) and on PostgreSQL (`[postgresql]`, on the worker's throwaway server,
tests/pgserver.py), and gives its `[database]` key for a config and the location to open.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from listener.store import MentionStore, open_store

__all__ = ["ENGINES", "Databases", "database"]

ENGINES = ("sqlite", "postgresql")


class Databases:
    """A test's databases on one engine (`engine`: "sqlite" or "postgresql"), one per folder as an
    SQLite file `m.db` in it is: `toml(folder)` is the `[database]` key naming the folder's database
    (`path = ...` or `url = ...`), `location(folder)` what `open_store` opens (the config's
    `database.location`), `open(folder)` the store itself. PostgreSQL's are made on the worker's
    throwaway server, each a copy of the migrated template. `Databases("sqlite")` is SQLite's, for
    helpers whose callers name no engine."""

    def __init__(self, engine: str, request: pytest.FixtureRequest | None = None):
        if engine not in ENGINES or (engine == "postgresql" and request is None):
            raise ValueError(f"no databases on {engine!r} without the test's request")
        self.engine = engine
        self._request = request
        self._urls: dict[Path, str] = {}

    def location(self, folder: Path) -> str | Path:
        if self.engine == "sqlite":
            return Path(folder) / "m.db"
        folder = Path(folder).resolve()
        if folder not in self._urls:
            server = self._request.getfixturevalue("pg_server")
            self._urls[folder] = server.create_database(f"d{next(_numbers)}_{os.getpid()}", template="listener_template")
        return self._urls[folder]

    def toml(self, folder: Path) -> str:
        return f'{"path" if self.engine == "sqlite" else "url"} = "{self.location(folder)}"'

    def open(self, folder: Path) -> MentionStore:
        return open_store(self.location(folder))


_numbers = iter(range(1, 1_000_000))


@pytest.fixture(params=ENGINES)
def database(request) -> Databases:
    """The engine this test runs on: each test that takes it runs on SQLite and on PostgreSQL."""
    if request.param == "postgresql":
        request.getfixturevalue("pg_server")  # skips here, before the test, without the server programs
    return Databases(request.param, request)

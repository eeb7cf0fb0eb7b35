"""A real, throwaway PostgreSQL server for tests and benchmarks: Debian's `postgresql` package,
initialised in a temporary folder and listening on a free loopback port, stopped at the end.

    with ThrowawayPostgres() as pg:
        url = pg.create_database("t1")      # postgresql://listener@127.0.0.1:PORT/t1

`pg_server` is the session fixture (one server per pytest worker); `pg_url` gives each test a
database of its own, cloned from a template migrated once per server. Without the
server binaries (`initdb`, `pg_ctl`), `pg_server` skips: `make test` installs the package as root.

initdb refuses to run as root: as root, the server runs as the `postgres` system user that the
package creates, on a folder it owns. The cluster trusts loopback connections (it is reachable only
from this machine, lives for one run and holds test data only); the superuser is `listener`.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

__all__ = ["ThrowawayPostgres", "server_binaries", "pg_server", "pg_url"]


def server_binaries() -> Path | None:
    """The folder of the newest installed PostgreSQL server's programs, or None."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).resolve().parent if initdb else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ThrowawayPostgres:
    """A PostgreSQL server in a temporary folder on 127.0.0.1 (see the module's docstring)."""

    user = "listener"

    def __init__(self, bindir: Path | None = None, folder: Path | None = None):
        """`folder`: kept between runs (initialised once, then started again on its data) instead of
        a temporary one (a benchmark's cache)."""
        self.bindir = bindir or server_binaries()
        if self.bindir is None:
            raise RuntimeError("PostgreSQL server programs not found (install Debian's postgresql package)")
        self.kept = folder is not None
        self.folder = folder.resolve() if folder else Path(tempfile.mkdtemp(prefix="listener-pg-"))
        self.folder.mkdir(parents=True, exist_ok=True)
        self.data = self.folder / "data"
        self.port = _free_port()
        self._run_as = None
        if os.geteuid() == 0:
            pw = pwd.getpwnam("postgres")
            os.chown(self.folder, pw.pw_uid, pw.pw_gid)
            self._run_as = pw

    def _run(self, *args: str) -> None:
        env = {**os.environ, "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8"}
        kwargs: dict = dict(check=True, capture_output=True, env=env, cwd=self.folder)
        if self._run_as is not None:
            kwargs.update(user=self._run_as.pw_uid, group=self._run_as.pw_gid, extra_groups=[])
        try:
            subprocess.run(args, **kwargs)
        except subprocess.CalledProcessError as exc:
            raise RuntimeError(f"{Path(args[0]).name} failed: {exc.stderr.decode(errors='replace').strip()}") from exc

    def start(self) -> "ThrowawayPostgres":
        if not (self.data / "PG_VERSION").exists():
            self._run(str(self.bindir / "initdb"), "-D", str(self.data), "-U", self.user, "-A", "trust",
                      "-E", "UTF8", "--no-sync", "--no-instructions")
        elif (self.data / "postmaster.pid").exists():  # a kept server left running by an interrupted run
            self._stop("fast")
        options = (f"-c listen_addresses=127.0.0.1 -c port={self.port} -c unix_socket_directories='{self.folder}' "
                   "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200 "
                   "-c shared_buffers=128MB")
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-l", str(self.folder / "log"), "-w",
                  "-t", "60", "-o", options, "start")
        return self

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{database}"

    def execute(self, sql: str, database: str = "postgres") -> None:
        import psycopg

        with psycopg.connect(self.url(database), autocommit=True) as conn:
            conn.execute(sql)

    def create_database(self, name: str, template: str | None = None) -> str:
        """A new empty database (a copy of `template`, when given); its URL."""
        self.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
        return self.url(name)

    def _stop(self, mode: str) -> None:
        if self.data.exists():
            try:
                self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "-t", "600", "stop")
            except RuntimeError:
                pass

    def stop(self) -> None:
        """Stop the server; a temporary folder goes with it, a kept one is shut down cleanly and stays."""
        self._stop("fast" if self.kept else "immediate")
        if not self.kept:
            shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> "ThrowawayPostgres":
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()


@pytest.fixture(scope="session")
def pg_server():
    if server_binaries() is None:
        pytest.skip("PostgreSQL server not installed (make test installs Debian's postgresql as root)")
    from listener.store.postgres import PostgresStore

    with ThrowawayPostgres() as pg:
        PostgresStore(pg.create_database("listener_template")).close()  # migrated once, cloned per test
        yield pg


_counter = iter(range(1, 1_000_000))


@pytest.fixture
def pg_url(pg_server) -> str:
    """A fresh database of this test's own on the session's server."""
    return pg_server.create_database(f"t{next(_counter)}_{int(time.time() * 1000) % 100000}",
                                     template="listener_template")

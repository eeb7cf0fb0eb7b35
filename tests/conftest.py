"""Shared fixtures: real SQLite files in tmp_path, a throwaway PostgreSQL server, `database` (the
test's engine: each test that takes it runs on both), a real HTTP server on 127.0.0.1, the real model."""

from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path

import pytest

from tests.databases import database  # noqa: F401  (fixture)
from tests.httpserver import http_server  # noqa: F401  (fixture)
from tests.pgserver import pg_server, pg_url  # noqa: F401  (fixtures)
from tests.smtpserver import smtp_server  # noqa: F401  (fixture)

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"

# Tests never reach a hub: everything is local.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

# Under pytest-xdist, each worker's PyTorch gets its share of the cores instead of all of them: its
# threads spin-wait for cores another process holds (on 2 busy cores the resume test took 62 s of CPU
# and 75 s with two threads, 16 s and 20 s with one). Set before torch is first imported, which reads it.
if os.environ.get("PYTEST_XDIST_WORKER_COUNT"):
    _share = len(os.sched_getaffinity(0)) // int(os.environ["PYTEST_XDIST_WORKER_COUNT"])
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, _share)))


@pytest.fixture
def now() -> datetime:
    return datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)


@pytest.fixture(scope="session")
def bundled_model():
    """The real bundled model, loaded once for the whole run."""
    from listener.models import load_model

    return load_model("bundled")

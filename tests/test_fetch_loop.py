"""The daemon's fetching: one event loop in one thread fetches every source when it is due, on a
bounded number of threads however many sources, and stopping lets the fetches in flight finish."""

from __future__ import annotations

import threading
import time
import tomllib
from datetime import datetime, timedelta, timezone

from listener.config import parse_config
from listener.daemon import Daemon
from listener.models import Sentiment
from listener.pipeline import FetchLoop
from listener.store import Store
from tests.httpserver import Reply
from tests.test_pipeline import rss

SOURCES = 60


def config_for(tmp_path, server, paths: list[str], every: str = "30s"):
    sources = "".join(f'\n[[sources]]\nname = "s{i:02d}"\nkind = "rss"\nurl = "{server.url(p)}"\nevery = "{every}"\n'
                      for i, p in enumerate(paths))
    return parse_config(tomllib.loads(f'[database]\npath = "{tmp_path / "m.db"}"\n'
                                      f'[[topics]]\nname = "acme"\nquery = "acme"\n{sources}'), base_dir=tmp_path)


def serve_feeds(server, n: int, published: datetime) -> list[str]:
    paths = []
    for i in range(n):
        def reply(request, i=i):
            if request.headers.get("if-none-match") == f'"v{i}"':
                return Reply(304)
            return Reply(200, rss([(f"g{i}", f"https://n{i}.example/", f"Acme {i}", f"Acme news {i}")], published=published),
                         {"ETag": f'"v{i}"', "Content-Type": "application/rss+xml"})
        paths.append(server.route(f"/f{i}.xml", reply).removeprefix(server.base_url))
    return paths


def wait_until(condition, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_every_source_is_fetched_when_due_on_one_thread(tmp_path, http_server, now):
    paths = serve_feeds(http_server, SOURCES, now - timedelta(hours=1))
    paths.append(http_server.route("/gone.xml", Reply(404)).removeprefix(http_server.base_url))
    config = config_for(tmp_path, http_server, paths)
    clock = [now]
    outcomes, lines = [], []
    before = threading.active_count()
    loop = FetchLoop(config, lambda: Store(config.database.path), clock=lambda: clock[0], on_outcome=outcomes.append,
                     log=lines.append, tick=0.05)
    loop.start()
    try:
        peak = [0]

        def counted() -> bool:
            peak[0] = max(peak[0], threading.active_count() - before)
            return len(outcomes) == SOURCES + 1

        wait_until(counted)
        time.sleep(0.3)  # a few more ticks: nothing is due again before its interval
        assert len(outcomes) == SOURCES + 1 and len(http_server.requests) == SOURCES + 1
        clock[0] = now + timedelta(seconds=31)  # each one's interval has passed
        wait_until(lambda: len(outcomes) == 2 * (SOURCES + 1))
    finally:
        loop.stop()
    assert lines == []
    assert peak[0] <= 12  # the loop, the parse pool's feeders, the resolver's: not a thread per source
    first, second = outcomes[:SOURCES + 1], outcomes[SOURCES + 1:]
    assert sorted(o.source for o in first) == sorted(o.source for o in second) == sorted(s.name for s in config.sources)
    assert sum(o.new for o in first) == SOURCES and all(o.not_modified for o in second if o.ok)
    failed = [o for o in outcomes if not o.ok]
    assert [o.source for o in failed] == ["s60", "s60"] and failed[0].error.startswith("HTTP 404 not found at ")
    with Store(config.database.path) as store:
        assert store.source_health()["s60"].consecutive_errors == 2
        assert [f["status"] for f in store.fetch_log("s60")] == ["error", "error"]


def test_stopping_lets_the_fetch_in_flight_finish_and_store(tmp_path, http_server, now):
    body = rss([("slow", "https://slow.example/", "Acme slow", "Acme news")], published=now - timedelta(hours=1))
    config = config_for(tmp_path, http_server, [http_server.route("/slow.xml", Reply(200, body, delay=1.0)).removeprefix(http_server.base_url)])
    outcomes = []
    loop = FetchLoop(config, lambda: Store(config.database.path), clock=lambda: now, on_outcome=outcomes.append,
                     log=print, tick=0.05)
    loop.start()
    wait_until(lambda: http_server.requests_to("/slow.xml"))
    loop.stop()  # while the server is still answering
    assert [(o.source, o.ok, o.new) for o in outcomes] == [("s00", True, 1)]
    with Store(config.database.path) as store:
        assert [m["source_id"] for m in store.iter_mentions()] == ["slow"]


class Neutral:
    name = "test-neutral"

    def score(self, texts):
        return [Sentiment.from_probs(0.1, 0.8, 0.1) for _ in texts]


def test_the_daemon_fetches_many_sources_on_few_threads(tmp_path, http_server):
    sources = 150
    paths = serve_feeds(http_server, sources, datetime.now(timezone.utc) - timedelta(minutes=5))
    config = config_for(tmp_path, http_server, paths, every="10m")
    fetched, stop, peak = [], threading.Event(), [0]
    before = threading.active_count()

    def log(line: str) -> None:
        if line.startswith("fetched "):
            fetched.append(line)

    daemon = threading.Thread(target=Daemon(config, Neutral, log=log).run, args=(stop,))
    daemon.start()
    try:
        def done() -> bool:
            peak[0] = max(peak[0], threading.active_count() - before)
            return len(fetched) == sources

        wait_until(done, 120)
    finally:
        stop.set()
        daemon.join()
    assert sorted(fetched) == sorted(f"fetched s{i:02d}: 1 items, 1 new" for i in range(sources))
    assert peak[0] <= 20  # was a thread per source (and one more per source parsing)
    with Store(config.database.path) as store:
        assert sum(1 for _ in store.iter_mentions()) == sources

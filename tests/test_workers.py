"""Several workers on one PostgreSQL database (issue 20): three daemons share the work through
leases and claims, one of them a real process killed with SIGKILL in the middle of its cycle.

The survivors are `Daemon` objects in this process, run at the same moment in threads (real
contention on the real server), on an injected clock: a dead worker's leases and claims expire
on that clock, so what takes minutes in production takes a few rounds here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

from listener.config import load_config
from listener.daemon import LEADER_TTL, Daemon
from listener.pipeline.fetch import fetch_lease
from listener.pipeline.score import CLAIM_TTL
from listener.status import alert_overview, source_statuses
from listener.store import open_store
from tests.test_pipeline import rss

REPO = Path(__file__).resolve().parents[1]
T = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)
FEEDS = {f"news{n}": [(f"{n}-{i}", f"https://news{n}.example/{i}", f"Acme item {n}.{i}", f"Acme news {n}.{i}")
                      for i in range(12)] for n in range(1, 4)}
FEEDS["news3"].append(("recall", "https://news3.example/recall", "Acme recall", "Acme announces a recall of its soup"))


def write_config(tmp_path: Path, url: str, http_server, smtp_port: int) -> Path:
    sources = "".join(f"""
[[sources]]
name = "{name}"
kind = "rss"
url = "{http_server.url('/' + name + '.xml')}"
every = "1h"  # due once in this test
""" for name in FEEDS)
    path = tmp_path / "config.toml"
    path.write_text(f"""
[database]
url = "{url}"

[[topics]]
name = "acme"
query = "acme"
{sources}
[email]
host = "127.0.0.1"
port = {smtp_port}
from = "listener@example.org"
to = ["pr@example.org"]

[[alerts]]
name = "recall"
kind = "keyword"
topic = "acme"
query = "recall"
window = "7d"
""")
    return path


# The dying worker: it leads, fetches news1, takes news3's lease (as if it had begun fetching it),
# claims mentions to score and dies with SIGKILL inside the transaction that writes their scores.
DYING = textwrap.dedent("""
    import os, signal, sys
    from datetime import datetime
    from listener.config import load_config
    from listener.daemon import LEADER_TTL, job_fetch
    from listener.models import Sentiment
    from listener.pipeline.fetch import fetch_lease
    from listener.pipeline.score import CLAIM_TTL
    from listener.store import open_store

    config = load_config(sys.argv[1])
    now = datetime.fromisoformat(sys.argv[2])
    store = open_store(config.database.location)
    assert store.claim_lease("leader", "dying:1", now, LEADER_TTL)
    print(len(job_fetch(config, store, now, "news1", worker="dying:1")), flush=True)
    assert store.claim_lease("fetch:news3", "dying:1", now, fetch_lease(config))
    claimed = store.claim_unscored("dying:1", now, CLAIM_TTL, limit=5)
    print(len(claimed), flush=True)
    with store.transaction():
        store.save_scores([(mid, Sentiment.from_probs(0.1, 0.8, 0.1)) for mid, _, _ in claimed], "m", now)
        os.kill(os.getpid(), signal.SIGKILL)
""")


def test_three_workers_one_killed_mid_cycle_store_score_and_notify_everything_once(
        tmp_path, pg_url, http_server, smtp_server, bundled_model):
    for name, items in FEEDS.items():
        http_server.route(f"/{name}.xml", body=rss(items, published=T - timedelta(minutes=5)))
    path = write_config(tmp_path, pg_url, http_server, smtp_server.port)
    config = load_config(path)
    dying = subprocess.run([sys.executable, "-c", DYING, str(path), T.isoformat()],
                           capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert dying.returncode == -9, dying.stderr  # killed, its score transaction never committed
    assert dying.stdout.split() == ["1", "5"]  # it fetched news1 and claimed five mentions

    clock = [T]
    logs: list[str] = []
    workers = [Daemon(config, lambda: bundled_model, clock=lambda: clock[0], log=logs.append, worker=f"w{i}")
               for i in (1, 2)]

    def cycle(daemon: Daemon) -> None:
        with open_store(config.database.location) as store:
            for source in FEEDS:
                daemon.fetch(store, source)
            daemon.score(store)
            daemon.evaluate(store)
            daemon.deliver(store)

    def round_at(at: datetime) -> None:
        clock[0] = at
        threads = [threading.Thread(target=cycle, args=(d,)) for d in workers]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert not [line for line in logs if line.startswith("error")], logs

    with open_store(pg_url) as store:
        round_at(T)  # the dead worker still holds the lead, news3 and five mentions
        assert store.count_rows("mentions") == 24  # news1 (by it) and news2 (by one of the survivors)
        assert store.count_unscored() == 5 and smtp_server.messages == []
        assert store.leases()["leader"]["worker"] == "dying:1" and store.rule_evaluations() == {}  # nobody else evaluates
        round_at(T + LEADER_TTL)  # its lead has expired: one survivor leads now
        assert store.leases()["leader"]["worker"] in ("w1", "w2")
        assert store.rule_evaluations()["recall"]["last_evaluated_at"] == "2026-11-20T12:00:45Z"
        assert store.count_unscored() == 5  # still claimed by the dead worker
        round_at(T + CLAIM_TTL)  # its claims have expired: the five are scored
        assert store.count_unscored() == 0
        round_at(T + fetch_lease(config))  # news3's lease has expired: fetched, the rule fires, mail goes out
        round_at(T + fetch_lease(config) + timedelta(minutes=1))
        counts = store.read_only_query(
            "SELECT count(*) AS n, count(DISTINCT source_id) AS ids, count(sentiment) AS scored FROM mentions").rows
        assert counts == [(37, 37, 37)]  # every served item stored once, and scored
        firing = [e for e in store.alert_events(T - timedelta(days=1)) if e["state"] == "firing"]
        assert [(e["rule"], json.loads(e["labels"])) for e in firing] == [("recall", {"topic": "acme"})]  # evaluated once
        assert len(store.incidents(T - timedelta(days=1))) == 1
        assert store.outbox_counts() == {"queued": 0, "sent": 1, "given_up": 0}
        sources = {s.name: s.worker for s in source_statuses(config, store)}
        assert sources["news1"] == "dying:1" and {sources["news2"], sources["news3"]} <= {"w1", "w2"}
        assert alert_overview(config, store, clock[0], 1).leader["worker"] in ("w1", "w2")
    assert [str(m["Subject"]).split(":")[0] for m in smtp_server.messages] == ["[listener] FIRING acme"]

    # both survivors deliver at the same moment: each of twenty notifications goes out once
    with open_store(pg_url) as store:
        for i in range(20):
            store.enqueue(message_id=f"<n{i}@test>", channel="email", kind="alert", recipients=["pr@example.org"],
                          subject=f"n{i}", body_text="b", body_html=None, payload=None, now=clock[0])
    start = threading.Barrier(2)

    def deliver(daemon: Daemon) -> None:
        with open_store(pg_url) as store:
            start.wait()
            daemon.deliver(store)

    threads = [threading.Thread(target=deliver, args=(d,)) for d in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    sent = sorted(str(m["Message-ID"]) for m in smtp_server.messages[1:])
    assert sent == sorted(f"<n{i}@test>" for i in range(20))

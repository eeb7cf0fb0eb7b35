"""The daemon as a real process, and the outbox against a real SMTP server that goes down and up."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import tomllib
from datetime import datetime, timedelta, timezone
from pathlib import Path

from listener.config import parse_config
from listener.daemon import job_deliver
from listener.notify import retry_delay
from listener.store import Store, run_readonly
from tests.test_pipeline import rss

REPO = Path(__file__).resolve().parents[1]


def queue(store: Store, n: int, now) -> None:
    for i in range(n):
        store.enqueue(message_id=f"<m{i}@test>", channel="email", kind="alert", recipients=["pr@example.org"],
                          subject=f"[listener] FIRING test {i}", body_text=f"body {i}", body_html=f"<p>body {i}</p>",
                          payload=None, now=now)


def email_config(tmp_path, port: int):
    return parse_config(tomllib.loads(f"""
[database]
path = "{tmp_path / 'm.db'}"
[email]
host = "127.0.0.1"
port = {port}
from = "listener@example.org"
to = ["pr@example.org"]
timeout = "5s"
"""), base_dir=tmp_path)


def test_an_hour_of_smtp_outage_loses_nothing_and_sends_each_message_once(tmp_path, smtp_server, now):
    config = email_config(tmp_path, smtp_server.port)
    smtp_server.stop()
    with Store(config.database.path) as store:
        queue(store, 3, now)
        t = now
        while t < now + timedelta(hours=1):  # the daemon tries every 15 seconds
            sent, failed = job_deliver(config, store, t)
            assert sent == 0
            t += timedelta(seconds=15)
        rows = [(n["attempts"], n["last_error"], n["sent_at"]) for n in store.notifications()]
        assert all(a >= 10 and "cannot reach SMTP server 127.0.0.1" in e and s is None for a, e, s in rows)
        assert retry_delay(10) == timedelta(minutes=5)  # retries settle at every 5 minutes
        smtp_server.start()
        delivered = 0
        while t < now + timedelta(hours=1, minutes=6):
            delivered += job_deliver(config, store, t).sent
            t += timedelta(seconds=15)
        assert delivered == 3
        assert tuple(job_deliver(config, store, t + timedelta(hours=1))) == (0, 0)
    assert sorted(str(m["Message-ID"]) for m in smtp_server.messages) == ["<m0@test>", "<m1@test>", "<m2@test>"]
    assert [str(m["Subject"]) for m in smtp_server.messages][0] == "[listener] FIRING test 0"


def test_email_has_text_and_html_parts(tmp_path, smtp_server, now):
    config = email_config(tmp_path, smtp_server.port)
    with Store(config.database.path) as store:
        queue(store, 1, now)
        assert tuple(job_deliver(config, store, now)) == (1, 0)
    msg = smtp_server.messages[0]
    types = [p.get_content_type() for p in msg.walk()]
    assert "text/plain" in types and "text/html" in types
    assert msg["To"] == "pr@example.org" and msg["From"] == "listener@example.org"


# ---------------------------------------------------------------- the process
def daemon_config(tmp_path, feed_url: str, smtp_port: int) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(f"""
[database]
path = "{tmp_path / 'm.db'}"

[[topics]]
name = "acme"
query = "acme"

[[sources]]
name = "news"
kind = "rss"
url = "{feed_url}"
every = "30s"

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


class Daemon:
    def __init__(self, config: Path, log: Path):
        self.log = log
        env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"}
        self.proc = subprocess.Popen([sys.executable, "-m", "listener.cli", "--config", str(config), "run"],
                                     stdout=open(log, "ab"), stderr=subprocess.STDOUT, env=env, cwd=str(config.parent))

    def wait_for(self, text: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log.read_text():
                return
            if self.proc.poll() is not None:
                raise AssertionError(f"daemon exited {self.proc.returncode}: {self.log.read_text()[-2000:]}")
            time.sleep(0.2)
        raise AssertionError(f"timed out waiting for {text!r}: {self.log.read_text()[-2000:]}")


def test_sigkill_mid_cycle_then_restart_loses_nothing_and_sends_no_duplicate(tmp_path, http_server, smtp_server):
    items = [(f"g{i}", f"https://news.example/{i}", f"Acme item {i}", f"Acme news number {i}") for i in range(40)]
    items.append(("recall", "https://news.example/recall", "Acme recall", "Acme announces a recall of its soup"))
    # The daemon runs on the real clock: the items must be newer than the first fetch's backfill (2d).
    http_server.route("/feed.xml", body=rss(items, published=datetime.now(timezone.utc) - timedelta(minutes=5)))
    config = daemon_config(tmp_path, http_server.url("/feed.xml"), smtp_server.port)
    log = tmp_path / "daemon.log"

    first = Daemon(config, log)
    first.wait_for("fetched news: 41 items, 41 new")
    first.proc.send_signal(signal.SIGKILL)  # mid-cycle: scoring has not finished
    first.proc.wait()

    second = Daemon(config, log)
    second.wait_for("notifications: 1 sent")
    second.proc.send_signal(signal.SIGTERM)  # graceful: finish the batch, exit 0
    assert second.proc.wait(timeout=60) == 0
    assert "stopped" in log.read_text()

    third = Daemon(config, log)  # a restart neither re-sends nor re-alerts
    third.wait_for("listener running")
    time.sleep(3)
    third.proc.send_signal(signal.SIGINT)
    assert third.proc.wait(timeout=60) == 0

    db = tmp_path / "m.db"
    assert run_readonly(db, "SELECT count(*), count(DISTINCT source_id), count(sentiment) FROM mentions").rows == [(41, 41, 41)]
    assert [str(m["Subject"]).split(":")[0] for m in smtp_server.messages] == ["[listener] FIRING acme"]
    assert run_readonly(db, "SELECT count(*) FROM outbox WHERE sent_at IS NULL").rows == [(0,)]


def test_a_second_daemon_on_the_same_database_is_refused(tmp_path, http_server, smtp_server):
    http_server.route("/feed.xml", body=rss([]))
    config = daemon_config(tmp_path, http_server.url("/feed.xml"), smtp_server.port)
    first = Daemon(config, tmp_path / "a.log")
    try:
        first.wait_for("listener running")
        second = subprocess.run([sys.executable, "-m", "listener.cli", "--config", str(config), "run"],
                                capture_output=True, text=True, timeout=60,
                                env={**os.environ, "PYTHONPATH": str(REPO)})
        assert second.returncode == 1
        assert f"(pid {first.proc.pid}) is already using" in second.stderr
    finally:
        first.proc.send_signal(signal.SIGTERM)
        assert first.proc.wait(timeout=60) == 0

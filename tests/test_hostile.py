"""Hostile input: nothing a stranger posts can crash listener, block a notification, or run in a
reader's browser. Each test is one of the ways in that failed when tried from outside, on real
servers on 127.0.0.1 and through the real command line."""

from __future__ import annotations

import base64
import json
import sqlite3
import tomllib
from datetime import datetime, timedelta, timezone

import pytest
from click.testing import CliRunner

from listener.alerts import evaluate
from listener.cli import cli
from listener.config import parse_config
from listener.notify import deliver
from listener.store import MentionRow, Store
from listener.models import Sentiment
from listener.sources import SourceState
from tests.httpserver import Reply
from tests.smtpserver import html_body, text_body
from tests.test_pipeline import rss

NOW = datetime.now(timezone.utc) - timedelta(minutes=5)  # the CLI runs on the real clock
GOOD = rss([("g1", "https://news.example/1", "Acme recalls soup", "Acme Foods recalls its soup."),
            ("g2", "https://news.example/2", "Acme again", "Acme is in the news again.")], published=NOW)


def write_config(tmp_path, sources: str, extra: str = "") -> str:
    path = tmp_path / "config.toml"
    path.write_text(f"""
[database]
path = "m.db"

[[topics]]
name = "acme"
query = 'acme'
{sources}
{extra}
""")
    return str(path)


def feed_source(name: str, url: str) -> str:
    return f'\n[[sources]]\nname = "{name}"\nkind = "rss"\nurl = "{url}"\n'


def rows(cfg_dir, sql: str, *params) -> list[tuple]:
    with sqlite3.connect(cfg_dir / "m.db") as conn:
        return conn.execute(sql, params).fetchall()


# ---------------------------------------------------------------- 1. markup in feed text
def test_markup_in_a_fetch_error_and_in_posts_is_shown_as_typed(tmp_path, http_server):
    hostile = b'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY [/red]>]><rss version="2.0"><channel></channel></rss>'
    http_server.route("/hostile.xml", body=hostile, headers={"Content-Type": "application/rss+xml"})
    marked = rss([("m1", "https://news.example/m", "Acme [/] [bold red]loud[/]", "Acme :smile: [link=https://x]y[/link]"
                   " \x1b[2J cleared?")], published=NOW)
    http_server.route("/good.xml", body=GOOD, headers={"Content-Type": "application/rss+xml"})
    http_server.route("/marked.xml", body=marked, headers={"Content-Type": "application/rss+xml"})
    cfg = write_config(tmp_path, feed_source("hostile", http_server.url("/hostile.xml"))
                       + feed_source("good", http_server.url("/good.xml"))
                       + feed_source("marked", http_server.url("/marked.xml")))
    runner = CliRunner()
    result = runner.invoke(cli, ["--config", cfg, "fetch", "--no-score"])
    assert result.exit_code == 1 and result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert "hostile: not a feed" in result.output
    assert rows(tmp_path, "SELECT source, count(*) FROM mentions GROUP BY source ORDER BY source") == [
        ("good", 2), ("marked", 1)]
    listed = runner.invoke(cli, ["--config", cfg, "sources"])
    assert listed.exit_code == 0, listed.output
    assert "hostile" in listed.output and "MarkupError" not in listed.output
    # stored text has no control characters; shown as typed, markup and emoji codes included
    stored = rows(tmp_path, "SELECT title, text FROM mentions WHERE source = 'marked'")[0]
    assert "\x1b" not in stored[1] and "[2J cleared?" in stored[1]
    for command in (["search", "acme"], ["sql", "select title, text from mentions where source = 'marked'"]):
        shown = runner.invoke(cli, ["--config", cfg, *command])
        assert shown.exit_code == 0, (command, shown.output)
        assert "[bold red]loud[/]" in shown.output and ":smile:" in shown.output and "\x1b" not in shown.output
    with Store(tmp_path / "m.db") as store:
        store.save_scores([(m["id"], Sentiment.from_probs(0.1, 0.2, 0.7)) for m in store.iter_mentions()], "test", NOW)
    digest = runner.invoke(cli, ["--config", cfg, "digest", "--date", (NOW - timedelta(hours=1)).strftime("%Y-%m-%d")])
    assert digest.exit_code == 0, digest.output
    digest_today = runner.invoke(cli, ["--config", cfg, "digest", "--date", NOW.strftime("%Y-%m-%d")])
    assert digest_today.exit_code == 0 and "MarkupError" not in digest_today.output


# ---------------------------------------------------------------- 2. lone surrogates
def test_a_lone_surrogate_costs_nothing_but_itself(tmp_path, http_server):
    item = {"id": "j1", "title": "acme \ud800 broken", "content_text": "acme \udfff text \ud83d\ude00",
            "date_published": NOW.isoformat()}
    body = json.dumps({"version": "https://jsonfeed.org/version/1.1", "title": "j", "items": [item]}).encode()
    assert b"\\ud800" in body  # valid JSON, an invalid character
    http_server.route("/feed.json", body=body, headers={"Content-Type": "application/feed+json"})
    xml = rss([("r1", "https://news.example/r1", "acme &#xD800; bad ref", "acme &#0; nul &#x110000; too big"),
               ("r2", "https://news.example/r2", "acme fine", "acme valid item")], published=NOW)
    http_server.route("/refs.xml", body=xml, headers={"Content-Type": "application/rss+xml"})
    http_server.route("/good.xml", body=GOOD, headers={"Content-Type": "application/rss+xml"})
    cfg = write_config(tmp_path, feed_source("json", http_server.url("/feed.json"))
                       + feed_source("refs", http_server.url("/refs.xml"))
                       + feed_source("good", http_server.url("/good.xml")))
    result = CliRunner().invoke(cli, ["--config", cfg, "fetch", "--no-score"])
    assert result.exit_code == 0, result.output
    got = dict(((s, i), (t, x)) for s, i, t, x in rows(tmp_path, "SELECT source, source_id, title, text FROM mentions"))
    assert got[("json", "j1")] == ("acme \ufffd broken", "acme \ufffd text \U0001F600")
    assert got[("refs", "r1")][0] == "acme \ufffd bad ref" and got[("refs", "r2")] == ("acme fine", "acme valid item")
    assert {s for s, _ in got} == {"json", "refs", "good"} and len(got) == 5
    assert rows(tmp_path, "SELECT count(*) FROM sources WHERE consecutive_errors > 0") == [(0,)]


def test_a_source_whose_mentions_cannot_be_stored_fails_alone(tmp_path, now):
    from listener.pipeline import record
    from listener.sources import FetchResult, Mention

    config = parse_config(tomllib.loads(write_config_text(tmp_path)), base_dir=tmp_path)
    huge = Mention(source_id="x", text="acme", likes=2**70)  # no SQLite integer holds it
    with Store(config.database.path) as store:
        bad = record(config, store, config.source("bad"), FetchResult([huge], SourceState()), started_at=now, now=now)
        good = record(config, store, config.source("good"), FetchResult([Mention("y", "acme fine")], SourceState()),
                      started_at=now, now=now)
        assert not bad.ok and "could not store its mentions" in bad.error and good.ok and good.new == 1
        health = store.source_health()
        assert health["bad"].consecutive_errors == 1 and health["good"].consecutive_errors == 0


def write_config_text(tmp_path) -> str:
    return f"""
[database]
path = "{tmp_path / 'm.db'}"
[[topics]]
name = "acme"
query = "acme"
[[sources]]
name = "bad"
kind = "rss"
url = "https://bad.example/feed"
[[sources]]
name = "good"
kind = "rss"
url = "https://good.example/feed"
"""


# ---------------------------------------------------------------- 3. one channel never blocks another
NOTIFY_CONFIG = """
[database]
path = "{db}"
[[topics]]
name = "acme"
query = "acme"
[email]
host = "127.0.0.1"
port = {port}
from = "listener@example.org"
to = ["pr@example.org"]
[notify]
retry_first = "7s"
retry_max = "1m"
[[webhooks]]
name = "broken"
url_env = "TEST_BROKEN_URL"
[[webhooks]]
name = "gone"
url_env = "TEST_GONE_URL"
[[webhooks]]
name = "busy"
url_env = "TEST_BUSY_URL"
[[alerts]]
name = "recall"
kind = "keyword"
topic = "acme"
query = "recall"
channels = ["broken", "gone", "busy", "email"]
"""


def fire_recall(store: Store, config, now: datetime) -> None:
    rows_ = [MentionRow("feed", "1", "Acme announces a recall", now, now, ("acme",),
                        url="javascript:alert(document.cookie)")]
    ids = store.save_fetch("feed", "rss", rows_, SourceState(), started_at=now, now=now, next_check_at=now,
                           items=1, requests=1).new_ids
    store.save_scores([(ids[0], Sentiment.from_probs(0.8, 0.1, 0.1))], "test", now)
    assert [t.state for t in evaluate(config, store, now + timedelta(minutes=1))] == ["pending", "firing"]


def test_a_malformed_webhook_url_blocks_nothing_and_4xx_is_given_up(tmp_path, http_server, smtp_server, now,
                                                                    monkeypatch):
    config = parse_config(tomllib.loads(NOTIFY_CONFIG.format(db=tmp_path / "m.db", port=smtp_server.port)),
                          base_dir=tmp_path)
    monkeypatch.setenv("TEST_BROKEN_URL", "http://[::1/hook")
    monkeypatch.setenv("TEST_GONE_URL", http_server.url("/gone"))
    monkeypatch.setenv("TEST_BUSY_URL", http_server.url("/busy"))
    http_server.route("/gone", Reply(404, b"no such hook"))
    busy = [Reply(503, b"later"), Reply(200, b"ok")]
    http_server.route("/busy", lambda request: busy.pop(0))
    t = now + timedelta(minutes=1)
    with Store(config.database.path) as store:
        fire_recall(store, config, now)
        report = deliver(config, store, t)
        assert (report.sent, report.failed, report.given_up) == (1, 1, 2)  # the email went out
        assert len(smtp_server.messages) == 1
        status = {n["channel"]: (n["sent_at"] is not None, n["given_up_at"] is not None, n["last_error"], n["next_attempt_at"])
                  for n in store.notifications()}
        assert status["email"][:2] == (1, 0)
        assert status["webhook:broken"][:2] == (0, 1) and "TEST_BROKEN_URL is not a usable URL" in status["webhook:broken"][2]
        assert status["webhook:gone"][:2] == (0, 1) and "HTTP 404" in status["webhook:gone"][2]
        assert status["webhook:busy"][:2] == (0, 0) and "HTTP 503" in status["webhook:busy"][2]
        # the retry comes after [notify] retry_first, not the built-in 30 s
        assert datetime.fromisoformat(status["webhook:busy"][3].replace("Z", "+00:00")) == t + timedelta(seconds=7)
        assert tuple(deliver(config, store, t + timedelta(seconds=6))) == (0, 0)
        later = deliver(config, store, t + timedelta(seconds=7))
        assert (later.sent, later.failed, later.given_up) == (1, 0, 0)
        assert tuple(deliver(config, store, t + timedelta(hours=1))) == (0, 0)  # given up stays given up
        assert store.outbox_counts() == {"queued": 0, "sent": 2, "given_up": 2}
        # a javascript: URL never becomes a link in the alert mail
        mail = smtp_server.messages[0]
        assert "javascript:" not in html_body(mail) and "javascript:" not in text_body(mail)
    shown = CliRunner().invoke(cli, ["--config", str(write_notify_file(tmp_path, smtp_server.port)), "alerts"])
    assert shown.exit_code == 0, shown.output
    assert "outbox: 0 queued, 2 sent, 2 given up" in shown.output
    assert "webhook:gone: 1 given up (no retry can deliver them): webhook gone: HTTP 404" in shown.output


def write_notify_file(tmp_path, port: int):
    path = tmp_path / "notify.toml"
    path.write_text(NOTIFY_CONFIG.format(db=tmp_path / "m.db", port=port))
    return path


def test_the_daemon_log_and_alerts_say_why_mail_is_stuck(tmp_path, now):
    from listener.daemon import Daemon

    port = 9  # discard: nothing listens there
    config = parse_config(tomllib.loads(NOTIFY_CONFIG.format(db=tmp_path / "m.db", port=port)
                                        .replace('channels = ["broken", "gone", "busy", "email"]', 'channels = ["email"]')),
                          base_dir=tmp_path)
    lines: list[str] = []
    with Store(config.database.path) as store:
        fire_recall(store, config, now)
        daemon = Daemon(config, None, log=lines.append, clock=lambda: now + timedelta(minutes=1))
        daemon.deliver(store)
    assert lines == [f"notifications: 0 sent, 1 failed (queued for retry): email: cannot reach SMTP server "
                     f"127.0.0.1:{port}: [Errno 111] Connection refused"]
    path = tmp_path / "stuck.toml"
    path.write_text(NOTIFY_CONFIG.format(db=tmp_path / "m.db", port=port))
    shown = CliRunner().invoke(cli, ["--config", str(path), "alerts"])
    assert "outbox: 1 queued, 0 sent" in shown.output
    assert "email: 1 waiting since" in shown.output and f"cannot reach SMTP server 127.0.0.1:{port}" in shown.output


# ---------------------------------------------------------------- 4. import: every bad line named
def test_import_names_every_bad_line_and_field_and_keeps_the_good_ones(tmp_path):
    cfg = write_config(tmp_path, "")
    good = {"source": "feed", "id": "1", "published_at": "2026-11-20T10:00:00Z", "text": "acme ok"}
    lines = [
        json.dumps(good).encode(),
        b'{"source": "feed", "id": "2", "published_at": "2026-11-20T10:00:00Z", "text": "acme \xff\xfe"}',
        json.dumps({**good, "id": "3", "text": "acme \ud800"}).encode(),
        json.dumps({**good, "id": "4", "hashtags": 5}).encode(),
        json.dumps({**good, "id": "5", "url": 5}).encode(),
        json.dumps({**good, "id": "6", "title": ["a"]}).encode(),
        json.dumps({**good, "id": "7", "likes": {}}).encode(),
        json.dumps({**good, "id": "8", "url": "javascript:alert(1)"}).encode(),
        b"[1, 2]",
        b'{"source": "feed", "id": "9"',
    ]
    path = tmp_path / "in.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    result = CliRunner().invoke(cli, ["--config", cfg, "import", "--no-score", str(path)])
    assert result.exit_code == 1 and "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith(str(path))]
    assert errors == [
        f"{path}:2: not UTF-8 (byte 0xff at column 85)",
        f'{path}:4: "hashtags" must be a list of strings, not a number',
        f'{path}:5: "url" must be a string, not a number',
        f'{path}:6: "title" must be a string, not a list',
        f'{path}:7: "likes" must be a whole number, not an object',
        f"{path}:9: expected a JSON object, not a list",
        f"{path}:10: not JSON (Expecting ',' delimiter at column 29)",
    ]
    assert "10 lines read: 3 new, 0 already stored, 0 matching no topic, 7 bad (left out); 0 scored" in result.output
    stored = dict(rows(tmp_path, "SELECT source_id, text FROM mentions"))
    assert stored == {"1": "acme ok", "3": "acme \ufffd", "8": "acme ok"}
    # 5. one URL policy for every way in: the javascript: URL is not stored as a link
    assert rows(tmp_path, "SELECT url FROM mentions WHERE source_id = '8'") == [(None,)]


def test_links_already_stored_as_javascript_never_become_hrefs(tmp_path):
    from tests.test_digest import PROBS, SETUP, make_config

    config = make_config(tmp_path)
    at = SETUP - timedelta(hours=12)
    with Store(config.database.path) as store:
        for n, url in enumerate(["https://ok.example/fine", "javascript:alert(1)", "data:text/html,<script>x</script>",
                                 "JaVaScRiPt:y"]):
            row = MentionRow("feed", f"u{n}", f"acme post {n}", at, SETUP, ("acme",), url=url, likes=10 - n)
            ids = store.save_fetch("feed", "rss", [row], SourceState(), started_at=SETUP, now=SETUP,
                                   next_check_at=SETUP, items=1, requests=1).new_ids
            store.save_scores([(ids[0], Sentiment.from_probs(*PROBS["positive"]))], "test", SETUP)
    day = at.astimezone(config.digest.tzinfo).strftime("%Y-%m-%d")
    for fmt in ("html", "markdown", "text"):
        out = CliRunner().invoke(cli, ["--config", str(tmp_path / "config.toml"), "digest", "--date", day,
                                       "--format", fmt])
        assert out.exit_code == 0, out.output
        lowered = out.output.lower()
        assert "javascript:" not in lowered and "data:text/html" not in lowered, fmt
        assert "https://ok.example/fine" in out.output


# ---------------------------------------------------------------- 6. read-only SQL creates nothing
@pytest.mark.parametrize("sql", [
    "attach database '{dir}/x.db' as x",
    "attach 'file:{dir}/y.db?mode=rwc' as y",
    "vacuum into '{dir}/z.db'",
    "pragma writable_schema=1",
    "pragma journal_mode=delete",
    "select load_extension('{dir}/evil')",
])
def test_read_only_sql_refuses_what_writes_or_creates_files(tmp_path, sql):
    cfg = write_config(tmp_path, "")
    Store(tmp_path / "m.db").close()
    result = CliRunner().invoke(cli, ["--config", cfg, "sql", sql.format(dir=tmp_path)])
    assert result.exit_code == 1 and "is not allowed: the database is read-only here" in result.output
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("m.db")) == ["config.toml"]
    assert rows(tmp_path, "pragma writable_schema") == [(0,)]


def test_read_only_sql_caps_the_size_of_a_value(tmp_path):
    cfg = write_config(tmp_path, "")
    Store(tmp_path / "m.db").close()
    result = CliRunner().invoke(cli, ["--config", cfg, "sql", "select length(zeroblob(1000000000))"])
    assert result.exit_code == 1 and "too big" in result.output
    ok = CliRunner().invoke(cli, ["--config", cfg, "sql", "--csv", "pragma table_info(mentions)"])
    assert ok.exit_code == 0 and "source_id" in ok.output


# ---------------------------------------------------------------- 7. echoed credentials
def test_a_server_echoing_credentials_never_gets_them_stored_or_shown(tmp_path, http_server, monkeypatch):
    monkeypatch.setenv("TEST_REDDIT_ID", "my-client-id")
    monkeypatch.setenv("TEST_REDDIT_SECRET", "my-very-secret-value")
    basic = base64.b64encode(b"my-client-id:my-very-secret-value").decode()
    echo = lambda request: Reply(200, json.dumps({"error": request.headers.get("authorization", ""),  # noqa: E731
                                                  "echo": request.body.decode()}).encode(),
                                 {"Content-Type": "application/json"})
    http_server.route("/api/v1/access_token", echo)
    cfg = write_config(tmp_path, f"""
[[sources]]
name = "reddit"
kind = "reddit"
query = "acme"
client_id_env = "TEST_REDDIT_ID"
client_secret_env = "TEST_REDDIT_SECRET"
auth_url = "{http_server.url('').rstrip('/')}"
base_url = "{http_server.url('')}"
""")
    runner = CliRunner()
    fetched = runner.invoke(cli, ["--config", cfg, "fetch", "--no-score"])
    listed = runner.invoke(cli, ["--config", cfg, "sources", "--json"])
    stored = rows(tmp_path, "SELECT error FROM fetches") + rows(tmp_path, "SELECT last_error FROM sources")
    assert fetched.exit_code == 1 and "Reddit gave no access token" in fetched.output
    for text in (fetched.output, listed.output, json.dumps(stored)):
        assert basic not in text and "my-very-secret-value" not in text, text
    assert "REDACTED" in stored[0][0]


def test_web_urls_keep_their_stored_canonical_form():
    """Only what a URL must not hold raw is encoded: a link stored before (non-ASCII letters,
    %-escapes) keeps its canonical form, so deduplication by URL still finds it."""
    from listener.sources.text import canonical_url, web_url

    for url in ["https://nl.example/café?q=één", "https://x.org/a%20b?c=%5B", "https://news.example/acme?id=1&b=2",
                "https://shop.example/a[1]?page[n]=2&q=a|b", "https://x.org/a\tb"]:
        assert web_url(url) == canonical_url(url), url
    assert web_url("https://ok.example/a b>c") == "https://ok.example/a%20b%3Ec"
    assert web_url("http://[::1]:8080/p[1]") == "http://[::1]:8080/p[1]"


def test_read_only_sql_still_reads_virtual_tables(tmp_path):
    """FTS5, json_each and the pragma table functions connect through the schema table: allowed."""
    from listener.errors import StoreError
    from listener.store import run_readonly

    with Store(tmp_path / "m.db") as store:
        store.save_mentions([MentionRow("feed", "1", "acme recall", NOW, NOW, ("acme",))])
    db = tmp_path / "m.db"
    assert run_readonly(db, "select count(*) from mentions where id in "
                            "(select rowid from mentions_fts where mentions_fts match 'recall')").rows == [(1,)]
    assert run_readonly(db, "select value from json_each('[1, 2]')").rows == [(1,), (2,)]
    assert ("source_id",) in run_readonly(db, "select name from pragma_table_info('mentions')").rows
    for sql in ("update sqlite_master set sql = ''", "delete from mentions", "create temp table t(x)"):
        with pytest.raises(StoreError):
            run_readonly(db, sql)


def test_a_temporary_smtp_refusal_is_retried_and_a_permanent_one_given_up(tmp_path, now):
    """Greylisting (450) keeps the mail queued; 550 gives it up."""
    from aiosmtpd.controller import Controller

    from tests.smtpserver import free_port

    class Refusing:
        code = "450 4.7.1 greylisted, try again later"

        async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
            return self.code

    handler, port = Refusing(), free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        text = NOTIFY_CONFIG.format(db=tmp_path / "m.db", port=port).replace(
            'channels = ["broken", "gone", "busy", "email"]', 'channels = ["email"]')
        config = parse_config(tomllib.loads(text), base_dir=tmp_path)
        with Store(config.database.path) as store:
            fire_recall(store, config, now)
            t = now + timedelta(minutes=1)
            first = deliver(config, store, t)
            assert (first.sent, first.failed, first.given_up) == (0, 1, 0) and "450" in first.errors["email"]
            handler.code = "550 5.1.1 no such user"
            second = deliver(config, store, t + timedelta(minutes=5))
            assert (second.sent, second.failed, second.given_up) == (0, 0, 1)
    finally:
        controller.stop()


def test_an_import_line_with_a_huge_number_or_a_far_date_is_one_bad_line(tmp_path):
    cfg = write_config(tmp_path, "")
    good = {"source": "feed", "id": "1", "published_at": "2026-11-20T10:00:00Z", "text": "acme ok"}
    path = tmp_path / "in.jsonl"
    path.write_text("\n".join([
        json.dumps(good),
        '{"source": "feed", "id": "2", "published_at": "2026-11-20T10:00:00Z", "text": "acme", "likes": ' + "9" * 5000 + "}",
        json.dumps({**good, "id": "3", "published_at": "9999-12-31T23:59:59-01:00"}),
    ]) + "\n")
    result = CliRunner().invoke(cli, ["--config", cfg, "import", "--no-score", str(path)])
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    assert f"{path}:2: not JSON we read" in result.output and f"{path}:3: \"published_at\"" in result.output
    assert "3 lines read: 1 new" in result.output


def test_only_secrets_are_redacted_not_user_names(monkeypatch):
    """A password is kept out of every error text; a user name that is a common word is not blanked
    out of unrelated messages ('run `listener init`' stayed 'run `REDACTED init`' after an SMTP login
    as 'listener')."""
    from listener.config import resolve_secret
    from listener.errors import error_text

    monkeypatch.setenv("TEST_SMTP_USER", "listener")
    monkeypatch.setenv("TEST_SMTP_PASSWORD", "pa55word-value")
    resolve_secret("email.username_env", "TEST_SMTP_USER", secret=False)
    resolve_secret("email.password_env", "TEST_SMTP_PASSWORD")
    assert error_text("config.toml not found (run `listener init`)") == "config.toml not found (run `listener init`)"
    assert error_text("login failed for pa55word-value") == "login failed for REDACTED"

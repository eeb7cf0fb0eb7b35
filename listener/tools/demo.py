"""`listener demo`: the whole product offline, in accelerated time, against simulated services.

On 127.0.0.1 the demo starts three simulated services serving a generated multi-day stream about
a fictional brand (Burgerly) in English and Dutch: a news RSS feed, a Mastodon-style hashtag
timeline API and a Hacker-News-style search API (the real `rss`, `mastodon` and `hackernews`
sources read them), plus a local SMTP server. The daemon's jobs then run in accelerated time:
sources polled, mentions scored by the bundled model, rules evaluated, email delivered. On the
way: a loved product launch (no alert), an outage of the Mastodon-style service (a source-down
notice), and the hijack of a campaign hashtag (a backlash alert, joined by the volume and
negative spikes it causes: one incident, one email when it opens and one when it closes). It
ends with the digest of the hijack day and leaves the database for `listener sql` and friends.

Everything it serves is generated from this project's templates (listener/simulate.py).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from html import escape as html_escape
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable
from urllib.parse import parse_qs, urlsplit
from xml.sax.saxutils import escape

from listener.tools.simulate import BRAND, SimPost, generate

STEP = timedelta(minutes=5)


@dataclass
class SimClock:
    now: datetime


def split_posts(posts: list[SimPost]) -> dict[str, list[SimPost]]:
    """Posts with a hashtag go to the Mastodon-style service (and a third of the rest, tagged
    #burgerly); of the rest, half are news articles and half Hacker-News-style comments."""
    out: dict[str, list[SimPost]] = {"mastodon": [], "news": [], "hn": []}
    for i, p in enumerate(posts):
        if "#" in p.text:
            out["mastodon"].append(p)
        elif i % 3 == 0:
            out["mastodon"].append(SimPost(p.id, p.published_at, p.text + " #burgerly", p.language, p.kind, p.author,
                                           p.likes, p.reposts))
        elif i % 3 == 1:
            out["news"].append(p)
        else:
            out["hn"].append(p)
    return out


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        """A client closing a kept-alive connection is not worth a traceback."""


class SimulatedServices:
    """The simulated news feed, Mastodon-style and HN-style APIs, time-gated by the demo clock."""

    def __init__(self, posts: dict[str, list[SimPost]], clock: SimClock, outage: tuple[datetime, datetime] | None):
        self.posts, self.clock, self.outage = posts, clock, outage
        self.status_ids = {p.id: n + 1 for n, p in enumerate(posts["mastodon"])}
        services = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):  # noqa: N802
                url = urlsplit(self.path)
                query = parse_qs(url.query)
                if url.path == "/news.rss":
                    self.reply(200, services.news_rss(), "application/rss+xml; charset=utf-8")
                elif url.path.startswith("/api/v1/timelines/tag/"):
                    if services.outage and services.outage[0] <= services.clock.now < services.outage[1]:
                        self.reply(500, b'{"error": "simulated outage"}', "application/json")
                    else:
                        tags = [url.path.rsplit("/", 1)[1].lower()] + [t.lower() for t in query.get("any[]", [])]
                        self.reply(200, services.statuses(tags, query), "application/json")
                elif url.path == "/api/v1/search_by_date":
                    self.reply(200, services.hn_hits(query), "application/json")
                elif url.path == "/hn/item":  # where the demo's Hacker-News-style links lead
                    page = services.hn_item(query.get("id", [""])[0])
                    self.reply(200 if page else 404, page or b"no such item", "text/html; charset=utf-8")
                else:
                    self.reply(404, b"not found", "text/plain")

            def reply(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = QuietServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> "SimulatedServices":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def visible(self, kind: str) -> list[SimPost]:
        return [p for p in self.posts[kind] if p.published_at <= self.clock.now]

    def news_rss(self) -> bytes:
        recent = [p for p in self.visible("news") if p.published_at > self.clock.now - timedelta(hours=2)]
        items = "".join(
            f"<item><guid isPermaLink='false'>{p.id}</guid><link>https://news.burgerly.example/{p.id}?utm_source=rss</link>"
            f"<title>{escape(p.text[:70])}</title><description>{escape(p.text)}</description>"
            f"<language>{p.language}</language><pubDate>{format_datetime(p.published_at)}</pubDate></item>"
            for p in reversed(recent))
        return (f"<?xml version='1.0' encoding='utf-8'?><rss version='2.0'><channel><title>{BRAND} news</title>"
                f"{items}</channel></rss>").encode()

    def statuses(self, tags: list[str], query: dict) -> bytes:
        limit = min(int(query.get("limit", ["20"])[0]), 40)
        since = int(query.get("since_id", ["0"])[0] or 0)
        below = int(query.get("max_id", ["0"])[0] or 0) or None
        out = []
        for p in reversed(self.visible("mastodon")):
            sid = self.status_ids[p.id]
            if sid <= since:
                break
            if below is not None and sid >= below:
                continue
            post_tags = [w[1:].strip(".,!?:").lower() for w in p.text.split() if w.startswith("#")]
            if not set(post_tags) & set(tags):
                continue
            out.append({
                "id": str(sid), "uri": f"https://social.burgerly.example/users/{p.author}/statuses/{sid}",
                "url": f"https://social.burgerly.example/@{p.author}/{sid}", "created_at": p.published_at.isoformat(),
                "content": f"<p>{html_escape(p.text)}</p>", "language": p.language, "spoiler_text": "", "reblog": None,
                "account": {"acct": p.author, "display_name": p.author}, "favourites_count": p.likes,
                "reblogs_count": p.reposts, "replies_count": 0, "tags": [{"name": t} for t in post_tags],
            })
            if len(out) >= limit:
                break
        return json.dumps(out).encode()

    def hn_hits(self, query: dict) -> bytes:
        lo, hi = 0, None
        for f in ",".join(query.get("numericFilters", [""])).split(","):
            if f.startswith("created_at_i>="):
                lo = int(f.split(">=")[1])
            elif f.startswith("created_at_i>"):
                lo = int(f.split(">")[1]) + 1
            elif f.startswith("created_at_i<="):
                hi = int(f.split("<=")[1])
        per_page = int(query.get("hitsPerPage", ["20"])[0])
        page = int(query.get("page", ["0"])[0])
        hits = [p for p in reversed(self.visible("hn"))
                if int(p.published_at.timestamp()) >= lo and (hi is None or int(p.published_at.timestamp()) <= hi)]
        chunk = hits[page * per_page:(page + 1) * per_page]
        body = {"hits": [{"objectID": p.id.split("-")[1], "created_at_i": int(p.published_at.timestamp()),
                          "created_at": p.published_at.strftime("%Y-%m-%dT%H:%M:%S.000Z"), "author": p.author,
                          "comment_text": html_escape(p.text), "story_title": f"{BRAND} discussion", "points": None,
                          "num_comments": None, "_tags": ["comment"]} for p in chunk],
                "nbHits": len(hits), "page": page, "nbPages": (len(hits) + per_page - 1) // per_page,
                "hitsPerPage": per_page}
        return json.dumps(body).encode()


    def hn_item(self, object_id: str) -> bytes | None:
        """A page for one Hacker-News-style comment (the links in the demo's mails lead here)."""
        post = next((p for p in self.posts["hn"] if p.id.split("-")[1] == object_id), None)
        if post is None:
            return None
        return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{BRAND} discussion</title></head>"
                f"<body><p><b>{html_escape(post.author)}</b> on {post.published_at:%Y-%m-%d %H:%M} UTC</p>"
                f"<p>{html_escape(post.text)}</p><p><i>simulated by listener demo</i></p></body></html>").encode()


def demo_config(folder: Path, url: str, smtp_port: int) -> str:
    return f"""# Written by `listener demo`: every source is a simulated service on 127.0.0.1.
[database]
path = "{(folder / 'demo.db').as_posix()}"

[[topics]]
name = "burgerly"
query = 'burgerly OR #burgerlystories OR #burgerlyvegan'

[[topics]]
name = "burgerly-nl"
query = "burgerly OR #burgerlystories"
languages = ["nl"]

[[sources]]
name = "news"
kind = "rss"
url = "{url}/news.rss"
every = "10m"

[[sources]]
name = "mastodon"
kind = "mastodon"
instances = ["{url}"]
tags = ["burgerly", "burgerlystories", "burgerlyvegan"]
every = "5m"
max_pages = 10

[[sources]]
name = "hn"
kind = "hackernews"
query = "burgerly"
base_url = "{url}"
item_url = "{url}/hn/item?id={{}}"
every = "10m"

[email]
host = "127.0.0.1"
port = {smtp_port}
from = "listener demo <listener@burgerly.example>"
to = ["pr-team@burgerly.example"]

[digest]
at = "08:00"
timezone = "Europe/Amsterdam"

[[alerts]]
name = "backlash"
kind = "backlash"
topic = "burgerly"

[[alerts]]
name = "volume"
kind = "volume_spike"
topic = "burgerly"

[[alerts]]
name = "negative"
kind = "negative_spike"
topic = "burgerly"

[[alerts]]
name = "recall"
kind = "keyword"
topic = "burgerly"
query = 'recall OR lawsuit'
"""


class LocalSmtp:
    """A local SMTP server (aiosmtpd) that keeps the demo's emails."""

    def __init__(self):
        import email
        import email.policy

        from aiosmtpd.controller import Controller

        self.messages = []
        outer = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):  # noqa: N802
                outer.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
                return "250 OK"

        import socket

        with socket.socket() as s:  # aiosmtpd needs a concrete port: take a free one
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)

    def __enter__(self) -> "LocalSmtp":
        self.controller.start()
        return self

    def __exit__(self, *exc) -> None:
        self.controller.stop()


def run_demo(folder: Path, model_factory: Callable[[], object], echo: Callable[[str], None], *,
             days: int = 6, end: datetime | None = None) -> Path:
    """Run the simulated story; returns the database path."""
    import tomllib

    from listener.alerts.wording import local_time
    from listener.config import parse_config
    from listener.daemon import job_deliver, job_digest, job_evaluate, job_fetch, job_score
    from listener.store import open_store

    end = end or datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    start = end - timedelta(days=days)
    launch_day, hijack_day = max(days - 4, 0), days - 1
    posts = generate(start, days, launch_day=launch_day, hijack_day=hijack_day)
    outage = (start + timedelta(days=max(days - 3, 0), hours=9), start + timedelta(days=max(days - 3, 0), hours=11))
    phases = sorted([
        (start + timedelta(days=launch_day, hours=10), "a loved product launch, #burgerlyvegan: no alert expected"),
        (outage[0], "the Mastodon-style service goes down for two hours: a source-down notice expected"),
        (start + timedelta(days=hijack_day, hours=10), "the #burgerlystories campaign starts, friendly: no alert expected"),
        (start + timedelta(days=hijack_day, hours=14), "#burgerlystories is hijacked with horror stories: "
                                                       "a backlash alert expected within minutes"),
    ])
    folder = folder.resolve()
    folder.mkdir(parents=True, exist_ok=True)
    mail_dir = folder / "mail"
    mail_dir.mkdir(exist_ok=True)
    for old in mail_dir.glob("*.eml"):
        old.unlink()
    db = folder / "demo.db"
    for suffix in ("", "-wal", "-shm"):
        Path(str(db) + suffix).unlink(missing_ok=True)
    clock = SimClock(start)
    model = None
    with SimulatedServices(split_posts(posts), clock, outage) as services, LocalSmtp() as smtp:
        text = demo_config(folder, services.url, smtp.port)
        (folder / "demo-config.toml").write_text(text)
        config = parse_config(tomllib.loads(text), file=str(folder / "demo-config.toml"), base_dir=folder)
        echo(f"simulated services on {services.url}: a news feed, a Mastodon-style and a Hacker-News-style API")
        tz = config.digest.tzinfo

        def when(at: datetime) -> str:
            return local_time(at, tz, with_day=True)

        echo(f"{len(posts)} generated mentions of {BRAND} (English and Dutch), {when(start)} to {when(end)}, "
             f"5 simulated minutes per step; times in {config.digest.timezone}")
        with open_store(config.database.path) as store:
            day_start, day_new, day_scored, failures = start, 0, 0, 0
            seen_mails = 0
            while clock.now < end:
                while phases and phases[0][0] <= clock.now:
                    echo(f"-- {when(phases[0][0])}: {phases.pop(0)[1]}")
                for o in job_fetch(config, store, clock.now):
                    day_new += o.new
                    if not o.ok:
                        failures += 1
                if store.count_unscored():
                    if model is None:
                        model = model_factory()
                    day_scored += job_score(store, model, clock.now)
                for t in job_evaluate(config, store, clock.now).transitions:
                    if t.state in ("firing", "resolved"):
                        echo(f"  {when(t.at)} ALERT {t.line().split(' ', 1)[1]}")
                job_digest(config, store, clock.now)  # yesterday's digest, once, after 08:00 Amsterdam
                job_deliver(config, store, clock.now)
                for msg in smtp.messages[seen_mails:]:
                    seen_mails += 1
                    saved = mail_dir / f"{seen_mails:03d}-{_file_word(str(msg['Subject']))}.eml"
                    saved.write_bytes(bytes(msg))
                    echo(f"  {when(clock.now)} email to {msg['To']}: {msg['Subject']}  (saved as {saved.name})")
                    if str(msg["Subject"]).startswith("[listener] FIRING #"):  # the first alert mail, in full
                        body = msg.get_body(preferencelist=("plain",)).get_content()
                        for line in body.strip().splitlines():
                            echo(f"      | {line}")
                clock.now += STEP
                if clock.now - day_start >= timedelta(days=1):
                    echo(f"{day_start:%a %d %b} (UTC day): {day_new} new mentions stored, {day_scored} scored, "
                         f"{failures} failed fetch{'es' if failures != 1 else ''}")
                    day_start, day_new, day_scored, failures = clock.now, 0, 0, 0
            split = store.count_by_sentiment()
        hijack_date = (start + timedelta(days=hijack_day)).date()
        _show_digest(config, hijack_date, echo)
    echo("stored: " + ", ".join(f"{n} {s}" for s, n in split.items()))
    echo(f"database: {db}")
    echo(f"every email it sent: {mail_dir}/*.eml (open one with your mail client)")
    echo(f'try: {_command()} --config {folder / "demo-config.toml"} sql "select hashtag, count(*) from hashtags '
         'group by 1 order by 2 desc limit 5"')
    return db


def _file_word(subject: str) -> str:
    """A file-name-safe slug of a mail subject."""
    words = "".join(c if c.isalnum() else "-" for c in subject.removeprefix("[listener]").lower())
    return "-".join(w for w in words.split("-") if w)[:60] or "mail"


def _command() -> str:
    """How to call listener here: `listener` when it is on PATH, else the path of this one."""
    import shutil
    import sys

    if shutil.which("listener"):
        return "listener"
    beside = Path(sys.executable).with_name("listener")
    return str(beside) if beside.exists() else "listener"


def _show_digest(config, day, echo) -> None:
    from listener.digest import build_digest, render_text
    from listener.store import open_store

    with open_store(config.database.path) as store:
        digest = build_digest(store, config, day, None)
    echo(f"the daily digest for {day:%a %d %b}:")
    echo(render_text(digest))

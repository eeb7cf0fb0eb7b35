"""The services `listener demo` runs against, on 127.0.0.1: a news RSS feed, a Mastodon-style
hashtag timeline API and a Hacker-News-style search API serving the generated posts (each post
visible once the demo's clock has passed its time), and a local SMTP server keeping the mail.

They speak just enough of each API for the real `rss`, `mastodon` and `hackernews` sources:
paging by `since_id`/`max_id` and by `numericFilters`, and a simulated outage of the
Mastodon-style service (HTTP 500) between two times.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import format_datetime
from html import escape as html_escape
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit
from xml.sax.saxutils import escape

from listener.tools.simulate import BRAND, SimPost

__all__ = ["SimClock", "split_posts", "SimulatedServices", "LocalSmtp"]


@dataclass
class SimClock:
    """The demo's time, moved on by the demo: the services show what was published before it."""

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

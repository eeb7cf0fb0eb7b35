"""`listener demo`: the whole pipeline offline, against feeds generated and served on 127.0.0.1.

Texts come from templates and word lists written for this project (a fictional brand, Acme
Foods), in English and Dutch. Nothing leaves the machine.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable
from xml.sax.saxutils import escape

BRAND = "Acme Foods"

TEMPLATES = {
    "en": {
        "positive": [
            "Just tried the new {product} from Acme Foods and I love it! {extra}",
            "Big thanks to @acme for the quick help today, great service. {extra}",
            "The {product} by Acme is honestly the best thing I have eaten this week #acme",
            "Acme Foods {product}: delicious, cheap and ready in five minutes. Recommended!",
        ],
        "negative": [
            "Acme Foods {product} tasted awful, I want my money back. {extra}",
            "Third time my Acme order arrived broken. Terrible customer service #acmefail",
            "Never buying Acme {product} again, it made me sick. Disgusting.",
            "So disappointed with @acme, rude staff and a stale {product}.",
        ],
        "neutral": [
            "Acme Foods announces a new {product} for the winter season.",
            "Acme is opening a distribution centre near Rotterdam, says the company.",
            "Does anyone know if the Acme {product} contains nuts?",
            "Acme Foods quarterly results will be published on Thursday.",
        ],
    },
    "nl": {
        "positive": [
            "Net de nieuwe {product} van Acme geprobeerd, echt heerlijk! {extra}",
            "Top service van @acme vandaag, snel geholpen. Dank jullie wel!",
            "De {product} van Acme Foods is echt een aanrader #acme",
        ],
        "negative": [
            "De {product} van Acme was echt smerig, ik wil mijn geld terug. {extra}",
            "Alweer een kapotte bestelling van Acme. Waardeloze klantenservice #acmefail",
            "Nooit meer Acme, ik werd er ziek van. Walgelijk.",
        ],
        "neutral": [
            "Acme Foods opent een nieuw distributiecentrum bij Rotterdam.",
            "Weet iemand of de {product} van Acme noten bevat?",
            "Acme brengt deze winter een nieuwe {product} uit.",
        ],
    },
}
PRODUCTS = {"en": ["tomato soup", "oat bar", "frozen pizza", "granola"],
            "nl": ["tomatensoep", "havermoutreep", "diepvriespizza", "granola"]}
EXTRAS = {"en": ["", "Wow.", "Really.", "#foodie"], "nl": ["", "Echt waar.", "Wauw.", "#eten"]}


@dataclass(frozen=True)
class DemoPost:
    id: str
    language: str
    sentiment: str
    text: str
    published: datetime


def generate_posts(now: datetime, n: int, seed: int = 7) -> list[DemoPost]:
    """`n` posts over the last 24 hours, two thirds English, one third Dutch."""
    rng = random.Random(seed)
    posts = []
    for i in range(n):
        lang = "nl" if i % 3 == 2 else "en"
        sentiment = rng.choices(["positive", "neutral", "negative"], weights=[4, 4, 2])[0]
        text = rng.choice(TEMPLATES[lang][sentiment]).format(product=rng.choice(PRODUCTS[lang]),
                                                            extra=rng.choice(EXTRAS[lang])).strip()
        posts.append(DemoPost(f"demo-{i}", lang, sentiment, text, now - timedelta(minutes=rng.randint(1, 24 * 60))))
    return posts


def rss_feed(posts: list[DemoPost], base_url: str, language: str) -> bytes:
    items = "".join(
        f"<item><guid isPermaLink=\"false\">{p.id}</guid><link>{base_url}/post/{p.id}?utm_source=demo</link>"
        f"<title>{escape(p.text[:60])}</title><description>{escape(p.text)}</description>"
        f"<pubDate>{format_datetime(p.published)}</pubDate></item>" for p in posts)
    return (f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Demo {language}</title>'
            f"<link>{base_url}</link><description>generated</description><language>{language}</language>{items}"
            "</channel></rss>").encode()


class DemoServer:
    """Serves the generated feeds on 127.0.0.1 (and one feed that always fails with a 500)."""

    def __init__(self, routes: dict[str, bytes]):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                body = server.routes.get(self.path.split("?")[0])
                if body is None:
                    self.send_response(500 if self.path.startswith("/broken") else 404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/rss+xml; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.routes = routes
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> "DemoServer":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def demo_config(folder: Path, base_url: str) -> str:
    return f"""# Generated by `listener demo`: sources served on 127.0.0.1 by the demo itself.
[database]
path = "{(folder / 'demo.db').as_posix()}"

[[topics]]
name = "acme"
query = 'acme OR "acme foods" OR #acme OR #acmefail OR @acme'

[[topics]]
name = "acme-nl"
query = "acme"
languages = ["nl"]

[[sources]]
name = "demo-news-en"
kind = "rss"
url = "{base_url}/en.xml"
every = "1m"

[[sources]]
name = "demo-news-nl"
kind = "rss"
url = "{base_url}/nl.xml"
every = "1m"

[[sources]]
name = "demo-broken"
kind = "rss"
url = "{base_url}/broken.xml"
every = "1m"
"""


def run_demo(folder: Path, model_factory: Callable[[], object], echo: Callable[[str], None],
             now: datetime | None = None, posts: int = 90) -> Path:
    """Generate, serve, fetch, score and summarise; returns the database path."""
    import tomllib

    from listener.config import parse_config
    from listener.pipeline import run_cycle
    from listener.store import Store, run_readonly

    now = now or datetime.now(timezone.utc)
    folder = folder.resolve()
    folder.mkdir(parents=True, exist_ok=True)
    db = folder / "demo.db"
    for suffix in ("", "-wal", "-shm"):
        Path(str(db) + suffix).unlink(missing_ok=True)
    generated = generate_posts(now, posts)
    with DemoServer({}) as server:
        for lang in ("en", "nl"):
            server.routes[f"/{lang}.xml"] = rss_feed([p for p in generated if p.language == lang], server.url, lang)
        config_text = demo_config(folder, server.url)
        (folder / "demo-config.toml").write_text(config_text)
        config = parse_config(tomllib.loads(config_text), file=str(folder / "demo-config.toml"), base_dir=folder)
        echo(f"serving {len(generated)} generated mentions of {BRAND} (English and Dutch) on {server.url}")
        with Store(config.database.path) as store:
            def on_outcome(o):
                echo(f"  fetched {o.source}: {o.items} items, {o.new} new" if o.ok else f"  fetched {o.source}: FAILED ({o.error}) - recorded, retried later")

            report = run_cycle(config, store, model_factory, now=now, on_outcome=on_outcome)
        echo(report.summary())
    split = run_readonly(db, "SELECT t.topic, m.sentiment, count(*) FROM mention_topics t JOIN mentions m "
                             "ON m.id = t.mention_id GROUP BY 1, 2 ORDER BY 1, 2")
    echo("sentiment per topic:")
    for topic, sentiment, n in split.rows:
        echo(f"  {topic:8} {sentiment:9} {n}")
    worst = run_readonly(db, "SELECT round(p_negative, 2), language, text FROM mentions ORDER BY p_negative DESC LIMIT 3")
    echo("most negative mentions:")
    for p, lang, text in worst.rows:
        echo(f"  {p:.2f} [{lang}] {text}")
    scored = dict(run_readonly(db, "SELECT source_id, sentiment FROM mentions").rows)
    agree = sum(scored.get(p.id) == p.sentiment for p in generated)
    echo(f"the model agrees with the sentiment each text was written with on {agree} of {len(generated)}")
    echo(f"database: {db}")
    echo(f'try: listener --config {folder / "demo-config.toml"} sql "select sentiment, count(*) from mentions group by 1"')
    return db

"""The feeds of bench/ingest.py and the HTTP server that serves them, in a process of its own.

    python bench/feeds.py --feeds 1000 --items 20 --hosts 20 --port PORT   (prints "ready PORT" when listening)

`make_feeds` builds the same RSS 2.0 documents from the same seed every time: items with a title, an
HTML description of a few sentences (links, emphasis, entities), a link with tracking parameters, a
guid, a date within the last day, an author on some; each item names one of the tracked brands (so
every item matches a topic and is stored), some two, a quarter carry hashtags. Most feeds say their
language (en, nl or de), the rest leave it to detection.

The server is asyncio streams (HTTP/1.1, keep-alive), listening on 127.0.0.10, 127.0.0.11, ... (Linux
routes all of 127/8 to lo), feed `i` on host `i % hosts`. Each feed has an ETag and a Last-Modified;
a request with the matching If-None-Match or If-Modified-Since gets a 304. `GET /stats` answers
`{"200": n, "304": n}`. It runs in its own process so that its CPU is not the client's GIL.
`--delay 100-300` holds each feed's answer for a time drawn uniformly in that many milliseconds
(a real server's latency; asyncio.sleep, so other connections are served meanwhile); 0 by default.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from html import escape

BRANDS = ("Acme", "Globex", "Initech", "Umbrella", "Hooli")
TAGS = ("#AcmeFail", "#acme", "#globex", "#deal", "#recall", "#launch", "#customerservice", "#initech")
SENTENCES = {
    "en": ("{b} announced a new line of products for the holiday season, with prices starting below last year's.",
           "Customers complained on social media that {b} support took three days to answer a simple question.",
           "Analysts expect {b} to report higher quarterly revenue after strong sales in Europe and Asia.",
           "The {b} app update broke the login screen for many users, who were asked to reinstall it.",
           "A spokesperson for {b} said the recall affects only a small batch sold in two regions.",
           "Reviewers praised the build quality but said the battery life is disappointing for the price.",
           "Shares rose four percent in early trading after the company raised its outlook for the year.",
           "Delivery times have improved since the new warehouse opened near the airport last spring.",
           "Staff at several stores say they were not told about the change until the morning it happened.",
           "The company will hold a press conference on Thursday to explain its plans for the coming months."),
    "nl": ("{b} kondigde een nieuwe productlijn aan voor de feestdagen, met lagere prijzen dan vorig jaar.",
           "Klanten klaagden op sociale media dat de klantenservice van {b} drie dagen nodig had voor een antwoord.",
           "Analisten verwachten dat {b} een hogere kwartaalomzet meldt na sterke verkopen in Europa.",
           "De nieuwe versie van de app van {b} werkt bij veel gebruikers niet meer na het inloggen.",
           "Een woordvoerder van {b} zei dat de terugroepactie alleen een kleine partij betreft.",
           "De bezorgtijden zijn verbeterd sinds het nieuwe magazijn bij het vliegveld is geopend.",
           "Het personeel in verschillende winkels hoorde pas op de ochtend zelf van de verandering.",
           "Het bedrijf houdt donderdag een persconferentie om de plannen voor de komende maanden toe te lichten."),
    "de": ("{b} hat eine neue Produktlinie für die Feiertage angekündigt, mit Preisen unter denen des Vorjahres.",
           "Kunden beschwerten sich in sozialen Medien, dass der Kundendienst von {b} drei Tage für eine Antwort brauchte.",
           "Analysten erwarten, dass {b} nach starken Verkäufen in Europa einen höheren Quartalsumsatz meldet.",
           "Das Update der App von {b} hat bei vielen Nutzern die Anmeldung unbrauchbar gemacht.",
           "Ein Sprecher von {b} sagte, der Rückruf betreffe nur eine kleine Charge in zwei Regionen.",
           "Die Lieferzeiten haben sich verbessert, seit das neue Lager am Flughafen eröffnet wurde.",
           "Das Unternehmen wird am Donnerstag eine Pressekonferenz abhalten, um seine Pläne zu erläutern."),
}
TITLES = {
    "en": ("{b} unveils holiday range", "{b} support under fire", "{b} beats expectations", "Trouble with the {b} app",
           "{b} recalls a batch", "Review: the new {b} model", "{b} shares climb", "{b} speeds up delivery"),
    "nl": ("{b} onthult feestcollectie", "Kritiek op klantenservice {b}", "{b} verrast beleggers", "Problemen met app van {b}"),
    "de": ("{b} stellt Festtagskollektion vor", "Kritik am Kundendienst von {b}", "{b} übertrifft Erwartungen",
           "Ärger mit der App von {b}"),
}
AUTHORS = ("Jane Doe", "Piet de Vries", "Max Mustermann", "Sam Lee", "Ana García", None, None)


def feed_path(i: int) -> str:
    return f"/feeds/{i}.xml"


def feed_url(i: int, hosts: int, port: int) -> str:
    return f"http://127.0.0.{10 + i % hosts}:{port}{feed_path(i)}"


def make_feeds(feeds: int, items: int, now: datetime, seed: int = 20) -> dict[str, bytes]:
    """path -> RSS document, the same for the same arguments (dates within the day before `now`)."""
    rng = random.Random(seed)
    out = {}
    for i in range(feeds):
        language = rng.choices(["en", "nl", "de"], [0.7, 0.2, 0.1])[0]
        declared = rng.random() < 0.6  # the rest is detected
        entries = []
        for j in range(items):
            brand = rng.choice(BRANDS)
            other = rng.choice(BRANDS) if rng.random() < 0.3 else None
            sentences = rng.sample(SENTENCES[language], rng.randint(1, 2))
            parts = [escape(s.format(b=brand if k == 0 or other is None else other)) for k, s in enumerate(sentences)]
            link = f"https://news{i}.example/{2026}/{j}/{brand.lower()}-story-{i}-{j}?utm_source=rss&utm_medium=feed"
            parts[0] = f'<a href="{link}">{parts[0]}</a>'
            if rng.random() < 0.3:
                parts[-1] = f"<em>{parts[-1]}</em>"
            if rng.random() < 0.25:
                parts.append(" ".join(rng.sample(TAGS, rng.randint(1, 3))))
            html = "<p>" + "</p><p>".join(parts) + "</p>"
            title = rng.choice(TITLES[language]).format(b=brand)
            published = now - timedelta(seconds=rng.randrange(86_400))
            author = rng.choice(AUTHORS)
            entries.append(
                f"<item><title>{escape(title)}</title><link>{escape(link)}</link>"
                f'<guid isPermaLink="false">tag:news{i}.example,2026:{j}</guid>'
                f"<pubDate>{format_datetime(published, usegmt=True)}</pubDate>"
                + (f"<author>{author}</author>" if author else "")
                + f"<description>{escape(html)}</description></item>")
        lang = f"<language>{language}</language>" if declared else ""
        out[feed_path(i)] = (
            '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
            f"<title>News {i}</title><link>https://news{i}.example/</link><description>Feed {i}</description>{lang}"
            + "".join(entries) + "</channel></rss>").encode()
    return out


# ---------------------------------------------------------------- the server
class FeedServer:
    """Serves `documents` (path -> bytes) with validators; counts the answers."""

    def __init__(self, documents: dict[str, bytes], last_modified: datetime, delay: tuple[float, float] = (0.0, 0.0)):
        self.documents = documents
        self.delay = delay  # seconds, the least and the most an answer to a feed is held
        self.last_modified = format_datetime(last_modified, usegmt=True)
        self.counts = {"200": 0, "304": 0, "404": 0}

    def answer(self, path: str, headers: dict[str, str]) -> bytes:
        if path == "/stats":
            return self._response(200, json.dumps(self.counts).encode(), {"Content-Type": "application/json"})
        body = self.documents.get(path)
        if body is None:
            self.counts["404"] += 1
            return self._response(404, b"not found", {"Content-Type": "text/plain"})
        etag = f'"{path.rsplit("/", 1)[-1]}-v1"'
        validators = {"ETag": etag, "Last-Modified": self.last_modified}
        if headers.get("if-none-match") == etag or (
                "if-none-match" not in headers and headers.get("if-modified-since") == self.last_modified):
            self.counts["304"] += 1
            return self._response(304, b"", validators)
        self.counts["200"] += 1
        return self._response(200, body, {"Content-Type": "application/rss+xml; charset=utf-8", **validators})

    @staticmethod
    def _response(status: int, body: bytes, headers: dict[str, str]) -> bytes:
        reason = {200: "OK", 304: "Not Modified", 404: "Not Found"}[status]
        lines = [f"HTTP/1.1 {status} {reason}", f"Date: {format_datetime(datetime.now(timezone.utc), usegmt=True)}",
                 *(f"{k}: {v}" for k, v in headers.items())]
        if status != 304:
            lines.append(f"Content-Length: {len(body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                request_line, *header_lines = head.decode("latin-1").split("\r\n")
                headers = {}
                for line in header_lines:
                    name, _, value = line.partition(":")
                    if name:
                        headers[name.strip().lower()] = value.strip()
                length = int(headers.get("content-length") or 0)
                if length:
                    await reader.readexactly(length)
                path = request_line.split(" ")[1] if request_line.count(" ") >= 2 else "/"
                if self.delay[1] > 0 and path != "/stats":
                    await asyncio.sleep(random.uniform(*self.delay))
                writer.write(self.answer(path, headers))
                await writer.drain()
                if headers.get("connection", "").lower() == "close":
                    break
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()


async def serve(documents: dict[str, bytes], hosts: int, port: int, last_modified: datetime,
                delay: tuple[float, float] = (0.0, 0.0)) -> None:
    server = FeedServer(documents, last_modified, delay)
    servers = [await asyncio.start_server(server.handle, f"127.0.0.{10 + h}", port, backlog=1024, reuse_address=True)
               for h in range(hosts)]
    print(f"ready {port}", flush=True)
    await asyncio.gather(*(s.serve_forever() for s in servers))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feeds", type=int, default=1000)
    parser.add_argument("--items", type=int, default=20)
    parser.add_argument("--hosts", type=int, default=20)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--now", required=True, help="ISO time the items are dated back from")
    parser.add_argument("--delay", default="0", metavar="MS[-MS]",
                        help="hold each feed's answer this many milliseconds (a range: drawn uniformly)")
    args = parser.parse_args()
    try:
        low, _, high = args.delay.partition("-")
        delay = (float(low) / 1000, float(high or low) / 1000)
    except ValueError:
        parser.error(f"--delay: not milliseconds or a range of them: {args.delay!r}")
    if not 0 <= delay[0] <= delay[1]:
        parser.error(f"--delay: not a range from low to high: {args.delay!r}")
    now = datetime.fromisoformat(args.now)
    documents = make_feeds(args.feeds, args.items, now)
    try:
        asyncio.run(serve(documents, args.hosts, args.port, now - timedelta(days=1), delay))
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()

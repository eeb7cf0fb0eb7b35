"""Acceptance: a #McDStories-style hijack in a week of ordinary traffic, through the real jobs.

Two feeds served on 127.0.0.1 play a generated week (daily rhythm, a loved product launch, a
two-hour outage of one feed, and the hijack of a campaign hashtag). The daemon's jobs run in
simulated time: fetch every 5 minutes, score with the bundled model, evaluate the rules,
deliver email to a real SMTP server on 127.0.0.1. Expected: one source-down notice and its
recovery, exactly one backlash alert fired within 15 minutes of the onset and one resolved
notice; nothing else, on ordinary days or for the launch.
"""

from __future__ import annotations

import re
import tomllib
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from xml.sax.saxutils import escape

from listener.config import parse_config
from listener.daemon import job_deliver, job_evaluate, job_fetch, job_score
from listener.pipeline import ScoreCache, SourcePool
from listener.tools.simulate import generate, hijack_onset
from listener.store import Store
from tests.httpserver import Reply
from tests.smtpserver import text_body

START = datetime(2026, 11, 2, tzinfo=timezone.utc)  # a Monday
DAYS = 7
OUTAGE = (START + timedelta(days=2, hours=9), START + timedelta(days=2, hours=11))
STEP = timedelta(minutes=5)


class Clock:
    def __init__(self, t: datetime):
        self.t = t


def feed(posts, now: datetime, source: str, base: str) -> bytes:
    """The last 30 minutes of posts published by `now`, newest first, as RSS."""
    recent = [p for p in posts if now - timedelta(minutes=30) < p.published_at <= now]
    items = "".join(
        f"<item><guid isPermaLink='false'>{source}-{p.id}</guid><link>{base}/{source}/{p.id}</link>"
        f"<description>{escape(p.text)}</description><author>{p.author}</author>"
        f"<pubDate>{format_datetime(p.published_at)}</pubDate></item>" for p in reversed(recent))
    return f"<?xml version='1.0'?><rss version='2.0'><channel><title>{source}</title>{items}</channel></rss>".encode()


def test_hashtag_hijack_fires_one_backlash_alert_and_nothing_else(tmp_path, http_server, smtp_server, bundled_model):
    posts = generate(START, DAYS)
    social = [p for i, p in enumerate(posts) if i % 3]  # two thirds on a social feed, one third in the news
    news = [p for i, p in enumerate(posts) if not i % 3]
    clock = Clock(START)
    http_server.route("/social.xml", lambda r: Reply(500, b"down") if OUTAGE[0] <= clock.t < OUTAGE[1]
                      else Reply(200, feed(social, clock.t, "social", "https://social.example")))
    http_server.route("/news.xml", lambda r: Reply(200, feed(news, clock.t, "news", "https://news.example")))
    config = parse_config(tomllib.loads(f"""
[database]
path = "{tmp_path / 'm.db'}"

[[topics]]
name = "burgerly"
query = "burgerly OR #burgerlystories OR #burgerlyvegan"

[[sources]]
name = "social"
kind = "rss"
url = "{http_server.url('/social.xml')}"
every = "5m"

[[sources]]
name = "news"
kind = "rss"
url = "{http_server.url('/news.xml')}"
every = "5m"

[email]
host = "127.0.0.1"
port = {smtp_server.port}
from = "listener@example.org"
to = ["pr@example.org"]

[[alerts]]
name = "hijack"
kind = "backlash"
topic = "burgerly"

[[alerts]]
name = "recall"
kind = "keyword"
topic = "burgerly"
query = "recall OR lawsuit"
"""), base_dir=tmp_path)
    transitions = []
    sources, scores = SourcePool(), ScoreCache()  # the daemon keeps one of each for its life
    with Store(config.database.path) as store:
        while clock.t <= START + timedelta(days=DAYS):
            job_fetch(config, store, clock.t, pool=sources)
            job_score(store, bundled_model, clock.t, cache=scores)
            transitions += job_evaluate(config, store, clock.t).transitions
            job_deliver(config, store, clock.t)
            clock.t += STEP
        by_sentiment = store.count_by_sentiment()
        stored = (sum(by_sentiment.values()), sum(n for s, n in by_sentiment.items() if s is not None))

    onset = hijack_onset(START)
    fired = [t for t in transitions if t.state == "firing"]
    resolved = [t for t in transitions if t.state == "resolved"]
    assert [(t.rule, t.labels) for t in fired] == [
        ("source-down", {"source": "social"}),
        ("hijack", {"topic": "burgerly", "hashtag": "burgerlystories"}),
    ], [t.line() for t in transitions]
    assert [t.rule for t in resolved] == ["source-down", "hijack"]
    backlash = fired[1]
    assert onset < backlash.at <= onset + timedelta(minutes=15)
    assert OUTAGE[0] < fired[0].at <= OUTAGE[0] + timedelta(minutes=20)
    assert OUTAGE[1] <= resolved[0].at <= OUTAGE[1] + timedelta(minutes=25)  # backoff: at most 4 x 5m
    assert resolved[1].at > onset + timedelta(hours=3)
    assert stored[0] == stored[1] and stored[0] > 1500  # everything scored

    # the emails, read back from the SMTP server
    subjects = [str(m["Subject"]) for m in smtp_server.messages]
    assert len(subjects) == 4, subjects
    assert subjects[0] == "[listener] FIRING source down: social failing"
    assert subjects[1] == "[listener] RESOLVED source down: social fetching again"
    m = re.fullmatch(r"\[listener\] FIRING #burgerlystories \(burgerly\): (\d+) posts in the last hour, (\d+)% negative, "
                     r"(\d+)x usual; the hashtag was unknown until 10:\d\d UTC", subjects[2])
    assert m, subjects[2]
    count, negative, ratio = map(int, m.groups())
    assert negative >= 50 and ratio >= 5 and count >= 8
    body = text_body(smtp_server.messages[2])
    assert "Hashtags involved: #burgerlystories." in body and "Rules that agree: hijack (backlash) on #burgerlystories." in body
    assert f"#burgerlystories: {count} posts in the last hour" in body and "The burst: " in body
    links = re.findall(r"https://(?:social|news)\.example/\w+/sim-\d+", body)
    assert 3 <= len(links) <= 5
    assert subjects[3].startswith("[listener] RESOLVED #burgerlystories (burgerly): quiet again after ")
    assert len({m["Message-ID"] for m in smtp_server.messages}) == 4

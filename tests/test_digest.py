"""The daily digest on a real database (SQLite and PostgreSQL): exact figures, local day bounds, every
format, mail once a day."""

from __future__ import annotations

import json
import tomllib
from dataclasses import replace
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner

from listener.cli import cli
from listener.config import parse_config
from listener.digest import (build_digest, day_bounds, message_id, queue_digest, render_charts, render_html,
                             render_markdown, render_text, send_digest_if_due)
from listener.errors import ListenerError
from listener.store import MentionRow, MentionStore, open_store
from listener.models import Sentiment
from listener.sources import SourceState
from tests.databases import Databases
from tests.smtpserver import html_body, text_body

UTC = timezone.utc
AMS = ZoneInfo("Europe/Amsterdam")
DAY = date(2026, 11, 21)  # a Saturday; Amsterdam is UTC+1 in November
SETUP = datetime(2026, 11, 1, tzinfo=UTC)  # when the test data was "fetched"
PROBS = {"negative": (0.9, 0.05, 0.05), "neutral": (0.05, 0.9, 0.05), "positive": (0.05, 0.05, 0.9)}

CONFIG = """
[database]
{database}

[[topics]]
name = "acme"
query = "acme"

[[topics]]
name = "globex"
query = "globex"

[[sources]]
name = "feed"
kind = "rss"
url = "http://127.0.0.1:9/feed.xml"

[[sources]]
name = "forum"
kind = "rss"
url = "http://127.0.0.1:9/forum.xml"
topics = ["acme"]

[[sources]]
name = "blog"
kind = "rss"
url = "http://127.0.0.1:9/blog.xml"
topics = ["globex"]

[email]
from = "listener@example.org"
to = ["pr@example.org"]
host = "127.0.0.1"
port = {port}

[digest]
at = "08:00"
timezone = "Europe/Amsterdam"
to = ["pr@example.org", "ceo@example.org"]

[[alerts]]
name = "hijack"
kind = "backlash"
topic = "acme"
"""


def make_config(tmp_path, database: Databases | None = None, port: int = 25):
    """The config in tmp_path/config.toml, on the folder's database of `database`'s engine (the
    `database` fixture's; SQLite when not given)."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    text = CONFIG.format(database=(database or Databases("sqlite")).toml(tmp_path), port=port)
    (tmp_path / "config.toml").write_text(text)
    return parse_config(tomllib.loads(text), base_dir=tmp_path)


def local(day: date, hh: int, mm: int = 0) -> datetime:
    """A local Amsterdam time, in UTC."""
    return datetime(day.year, day.month, day.day, hh, mm, tzinfo=AMS).astimezone(UTC)


class Writer:
    """Stores scored mentions through save_fetch + save_scores, as the pipeline does."""

    def __init__(self, store: MentionStore):
        self.store = store
        self.n = 0

    def add(self, at: datetime, sentiment: str, *, topics=("acme",), source="feed", language="en", hashtags=(),
            likes=None, reposts=None, replies=None, text=None, author=None) -> int:
        self.n += 1
        topic_words = " ".join(topics)
        row = MentionRow(source, f"m{self.n}", text or f"{topic_words} post {self.n}", at, SETUP, tuple(topics),
                         tuple(hashtags), url=f"https://example.org/{self.n}", author=author or f"user{self.n}",
                         language=language, likes=likes, reposts=reposts, replies=replies)
        saved = self.store.save_fetch(source, "rss", [row], SourceState(), started_at=SETUP, now=SETUP,
                                      next_check_at=SETUP, items=1, requests=1)
        self.store.save_scores([(saved.new_ids[0], Sentiment.from_probs(*PROBS[sentiment]))], "test", SETUP)
        return saved.new_ids[0]


# the day's acme mentions: (local hh:mm, sentiment, source, language, hashtags, engagement, text)
DAY_MENTIONS = [
    ((0, 30), "positive", "feed", "en", ("launch",), {"likes": 100}, "Acme launch is brilliant"),
    ((9, 10), "positive", "feed", "en", ("launch",), {"likes": 40, "reposts": 5}, "Acme did it again"),
    ((10, 0), "positive", "feed", "en", ("launch",), {"likes": 10}, "Nice one acme"),
    ((10, 20), "positive", "feed", "en", ("launch",), {}, None),
    ((11, 0), "positive", "feed", "nl", ("launch",), {}, None),
    ((12, 0), "positive", "feed", "nl", ("acme",), {}, None),
    ((13, 0), "positive", "forum", "nl", ("acme",), {}, None),
    ((14, 0), "positive", "forum", "en", ("acme",), {}, None),
    ((10, 5), "negative", "forum", "en", ("fail",), {"likes": 50, "replies": 20}, "Acme support ignored me for a week"),
    ((10, 10), "negative", "forum", "en", ("fail",), {"likes": 3}, "acme | broken *again*"),
    ((10, 15), "negative", "forum", "en", ("fail",), {}, None),
    ((10, 25), "negative", "feed", "en", ("fail",), {}, None),
    ((15, 0), "negative", "feed", "en", ("old",), {}, None),
    ((16, 0), "neutral", "feed", "en", (), {}, None),
    ((17, 0), "neutral", "forum", None, (), {}, None),
    ((23, 59), "neutral", "feed", "en", (), {}, None),
]


def fill(store: MentionStore) -> dict[str, int]:
    """The known data set; returns ids of the mentions the tests look for."""
    w = Writer(store)
    ids = {}
    for k in range(7, 1, -1):  # 14..19 November: 6 a day, 2 of each sentiment
        d = DAY - timedelta(days=k)
        for i, s in enumerate(["positive", "positive", "neutral", "neutral", "negative", "negative"]):
            w.add(local(d, 12, i), s, hashtags=("old",) if (k == 5 and i == 0) else ())
    prev = DAY - timedelta(days=1)  # 20 November: 10 mentions, net 0
    for i, s in enumerate(["positive"] * 4 + ["negative"] * 4 + ["neutral"] * 2):
        tags = ("acme",) if i < 3 else ("fail",) if i in (4, 5) else ()
        w.add(local(prev, 12, i) if i < 9 else local(prev, 23, 30), s, hashtags=tags)
    for (hh, mm), s, source, language, tags, engagement, text in DAY_MENTIONS:
        at = local(DAY, hh, mm)
        mid = w.add(at, s, source=source, language=language, hashtags=tags, text=text, **engagement)
        if text:
            ids[text] = mid
    w.add(local(DAY + timedelta(days=1), 0, 30), "positive")  # 00:30 the next day: not in the digest
    for hh in (9, 10, 11):
        w.add(local(DAY, hh), "neutral", topics=("globex",), source="blog")
    # alerts: one fired and resolved on the day; pending and the previous day's do not count
    tag = json.dumps({"hashtag": "fail", "topic": "acme"}, sort_keys=True)
    store.add_alert_event("hijack", tag, "firing", local(prev, 13), 20, "an older one", None)
    store.add_alert_event("hijack", tag, "pending", local(DAY, 10, 55), 25, "", None)
    store.add_alert_event("hijack", tag, "firing", local(DAY, 11), 25, "25 mentions/h, 80% negative, 12x usual", None)
    store.add_alert_event("hijack", tag, "resolved", local(DAY, 14), 2, "back to normal", None)
    store.add_alert_event("source-down", json.dumps({"source": "forum"}), "firing", local(DAY, 10, 30), None,
                          "failing: HTTP 500 from 127.0.0.1", None)
    # sources: forum failed once on the day and recovered; blog has failed since the evening before;
    # feed failed the day before and recovered then
    store.record_failure("feed", "rss", "HTTP 502", started_at=local(prev, 10), now=local(prev, 10), next_check_at=SETUP)
    store.save_fetch("feed", "rss", [], SourceState(), started_at=local(prev, 11), now=local(prev, 11),
                     next_check_at=SETUP, items=0, requests=1)
    store.record_failure("blog", "rss", "timed out after 20s", started_at=local(prev, 21), now=local(prev, 21),
                         next_check_at=SETUP)
    store.record_failure("forum", "rss", "HTTP 500 from 127.0.0.1", started_at=local(DAY, 9), now=local(DAY, 9),
                         next_check_at=SETUP)
    store.save_fetch("forum", "rss", [], SourceState(), started_at=local(DAY, 10), now=local(DAY, 10),
                     next_check_at=SETUP, items=0, requests=1)
    return ids


@pytest.fixture
def filled(tmp_path, database):
    config = make_config(tmp_path, database)
    store = open_store(config.database.location)
    ids = fill(store)
    yield config, store, ids
    store.close()


def test_day_bounds_are_local_midnights_in_utc():
    assert day_bounds(DAY, AMS) == (datetime(2026, 11, 20, 23, tzinfo=UTC), datetime(2026, 11, 21, 23, tzinfo=UTC))
    start, end = day_bounds(date(2026, 10, 25), AMS)  # summer time ends: a 25-hour day
    assert (start, end - start) == (datetime(2026, 10, 24, 22, tzinfo=UTC), timedelta(hours=25))
    start, end = day_bounds(date(2026, 3, 29), AMS)  # summer time starts: 23 hours
    assert (start, end - start) == (datetime(2026, 3, 28, 23, tzinfo=UTC), timedelta(hours=23))


def test_every_figure_of_a_topic(filled):
    config, store, ids = filled
    d = build_digest(store, config, DAY)
    assert (d["date"], d["weekday"], d["timezone"], d["start"], d["end"]) == (
        "2026-11-21", "Saturday", "Europe/Amsterdam", "2026-11-20T23:00:00Z", "2026-11-21T23:00:00Z")
    acme, globex = d["topics"]
    assert acme["topic"] == "acme" and globex["topic"] == "globex"
    # volume: 16 on the day (the 00:30 and 23:59 local ones in, the next day's 00:30 out), 10 the day before
    # (its 23:30 local one in), 6 a day before that: average (6 x 6 + 10) / 7
    assert {k: acme[k] for k in ("mentions", "previous_day", "change_vs_previous_day", "average_7d",
                                 "change_vs_average_7d")} == {
        "mentions": 16, "previous_day": 10, "change_vs_previous_day": 0.6, "average_7d": 6.57,
        "change_vs_average_7d": 1.4348}
    assert acme["sentiment"] == {"negative": 5, "neutral": 3, "positive": 8}
    assert acme["sentiment_share"] == {"negative": 0.3125, "neutral": 0.1875, "positive": 0.5}
    assert (acme["net_sentiment"], acme["previous_net_sentiment"], acme["net_sentiment_change"]) == (0.2308, 0.0, 0.2308)
    assert acme["by_source"] == [
        {"source": "feed", "mentions": 10, "negative": 2, "neutral": 2, "positive": 6, "share": 0.625},
        {"source": "forum", "mentions": 6, "negative": 3, "neutral": 1, "positive": 2, "share": 0.375}]
    assert acme["by_language"] == [
        {"language": "en", "mentions": 12, "negative": 5, "neutral": 2, "positive": 5, "share": 0.75},
        {"language": "nl", "mentions": 3, "negative": 0, "neutral": 0, "positive": 3, "share": 0.1875},
        {"language": None, "mentions": 1, "negative": 0, "neutral": 1, "positive": 0, "share": 0.0625}]
    assert [(h["hashtag"], h["mentions"], h["previous_day"], h["change"], h["new"]) for h in acme["hashtags"]] == [
        ("launch", 5, 0, None, True),  # never seen before
        ("fail", 4, 2, 1.0, False),
        ("acme", 3, 3, 0.0, False),
        ("old", 1, 0, None, False)]  # not the day before, but within the week before: not new
    assert acme["hashtags"][1] == {"hashtag": "fail", "mentions": 4, "negative": 4, "neutral": 0, "positive": 0,
                                   "previous_day": 2, "change": 1.0, "new": False}
    positive, negative = acme["most_engaged"]["positive"], acme["most_engaged"]["negative"]
    assert [(e["text"], e["engagement"]) for e in positive] == [
        ("Acme launch is brilliant", 100), ("Acme did it again", 45), ("Nice one acme", 10)]
    assert [e["engagement"] for e in negative] == [70, 3, 0]
    top = negative[0]
    assert (top["url"], top["author"], top["source"], top["likes"], top["replies"], top["published_at"]) == (
        f"https://example.org/{ids['Acme support ignored me for a week']}",
        f"user{ids['Acme support ignored me for a week']}", "forum", 50, 20, "2026-11-21T09:05:00Z")
    assert [(a["rule"], a["state"], a["at"], a["summary"]) for a in acme["alerts"]] == [
        ("hijack", "firing", "2026-11-21T10:00:00Z", "25 mentions/h, 80% negative, 12x usual"),
        ("hijack", "resolved", "2026-11-21T13:00:00Z", "back to normal")]
    assert acme["alerts"][0]["labels"] == {"hashtag": "fail", "topic": "acme"}
    assert acme["failing_sources"] == ["forum"] and globex["failing_sources"] == ["blog"]
    assert [d_["mentions"] for d_ in acme["daily"]] == [6, 6, 6, 6, 6, 10, 16]
    assert acme["daily"][-1] == {"date": "2026-11-21", "mentions": 16, "negative": 5, "neutral": 3, "positive": 8,
                                 "net_sentiment": 0.2308}
    hourly = acme["hourly"]
    assert len(hourly["hours"]) == 7 * 24 and hourly["hours"][0] == "2026-11-14T23:00:00Z"
    assert hourly["hours"][-1] == "2026-11-21T22:00:00Z"
    assert sum(hourly["positive"]) == 2 * 5 + 4 + 8 and sum(hourly["negative"]) == 2 * 5 + 4 + 5
    assert hourly["negative"][hourly["hours"].index("2026-11-21T09:00:00Z")] == 4  # 10:05-10:25 local
    # a topic without history: changes are unknown, not infinite
    assert {k: globex[k] for k in ("mentions", "previous_day", "change_vs_previous_day", "average_7d",
                                   "change_vs_average_7d", "net_sentiment", "net_sentiment_change")} == {
        "mentions": 3, "previous_day": 0, "change_vs_previous_day": None, "average_7d": 0.0,
        "change_vs_average_7d": None, "net_sentiment": None, "net_sentiment_change": None}
    # not tied to a topic of the digest: the source-down notice
    assert [(a["rule"], a["labels"]) for a in d["other_alerts"]] == [("source-down", {"source": "forum"})]
    assert d["failing_sources"] == [
        {"source": "blog", "errors": 0, "ok": 0, "error": "timed out after 20s", "consecutive_errors": 1,
         "failing_since": "2026-11-20T20:00:00Z"},
        {"source": "forum", "errors": 1, "ok": 1, "error": "HTTP 500 from 127.0.0.1", "consecutive_errors": 0,
         "failing_since": None}]


def test_the_previous_day_and_one_topic(filled):
    config, store, _ = filled
    d = build_digest(store, config, DAY - timedelta(days=1))
    acme = d["topics"][0]
    assert (acme["mentions"], acme["previous_day"], acme["net_sentiment"]) == (10, 6, 0.0)
    assert [(f["source"], f["errors"], f["ok"]) for f in d["failing_sources"]] == [("blog", 1, 0), ("feed", 1, 1)]
    assert [(a["rule"], a["at"]) for a in acme["alerts"]] == [("hijack", "2026-11-20T12:00:00Z")]
    # one topic: the other topic's alerts and the sources that only feed it are left out
    d = build_digest(store, config, DAY, ["globex"])
    assert [t["topic"] for t in d["topics"]] == ["globex"]
    assert [f["source"] for f in d["failing_sources"]] == ["blog"]
    assert [a["rule"] for a in d["other_alerts"]] == ["source-down"]
    # a disabled source's old error streak is not news (a failed fetch that day would be)
    sources = tuple(replace(s, enabled=False) if s.name == "blog" else s for s in config.sources)
    assert [f["source"] for f in build_digest(store, replace(config, sources=sources), DAY)["failing_sources"]] == ["forum"]
    with pytest.raises(Exception, match="no topic named 'nope'"):
        build_digest(store, config, DAY, ["nope"])


def test_a_half_hour_time_zone_counts_the_cut_hours_from_the_mentions(tmp_path, database):
    config = make_config(tmp_path, database)
    config = replace(config, digest=replace(config.digest, timezone="Asia/Kolkata"))  # UTC+05:30
    with open_store(config.database.location) as store:
        w = Writer(store)
        # the local day 2026-11-21 runs from 2026-11-20T18:30Z to 2026-11-21T18:30Z
        for at, s in [("2026-11-20T18:15", "negative"), ("2026-11-20T18:45", "positive"), ("2026-11-21T10:00", "positive"),
                      ("2026-11-21T18:20", "neutral"), ("2026-11-21T18:40", "negative")]:
            w.add(datetime.fromisoformat(at).replace(tzinfo=UTC), s, source="feed", hashtags=("x",))
        d = build_digest(store, config, DAY, ["acme"])
        acme = d["topics"][0]
        assert (d["start"], d["end"]) == ("2026-11-20T18:30:00Z", "2026-11-21T18:30:00Z")
        assert acme["sentiment"] == {"negative": 0, "neutral": 1, "positive": 2}
        assert (acme["previous_day"], acme["by_source"][0]["mentions"], acme["hashtags"][0]["mentions"]) == (1, 3, 3)


def test_renderings(filled):
    config, store, ids = filled
    d = build_digest(store, config, DAY)
    md = render_markdown(d)
    assert md.startswith("# Daily digest Saturday 2026-11-21\n")
    assert "| Mentions | **16**: +60% vs previous day (10), +143% vs 7-day average (6.57) |" in md
    assert "| Sentiment | negative 5 (31%), neutral 3 (19%), positive 8 (50%) |" in md
    assert "| Net sentiment | **+0.23**: +0.23 vs previous day (+0.00) |" in md
    assert "| \\#launch | 5 | 0 | **new** |" in md and "| \\#fail | 4 | 2 | +100% |" in md and "| \\#old | 1 | 0 | n/a |" in md
    assert "| feed | 10 | 62% |" in md and "| unknown | 1 | 6% |" in md
    assert f"1. Acme launch is brilliant (user{ids['Acme launch is brilliant']}, feed, 100 likes) <https://example.org/" in md
    assert "acme \\| broken \\*again\\*" in md  # escaped: no broken markup
    assert "- 11:00 FIRING hijack \\#fail: 25 mentions/h, 80% negative, 12x usual" in md
    assert "- 14:00 RESOLVED hijack \\#fail: back to normal" in md
    assert "Data may be incomplete: failing forum." in md
    assert "- blog: no fetch that day, failing since Fri 20 21:00: timed out after 20s" in md
    assert "- forum: 1 failed fetch, 1 good: HTTP 500 from 127.0.0.1" in md

    text = render_text(d)
    assert text.startswith("Daily digest Saturday 2026-11-21\n")
    words = " ".join(text.split())  # column widths are rich's business
    assert "Mentions 16 +60% vs previous day (10), +143% vs 7-day average (6.57)" in words
    assert "Sentiment --------====++++++++++++ negative 5 (31%), neutral 3 (19%), positive 8 (50%)" in words
    assert "Net sentiment +0.23 +0.23 vs previous day (+0.00)" in words
    assert "Hours ▂▁▁▁▁▁▁▁▁▂█▂▂▂▂▂▂▂▁▁▁▁▁▂ mentions per hour" in words
    assert "Fri 20 10 ████████████ +0.00 Sat 21 16 ████████████████████ +0.23" in words
    assert "#launch 5 0 new #fail 4 2 +100%" in words
    assert "1. Acme launch is brilliant (user" in words and "11:00 FIRING hijack #fail: 25 mentions/h" in words
    assert "blog: no fetch that day, failing since Fri 20 21:00: timed out after 20s" in words

    charts = render_charts(d)
    assert sorted(charts) == ["acme-net", "acme-volume", "globex-net", "globex-volume"]
    assert all(png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 5000 for png in charts.values())
    page = render_html(d, {name: f"cid:{name}.x" for name in charts})
    assert '<img src="cid:acme-volume.x"' in page and '<img src="cid:globex-net.x"' in page
    assert "NEW</span>" in page and "Acme launch is brilliant" in page
    assert "acme | broken *again*" in page and "<script" not in page
    assert f'href="https://example.org/{ids["Acme support ignored me for a week"]}"' in page


def test_digest_command_formats(filled, tmp_path):
    config, store, _ = filled
    runner = CliRunner()
    base = ["--config", str(tmp_path / "config.toml"), "digest", "--date", "2026-11-21"]
    result = runner.invoke(cli, [*base, "--format", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == build_digest(store, config, DAY)
    result = runner.invoke(cli, [*base, "--format", "markdown", "--topic", "globex"])
    assert result.exit_code == 0 and "## globex" in result.output and "## acme" not in result.output
    result = runner.invoke(cli, [*base, "--format", "html"])
    assert result.exit_code == 0 and result.output.count('src="data:image/png;base64,') == 4
    result = runner.invoke(cli, base)
    assert result.exit_code == 0 and "Daily digest Saturday 2026-11-21" in result.output
    result = runner.invoke(cli, [*base, "--topic", "nope"])
    assert result.exit_code == 1 and "no topic named 'nope'" in result.output


def test_send_mails_one_digest_with_inline_charts(tmp_path, database, smtp_server):
    config = make_config(tmp_path, database, smtp_server.port)
    with open_store(config.database.location) as store:
        fill(store)
    runner = CliRunner()
    args = ["--config", str(tmp_path / "config.toml"), "digest", "--date", "2026-11-21", "--send"]
    result = runner.invoke(cli, args)
    assert result.exit_code == 0, result.output
    mid = message_id(DAY, ["pr@example.org", "ceo@example.org"], ["acme", "globex"])
    assert f"digest of 2026-11-21 {mid}: queued; sent " in result.output
    assert len(smtp_server.messages) == 1
    msg = smtp_server.messages[0]
    assert msg["Subject"] == "[listener] Daily digest 2026-11-21: acme 16 (+60%), globex 3 (n/a)"
    assert msg["Message-ID"] == mid and msg["X-Listener-Kind"] == "digest"
    assert msg["X-Envelope-To"] == "pr@example.org, ceo@example.org"
    images = {p["Content-ID"]: p.get_content() for p in msg.walk() if p.get_content_type() == "image/png"}
    assert sorted(images) == [f"<{n}.2026-11-21@listener>" for n in ("acme-net", "acme-volume", "globex-net", "globex-volume")]
    assert all(png.startswith(b"\x89PNG") for png in images.values())
    page = html_body(msg)
    assert all(f'src="cid:{cid[1:-1]}"' in page for cid in images)
    assert "| Mentions | **16**" in text_body(msg)
    # again: already queued (and sent), nothing new is mailed
    result = runner.invoke(cli, args)
    assert result.exit_code == 0 and "already queued before, not queued again; sent " in result.output
    assert len(smtp_server.messages) == 1


def test_send_digest_if_due_queues_once_a_day(tmp_path, database):
    config = make_config(tmp_path, database)
    store = open_store(config.database.location)
    fill(store)

    def digests():
        return [n["message_id"] for n in store.notifications() if n["kind"] == "digest"]

    assert send_digest_if_due(config, store, datetime(2026, 11, 22, 6, 59, tzinfo=UTC)) is False  # 07:59 local
    assert digests() == []
    assert send_digest_if_due(config, store, datetime(2026, 11, 22, 7, 0, tzinfo=UTC)) is True  # 08:00 local
    assert send_digest_if_due(config, store, datetime(2026, 11, 22, 7, 1, tzinfo=UTC)) is False
    store.close()
    store = open_store(config.database.location)  # a restart
    assert send_digest_if_due(config, store, datetime(2026, 11, 22, 21, 0, tzinfo=UTC)) is False
    assert digests() == [message_id(DAY, config.digest.to, ["acme", "globex"])]
    # the next day: 00:30 local is before `at`; a late run (20:00 local) still sends that day's
    assert send_digest_if_due(config, store, datetime(2026, 11, 22, 23, 30, tzinfo=UTC)) is False
    # nothing was collected on the 22nd (listener not running): no empty digest
    assert send_digest_if_due(config, store, datetime(2026, 11, 23, 18, 0, tzinfo=UTC)) is False
    noon = datetime(2026, 11, 22, 11, tzinfo=UTC)
    store.save_fetch("feed", "rss", [], SourceState(), started_at=noon, now=noon, next_check_at=noon, items=0, requests=1)
    assert send_digest_if_due(config, store, datetime(2026, 11, 23, 19, 0, tzinfo=UTC)) is True
    assert send_digest_if_due(config, store, datetime(2026, 11, 23, 19, 1, tzinfo=UTC)) is False
    assert [m.split(".")[0] for m in digests()] == ["<digest-2026-11-21", "<digest-2026-11-22"]
    first = store.notifications()[0]
    assert first["subject"].startswith("[listener] Daily digest 2026-11-21: acme 16 (+60%)")
    assert first["recipients"] == ["pr@example.org", "ceo@example.org"] and len(first["payload"]["images"]) == 4
    disabled = replace(config, digest=replace(config.digest, enabled=False))
    assert send_digest_if_due(disabled, store, datetime(2026, 11, 24, 9, 0, tzinfo=UTC)) is False
    assert send_digest_if_due(replace(config, email=None), store, datetime(2026, 11, 24, 9, 0, tzinfo=UTC)) is False
    store.close()


def test_send_needs_an_email_section(filled):
    config, store, _ = filled
    with pytest.raises(ListenerError, match=r"no \[email\] section in the config"):
        queue_digest(replace(config, email=None), store, DAY, datetime(2026, 11, 22, 9, tzinfo=UTC))

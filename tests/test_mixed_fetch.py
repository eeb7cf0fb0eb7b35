"""`listener fetch` end to end with every source kind at once, against loopback servers.

Issue acceptance: "`listener fetch` with a mixed config (RSS + all API kinds) against loopback
servers stores every mention exactly once."

One config has an RSS feed, a Mastodon tag timeline (on two instances), the HN Algolia search,
Reddit (OAuth token + search), Bluesky (createSession + searchPosts) and a Lemmy search, all
played by the fakes of the per-source test modules on 127.0.0.1. Every item mentions "acme" and
has its own text. Three kinds of repeats are served:

- the RSS feed lists one entry twice (same guid): a repeat within a source;
- the same Mastodon status (same `uri`) comes from both instances: a repeat within a source;
- an RSS entry links to a Lemmy post's `ap_id` (with tracking parameters and a fragment that
  canonicalisation removes): the same canonical URL through two sources.

The command runs with the real clock (`listener fetch` has no `--now`), so every item is dated a
few minutes before the test starts, well within the first fetch's 2-day backfill.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from xml.sax.saxutils import escape

import pytest
from click.testing import CliRunner

from listener.cli import cli
from listener.store import run_readonly
from listener.sources.text import canonical_url
from tests.httpserver import LoopbackServer, http_server  # noqa: F401  (fixture)
from tests.test_bluesky import HANDLE as BSKY_HANDLE
from tests.test_bluesky import PASSWORD as BSKY_PASSWORD
from tests.test_bluesky import FakeBluesky
from tests.test_bluesky import post as bsky_post
from tests.test_hackernews import PATH as HN_PATH
from tests.test_hackernews import FakeAlgolia, story
from tests.test_hackernews import comment as hn_comment
from tests.test_lemmy import FakeLemmy, post_view
from tests.test_mastodon import FakeInstance, status
from tests.test_reddit import CLIENT_ID, CLIENT_SECRET, FakeReddit
from tests.test_reddit import post as reddit_post

TOPIC = "acme"
SOURCES = ("feed", "masto", "hn", "reddit", "bsky", "lemmy")
SHARED_AP_ID = "https://lemmy.example/post/7"  # a Lemmy post that the RSS feed links to as well


# --- fixtures: what each fake service serves --------------------------------------------------


def rss_feed(items: list[dict]) -> bytes:
    """An RSS 2.0 feed of hand-made items (guid, link, title, description, pubDate)."""
    entries = "".join(
        f"""
  <item>
    <title>{escape(i["title"])}</title>
    <link>{escape(i["link"])}</link>
    <guid isPermaLink="false">{escape(i["guid"])}</guid>
    <description>{escape(i["text"])}</description>
    <pubDate>{format_datetime(i["at"])}</pubDate>
  </item>"""
        for i in items
    )
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel><title>Acme watch</title><link>https://news.example/</link>
<language>en</language>{entries}
</channel></rss>
""".encode()


def iso_z(when: datetime) -> str:
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def lemmy_stamp(when: datetime) -> str:
    return when.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


class Scenario:
    """The items every fake serves, and per source the ids and canonical URLs it should store."""

    def __init__(self, now: datetime):
        ago = lambda minutes: now - timedelta(minutes=minutes)  # noqa: E731

        # RSS: r1 is listed twice; r3 links to the Lemmy post SHARED_AP_ID.
        r1 = {"guid": "acme-r1", "link": "https://news.example/acme-recall?utm_source=rss",
              "title": "Acme recalls its rocket skates", "text": "Acme recalls every pair of rocket skates.",
              "at": ago(50)}
        self.rss_items = [
            r1,
            {"guid": "acme-r2", "link": "https://news.example/acme-results",
             "title": "Acme quarterly results", "text": "Acme reports record anvil sales this quarter.",
             "at": ago(40)},
            dict(r1),  # the same entry again: a repeat within the feed
            {"guid": "acme-r3", "link": "https://Lemmy.Example:443/post/7?utm_medium=feed#comments",
             "title": "Discussion: the acme anvil", "text": "A thread about the acme anvil on Lemmy.",
             "at": ago(30)},
        ]

        # Mastodon: instance A has m1, m2, m3; instance B has m3 (same uri) and m4.
        def toot(n: int, minutes: float, text: str) -> dict:
            return status(n, content=f"<p>{text} <a href=\"https://example.social/tags/acme\" "
                                     f"class=\"mention hashtag\">#<span>acme</span></a></p>",
                          created_at=iso_z(ago(minutes)),
                          tags=[{"name": "acme", "url": "https://example.social/tags/acme"}])

        m3 = toot(3, 12, "Third toot: acme support answered within minutes")
        self.masto_a = [toot(1, 25, "First toot: my acme kettle broke"),
                        toot(2, 18, "Second toot: acme kettle replaced for free"), m3]
        self.masto_b = [json.loads(json.dumps(m3)), toot(4, 8, "Fourth toot: acme is hiring in Utrecht")]

        # Hacker News: two stories and a comment.
        self.hn_hits = [
            story(9001, int(ago(45).timestamp()), title="Acme open-sources its anvil firmware",
                  url="https://github.example/acme/anvil"),
            story(9002, int(ago(35).timestamp()), title="Ask HN: Is acme still worth it?",
                  url=None, story_text="<p>Thinking about buying acme gear.</p>"),
            hn_comment(9003, int(ago(20).timestamp()), "<p>I used acme anvils for years, no complaints.</p>"),
        ]

        # Reddit: a link post (stored by permalink, the link goes to extras) and two self posts.
        self.reddit_items = [  # newest first, as Reddit lists them
            reddit_post(3, ago(10).timestamp(), title="Acme customer service is great", is_self=True,
                        selftext="Acme replaced my broken skates in a day.", url=""),
            reddit_post(2, ago(22).timestamp(), title="Acme skates caught fire", is_self=True,
                        selftext="Be careful with the new acme rocket skates.", url=""),
            reddit_post(1, ago(33).timestamp(), title="Acme recall announced",
                        url="https://news.example/acme-recall?utm_source=reddit"),
        ]

        # Bluesky: three posts.
        self.bsky_posts = [
            bsky_post(1, ago(28), "acme anvils are back in stock"),
            bsky_post(2, ago(16), "the acme recall is a mess"),
            bsky_post(3, ago(6), "loving my new acme kettle"),
        ]

        # Lemmy: three posts, post 7 is the one the RSS feed links to.
        def lemmy(n: int, minutes: float, name: str, body: str) -> dict:
            return post_view(n, name=name, body=body, published=lemmy_stamp(ago(minutes)),
                             ap_id=f"https://lemmy.example/post/{n}")

        self.lemmy_posts = [
            lemmy(5, 44, "Acme anvil review", "The acme anvil is heavy but solid."),
            lemmy(6, 26, "Acme kettle problems", "My acme kettle leaks after a week."),
            lemmy(7, 14, "The acme anvil", "Let us talk about the acme anvil."),
        ]
        assert canonical_url(self.lemmy_posts[2]["post"]["ap_id"]) == SHARED_AP_ID

    # What each source should store, derived from the fixtures above: per source the distinct
    # ids (what dedup within a source keys on) and the canonical URL of each id.
    def stored(self) -> dict[str, dict[str, str]]:
        """source name -> {source_id: canonical url}."""
        return {
            "feed": {i["guid"]: canonical_url(i["link"]) for i in self.rss_items},
            "masto": {s["uri"]: canonical_url(s["url"]) for s in self.masto_a + self.masto_b},
            "hn": {h["objectID"]: f"https://news.ycombinator.com/item?id={h['objectID']}" for h in self.hn_hits},
            "reddit": {p["data"]["name"]: canonical_url("https://www.reddit.com" + p["data"]["permalink"])
                       for p in self.reddit_items},
            "bsky": {p["uri"]: "https://bsky.app/profile/{}/post/{}".format(p["author"]["handle"],
                                                                         p["uri"].rsplit("/", 1)[1])
                     for p in self.bsky_posts},
            "lemmy": {v["post"]["ap_id"]: canonical_url(v["post"]["ap_id"]) for v in self.lemmy_posts},
        }

    def served(self) -> int:
        """Items served in all, repeats included."""
        return (len(self.rss_items) + len(self.masto_a) + len(self.masto_b) + len(self.hn_hits)
                + len(self.reddit_items) + len(self.bsky_posts) + len(self.lemmy_posts))


def write_config(tmp_path, server: LoopbackServer, second_instance: LoopbackServer) -> str:
    path = tmp_path / "config.toml"
    path.write_text(f"""
[database]
path = "listener.db"

[[topics]]
name = "{TOPIC}"
query = "acme"

[[sources]]
name = "feed"
kind = "rss"
url = "{server.url('/acme.xml')}"

[[sources]]
name = "masto"
kind = "mastodon"
tags = ["acme"]
instances = ["{server.base_url}", "{second_instance.base_url}"]

[[sources]]
name = "hn"
kind = "hackernews"
query = "acme"
base_url = "{server.base_url}"

[[sources]]
name = "reddit"
kind = "reddit"
query = "acme"
user_agent = "listener-test/0.1 (by /u/nobody)"
base_url = "{server.base_url}"
auth_url = "{server.base_url}"

[[sources]]
name = "bsky"
kind = "bluesky"
query = "acme"
base_url = "{server.base_url}"

[[sources]]
name = "lemmy"
kind = "lemmy"
query = "acme"
instance = "{server.base_url}"
""")
    return str(path)


def sql(db, query: str, params=()) -> list[tuple]:
    return run_readonly(db, query, params).rows


def summary_line(output: str) -> str:
    lines = [line for line in output.splitlines() if " fetched (" in line]
    assert len(lines) == 1, output
    return lines[0]


@pytest.fixture
def second_instance():
    with LoopbackServer() as server:
        yield server


def test_mixed_fetch_stores_every_mention_once(http_server, second_instance, tmp_path, monkeypatch):  # noqa: F811
    monkeypatch.setenv("REDDIT_CLIENT_ID", CLIENT_ID)  # the default client_id_env / client_secret_env
    monkeypatch.setenv("REDDIT_CLIENT_SECRET", CLIENT_SECRET)
    monkeypatch.setenv("BLUESKY_HANDLE", BSKY_HANDLE)  # the default handle_env / app_password_env
    monkeypatch.setenv("BLUESKY_APP_PASSWORD", BSKY_PASSWORD)

    now = datetime.now(timezone.utc)
    scene = Scenario(now)
    http_server.route("/acme.xml", body=rss_feed(scene.rss_items),
                      headers={"Content-Type": "application/rss+xml; charset=utf-8"})
    masto_a = FakeInstance(http_server, scene.masto_a)
    http_server.route("/api/v1/timelines/tag/acme", masto_a.timeline)
    masto_b = FakeInstance(second_instance, scene.masto_b)
    second_instance.route("/api/v1/timelines/tag/acme", masto_b.timeline)
    http_server.route(HN_PATH, FakeAlgolia(scene.hn_hits))
    FakeReddit(http_server, scene.reddit_items)
    bluesky = FakeBluesky(http_server, scene.bsky_posts)
    bluesky.clock = now  # JWT `exp` claims from the real clock, as the CLI runs on it
    FakeLemmy(http_server, scene.lemmy_posts)

    # The expectation, from the fixtures: distinct ids per source, minus URLs seen in two sources.
    stored = scene.stored()
    per_source = {name: len(ids) for name, ids in stored.items()}
    url_owners: dict[str, set[str]] = {}
    for name, ids in stored.items():
        for url in ids.values():
            url_owners.setdefault(url, set()).add(name)
    shared = {url: owners for url, owners in url_owners.items() if len(owners) > 1}
    assert shared == {SHARED_AP_ID: {"feed", "lemmy"}}  # the one cross-source pair
    in_source_repeats = scene.served() - sum(per_source.values())
    assert in_source_repeats == 2  # r1 twice in the feed, m3 on both instances
    expected_total = sum(per_source.values()) - sum(len(o) - 1 for o in shared.values())
    assert expected_total == scene.served() - 3 == 18

    runner = CliRunner()
    cfg = write_config(tmp_path, http_server, second_instance)
    db = tmp_path / "listener.db"

    # --- first fetch: every source, every mention once --------------------------------------
    result = runner.invoke(cli, ["--config", cfg, "fetch", "--no-score"])
    assert result.exit_code == 0, result.output
    assert summary_line(result.output) == (
        f"6 sources fetched (6 ok, 0 failed), {expected_total} new mentions, 0 scored")

    assert sql(db, "SELECT count(*) FROM mentions") == [(expected_total,)]
    assert sql(db, "SELECT count(DISTINCT source || '|' || source_id), count(DISTINCT url), count(url) "
                   "FROM mentions") == [(expected_total, expected_total, expected_total)]
    assert sql(db, "SELECT count(*) FROM mentions m WHERE NOT EXISTS (SELECT 1 FROM mention_topics t "
                   "WHERE t.mention_id = m.id AND t.topic = ?)", (TOPIC,)) == [(0,)]
    assert sql(db, "SELECT topic, count(*) FROM mention_topics GROUP BY topic") == [(TOPIC, expected_total)]

    # Each source stored what it served (by id and canonical URL), except that the shared URL is
    # stored once, under whichever of the two sources landed first (they are fetched concurrently).
    rows = sql(db, "SELECT source, source_id, url FROM mentions")
    (owner,) = [source for source, _, url in rows if url == SHARED_AP_ID]
    assert owner in shared[SHARED_AP_ID]
    expected_rows = {(name, sid, url) for name, ids in stored.items() for sid, url in ids.items()
                     if url != SHARED_AP_ID or name == owner}
    assert set(rows) == expected_rows and len(rows) == len(expected_rows)
    counts = dict(sql(db, "SELECT source, count(*) FROM mentions GROUP BY source"))
    expected_counts = {name: n - (1 if name in shared[SHARED_AP_ID] and name != owner else 0)
                       for name, n in per_source.items()}
    assert counts == expected_counts
    assert sum(counts.values()) == expected_total

    # --- a second plain fetch: nothing is due, nothing is asked -----------------------------
    asked = (len(http_server.requests), len(second_instance.requests))
    result = runner.invoke(cli, ["--config", cfg, "fetch", "--no-score"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("no source was due; 0 scored. Next checks:\n  feed: ")
    assert (len(http_server.requests), len(second_instance.requests)) == asked

    # --- each source fetched again on demand (with its cursor): no new mention --------------
    for name in SOURCES:
        result = runner.invoke(cli, ["--config", cfg, "fetch", "--no-score", "--source", name])
        assert result.exit_code == 0, (name, result.output)
        assert summary_line(result.output) == "1 source fetched (1 ok, 0 failed), 0 new mentions, 0 scored", name
    assert len(http_server.requests) > asked[0] and len(second_instance.requests) > asked[1]
    assert sql(db, "SELECT count(*) FROM mentions") == [(expected_total,)]
    assert dict(sql(db, "SELECT source, count(*) FROM mentions GROUP BY source")) == expected_counts
    assert sql(db, "SELECT count(*) FROM mention_topics") == [(expected_total,)]
    fetches = sql(db, "SELECT source, status, new_mentions FROM fetches ORDER BY id")
    assert Counter(source for source, _, _ in fetches) == Counter({name: 2 for name in SOURCES})
    assert [(s, n) for s, status_, n in fetches if status_ == "error"] == []
    assert sum(n for _, _, n in fetches) == expected_total

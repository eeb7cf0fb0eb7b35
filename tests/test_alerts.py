"""Alert rules on a real database: detection, the state machine, persistence across restarts, outbox."""

from __future__ import annotations

import json
import math
import tomllib
from datetime import datetime, timedelta, timezone

import pytest

from listener.alerts import SOURCE_DOWN_AFTER, evaluate
from listener.config import parse_config
from listener.stats import binom_sf, poisson_sf, rhythmic_expectation
from listener.store import MentionRow, Store
from models import Sentiment
from sources import SourceState

T0 = datetime(2026, 11, 10, 0, 0, tzinfo=timezone.utc)
PROBS = {"negative": (0.9, 0.05, 0.05), "neutral": (0.05, 0.9, 0.05), "positive": (0.05, 0.05, 0.9)}


def config_for(tmp_path, alerts: str, email: bool = True):
    text = f"""
[database]
path = "{tmp_path / 'm.db'}"

[[topics]]
name = "burgerly"
query = "burgerly"

[[sources]]
name = "feed"
kind = "rss"
url = "http://127.0.0.1:9/feed.xml"

{'[email]' if email else ''}
{'from = "listener@example.org"' if email else ''}
{'to = ["pr@example.org"]' if email else ''}
{alerts}
"""
    return parse_config(tomllib.loads(text), base_dir=tmp_path)


class Feeder:
    """Writes scored mentions straight into the store (sentiment given, not modelled)."""

    def __init__(self, store: Store):
        self.store = store
        self.n = 0

    def add(self, at: datetime, sentiment: str = "neutral", hashtags=(), count: int = 1, likes: int = 0):
        rows = []
        for _ in range(count):
            self.n += 1
            text = "burgerly " + " ".join(f"#{h}" for h in hashtags)
            rows.append(MentionRow("feed", f"m{self.n}", text, at, at, ("burgerly",), tuple(hashtags),
                                   url=f"https://example.org/{self.n}", likes=likes + self.n % 7))
        saved = self.store.save_fetch("feed", "rss", rows, SourceState(), started_at=at, now=at,
                                      next_check_at=at, items=len(rows), requests=1)
        self.store.save_scores([(i, Sentiment.from_probs(*PROBS[sentiment])) for i in saved.new_ids], "test", at)

    def rhythm(self, start: datetime, days: int, per_hour=lambda h: 2 + (6 if 9 <= h <= 21 else 0),
               sentiment_cycle=("neutral", "positive", "neutral", "negative", "positive")):
        for hour in range(days * 24):
            at = start + timedelta(hours=hour)
            for k in range(per_hour(at.hour)):
                self.add(at + timedelta(minutes=(k * 7) % 60), sentiment_cycle[(hour + k) % len(sentiment_cycle)])


def test_statistics():
    assert poisson_sf(5, 1.0) == pytest.approx(1 - math.exp(-1) * (1 + 1 + 1 / 2 + 1 / 6 + 1 / 24))
    assert poisson_sf(0, 3.0) == 1.0 and poisson_sf(1, 0.5) == pytest.approx(1 - math.exp(-0.5))
    assert binom_sf(8, 10, 0.3) == pytest.approx(0.0015903864)
    assert binom_sf(11, 10, 0.3) == 0.0
    hourly = {f"2026-11-0{d}T14:00:00Z": (10 * d, 0) for d in range(1, 8)}
    expected, samples = rhythmic_expectation(hourly, datetime(2026, 11, 8, 15, tzinfo=timezone.utc),
                                             timedelta(hours=1), timedelta(days=7))
    assert sorted(samples) == [10, 20, 30, 40, 50, 60, 70] and expected == 40


BACKLASH = """
[[alerts]]
name = "hijack"
kind = "backlash"
topic = "burgerly"
window = "1h"
for = "5m"
keep_firing_for = "10m"
repeat = "1h"
"""


def test_backlash_fires_once_resolves_once_and_survives_a_restart(tmp_path):
    config = config_for(tmp_path, BACKLASH)
    path = config.database.path
    store = Store(path)
    feed = Feeder(store)
    feed.rhythm(T0, 7)  # a week of ordinary traffic, no hashtags
    day8 = T0 + timedelta(days=7, hours=14)
    assert evaluate(config, store, day8) == []
    # a new hashtag takes off, mostly negative: 40 mentions in 20 minutes
    for minute in range(20):
        feed.add(day8 + timedelta(minutes=minute), "negative", ("burgerlystories",), count=2, likes=5)
    t = day8 + timedelta(minutes=20)
    first = evaluate(config, store, t)
    assert [(x.state, x.labels) for x in first] == [("pending", {"topic": "burgerly", "hashtag": "burgerlystories"})]
    store.close()
    # restart: pending state and its start time survive; `for` (5m) is not reset
    store = Store(path)
    assert evaluate(config, store, t + timedelta(minutes=3)) == []
    fired = evaluate(config, store, t + timedelta(minutes=5))
    assert [x.state for x in fired] == ["firing"]
    assert "negative" in fired[0].summary and "x usual" in fired[0].summary
    store.close()
    store = Store(path)  # restart while firing: no re-send
    assert evaluate(config, store, t + timedelta(minutes=6)) == []
    # one hour later, still going (more negative posts): the repeat notification
    for minute in range(0, 60, 2):
        feed = Feeder(store)
        feed.n = 10_000 + minute
        feed.add(t + timedelta(minutes=30 + minute), "negative", ("burgerlystories",), count=2)
    repeat = evaluate(config, store, t + timedelta(minutes=66))
    assert [x.state for x in repeat] == ["repeat"]
    # it dies down: evaluated every minute, it resolves keep_firing_for (10m) after it was last active
    resolved, last_active = [], None
    for minute in range(67, 240):
        at = t + timedelta(minutes=minute)
        resolved += [(at, x.state) for x in evaluate(config, store, at)]
        if store.alert_states("hijack") and store.alert_states("hijack")[0]["last_active_at"] == at.strftime("%Y-%m-%dT%H:%M:%SZ"):
            last_active = at
    # still busy an hour after the first repeat: a second repeat (t+126m), then one resolved
    assert resolved[:-1] == [(t + timedelta(minutes=126), "repeat")] and resolved[-1][1] == "resolved"
    assert resolved[-1][0] - last_active == timedelta(minutes=10)
    outbox = store.conn.execute("SELECT subject, body_text, message_id FROM outbox ORDER BY id").fetchall()
    assert len(outbox) == 4  # firing, repeat, repeat, resolved
    assert outbox[0][0].startswith("[listener] FIRING hijack #burgerlystories (burgerly): ")
    assert "Most engaged negative mentions:" in outbox[0][1] and "https://example.org/" in outbox[0][1]
    assert outbox[3][0].startswith("[listener] RESOLVED hijack #burgerlystories (burgerly)")
    assert len({m for _, _, m in outbox}) == 4
    events = [e["state"] for e in store.alert_events(T0)]
    assert events == ["pending", "firing", "repeat", "repeat", "resolved"]
    store.close()


def test_ordinary_days_and_a_positive_spike_do_not_fire(tmp_path):
    rules = BACKLASH + """
[[alerts]]
name = "negative"
kind = "negative_spike"
topic = "burgerly"
"""
    config = config_for(tmp_path, rules)
    with Store(config.database.path) as store:
        feed = Feeder(store)
        feed.rhythm(T0, 8)
        launch = T0 + timedelta(days=8, hours=10)
        for minute in range(60):  # a launch people love: lots of positive posts with a new hashtag
            feed.add(launch + timedelta(minutes=minute), "positive", ("burgerlyjoy",), count=3)
        transitions = []
        t = T0 + timedelta(days=7)
        while t < launch + timedelta(hours=3):
            transitions += evaluate(config, store, t)
            t += timedelta(minutes=10)
        assert transitions == []


def test_volume_spike_respects_the_daily_rhythm(tmp_path):
    rules = """
[[alerts]]
name = "volume"
kind = "volume_spike"
topic = "burgerly"
"""
    config = config_for(tmp_path, rules)
    with Store(config.database.path) as store:
        feed = Feeder(store)
        feed.rhythm(T0, 7)
        day8 = T0 + timedelta(days=7)
        feed.rhythm(day8, 1)
        # busy afternoons are normal: evaluating across a whole ordinary day fires nothing
        assert sum((evaluate(config, store, day8 + timedelta(hours=h, minutes=30)) for h in range(24)), []) == []
        # 30 mentions at 03:00, a quiet hour (usually 2): a spike
        night = T0 + timedelta(days=8, hours=3)
        feed.add(night, "neutral", count=30)
        got = evaluate(config, store, night + timedelta(minutes=30))
        assert [t.state for t in got] == ["pending", "firing"]  # for = 0: fires at once
        details = json.loads(store.alert_states("volume")[0]["details"])
        assert details["expected"] == 2 and details["count"] == 30


def test_keyword_rule_and_source_down_notice(tmp_path):
    rules = """
[[alerts]]
name = "recall"
kind = "keyword"
topic = "burgerly"
query = 'recall OR "food poisoning"'
window = "30m"
"""
    config = config_for(tmp_path, rules)
    with Store(config.database.path) as store:
        feed = Feeder(store)
        at = T0 + timedelta(hours=1)
        feed.add(at)
        assert evaluate(config, store, at + timedelta(minutes=1)) == []
        rows = [MentionRow("feed", "fp", "Burgerly food poisoning reports in Utrecht", at, at, ("burgerly",))]
        saved = store.save_fetch("feed", "rss", rows, SourceState(), started_at=at, now=at, next_check_at=at, items=1, requests=1)
        store.save_scores([(saved.new_ids[0], Sentiment.from_probs(*PROBS["negative"]))], "test", at)
        assert [t.state for t in evaluate(config, store, at + timedelta(minutes=2))] == ["pending", "firing"]
        # the feed starts failing: a source-down notice after SOURCE_DOWN_AFTER failures, once
        for i in range(SOURCE_DOWN_AFTER):
            store.record_failure("feed", "rss", "HTTP 500 from 127.0.0.1", started_at=at, now=at, next_check_at=at)
        down = evaluate(config, store, at + timedelta(minutes=40))
        # the keyword alert is held (its window is empty, but its only source is down), the notice fires
        assert [(t.rule, t.state) for t in down] == [("source-down", "pending"), ("source-down", "firing")]
        assert evaluate(config, store, at + timedelta(minutes=41)) == []
        store.save_fetch("feed", "rss", [], SourceState(), started_at=at, now=at, next_check_at=at, items=0, requests=1)
        back = evaluate(config, store, at + timedelta(minutes=50))
        assert sorted((t.rule, t.state) for t in back) == [("recall", "resolved"), ("source-down", "resolved")]
        subjects = [s for (s,) in store.conn.execute("SELECT subject FROM outbox ORDER BY id")]
        assert subjects[1] == "[listener] FIRING source down: feed failing"
        assert subjects[0].startswith("[listener] FIRING recall (burgerly): 1 mention matching")


def test_sql_rule_rows_are_instances(tmp_path):
    rules = """
[[alerts]]
name = "busy-sources"
kind = "sql"
sql = "select source, count(*) as value from mentions group by source having count(*) > 2"
"""
    config = config_for(tmp_path, rules, email=False)
    with Store(config.database.path) as store:
        feed = Feeder(store)
        feed.add(T0, count=3)
        got = evaluate(config, store, T0 + timedelta(minutes=1))
        assert [(t.state, t.labels, t.value) for t in got] == [("pending", {"source": "feed"}, 3.0),
                                                               ("firing", {"source": "feed"}, 3.0)]
        assert store.conn.execute("SELECT count(*) FROM outbox").fetchone()[0] == 0  # no [email]: recorded only

"""`listener demo`: simulated services, accelerated time, the hijack caught, email, a digest."""

from __future__ import annotations

from datetime import datetime, timezone

from listener.demo import run_demo, split_posts
from listener.simulate import generate
from listener.store import run_readonly


def test_demo_tells_the_whole_story(tmp_path, bundled_model):
    lines: list[str] = []
    end = datetime(2026, 11, 22, tzinfo=timezone.utc)
    db = run_demo(tmp_path / "demo", lambda: bundled_model, lines.append, days=3, end=end)
    text = "\n".join(lines)
    # the three simulated services were read by the real rss, mastodon and hackernews sources
    sources = dict(run_readonly(db, "SELECT source, count(*) FROM mentions GROUP BY 1").rows)
    assert set(sources) == {"news", "mastodon", "hn"} and min(sources.values()) > 20
    assert run_readonly(db, "SELECT count(*) - count(sentiment) FROM mentions").rows == [(0,)]
    # the outage, the hijack and the emails about them
    assert "ALERT FIRING   source-down {source=mastodon}" in text
    assert "ALERT FIRING   backlash {topic=burgerly, hashtag=burgerlystories}" in text
    assert "ALERT RESOLVED backlash {topic=burgerly, hashtag=burgerlystories}" in text
    assert "[listener] FIRING #burgerlystories (burgerly): " in text
    assert "| Most engaged negative mentions:" in text and "| Hashtags involved: #burgerlystories" in text
    assert "[listener] RESOLVED #burgerlystories (burgerly): quiet again after " in text
    # the launch passed without an alert; the hijack is one incident: one email when it opens, one when it closes
    before_hijack = text.split("ALERT FIRING   backlash")[0]
    assert "ALERT FIRING   volume" not in before_hijack and "ALERT FIRING   negative" not in before_hijack
    alert_mails = [line for line in lines if " email to " in line and "Daily digest" not in line]
    assert len(alert_mails) == 4, alert_mails  # source down and back, the incident opened and closed
    assert "recall" not in text.split("ALERT")[-1]
    assert (tmp_path / "demo" / "demo-config.toml").exists()
    # a digest mailed each simulated morning, and the hijack day's digest at the end
    assert "[listener] Daily digest " in text
    assert "the daily digest for Sat 21 Nov:" in text and "#burgerlystories" in text.split("the daily digest for")[-1]


def test_posts_are_split_over_the_three_services():
    posts = generate(datetime(2026, 11, 1, tzinfo=timezone.utc), 2)
    split = split_posts(posts)
    assert sum(map(len, split.values())) == len(posts)
    assert all("#" in p.text for p in split["mastodon"])

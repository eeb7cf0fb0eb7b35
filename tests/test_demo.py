"""`listener demo`: simulated services, accelerated time, the hijack caught, email, a digest."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from listener.tools.demo import run_demo, split_posts
from listener.tools.simulate import generate
from listener.store import run_readonly


def test_demo_tells_the_whole_story(tmp_path, bundled_model):
    lines: list[str] = []
    end = datetime(2026, 11, 22, tzinfo=timezone.utc)
    db = run_demo(tmp_path / "demo", lambda: bundled_model, lines.append, days=3, end=end)
    text = "\n".join(lines)
    # the three simulated services were read by the real rss, mastodon and hackernews sources
    sources = dict(run_readonly(db, "SELECT source, count(*) FROM mentions GROUP BY 1").rows)
    assert set(sources) == {"news", "mastodon", "hn"} and min(sources.values()) > 20
    # its Hacker-News-style links lead to the simulated service, not to the real site
    hn_urls = [u for (u,) in run_readonly(db, "SELECT url FROM mentions WHERE source = 'hn'").rows]
    assert all(u.startswith("http://127.0.0.1:") and "/hn/item?id=" in u for u in hn_urls), hn_urls[:3]
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
    # the phases are labelled as they happen, times are in the config's zone, named
    phases = [line for line in lines if line.startswith("-- ")]
    assert len(phases) == 4 and all(any(name in p for p in phases) for name in (
        "a loved product launch", "the Mastodon-style service goes down", "the #burgerlystories campaign starts",
        "#burgerlystories is hijacked with horror stories: a backlash alert expected within minutes"))
    assert text.index("is hijacked with horror stories") < text.index("ALERT FIRING   backlash")
    assert all(p.split(": ")[0].endswith(" CET") for p in phases) and " UTC ALERT" not in text
    # every email is saved as a file a mail client opens; the first alert mail is shown whole
    import email
    import email.policy

    mails = sorted((tmp_path / "demo" / "mail").glob("*.eml"))
    sent = [line for line in lines if " email to " in line]
    assert len(mails) == len(sent) and all(f"(saved as {m.name})" in text for m in mails)
    parsed = [email.message_from_bytes(m.read_bytes(), policy=email.policy.default) for m in mails]
    assert all(p["Subject"] and p["Message-ID"] and p.get_body(preferencelist=("plain",)) for p in parsed)
    firing = next(p for p in parsed if str(p["Subject"]).startswith("[listener] FIRING #"))
    body = firing.get_body(preferencelist=("plain",)).get_content().strip().splitlines()
    assert all(f"      | {line}" in lines for line in body)
    hint = lines[-1]
    assert hint.startswith("try: ") and Path(hint.split()[1]).name == "listener"
    # a digest mailed each simulated morning, and the hijack day's digest at the end
    assert "[listener] Daily digest " in text
    assert "the daily digest for Sat 21 Nov:" in text and "#burgerlystories" in text.split("the daily digest for")[-1]


def test_posts_are_split_over_the_three_services():
    posts = generate(datetime(2026, 11, 1, tzinfo=timezone.utc), 2)
    split = split_posts(posts)
    assert sum(map(len, split.values())) == len(posts)
    assert all("#" in p.text for p in split["mastodon"])

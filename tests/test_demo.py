"""The offline demo runs the whole pipeline against its own loopback sources."""

from __future__ import annotations

from listener.demo import generate_posts, run_demo
from listener.store import run_readonly


def test_demo_fetches_scores_and_records_the_broken_source(tmp_path, now, bundled_model):
    lines: list[str] = []
    db = run_demo(tmp_path / "demo", lambda: bundled_model, lines.append, now=now, posts=30)
    assert run_readonly(db, "SELECT count(*), count(sentiment) FROM mentions").rows == [(30, 30)]
    broken = run_readonly(db, "SELECT consecutive_errors, last_error FROM sources WHERE name = 'demo-broken'").rows
    assert broken[0][0] == 1 and "500" in broken[0][1]
    assert any(line.startswith("3 sources fetched (2 ok, 1 failed), 30 new mentions, 30 scored") for line in lines)
    agree = next(line for line in lines if line.startswith("the model agrees"))
    assert int(agree.split(" on ")[1].split(" of ")[0]) >= 24  # clear template texts: mostly right


def test_generated_posts_are_deterministic(now):
    assert generate_posts(now, 10) == generate_posts(now, 10)
    assert {p.language for p in generate_posts(now, 10)} == {"en", "nl"}

"""Alerts to a chat webhook: Slack-compatible JSON POSTed to a real server on 127.0.0.1, retried on failure."""

from __future__ import annotations

import json
import tomllib
from datetime import timedelta

from listener.alerts import evaluate
from listener.config import parse_config
from listener.notify import deliver
from listener.store import MentionRow, Store
from listener.models import Sentiment
from listener.sources import SourceState
from tests.httpserver import Reply


def test_keyword_alert_goes_to_the_webhook_and_is_retried(tmp_path, http_server, now, monkeypatch):
    config = parse_config(tomllib.loads(f"""
[database]
path = "{tmp_path / 'm.db'}"
[[topics]]
name = "acme"
query = "acme"
[[webhooks]]
name = "slack"
url_env = "TEST_SLACK_URL"
[[alerts]]
name = "recall"
kind = "keyword"
topic = "acme"
query = "recall"
channels = ["slack"]
"""), base_dir=tmp_path)
    answers = [Reply(500), Reply(200, b"ok")]
    http_server.route("/hook", lambda request: answers.pop(0))
    with Store(config.database.path) as store:
        rows = [MentionRow("feed", "1", "Acme announces a recall", now, now, ("acme",), url="https://x.example/1")]
        ids = store.save_fetch("feed", "rss", rows, SourceState(), started_at=now, now=now, next_check_at=now,
                               items=1, requests=1).new_ids
        store.save_scores([(ids[0], Sentiment.from_probs(0.8, 0.1, 0.1))], "test", now)
        assert [t.state for t in evaluate(config, store, now + timedelta(minutes=1))] == ["pending", "firing"]
        # the URL's variable is not set: recorded, kept
        assert tuple(deliver(config, store, now + timedelta(minutes=1))) == (0, 1)
        error = store.notifications()[0]["last_error"]
        assert "TEST_SLACK_URL" in error
        monkeypatch.setenv("TEST_SLACK_URL", http_server.url("/hook"))
        assert tuple(deliver(config, store, now + timedelta(minutes=2))) == (0, 1)  # the server answers 500
        assert tuple(deliver(config, store, now + timedelta(minutes=10))) == (1, 0)
        assert tuple(deliver(config, store, now + timedelta(minutes=20))) == (0, 0)
    posted = http_server.requests_to("/hook")
    assert len(posted) == 2 and posted[0].headers["idempotency-key"] == posted[1].headers["idempotency-key"]
    body = json.loads(posted[-1].body)
    assert body["text"].startswith("[listener] FIRING acme: 1 mention in the last hour matching recall")
    assert body["rules"] == ["recall"] and body["incident"] == 1
    assert body["labels"] == {"topic": "acme"} and body["state"] == "firing"
    assert body["links"] == ["https://x.example/1"]


def test_unknown_channel_is_a_config_error():
    import pytest

    from listener.errors import ConfigError

    with pytest.raises(ConfigError, match=r"alerts\[0\].channels\[0\] \(rule 'k'\): \"teams\" is not one of 'email', 'slack'"):
        parse_config(tomllib.loads('[[topics]]\nname="a"\nquery="a"\n[[webhooks]]\nname="slack"\nurl_env="X"\n'
                                   '[[alerts]]\nname="k"\nkind="keyword"\ntopic="a"\nquery="x"\nchannels=["teams"]\n'))

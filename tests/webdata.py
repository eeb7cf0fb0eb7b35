"""The dashboard's test data: the digest's known day (tests/test_digest.py, topics acme and globex),
a hostile post, and an incident with its notification; the clock the evening of that day."""

from __future__ import annotations

import json
from datetime import timedelta

from listener.store import MentionRow, Store, iso
from listener.models import Sentiment
from listener.sources import SourceState
from tests.test_digest import DAY, PROBS, SETUP, fill, local, make_config

NOW = local(DAY, 20)  # the evening of the digest's day
HOSTILE_TEXT = 'acme <script>window.pwned=true</script> [/] [bold red]x[/] <img src=x onerror="window.pwned=true">'
HOSTILE_URL = "javascript:window.pwned=true"


def build(tmp_path):
    """(config, {what: id}) of a filled database in `tmp_path`."""
    config = make_config(tmp_path)
    with Store(config.database.path) as store:
        ids = fill(store)
        at = local(DAY, 18)
        row = MentionRow("feed", "hostile", HOSTILE_TEXT, at, SETUP, ("acme",), ("pwn",), url=HOSTILE_URL,
                         author='<b onmouseover="window.pwned=true">eve</b>', title="[link](javascript:alert(1))")
        saved = store.save_fetch("feed", "rss", [row], SourceState(), started_at=SETUP, now=SETUP, next_check_at=SETUP,
                                 items=1, requests=1)
        store.save_scores([(saved.new_ids[0], Sentiment.from_probs(*PROBS["negative"]))], "test", SETUP)
        ids["hostile"] = saved.new_ids[0]
        opened = local(DAY, 11)
        lead = {"rule": "hijack", "labels": {"hashtag": "fail", "topic": "acme"}, "summary": "4 posts, 100% negative",
                "details": {"hashtag": "fail", "count": 4, "ratio": 12.0}}
        incident = {"id": None, "topic": "acme", "state": "closed", "opened_at": iso(opened), "notified_at": iso(opened),
                    "last_notified_at": iso(opened), "closed_at": iso(local(DAY, 14)), "lead_rule": "hijack",
                    "lead_labels": json.dumps(lead["labels"]), "lead": json.dumps(lead),
                    "summary": "#fail: 4 posts, 100% negative", "peak": 4.0, "peak_at": iso(local(DAY, 10)),
                    "hashtags": '["fail"]', "rules": '["hijack"]', "members": '["hijack|{}"]', "announced": "[]",
                    "notifications": 1}
        note = {"message_id": "<incident-1@test>", "channel": "email", "kind": "alert", "recipients": ["pr@example.org"],
                "subject": "[listener] FIRING acme #fail", "body_text": "b", "body_html": None, "payload": {},
                "now": opened, "incident_topic": "acme"}
        event = {"rule": "hijack", "labels": lead["labels"] and json.dumps(lead["labels"], sort_keys=True),
                 "state": "firing", "at": opened, "value": 4.0, "summary": "4 posts, 100% negative", "details": None,
                 "topic": "acme"}
        made = store.save_alert_evaluation(states={}, events=[event], incidents=[incident], outbox=[note], evaluations=[])
        ids["incident"] = made["acme"]
        store.mark_sent(store.notifications()[-1]["id"], opened + timedelta(minutes=1))
    return config, ids

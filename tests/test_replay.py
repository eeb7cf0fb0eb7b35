"""`listener alerts test --replay`, `listener export` and `listener alerts` through click's runner."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

from click.testing import CliRunner

from listener.cli import cli
from listener.tools.simulate import generate, hijack_onset

START = datetime(2026, 11, 2, tzinfo=timezone.utc)
RULES = """
[database]
path = "{db}"

[[topics]]
name = "burgerly"
query = "burgerly OR #burgerlystories OR #burgerlyvegan"

[[alerts]]
name = "hijack"
kind = "backlash"
topic = "burgerly"
for = "5m"

[[alerts]]
name = "recall"
kind = "keyword"
topic = "burgerly"
query = "recall"
"""


def write_stream(path, days=3, hijack_day=2, launch_day=1):
    with path.open("w") as fh:
        for p in generate(START, days, launch_day=launch_day, hijack_day=hijack_day):
            record = {"source": "social", "id": p.id, "published_at": p.published_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
                      "text": p.text, "author": p.author, "likes": p.likes, "url": f"https://social.example/{p.id}"}
            fh.write(json.dumps(record) + "\n")  # hashtags only in the text: they still count


def test_replay_prints_when_the_backlash_would_have_fired_and_resolved(tmp_path, bundled_model):
    rules = tmp_path / "rules.toml"
    rules.write_text(RULES.format(db=tmp_path / "unused.db"))
    stream = tmp_path / "stream.jsonl"
    write_stream(stream)
    result = CliRunner().invoke(cli, ["alerts", "test", "--replay", str(stream), "--rules", str(rules), "--json", "--step", "5m"])
    assert result.exit_code == 0, result.output
    objects = [json.loads(line) for line in result.output.splitlines() if line.startswith("{")]
    events = [e for e in objects if e["type"] == "transition"]
    onset = hijack_onset(START, hijack_day=2)
    states = [(e["rule"], e["labels"], e["state"]) for e in events]
    tag = {"topic": "burgerly", "hashtag": "burgerlystories"}
    assert states == [("hijack", tag, "pending"), ("hijack", tag, "firing"), ("hijack", tag, "resolved")], states
    assert set(events[0]) == {"type", "rule", "labels", "state", "at", "value", "summary"}
    fired = datetime.fromisoformat(events[1]["at"].replace("Z", "+00:00"))
    assert onset < fired <= onset + timedelta(minutes=15)
    # one notification when the incident opens (with the firing), one when it closes (with the resolved)
    notices = [e for e in objects if e["type"] == "notification"]
    assert [(n["state"], n["incident"], n["rules"], n["at"]) for n in notices] == [
        ("firing", 1, ["hijack"], events[1]["at"]), ("resolved", 1, ["hijack"], events[2]["at"])]
    assert notices[0]["subject"].startswith("[listener] FIRING #burgerlystories (burgerly): ")
    # the plain output has one line per transition and per notification
    plain = CliRunner().invoke(cli, ["alerts", "test", "--replay", str(stream), "--rules", str(rules), "--step", "5m"])
    lines = [line for line in plain.output.splitlines() if " hijack " in line or " NOTICE " in line]
    assert [line.split()[1] for line in lines] == ["PENDING", "FIRING", "NOTICE", "RESOLVED", "NOTICE"]


def test_replay_input_errors_name_the_line(tmp_path):
    rules = tmp_path / "rules.toml"
    rules.write_text(RULES.format(db=tmp_path / "unused.db"))
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"source": "s", "id": "1", "published_at": "2026-11-02T10:00:00Z", "text": "ok"}\n{"source": "s", "id": "2"}\n')
    result = CliRunner().invoke(cli, ["alerts", "test", "--replay", str(bad), "--rules", str(rules)])
    assert result.exit_code == 1 and 'bad.jsonl:2: missing "published_at", "text"' in result.output


def test_export_writes_the_replay_format_and_alerts_shows_state(tmp_path, bundled_model):
    config = tmp_path / "config.toml"
    config.write_text(RULES.format(db=tmp_path / "m.db"))
    stream = tmp_path / "stream.jsonl"
    write_stream(stream, days=1, hijack_day=9, launch_day=9)
    # load the stream into a real database through the same path as fetched mentions
    from listener.config import load_config
    from listener.pipeline import score_pending, to_rows
    from listener.tools.jsonl import read_jsonl
    from listener.store import Store
    from listener.sources import SourceState

    cfg = load_config(config)
    items = list(read_jsonl(stream))
    from listener.config import SourceConfig

    with Store(cfg.database.path) as store:
        rows, _ = to_rows(SourceConfig("social", "rss", None), [m for _, m in items], cfg.topics, START + timedelta(days=1))
        store.save_fetch("social", "rss", rows, SourceState(), started_at=START, now=START, next_check_at=START,
                         items=len(rows), requests=1)
        score_pending(store, bundled_model, START)
    out = CliRunner().invoke(cli, ["--config", str(config), "export", "--format", "jsonl"])
    assert out.exit_code == 0, out.output
    exported = [json.loads(line) for line in out.output.splitlines()]
    assert len(exported) == len(items)
    first = exported[0]
    assert {"source", "id", "published_at", "text", "url", "author", "topics", "sentiment"} <= set(first)
    assert first["topics"] == ["burgerly"] and first["published_at"].endswith("Z")
    csv_out = CliRunner().invoke(cli, ["--config", str(config), "export", "--format", "csv", "--since", "2026-11-02T12:00:00"])
    assert csv_out.output.splitlines()[0].startswith("source,id,published_at,text")
    assert 1 < len(csv_out.output.splitlines()) < len(items) + 1
    # the exported file replays
    (tmp_path / "again.jsonl").write_text(out.output)
    again = CliRunner().invoke(cli, ["--config", str(config), "alerts", "test", "--replay", str(tmp_path / "again.jsonl"),
                                     "--step", "15m"])
    assert again.exit_code == 0, again.output
    # `listener alerts` lists the rules (nothing evaluated on this database yet)
    status = CliRunner().invoke(cli, ["--config", str(config), "alerts", "--json"])
    rules = [json.loads(line) for line in status.output.splitlines()]
    assert [r["rule"] for r in rules] == ["hijack", "recall", "source-down"]
    assert rules[0]["last_evaluated_at"] is None


def test_a_stream_that_begins_with_a_hijack_is_evaluated_through_its_first_hours(tmp_path, bundled_model):
    """A new install whose data began less than a window ago (history empty, then shorter than the
    window): evaluation once crashed on the negative length of that history at minute 60."""
    rules = tmp_path / "rules.toml"
    rules.write_text(RULES.format(db=tmp_path / "unused.db"))
    full, stream = tmp_path / "full.jsonl", tmp_path / "stream.jsonl"
    write_stream(full)
    onset = hijack_onset(START, hijack_day=2)
    first, last = onset - timedelta(minutes=10), onset + timedelta(hours=2)
    with full.open() as src, stream.open("w") as out:
        for line in src:
            at = datetime.fromisoformat(json.loads(line)["published_at"].replace("Z", "+00:00"))
            if first <= at < last:
                out.write(line)
    result = CliRunner().invoke(cli, ["alerts", "test", "--replay", str(stream), "--rules", str(rules), "--json",
                                      "--step", "1m"])
    assert result.exit_code == 0, result.output
    objects = [json.loads(line) for line in result.output.splitlines() if line.startswith("{")]
    states = [e["state"] for e in objects if e["type"] == "transition"]
    assert states[:2] == ["pending", "firing"], states

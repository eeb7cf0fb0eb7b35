"""The team's corrections end to end: the digest counts the corrected labels and leaves out mentions
that are not relevant; `listener corrections` lists them, `listener sql` reads them, `corrections
export` writes them as a training TSV, and `model eval --corrections` scores the real model against
them with the same figures as on that file. (What the store itself promises is in
test_store_contract.py.)"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from click.testing import CliRunner

from listener.cli import cli
from listener.digest import build_digest
from listener.models.data import read_tsv
from listener.pipeline import score_pending
from listener.store import MentionRow, open_store
from tests.test_digest import DAY, fill, make_config
from tests.test_models import CLEAR

AT = datetime(2026, 11, 22, 9, 30, tzinfo=timezone.utc)


def test_the_digest_counts_the_corrected_labels_and_leaves_out_mentions_not_relevant(tmp_path, database):
    config = make_config(tmp_path, database)
    with open_store(config.database.location) as store:
        ids = fill(store)
        [before] = build_digest(store, config, DAY, ["acme"])["topics"]
        assert (before["mentions"], before["sentiment"], before["net_sentiment"]) == (
            16, {"negative": 5, "neutral": 3, "positive": 8}, 0.2308)
        store.correct_sentiment(ids["Acme support ignored me for a week"], "positive", by="ann", at=AT)  # forum, #fail
        store.mark_not_relevant(ids["Acme did it again"], topic="acme", by="ann", at=AT)  # feed, #launch, positive
        [after] = build_digest(store, config, DAY, ["acme"])["topics"]
    assert (after["mentions"], after["sentiment"], after["net_sentiment"]) == (
        15, {"negative": 4, "neutral": 3, "positive": 8}, round((8 - 4) / 12, 4))
    assert [(s["source"], s["mentions"], s["negative"], s["positive"]) for s in after["by_source"]] == [
        ("feed", 9, 2, 5), ("forum", 6, 2, 3)]
    assert [(h["hashtag"], h["mentions"], h["negative"], h["positive"]) for h in after["hashtags"]][:2] == [
        ("fail", 4, 3, 1), ("launch", 4, 0, 4)]  # launch had 5
    assert "Acme support ignored me for a week" in [m["text"] for m in after["most_engaged"]["positive"]]
    assert "Acme support ignored me for a week" not in [m["text"] for m in after["most_engaged"]["negative"]]
    assert "Acme did it again" not in [m["text"] for m in after["most_engaged"]["positive"]]
    day = {d["date"]: d for d in after["daily"]}[DAY.isoformat()]
    assert (day["mentions"], day["negative"], day["positive"]) == (15, 4, 8)
    assert sum(after["hourly"]["negative"]) == sum(before["hourly"]["negative"]) - 1
    assert sum(after["hourly"]["positive"]) == sum(before["hourly"]["positive"])  # one in, one out


def run(tmp_path, *args: str):
    result = CliRunner().invoke(cli, ["--config", str(tmp_path / "config.toml"), *args])
    assert result.exit_code == 0, result.output
    return result


def labelled_store(tmp_path, database, model):
    """The model test's clear texts stored and scored by the real model, then labelled by the team as
    test_models' hand-made file labels them (the meeting deliberately wrong); one not relevant."""
    config = make_config(tmp_path, database)
    texts = [(t, label, "nl" if i >= 4 else "en") for i, (t, label) in enumerate(CLEAR)]
    texts.append(("The meeting is scheduled for Tuesday at 10am.", "negative", "en"))
    texts.append(("acme hiring: we are looking for a\tbarista\nin Utrecht", "neutral", None))  # tab and line break
    with open_store(config.database.location) as store:
        ids = store.save_mentions([MentionRow("feed", str(i), text, AT, AT, ("acme",), (), language=lang)
                                   for i, (text, _, lang) in enumerate(texts)]).new_ids
        score_pending(store, model, AT)
        for i, (mid, (_, label, _)) in enumerate(zip(ids, texts)):
            store.correct_sentiment(mid, label, by="ann" if i % 2 else "bob", at=AT + timedelta(minutes=i))
        store.mark_not_relevant(ids[-1], topic=None, by="ann", at=AT + timedelta(hours=1))
    return config, ids


def test_corrections_list_export_and_measure_the_model(tmp_path, database, bundled_model):
    config, ids = labelled_store(tmp_path, database, bundled_model)
    listed = [json.loads(line) for line in run(tmp_path, "corrections", "--json").output.splitlines()]
    assert len(listed) == 11 and listed[0]["mention_id"] == ids[0] and listed[0]["corrected_by"] == "bob"
    assert listed[-1]["label"] == "not relevant" and listed[-1]["topic"] is None
    meeting = listed[8]
    assert (meeting["label"], meeting["model_sentiment"], meeting["text"]) == (
        "negative", "neutral", "The meeting is scheduled for Tuesday at 10am.")
    table = run(tmp_path, "corrections", "--since", "2026-11-22T10:00:00").output
    assert "not relevant to any topic" in table and "ann" in table and "meeting" not in table
    assert "1 correction" in table
    assert run(tmp_path, "sql", "select count(*) n from corrections where label = model_sentiment", "--csv"
               ).output == "n\n9\n"  # the team agreed with the model on 9 of the 10 labels
    # the training format: one line per sentiment correction, tabs and line breaks as spaces
    out = tmp_path / "ours.tsv"
    assert "10 labelled examples written to" in run(tmp_path, "corrections", "export", "--out", str(out)).output
    lines = out.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "text\tlabel\tlanguage" and len(lines) == 11
    assert lines[-1] == "acme hiring: we are looking for a barista in Utrecht\t1\t"
    assert lines[1] == f"{CLEAR[0][0]}\t2\ten" and [e.label for e in read_tsv(out)][8:] == [0, 1]
    assert run(tmp_path, "corrections", "export").output.splitlines() == lines
    # the same figures as on the file, and the ones the model test computes by hand on these labels
    on_corrections = json.loads(run(tmp_path, "model", "eval", "--corrections", "--json").output.splitlines()[-1])
    on_file = json.loads(run(tmp_path, "model", "eval", str(out), "--json").output.splitlines()[-1])
    assert on_corrections == on_file
    assert on_corrections["n"] == 10 and on_corrections["confusion"][0] == [4, 1, 0] and on_corrections["confusion"][2] == [0, 0, 4]
    assert on_corrections["by_language"]["nl"]["accuracy"] == 1.0
    plain = run(tmp_path, "model", "eval", "--corrections").output
    assert "the corrections: model bundled" in plain and "confusion matrix" in plain


def test_model_eval_wants_a_file_or_the_corrections(tmp_path, database):
    make_config(tmp_path, database)
    for args in ([], ["x.tsv", "--corrections"]):
        result = CliRunner().invoke(cli, ["--config", str(tmp_path / "config.toml"), "model", "eval", *args])
        assert result.exit_code == 1 and "give either FILE.tsv or --corrections" in result.output
    empty = CliRunner().invoke(cli, ["--config", str(tmp_path / "config.toml"), "model", "eval", "--corrections"])
    assert empty.exit_code == 1 and "no sentiment corrections in the database yet" in empty.output
    assert run(tmp_path, "corrections", "export").output == "text\tlabel\tlanguage\n"
    assert "0 corrections" in run(tmp_path, "corrections").output


@pytest.mark.parametrize("args", [["corrections", "--help"], ["corrections", "export", "--help"]])
def test_the_corrections_commands_say_what_they_do(tmp_path, args):
    assert "corrections" in run(tmp_path, *args).output

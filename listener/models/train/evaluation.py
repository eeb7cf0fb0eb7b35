"""Measuring a model while training: embeddings and logits in length-sorted batches, the
temperature, the figures a manifest records, and the score that picks the best checkpoint.

Validation reads texts as the product does ([model] max_length, default 128), whatever the
training length (`--max-length`, 64 by default: fine-tuning cost grows with it).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from listener.errors import ModelError
from listener.models.data import Example
from listener.models.e5base import PREFIX
from listener.models.metrics import expected_calibration_error, report

__all__ = ["EVAL_MAX_LENGTH", "embed", "evaluate_logits", "fit_temperature", "softmax", "headline",
           "calibrated_figures", "selection_figures", "selection_score", "teacher_logits"]

EVAL_MAX_LENGTH = 128


def embed(model, tokenizer, texts: list[str], max_length: int, batch_size: int = 64, log=None):
    """Mean-pooled encoder embeddings (n x H), frozen encoder, length-sorted batches."""
    import torch

    from listener.models.textprep import length_batches, normalise_for_model

    prepared = [PREFIX + normalise_for_model(t) for t in texts]
    out = np.zeros((len(prepared), model.encoder.config.hidden_size), dtype=np.float32)
    start_t = time.time()
    done = 0
    with torch.inference_mode():
        for n, idx in enumerate(length_batches([len(t) for t in prepared], batch_size)):
            enc = tokenizer([prepared[i] for i in idx], padding=True, truncation=True,
                            max_length=max_length, return_tensors="pt")
            out[idx] = model.pool(enc["input_ids"], enc["attention_mask"]).numpy()
            done += len(idx)
            if log and n % 50 == 0:
                log(f"  embedded {done}/{len(prepared)} ({done / max(time.time() - start_t, 1e-9):.0f}/s)")
    return out


def evaluate_logits(model, tokenizer, texts: list[str], max_length: int, batch_size: int = 64,
                    prefix: str = PREFIX) -> np.ndarray:
    """Logits (n x 3) of the classifier in eval mode, input order; each text read as `prefix` + text."""
    import torch

    from listener.models.textprep import length_batches, normalise_for_model

    prepared = [prefix + normalise_for_model(t) for t in texts]
    out = np.zeros((len(prepared), 3), dtype=np.float32)
    model.eval()
    with torch.inference_mode():
        for idx in length_batches([len(t) for t in prepared], batch_size):
            enc = tokenizer([prepared[i] for i in idx], padding=True, truncation=True,
                            max_length=max_length, return_tensors="pt")
            out[idx] = model(enc["input_ids"], enc["attention_mask"]).float().numpy()
    return out


def fit_temperature(logits: np.ndarray, gold: np.ndarray) -> float:
    """Temperature minimising the negative log-likelihood on validation logits."""
    import torch

    lt, yt = torch.from_numpy(logits), torch.from_numpy(gold).long()
    log_t = torch.zeros(1, requires_grad=True)
    opt = torch.optim.LBFGS([log_t], max_iter=100, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(lt / log_t.exp(), yt)
        loss.backward()
        return loss

    opt.step(closure)
    return float(log_t.exp().detach())


def softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)


def headline(r: dict) -> dict:
    """What a manifest records of a metrics report: macro recall, macro F1, accuracy (4 places) and n."""
    return {"macro_recall": round(r["macro_recall"], 4), "macro_f1": round(r["macro_f1"], 4),
            "accuracy": round(r["accuracy"], 4), "n": r["n"]}


def calibrated_figures(logits: np.ndarray, gold: np.ndarray, temperature: float) -> dict:
    """A validation file's headline figures, and its calibration error before and after `temperature`."""
    return {
        **headline(report(gold, logits.argmax(1))),
        "ece_before": round(expected_calibration_error(softmax(logits), gold), 4),
        "ece_after": round(expected_calibration_error(softmax(logits / temperature), gold), 4),
    }


def selection_figures(model, tokenizer, vals: dict[str, list[Example]], prefix: str) -> dict:
    """Macro recall and macro F1 of each validation file: what a training run's history records."""
    figures = {}
    for name, ex in vals.items():
        logits = evaluate_logits(model, tokenizer, [e.text for e in ex], EVAL_MAX_LENGTH, prefix=prefix)
        r = report([e.label for e in ex], logits.argmax(1))
        figures[name] = {"macro_recall": round(r["macro_recall"], 4), "macro_f1": round(r["macro_f1"], 4)}
    return figures


def selection_score(figures: dict) -> float:
    """Checkpoint selection: the mean of the three targets' metrics (nl_val is validation, never trained on)."""
    return (figures["en_val.tsv"]["macro_recall"] + figures["multi_val.tsv"]["macro_recall"]
            + figures["nl_val.tsv"]["macro_f1"]) / 3


def teacher_logits(folder: Path, base: Path, tokenizer, texts: list[str], max_length: int,
                   log) -> tuple[np.ndarray, str]:
    """The logits of a shipped artifact (`finetune --teacher`: its weights in fp32, its own layers and
    input prefix) on the training texts, for distillation, and its name; each distinct text is read once."""
    from listener.models.bundled import build_classifier, input_prefix, load_artifact

    model = build_classifier(base)
    try:
        manifest = load_artifact(model, folder)
    except (ModelError, OSError, ValueError, KeyError) as exc:
        raise ModelError(f"--teacher {folder}: not a model artifact folder ({exc})") from None
    name = manifest.get("name", folder.name)
    distinct = list(dict.fromkeys(texts))
    log(f"teacher {name}: scoring {len(distinct)} distinct training texts")
    start = time.time()
    z = evaluate_logits(model, tokenizer, distinct, max_length, prefix=input_prefix(manifest))
    log(f"  done in {time.time() - start:.0f} s")
    row = {t: i for i, t in enumerate(distinct)}
    return z[[row[t] for t in texts]], name

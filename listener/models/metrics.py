"""Classification metrics for 3-class sentiment (0 negative, 1 neutral, 2 positive)."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from listener.models import LABELS


def confusion(gold: Sequence[int], pred: Sequence[int], n: int = 3) -> np.ndarray:
    """Rows are gold labels, columns predictions."""
    m = np.zeros((n, n), dtype=np.int64)
    for g, p in zip(gold, pred):
        m[int(g), int(p)] += 1
    return m


def report(gold: Sequence[int], pred: Sequence[int]) -> dict:
    """Macro recall (TweetEval's metric), macro F1, accuracy, per-class recall, confusion matrix.

    A class with no gold examples is left out of the macro averages.
    """
    m = confusion(gold, pred)
    support = m.sum(1)
    predicted = m.sum(0)
    tp = np.diag(m)
    present = support > 0
    recall = np.divide(tp, support, out=np.zeros(3), where=support > 0)
    precision = np.divide(tp, predicted, out=np.zeros(3), where=predicted > 0)
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros(3), where=(precision + recall) > 0)
    n = int(m.sum())
    return {
        "n": n,
        "macro_recall": float(recall[present].mean()) if present.any() else 0.0,
        "macro_f1": float(f1[present].mean()) if present.any() else 0.0,
        "accuracy": float(tp.sum() / n) if n else 0.0,
        "recall": {LABELS[i]: float(recall[i]) for i in range(3)},
        "f1": {LABELS[i]: float(f1[i]) for i in range(3)},
        "support": {LABELS[i]: int(support[i]) for i in range(3)},
        "confusion": m.tolist(),
    }


def expected_calibration_error(probs: np.ndarray, gold: Sequence[int], bins: int = 15) -> float:
    """ECE of the top-class confidence over equal-width bins."""
    probs = np.asarray(probs)
    gold = np.asarray(gold)
    conf = probs.max(1)
    correct = (probs.argmax(1) == gold).astype(float)
    edges = np.linspace(0, 1, bins + 1)
    ece = 0.0
    for lo, hi in zip(edges[:-1], edges[1:]):
        sel = (conf > lo) & (conf <= hi)
        if sel.any():
            ece += sel.mean() * abs(correct[sel].mean() - conf[sel].mean())
    return float(ece)


def evaluate(model, examples) -> dict:
    """Score labelled examples with `model`; the report overall and per language (when given)."""
    from listener.models import LABELS

    predictions = model.score([e.text for e in examples])
    pred = [LABELS.index(p.label) for p in predictions]
    gold = [e.label for e in examples]
    out = report(gold, pred)
    languages = sorted({e.language for e in examples if e.language})
    if languages:
        out["by_language"] = {}
        for lang in languages:
            idx = [i for i, e in enumerate(examples) if e.language == lang]
            out["by_language"][lang] = report([gold[i] for i in idx], [pred[i] for i in idx])
    out["model"] = getattr(model, "name", "")
    return out

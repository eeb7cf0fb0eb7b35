"""The first bundled model: a class-balanced logistic-regression head on the frozen base encoder
(`python -m listener.models.train head`), kept to rebuild that baseline."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np

from listener.models.data import read_tsv
from listener.models.train.evaluation import EVAL_MAX_LENGTH, calibrated_figures, embed, fit_temperature
from listener.models.train.examples import SEED, VAL_FILES, sample
from listener.models.train.export import BASE
from listener.models.train.log import log

__all__ = ["fit_head", "train_head"]


def fit_head(x: np.ndarray, y: np.ndarray, l2: float = 1e-3, steps: int = 200):
    """Class-balanced multinomial logistic regression (LBFGS); returns (weight 3xH, bias 3)."""
    import torch

    torch.manual_seed(SEED)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y).long()
    counts = torch.bincount(yt, minlength=3).float()
    weights = counts.sum() / (3 * counts.clamp(min=1))
    mean, std = xt.mean(0), xt.std(0) + 1e-6
    xs = (xt - mean) / std
    w = torch.zeros(3, x.shape[1], requires_grad=True)
    b = torch.zeros(3, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=steps, line_search_fn="strong_wolfe")
    loss_fn = torch.nn.CrossEntropyLoss(weight=weights)

    def closure():
        opt.zero_grad()
        loss = loss_fn(xs @ w.T + b, yt) + l2 * (w**2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    # fold the standardisation into the weights: (x - mean) / std @ w.T + b
    w_eff = (w / std).detach()
    b_eff = (b - (w * (mean / std)).sum(1)).detach()
    return w_eff.numpy(), b_eff.numpy()


def train_head(data: Path, out: Path, en_limit: int | None, multi_limit: int | None, max_length: int) -> dict:
    """Fit the head on embeddings of en_train + multi_train, calibrate it, write it and its manifest to `out`."""
    import torch
    from safetensors.torch import save_file
    from transformers import AutoTokenizer

    from listener.models.bundled import build_classifier
    from listener.models.e5base import ensure_base

    rng = random.Random(SEED)
    torch.manual_seed(SEED)
    base = ensure_base()
    tokenizer = AutoTokenizer.from_pretrained(base)
    model = build_classifier(base).eval()
    en = sample(read_tsv(data / "en_train.tsv"), en_limit, rng)
    multi = sample(read_tsv(data / "multi_train.tsv"), multi_limit, rng)
    train = en + multi
    log(f"embedding {len(train)} training texts")
    x = embed(model, tokenizer, [e.text for e in train], max_length, log=log)
    y = np.array([e.label for e in train])
    w, b = fit_head(x, y)
    val_logits, val_gold = [], []
    vals = {}
    for name in VAL_FILES:
        ex = read_tsv(data / name)
        xv = embed(model, tokenizer, [e.text for e in ex], EVAL_MAX_LENGTH, log=log)
        logits = xv @ w.T + b
        gold = np.array([e.label for e in ex])
        vals[name] = (logits, gold)
        if name != "nl_val.tsv":  # calibrate on en/multi validation only
            val_logits.append(logits)
            val_gold.append(gold)
    temperature = fit_temperature(np.concatenate(val_logits), np.concatenate(val_gold))
    figures: dict = {}
    for name, (logits, gold) in vals.items():
        figures[name] = calibrated_figures(logits, gold, temperature)
        log(f"{name}: {json.dumps(figures[name])}")
    out.mkdir(parents=True, exist_ok=True)
    save_file({"head.weight": torch.from_numpy(w.astype(np.float32)).contiguous(),
               "head.bias": torch.from_numpy(b.astype(np.float32)).contiguous()},
              str(out / "head.safetensors"))
    manifest = {
        "name": "bundled-e5-small-head-v1",
        "base": BASE,
        "method": "frozen encoder, mean pooling, class-balanced logistic-regression head, temperature scaling",
        "files": ["head.safetensors"],
        "train_max_length": max_length,
        "eval_max_length": EVAL_MAX_LENGTH,
        "temperature": round(temperature, 4),
        "trained_on": {"en_train.tsv": len(en), "multi_train.tsv": len(multi)},
        "seed": SEED,
        "validation": figures,
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest

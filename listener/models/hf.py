"""Any Hugging Face sequence-classification checkpoint, by hub name or local folder."""

from __future__ import annotations

import inspect
import re
from typing import Sequence

import numpy as np

from listener.errors import ModelError
from listener.models import Sentiment
from listener.models.textprep import length_batches, normalise_for_model

_STARS = re.compile(r"^([1-5])\s*stars?$")


def label_mapping(id2label: dict[int, str]) -> np.ndarray:
    """Matrix (num_labels x 3) turning a checkpoint's probabilities into negative/neutral/positive.

    Understands negative/neutral/positive (any case, also neg/neu/pos), LABEL_0..2 (0 negative,
    1 neutral, 2 positive; LABEL_0..1 is binary negative/positive), 1-5 stars (1-2 negative,
    3 neutral, 4-5 positive) and binary positive/negative.
    """
    names = {int(i): str(label).strip().lower() for i, label in id2label.items()}
    n = len(names)
    matrix = np.zeros((n, 3), dtype=np.float32)
    short = {"neg": 0, "negative": 0, "neu": 1, "neutral": 1, "pos": 2, "positive": 2}
    if all(name in short for name in names.values()):
        for i, name in names.items():
            matrix[i, short[name]] = 1.0
        return matrix
    if all(re.fullmatch(r"label_\d+", name) for name in names.values()) and n in (2, 3):
        targets = {0: 0, 1: 2} if n == 2 else {0: 0, 1: 1, 2: 2}
        for i, name in names.items():
            matrix[i, targets[int(name.split("_")[1])]] = 1.0
        return matrix
    stars = {i: _STARS.match(name) for i, name in names.items()}
    if all(stars.values()):
        for i, m in stars.items():
            s = int(m.group(1))
            matrix[i, 0 if s <= 2 else 1 if s == 3 else 2] = 1.0
        return matrix
    raise ModelError(
        f"cannot map the model's labels {sorted(names.values())} to negative/neutral/positive; "
        "use a checkpoint labelled negative/neutral/positive, LABEL_0..2, 1-5 stars or positive/negative"
    )


class TransformersModel:
    """A sequence-classification checkpoint scored in length-sorted batches."""

    def __init__(self, name: str, *, batch_size: int = 32, max_length: int = 128,
                 threads: int | None = None, cache_dir=None):
        try:
            import torch
            from transformers import AutoModelForSequenceClassification, AutoTokenizer
            from transformers.utils import logging as hf_logging

            hf_logging.set_verbosity_error()
            hf_logging.disable_progress_bar()
            if threads:
                torch.set_num_threads(threads)
            self.tokenizer = AutoTokenizer.from_pretrained(name)
            self.model = AutoModelForSequenceClassification.from_pretrained(name).eval()
        except ModelError:
            raise
        except Exception as exc:  # noqa: BLE001 - transformers raises many kinds
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelError(f"could not load model {name!r}: {first}") from exc
        self.mapping = label_mapping(self.model.config.id2label)
        self._inputs = set(inspect.signature(self.model.forward).parameters)
        self.name = str(name)
        self.batch_size = batch_size
        self.max_length = max_length

    def score(self, texts: Sequence[str]) -> list[Sentiment]:
        import torch

        prepared = [normalise_for_model(t) for t in texts]
        out: list[Sentiment | None] = [None] * len(prepared)
        encoded = self.tokenizer(prepared, truncation=True, max_length=self.max_length)
        keys = [k for k in encoded if k in self._inputs]
        with torch.inference_mode():
            for idx in length_batches([len(ids) for ids in encoded["input_ids"]], self.batch_size):
                inputs = self.tokenizer.pad({k: [encoded[k][i] for i in idx] for k in keys}, return_tensors="pt")
                probs = torch.softmax(self.model(**inputs).logits.float(), dim=-1).numpy() @ self.mapping
                for i, p in zip(idx, probs):
                    out[i] = Sentiment.from_probs(*p)
        return out  # type: ignore[return-value]

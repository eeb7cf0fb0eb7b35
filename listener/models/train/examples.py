"""The labelled texts a training run reads: the files, seeded samples, repeats per language, and
the calibration sample of the int8 export.

Every draw comes from a `random.Random(SEED)` the caller passes on, in a fixed order, so that a run
is repeatable and a resumed run (`finetune --resume`) continues the same sequence.
"""

from __future__ import annotations

import random
from pathlib import Path

from listener.errors import ModelError
from listener.models.data import Example, read_tsv
from listener.models.e5base import PREFIX
from listener.models.train.evaluation import EVAL_MAX_LENGTH

__all__ = ["SEED", "VAL_FILES", "CALIBRATION", "sample", "read_validation", "repeated", "calibration_batches"]

SEED = 13
VAL_FILES = ("en_val.tsv", "multi_val.tsv", "nl_val.tsv")  # nl_val is only validated on, never trained on
CALIBRATION = (("en_train.tsv", 256), ("multi_train.tsv", 512))  # the int8 smoothing's sample of training texts


def sample(examples: list[Example], limit: int | None, rng: random.Random) -> list[Example]:
    """A seeded sample of at most `limit` examples (all of them without a limit)."""
    if not limit or limit >= len(examples):
        return examples
    return rng.sample(examples, limit)


def read_validation(data: Path) -> dict[str, list[Example]]:
    """The validation files of the data folder, by name."""
    return {name: read_tsv(data / name) for name in VAL_FILES}


def repeated(en: list[Example], multi: list[Example], multi_repeat: int,
             language_repeat: dict[str, int]) -> list[Example]:
    """en_train once, and each language of multi_train `multi_repeat` times, or
    `language_repeat[language]` times; ModelError for a language multi_train does not have."""
    languages = {e.language for e in multi}
    for language, times in language_repeat.items():
        if language not in languages:
            raise ModelError(f"--language-repeat {language}={times}: multi_train has no language {language!r} "
                             f"(it has {', '.join(sorted(l for l in languages if l))})")
    return en + [e for e in multi for _ in range(language_repeat.get(e.language, multi_repeat))]


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

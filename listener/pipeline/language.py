"""Language identification for mentions whose source does not say (py3langid, model in the package).

py3langid ships its model LZMA-compressed (4.6 MB, 68 MB unpacked): unpacking it cost 0.56 s of CPU
in every process that detects a language (each parse process of a fetch). It is unpacked once into
the cache folder (`models.e5base.default_cache_dir`: `$LISTENER_CACHE`, else ~/.cache/listener, where
the sentiment model's base is built unless `[model] cache_dir` says otherwise) and read from there
(each process still holds its own 68 MB of arrays, as with the package's loader). The package's own
loader is the fallback when the folder cannot be written or the copy cannot be read; a copy that
cannot be read is removed, so the next process writes it again.
"""

from __future__ import annotations

import lzma
import os
import shutil
import tempfile
from functools import lru_cache
from pathlib import Path

MIN_CONFIDENCE = 0.5  # below this (emoji-only, "ok", "lol") the language is left unknown


@lru_cache(maxsize=1)
def _identifier():
    import py3langid.langid as langid

    packed = langid.MODEL_DIR / langid.MODEL_FILE
    try:
        unpacked = _unpacked(packed)
    except Exception:  # noqa: BLE001 - no cached copy (a folder that cannot be written): the package's own way
        return langid.LanguageIdentifier.from_modelpath(packed, norm_probs=True)
    try:
        return _from_unpacked(langid, unpacked)
    except Exception:  # noqa: BLE001 - a damaged copy: removed for the next process to write again
        unpacked.unlink(missing_ok=True)
        return langid.LanguageIdentifier.from_modelpath(packed, norm_probs=True)


def _unpacked(packed: Path) -> Path:
    """The model unpacked into the cache folder (once per model file: its size and time name it)."""
    from listener.models.e5base import default_cache_dir

    stat = packed.stat()
    target = default_cache_dir() / f"py3langid-{stat.st_size}-{int(stat.st_mtime)}.npz"
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=target.parent, suffix=".tmp", delete=False) as out:
            try:
                with lzma.open(packed) as source:
                    shutil.copyfileobj(source, out, length=1 << 20)
                out.flush()
                os.fsync(out.fileno())
            except BaseException:
                os.unlink(out.name)  # a full disk leaves no half copy behind
                raise
        os.replace(out.name, target)  # whole or not at all, even with two processes at once
    return target


def _from_unpacked(langid, path: Path):
    """The identifier `LanguageIdentifier.from_model_file` builds, from the unpacked arrays."""
    import numpy as np
    from py3langid.modelio import _to_array

    with np.load(path, allow_pickle=False) as data:
        ptc, pc, classes = np.asarray(data["ptc"]), np.asarray(data["pc"]), data["classes"].tolist()
        nextmove, row, output = _to_array(data["nextmove"]), _to_array(data["nextmove_row"]), data["out_feat"].tolist()
    return langid.LanguageIdentifier(ptc, pc, classes, nextmove, output, norm_probs=True, tk_row=row)


def detect_language(text: str) -> str | None:
    """ISO 639-1 code of `text`, or None when too short or unclear to tell."""
    if not _has_letters(text, 3):
        return None
    code, confidence = _identifier().classify(text)
    return code if confidence >= MIN_CONFIDENCE and len(code) == 2 else None


def _has_letters(text: str, n: int) -> bool:
    """Whether `text` holds at least `n` letters (looked for only until they are found)."""
    for ch in text:
        if ch.isalpha():
            n -= 1
            if not n:
                return True
    return False


def normalise_language(code: str | None) -> str | None:
    """'en-US' -> 'en', 'NL' -> 'nl'; None for anything that is not a 2-letter code."""
    if not code:
        return None
    base = code.strip().replace("_", "-").split("-")[0].lower()
    return base if len(base) == 2 and base.isalpha() else None

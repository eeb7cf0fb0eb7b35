"""Language identification for mentions whose source does not say (py3langid, model in the package).

py3langid ships its model LZMA-compressed (4.6 MB, 68 MB unpacked): unpacking it, and then copying
its 39 MB state table into an array, cost 0.25-0.3 s of CPU in every process that detects a
language (each parse process of a fetch). It is unpacked once into the cache folder
(`models.e5base.default_cache_dir`: `$LISTENER_CACHE`, else ~/.cache/listener, where the sentiment
model's base is built unless `[model] cache_dir` says otherwise) as one uncompressed .npy file per
array, and each process maps those files into memory instead of reading them: loading takes
under 0.01 s, the parse processes share one copy in the page cache instead of holding 68 MB each,
and classifying is as fast (the state table is read through a memoryview of the mapping). The
package's own loader is the fallback when the folder cannot be written or the copy cannot be
read; a copy that cannot be read is removed, so the next process writes it again.
"""

from __future__ import annotations

import hashlib
import lzma
import os
import shutil
import tempfile
from functools import lru_cache
from pathlib import Path

MIN_CONFIDENCE = 0.5  # below this (emoji-only, "ok", "lol") the language is left unknown
_ARRAYS = ("ptc", "pc", "classes", "nextmove", "nextmove_row", "out_feat")  # the model file's, as py3langid names them


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
        shutil.rmtree(unpacked, ignore_errors=True)
        return langid.LanguageIdentifier.from_modelpath(packed, norm_probs=True)


def _unpacked(packed: Path) -> Path:
    """The folder of the model's arrays in the cache folder (once per model file: its content
    names it), written whole or not at all: in a folder of its own, renamed into place."""
    import numpy as np

    from listener.models.e5base import default_cache_dir

    digest = hashlib.sha256(packed.read_bytes()).hexdigest()[:16]  # 4.6 MB: a few ms; a reinstall keeps it
    target = default_cache_dir() / f"py3langid-{digest}"
    if target.is_dir():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    for old in target.parent.glob("py3langid-*"):  # another version's copy (or an older layout's .npz)
        if old == target:  # written meanwhile by another process
            continue
        if old.is_dir():
            shutil.rmtree(old, ignore_errors=True)
        else:
            old.unlink(missing_ok=True)
    work = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}-"))
    try:
        with tempfile.TemporaryFile(dir=work) as npz:  # the package's file is an LZMA-compressed .npz
            with lzma.open(packed) as source:
                shutil.copyfileobj(source, npz, length=1 << 20)
            npz.seek(0)
            with np.load(npz, allow_pickle=False) as data:
                for name in _ARRAYS:
                    with open(work / f"{name}.npy", "wb") as out:
                        np.save(out, data[name], allow_pickle=False)
                        out.flush()
                        os.fsync(out.fileno())
        try:
            os.rename(work, target)
        except OSError:  # another process put its copy there first: that one is used
            if not target.is_dir():
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)  # a full disk or a lost race leaves nothing behind
    return target


def _from_unpacked(langid, folder: Path):
    """The identifier `LanguageIdentifier.from_model_file` builds, on the arrays of `folder` mapped
    into memory (the state table and the feature weights are read where they lie)."""
    import numpy as np
    from py3langid.modelio import _to_array

    def mapped(name: str):
        return np.load(folder / f"{name}.npy", mmap_mode="r", allow_pickle=False)

    nextmove = mapped("nextmove")
    if nextmove.dtype != np.uint32 or nextmove.ndim != 1:
        raise ValueError(f"{folder}: unexpected state table {nextmove.dtype} {nextmove.shape}")
    ptc, pc, classes = mapped("ptc"), np.array(mapped("pc")), mapped("classes").tolist()
    row, output = _to_array(np.array(mapped("nextmove_row"))), mapped("out_feat").tolist()
    if ptc.ndim != 2 or ptc.shape[1] != len(classes) or pc.shape != (len(classes),):
        raise ValueError(f"{folder}: arrays of unexpected shapes")
    return langid.LanguageIdentifier(ptc, pc, classes, memoryview(nextmove), output, norm_probs=True, tk_row=row)


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

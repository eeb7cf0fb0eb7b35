"""Language identification for mentions whose source does not say (py3langid, model in the package)."""

from __future__ import annotations

from functools import lru_cache

MIN_CONFIDENCE = 0.5  # below this (emoji-only, "ok", "lol") the language is left unknown


@lru_cache(maxsize=1)
def _identifier():
    import py3langid.langid as langid

    return langid.LanguageIdentifier.from_modelpath(langid.MODEL_DIR / langid.MODEL_FILE, norm_probs=True)


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

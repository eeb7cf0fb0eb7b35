"""How text becomes tokens for the topic query language: folding, words, #hashtags and @handles.

One folding (`normalise`) and one notion of a word serve both sides: the parser folds a query's
terms with them and `match.prepare` folds a mention, so a term and a mention's words always meet.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["WORD", "HANDLE", "NAME", "normalise", "hashtag_names", "extract_hashtags"]

# A token is a run of letters and digits (what SQLite's unicode61 tokenizer keeps); '_' separates.
WORD = re.compile(r"[^\W_]+")
# '#tag' not glued to a word ('C#'), an HTML entity ('&#39;') or a URL fragment ('/#top').
_HASHTAG = re.compile(r"(?<![\w&/])#(\w+)")
# '@handle' not glued to a word: not 'bob@acme.com', nor the domain of '@acme@mastodon.social'.
HANDLE = re.compile(r"(?<![\w@])@(\w+)")
# What a #hashtag or @handle term of a query may hold after its sign.
NAME = re.compile(r"\w+")


def normalise(text: str) -> str:
    """Fold text for matching: NFKD, drop combining marks, casefold ('CAFÉ' -> 'cafe')."""
    if text.isascii():
        return text.lower()
    folded = _strip_marks(text).casefold()
    # Casefolding can yield characters that decompose further; a second pass keeps this idempotent.
    return folded if folded.isascii() else _strip_marks(folded)


_NON_ASCII = re.compile(r"[^\x00-\x7f]+")


def _strip_marks(text: str) -> str:
    """NFKD without its combining marks (which are never ASCII: only the runs beyond ASCII are looked at)."""
    return _NON_ASCII.sub(_without_marks, unicodedata.normalize("NFKD", text))


def _without_marks(run: re.Match) -> str:
    return "".join(char for char in run[0] if not unicodedata.combining(char))


def hashtag_names(text: str) -> list[str]:
    """Hashtag names in `text` as written (no '#'); names without a letter ('#1') are skipped."""
    if "#" not in text:  # most texts: no regex run
        return []
    return [
        match.group(1)
        for match in _HASHTAG.finditer(text)
        if any(char.isalpha() for char in match.group(1))
    ]


def extract_hashtags(text: str) -> list[str]:
    """Hashtags of `text`, casefolded without '#', in order of appearance, each once.

    Accents are kept ('#Café' -> 'café'); pure numbers ('#1') are not hashtags.
    """
    if "#" not in text:  # NFC makes no '#' of anything else
        return []
    names = hashtag_names(unicodedata.normalize("NFC", text))
    return list(dict.fromkeys(name.casefold() for name in names))

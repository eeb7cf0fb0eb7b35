"""Matching a parsed query against mentions: fold a mention once (`prepare`), then test it cheaply.

`matcher` turns a query's tree into one predicate over prepared mentions, built once per query,
so that matching a mention costs a few set look-ups per term. Matching is on whole tokens, case-
and accent-insensitive (see `tokens.normalise`).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cached_property

from listener.query.syntax import And, Handle, Hashtag, Node, Not, Or, Words
from listener.query.tokens import HANDLE, WORD, hashtag_names, normalise

__all__ = ["Document", "prepare", "search_words", "matcher", "EMPTY"]


@dataclass(frozen=True)
class Document:
    """A mention folded and tokenised once, to be matched against many queries (use `prepare`).

    `tokens` holds the title's tokens, an empty separator, then the text's tokens (so phrases never
    span the two). `words` is the set of tokens and `sorted_words` the same, sorted, for prefix
    look-ups. `hashtags` and `handles` are folded names without '#' or '@'; `handles` includes the
    author.
    """

    tokens: tuple[str, ...]
    words: frozenset[str]
    hashtags: frozenset[str]
    handles: frozenset[str]

    @cached_property
    def sorted_words(self) -> tuple[str, ...]:
        """`words` sorted: made on the first prefix term matched against it."""
        return tuple(sorted(self.words))


def prepare(
    text: str,
    *,
    title: str | None = None,
    hashtags: Iterable[str] = (),
    author: str | None = None,
) -> Document:
    """Fold and tokenise a mention once so it can be matched against any number of queries.

    `hashtags` are the mention's own tags (with or without '#'); `author` is its handle, with or
    without a leading '@', Mastodon-style 'acme@mastodon.social' included.
    """
    fields = _folded_fields(text, title)
    tokens: list[str] = []
    tags: set[str] = set()
    handles: set[str] = set()
    for index, field in enumerate(fields):
        if index:
            tokens.append("")
        tokens.extend(WORD.findall(field))
        tags.update(hashtag_names(field))
        if "@" in field:
            handles.update(HANDLE.findall(field))
    if isinstance(hashtags, str):
        hashtags = (hashtags,)
    for tag in hashtags:
        name = normalise(tag.strip().lstrip("#"))
        if name:
            tags.add(name)
    if author:
        name = normalise(author.strip().lstrip("@").split("@", 1)[0])
        if name:
            handles.add(name)
    words = frozenset(tokens)
    words = words - {""} if "" in words else words
    return Document(
        tokens=tuple(tokens),
        words=words,
        hashtags=frozenset(tags),
        handles=frozenset(handles),
    )


def search_words(text: str, title: str | None = None) -> set[str]:
    """The distinct words of a mention's title and text, folded as `prepare` folds them: what a query's
    words and phrases are matched against, so a full-text index of exactly these never misses a match."""
    return set(WORD.findall(" ".join(_folded_fields(text, title))))  # a space is in no word: fields never join


def _folded_fields(text: str, title: str | None) -> list[str]:
    return [normalise(title), normalise(text)] if title else [normalise(text)]


EMPTY = prepare("")  # a mention without a word: what no sensible query matches

Predicate = Callable[[Document], bool]


def matcher(node: Node) -> Predicate:
    """The predicate 'this prepared mention matches `node`'."""
    if isinstance(node, Words):
        return _words(node)
    if isinstance(node, Hashtag):
        return _named(node.name, node.prefix, lambda doc: doc.hashtags)
    if isinstance(node, Handle):
        return _named(node.name, node.prefix, lambda doc: doc.handles)
    if isinstance(node, Not):
        child = matcher(node.child)
        return lambda doc: not child(doc)
    children = tuple(matcher(child) for child in node.children)
    if isinstance(node, And):
        return lambda doc: all(child(doc) for child in children)
    assert isinstance(node, Or)
    return lambda doc: any(child(doc) for child in children)


def _named(name: str, prefix: bool, names: Callable[[Document], frozenset[str]]) -> Predicate:
    """A #hashtag or @handle: one of the mention's names, or one starting with `name`."""
    if prefix:
        return lambda doc: any(candidate.startswith(name) for candidate in names(doc))
    return lambda doc: name in names(doc)


def _words(node: Words) -> Predicate:
    """A word (or prefix) among the tokens, or the words of a phrase one after another."""
    *head, last = node.words
    prefix, size = node.prefix, len(node.words)
    if not head:
        if not prefix:
            return lambda doc: last in doc.words

        def starts_a_word(doc: Document) -> bool:
            index = bisect_left(doc.sorted_words, last)
            return index < len(doc.sorted_words) and doc.sorted_words[index].startswith(last)

        return starts_a_word

    first = head[0]

    def phrase(doc: Document) -> bool:
        if not all(word in doc.words for word in head):
            return False
        tokens = doc.tokens
        start = -1
        while True:
            try:
                start = tokens.index(first, start + 1)
            except ValueError:
                return False
            window = tokens[start : start + size]
            if len(window) == size and list(window[:-1]) == head:
                if window[-1] == last or (prefix and window[-1].startswith(last)):
                    return True

    return phrase

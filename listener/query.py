"""Topic queries: parse the query language, match prepared mentions, translate to an FTS5 prefilter.

A query such as `acme OR "acme corp" OR #acmefail -job` is parsed once with `parse`; a mention is
folded and tokenised once with `prepare`; `Query.matches` then costs a few set look-ups per term.
Matching is on whole tokens, case- and accent-insensitive (see `normalise`).
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_left
from collections.abc import Iterable
from dataclasses import dataclass

from listener.errors import QuerySyntaxError

__all__ = ["Document", "Query", "extract_hashtags", "normalise", "parse", "prepare"]

# A token is a run of letters and digits (what SQLite's unicode61 tokenizer keeps); '_' separates.
_WORD = re.compile(r"[^\W_]+")
# '#tag' not glued to a word ('C#'), an HTML entity ('&#39;') or a URL fragment ('/#top').
_HASHTAG = re.compile(r"(?<![\w&/])#(\w+)")
# '@handle' not glued to a word: not 'bob@acme.com', nor the domain of '@acme@mastodon.social'.
_HANDLE = re.compile(r"(?<![\w@])@(\w+)")
_NAME = re.compile(r"\w+")
_KEYWORDS = ("AND", "OR", "NOT")
# Groups and exclusions nest at most this deep: the parser and the matcher recurse once per level.
MAX_NESTING = 50


def normalise(text: str) -> str:
    """Fold text for matching: NFKD, drop combining marks, casefold ('CAFÉ' -> 'cafe')."""
    if text.isascii():
        return text.lower()
    folded = _strip_marks(text).casefold()
    # Casefolding can yield characters that decompose further; a second pass keeps this idempotent.
    return folded if folded.isascii() else _strip_marks(folded)


def _strip_marks(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(char for char in decomposed if not unicodedata.combining(char))


def _hashtag_names(text: str) -> list[str]:
    """Hashtag names in `text` as written (no '#'); names without a letter ('#1') are skipped."""
    return [
        match.group(1)
        for match in _HASHTAG.finditer(text)
        if any(char.isalpha() for char in match.group(1))
    ]


def extract_hashtags(text: str) -> list[str]:
    """Hashtags of `text`, casefolded without '#', in order of appearance, each once.

    Accents are kept ('#Café' -> 'café'); pure numbers ('#1') are not hashtags.
    """
    names = _hashtag_names(unicodedata.normalize("NFC", text))
    return list(dict.fromkeys(name.casefold() for name in names))


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
    sorted_words: tuple[str, ...]
    hashtags: frozenset[str]
    handles: frozenset[str]


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
    fields = [normalise(title), normalise(text)] if title else [normalise(text)]
    tokens: list[str] = []
    tags: set[str] = set()
    handles: set[str] = set()
    for index, field in enumerate(fields):
        if index:
            tokens.append("")
        tokens.extend(_WORD.findall(field))
        tags.update(_hashtag_names(field))
        handles.update(_HANDLE.findall(field))
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
        sorted_words=tuple(sorted(words)),
        hashtags=frozenset(tags),
        handles=frozenset(handles),
    )


def _starts_any(names: Iterable[str], prefix: str) -> bool:
    return any(name.startswith(prefix) for name in names)


def _fts5_string(words: tuple[str, ...]) -> str:
    return '"' + " ".join(words).replace('"', '""') + '"'


# --- the parsed query: one node class per construct, each can match and translate itself ---


class _Node:
    position: int

    def matches(self, doc: Document) -> bool:
        raise NotImplementedError

    def fts5(self) -> str | None:
        """FTS5 expression accepting a superset of what `matches` accepts; None means 'any row'."""
        raise NotImplementedError


@dataclass(frozen=True)
class _Words(_Node):
    """A word, a word with inner punctuation or a quoted phrase: consecutive tokens."""

    words: tuple[str, ...]
    prefix: bool
    position: int

    def matches(self, doc: Document) -> bool:
        *head, last = self.words
        if not head:
            if not self.prefix:
                return last in doc.words
            index = bisect_left(doc.sorted_words, last)
            return index < len(doc.sorted_words) and doc.sorted_words[index].startswith(last)
        if not all(word in doc.words for word in head):
            return False
        tokens, first, size = doc.tokens, head[0], len(self.words)
        start = -1
        while True:
            try:
                start = tokens.index(first, start + 1)
            except ValueError:
                return False
            window = tokens[start : start + size]
            if len(window) == size and list(window[:-1]) == head:
                if window[-1] == last or (self.prefix and window[-1].startswith(last)):
                    return True

    def fts5(self) -> str | None:
        return _fts5_string(self.words) + ("*" if self.prefix else "")


@dataclass(frozen=True)
class _Hashtag(_Node):
    name: str
    prefix: bool
    position: int

    def matches(self, doc: Document) -> bool:
        if self.prefix:
            return _starts_any(doc.hashtags, self.name)
        return self.name in doc.hashtags

    def fts5(self) -> str | None:
        # The mention's own hashtag list is not in the FTS table, so no term is a safe filter.
        return None


@dataclass(frozen=True)
class _Handle(_Node):
    name: str
    prefix: bool
    position: int

    def matches(self, doc: Document) -> bool:
        if self.prefix:
            return _starts_any(doc.handles, self.name)
        return self.name in doc.handles

    def fts5(self) -> str | None:
        # The author is not in the FTS table, so no term is a safe filter.
        return None


@dataclass(frozen=True)
class _Not(_Node):
    child: _Node
    position: int

    def matches(self, doc: Document) -> bool:
        return not self.child.matches(doc)

    def fts5(self) -> str | None:
        # FTS5 cannot tell '#x' from 'x': excluding 'x' would drop true matches, so let all rows by.
        return None


@dataclass(frozen=True)
class _And(_Node):
    children: tuple[_Node, ...]
    position: int

    def matches(self, doc: Document) -> bool:
        return all(child.matches(doc) for child in self.children)

    def fts5(self) -> str | None:
        parts = []
        for child in self.children:
            part = child.fts5()
            if part is not None:
                parts.append(f"({part})" if isinstance(child, _Or) else part)
        return " AND ".join(parts) if parts else None


@dataclass(frozen=True)
class _Or(_Node):
    children: tuple[_Node, ...]
    position: int

    def matches(self, doc: Document) -> bool:
        return any(child.matches(doc) for child in self.children)

    def fts5(self) -> str | None:
        parts = [child.fts5() for child in self.children]
        if any(part is None for part in parts):
            return None
        return " OR ".join(parts)  # type: ignore[arg-type]


class Query:
    """A parsed topic query: match prepared mentions, or translate it to an FTS5 prefilter."""

    __slots__ = ("text", "_root")

    def __init__(self, text: str, root: _Node):
        self.text = text
        self._root = root

    def matches(self, doc: Document) -> bool:
        """Whether the prepared mention `doc` matches this query."""
        return self._root.matches(doc)

    def names(self) -> list[str]:
        """The single words and @handles the query looks for (not excluded ones): what the topic
        calls itself, so that `#acme` in a topic `acme OR @acme` is recognised as the topic's own."""
        out: list[str] = []

        def walk(node: _Node) -> None:
            if isinstance(node, _Words) and len(node.words) == 1 and not node.prefix:
                out.append(node.words[0])
            elif isinstance(node, _Handle) and not node.prefix:
                out.append(node.name)
            elif isinstance(node, (_And, _Or)):
                for child in node.children:
                    walk(child)

        walk(self._root)
        return out

    def to_fts5(self) -> str | None:
        """An FTS5 MATCH expression selecting a superset of the matching rows, or None.

        Meant for a table `fts5(title, text, tokenize="unicode61 remove_diacritics 2")`; run
        `matches` on the rows it returns. Excluded terms, hashtags and handles are left out (they
        cannot be checked safely in FTS5), so the result is None when nothing else remains.
        """
        return self._root.fts5()

    def __repr__(self) -> str:
        return f"Query({self.text!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Query) and other.text == self.text

    def __hash__(self) -> int:
        return hash(self.text)


# --- parsing ---


@dataclass(frozen=True)
class _Lexeme:
    kind: str  # "(", ")", "AND", "OR", "NOT" (also '-'), "PHRASE", "TERM"
    text: str
    position: int


def _lex(query: str) -> list[_Lexeme]:
    lexemes: list[_Lexeme] = []
    index, size = 0, len(query)
    while index < size:
        char = query[index]
        if char.isspace():
            index += 1
        elif char in "()":
            lexemes.append(_Lexeme(char, char, index))
            index += 1
        elif char == '"':
            end = query.find('"', index + 1)
            if end == -1:
                raise QuerySyntaxError("unterminated quote: add the closing '\"'", query, index)
            lexemes.append(_Lexeme("PHRASE", query[index + 1 : end], index))
            index = end + 1
        elif char == "-":
            following = query[index + 1 : index + 2]
            if not following or following.isspace() or following == ")":
                raise QuerySyntaxError(
                    "'-' must be followed directly by the term or group to exclude", query, index
                )
            lexemes.append(_Lexeme("NOT", "-", index))
            index += 1
        else:
            end = index
            while end < size and not query[end].isspace() and query[end] not in '()"':
                end += 1
            text = query[index:end]
            lexemes.append(_Lexeme(text if text in _KEYWORDS else "TERM", text, index))
            index = end
    return lexemes


def _check_parentheses(query: str, lexemes: list[_Lexeme]) -> None:
    opened: list[int] = []
    for lexeme in lexemes:
        if lexeme.kind == "(":
            opened.append(lexeme.position)
        elif lexeme.kind == ")":
            if not opened:
                raise QuerySyntaxError(
                    "unbalanced parentheses: this ')' has no matching '('", query, lexeme.position
                )
            opened.pop()
    if opened:
        message = "unbalanced parentheses: this '(' is never closed"
        raise QuerySyntaxError(message, query, opened[-1])


class _Parser:
    """Recursive descent parser of the query grammar.

    or := and ('OR' and)*;  and := unary (['AND'] unary)*;  unary := ('NOT' | '-') unary | primary;
    primary := word | "phrase" | #hashtag | @handle | '(' or ')'

    A '(' or an exclusion inside MAX_NESTING others is an error, not a RecursionError.
    """

    def __init__(self, query: str, lexemes: list[_Lexeme]):
        self.query = query
        self.lexemes = lexemes
        self.index = 0
        self.depth = 0  # groups and exclusions open around the current lexeme

    def nest(self, lexeme: _Lexeme) -> None:
        self.depth += 1
        if self.depth > MAX_NESTING:
            raise self.error(
                f"nested too deeply: at most {MAX_NESTING} levels of parentheses and exclusions", lexeme.position
            )

    def peek(self) -> _Lexeme | None:
        return self.lexemes[self.index] if self.index < len(self.lexemes) else None

    def error(self, message: str, position: int) -> QuerySyntaxError:
        return QuerySyntaxError(message, self.query, position)

    def parse(self) -> _Node:
        if not self.lexemes:
            raise self.error("empty query: write at least one word, phrase, #hashtag or @handle", 0)
        node = self.parse_or()
        leftover = self.peek()
        if leftover is not None:
            raise self.error(f"unexpected {leftover.text!r}", leftover.position)
        return node

    def parse_or(self) -> _Node:
        children = [self.parse_and()]
        while (lexeme := self.peek()) is not None and lexeme.kind == "OR":
            self.index += 1
            children.append(self.parse_and())
        return children[0] if len(children) == 1 else _Or(tuple(children), children[0].position)

    def parse_and(self) -> _Node:
        children = [self.parse_unary()]
        while (lexeme := self.peek()) is not None:
            if lexeme.kind == "AND":
                self.index += 1
            elif lexeme.kind not in ("TERM", "PHRASE", "(", "NOT"):
                break
            children.append(self.parse_unary())
        return children[0] if len(children) == 1 else _And(tuple(children), children[0].position)

    def parse_unary(self) -> _Node:
        lexeme = self.peek()
        if lexeme is not None and lexeme.kind == "NOT":
            self.index += 1
            self.nest(lexeme)
            node = _Not(self.parse_unary(), lexeme.position)
            self.depth -= 1
            return node
        return self.parse_primary()

    def parse_primary(self) -> _Node:
        lexeme = self.peek()
        previous = self.lexemes[self.index - 1] if self.index else None
        if lexeme is None or lexeme.kind in (")", "AND", "OR"):
            if previous is not None and previous.kind in _KEYWORDS:
                raise self.error(f"'{previous.text}' needs a term after it", previous.position)
            if lexeme is not None and lexeme.kind == ")" and previous is not None:
                raise self.error(
                    "empty group '()': put a term inside the parentheses or remove them",
                    previous.position,
                )
            assert lexeme is not None  # an empty query is caught in parse()
            raise self.error(f"'{lexeme.text}' needs a term before it", lexeme.position)
        self.index += 1
        if lexeme.kind == "(":
            self.nest(lexeme)
            node = self.parse_or()
            self.index += 1  # the ')' is there: parentheses were checked before parsing
            self.depth -= 1
            return node
        if lexeme.kind == "PHRASE":
            words = tuple(_WORD.findall(normalise(lexeme.text)))
            if not words:
                message = "empty phrase: put at least one word between the quotes"
                raise self.error(message, lexeme.position)
            return _Words(words, False, lexeme.position)
        return self.term(lexeme)

    def term(self, lexeme: _Lexeme) -> _Node:
        raw, position = lexeme.text, lexeme.position
        prefix = raw.endswith("*")
        core = raw[:-1] if prefix else raw
        star = core.find("*")
        if star != -1:
            raise self.error("'*' is only allowed at the end of a word", position + star)
        if raw[0] in "#@":
            kind = "hashtag" if raw[0] == "#" else "handle"
            name = unicodedata.normalize("NFC", core[1:])
            if not _NAME.fullmatch(name):
                raise self.error(f"a {kind} may contain only letters, digits and '_'", position)
            if kind == "hashtag" and not any(char.isalpha() for char in name):
                raise self.error("a hashtag needs at least one letter", position)
            node_class = _Hashtag if kind == "hashtag" else _Handle
            return node_class(normalise(name), prefix, position)
        words = tuple(_WORD.findall(normalise(core)))
        if not words:
            raise self.error(f"{raw!r} has no letters or digits to match", position)
        return _Words(words, prefix, position)


_EMPTY = prepare("")


def _has_positive_term(node: _Node, negated: bool = False) -> bool:
    if isinstance(node, _Not):
        return _has_positive_term(node.child, not negated)
    if isinstance(node, (_And, _Or)):
        return any(_has_positive_term(child, negated) for child in node.children)
    return not negated


def _exclusion_matching_empty(node: _Node) -> _Node:
    """The exclusion that lets `node` match a mention with no words at all."""
    while not isinstance(node, _Not):
        assert isinstance(node, (_And, _Or))  # a bare term never matches the empty mention
        node = next(child for child in node.children if child.matches(_EMPTY))
    return node


def parse(query: str) -> Query:
    """Parse a topic query; raise QuerySyntaxError naming the reason and position of a mistake."""
    lexemes = _lex(query)
    _check_parentheses(query, lexemes)
    root = _Parser(query, lexemes).parse()
    if root.matches(_EMPTY):
        culprit = _exclusion_matching_empty(root)
        if not _has_positive_term(root):
            message = "a query needs at least one term that is not excluded"
        else:
            message = (
                "this exclusion lets the query match almost every mention: "
                "combine it with a term using AND"
            )
        raise QuerySyntaxError(message, query, culprit.position)
    return Query(query, root)

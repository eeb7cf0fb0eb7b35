"""The topic query grammar: a query text parsed into a tree of nodes, or a QuerySyntaxError.

    or := and ('OR' and)*;  and := unary (['AND'] unary)*;  unary := ('NOT' | '-') unary | primary;
    primary := word | "phrase" | #hashtag | @handle | '(' or ')'

The nodes are plain data; `match` turns a tree into a predicate over prepared mentions and `fts`
into an FTS5 prefilter. Terms are folded here, once (see `tokens.normalise`).
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Union

from listener.errors import QuerySyntaxError
from listener.query.tokens import NAME, WORD, normalise

__all__ = ["Node", "Words", "Hashtag", "Handle", "Not", "And", "Or", "MAX_NESTING", "parse_tree"]

_KEYWORDS = ("AND", "OR", "NOT")
# Groups and exclusions nest at most this deep: the parser and the matcher recurse once per level.
MAX_NESTING = 50


@dataclass(frozen=True)
class Words:
    """A word, a word with inner punctuation or a quoted phrase: consecutive tokens."""

    words: tuple[str, ...]
    prefix: bool  # the last word ends in '*'
    position: int


@dataclass(frozen=True)
class Hashtag:
    name: str
    prefix: bool
    position: int


@dataclass(frozen=True)
class Handle:
    name: str
    prefix: bool
    position: int


@dataclass(frozen=True)
class Not:
    child: Node
    position: int


@dataclass(frozen=True)
class And:
    children: tuple[Node, ...]
    position: int


@dataclass(frozen=True)
class Or:
    children: tuple[Node, ...]
    position: int


Node = Union[Words, Hashtag, Handle, Not, And, Or]


def parse_tree(query: str) -> Node:
    """The tree of a query text; QuerySyntaxError naming the reason and position of a mistake."""
    lexemes = _lex(query)
    _check_parentheses(query, lexemes)
    return _Parser(query, lexemes).parse()


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
    """Recursive descent parser of the grammar in the module docstring.

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

    def parse(self) -> Node:
        if not self.lexemes:
            raise self.error("empty query: write at least one word, phrase, #hashtag or @handle", 0)
        node = self.parse_or()
        leftover = self.peek()
        if leftover is not None:
            raise self.error(f"unexpected {leftover.text!r}", leftover.position)
        return node

    def parse_or(self) -> Node:
        children = [self.parse_and()]
        while (lexeme := self.peek()) is not None and lexeme.kind == "OR":
            self.index += 1
            children.append(self.parse_and())
        return children[0] if len(children) == 1 else Or(tuple(children), children[0].position)

    def parse_and(self) -> Node:
        children = [self.parse_unary()]
        while (lexeme := self.peek()) is not None:
            if lexeme.kind == "AND":
                self.index += 1
            elif lexeme.kind not in ("TERM", "PHRASE", "(", "NOT"):
                break
            children.append(self.parse_unary())
        return children[0] if len(children) == 1 else And(tuple(children), children[0].position)

    def parse_unary(self) -> Node:
        lexeme = self.peek()
        if lexeme is not None and lexeme.kind == "NOT":
            self.index += 1
            self.nest(lexeme)
            node = Not(self.parse_unary(), lexeme.position)
            self.depth -= 1
            return node
        return self.parse_primary()

    def parse_primary(self) -> Node:
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
            words = tuple(WORD.findall(normalise(lexeme.text)))
            if not words:
                message = "empty phrase: put at least one word between the quotes"
                raise self.error(message, lexeme.position)
            return Words(words, False, lexeme.position)
        return self.term(lexeme)

    def term(self, lexeme: _Lexeme) -> Node:
        raw, position = lexeme.text, lexeme.position
        prefix = raw.endswith("*")
        core = raw[:-1] if prefix else raw
        star = core.find("*")
        if star != -1:
            raise self.error("'*' is only allowed at the end of a word", position + star)
        if raw[0] in "#@":
            kind = "hashtag" if raw[0] == "#" else "handle"
            name = unicodedata.normalize("NFC", core[1:])
            if not NAME.fullmatch(name):
                raise self.error(f"a {kind} may contain only letters, digits and '_'", position)
            if kind == "hashtag" and not any(char.isalpha() for char in name):
                raise self.error("a hashtag needs at least one letter", position)
            node_class = Hashtag if kind == "hashtag" else Handle
            return node_class(normalise(name), prefix, position)
        words = tuple(WORD.findall(normalise(core)))
        if not words:
            raise self.error(f"{raw!r} has no letters or digits to match", position)
        return Words(words, prefix, position)

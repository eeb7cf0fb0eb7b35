"""Topic queries: the language a topic's `query` is written in, parsed once into a `Query`.

A query such as `acme OR "acme corp" OR #acmefail -job` is parsed once with `parse`; a mention is
folded and tokenised once with `prepare`; `Query.matches` then costs a few set look-ups per term.

- `tokens`: folding (`normalise`), words, hashtags and handles, shared by queries and mentions;
- `syntax`: the grammar: a query text to a tree of nodes, or a QuerySyntaxError;
- `match`: `prepare` a mention, and the predicate a tree stands for;
- `fts`: the tree as an FTS5 MATCH expression, the SQLite store's prefilter;
- `tsquery`: the tree as a PostgreSQL tsquery over `search_words`, the PostgreSQL store's;
- here: `parse`, which also refuses queries that would match (almost) everything, and `Query`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from listener.errors import QuerySyntaxError
from listener.query.fts import to_fts5
from listener.query.match import EMPTY, Document, matcher, prepare, search_words
from listener.query.syntax import MAX_NESTING, And, Handle, Node, Not, Or, Words, parse_tree
from listener.query.tokens import extract_hashtags, normalise
from listener.query.tsquery import to_tsquery

__all__ = ["Document", "Query", "MAX_NESTING", "extract_hashtags", "normalise", "parse", "prepare", "search_words"]


class Query:
    """A parsed topic query: match prepared mentions, or translate it to an FTS5 prefilter."""

    __slots__ = ("text", "_root", "_matches")

    def __init__(self, text: str, root: Node):
        self.text = text
        self._root = root
        self._matches = matcher(root)

    def matches(self, doc: Document) -> bool:
        """Whether the prepared mention `doc` matches this query."""
        return self._matches(doc)

    def matches_stored(self, row: Mapping[str, Any]) -> bool:
        """Whether a stored mention matches: a row with `text`, `title`, `author` and `hashtag_list`
        (its hashtags, space-separated), as the store's searches and windows give them."""
        tags = (row.get("hashtag_list") or "").split()
        return self._matches(prepare(row["text"], title=row.get("title"), hashtags=tags, author=row.get("author")))

    def names(self) -> list[str]:
        """The single words and @handles the query looks for (not excluded ones): what the topic
        calls itself, so that `#acme` in a topic `acme OR @acme` is recognised as the topic's own."""
        out: list[str] = []

        def walk(node: Node) -> None:
            if isinstance(node, Words) and len(node.words) == 1 and not node.prefix:
                out.append(node.words[0])
            elif isinstance(node, Handle) and not node.prefix:
                out.append(node.name)
            elif isinstance(node, (And, Or)):
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
        return to_fts5(self._root)

    def to_tsquery(self) -> str | None:
        """A PostgreSQL tsquery selecting a superset of the matching rows, or None (any row).

        Meant for a `tsvector` of each mention's `search_words` (its folded words, no positions), as
        `%s::tsquery`; run `matches` on the rows it returns. It leaves out what `to_fts5` leaves out.
        """
        return to_tsquery(self._root)

    def __repr__(self) -> str:
        return f"Query({self.text!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Query) and other.text == self.text

    def __hash__(self) -> int:
        return hash(self.text)

    def __reduce__(self) -> tuple:
        return parse, (self.text,)  # the predicate is built again from the text


def parse(query: str) -> Query:
    """Parse a topic query; raise QuerySyntaxError naming the reason and position of a mistake."""
    root = parse_tree(query)
    if matcher(root)(EMPTY):
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


def _has_positive_term(node: Node, negated: bool = False) -> bool:
    if isinstance(node, Not):
        return _has_positive_term(node.child, not negated)
    if isinstance(node, (And, Or)):
        return any(_has_positive_term(child, negated) for child in node.children)
    return not negated


def _exclusion_matching_empty(node: Node) -> Node:
    """The exclusion that lets `node` match a mention with no words at all."""
    while not isinstance(node, Not):
        assert isinstance(node, (And, Or))  # a bare term never matches the empty mention
        node = next(child for child in node.children if matcher(child)(EMPTY))
    return node

"""A parsed query as a PostgreSQL full-text prefilter: a `tsquery` that keeps every row the query matches.

This writes no SQL statement: only the text the store casts with `%s::tsquery` and tests against a
`tsvector` of each mention's `search_words` (`array_to_tsvector`, no positions). The literal is
written without PostgreSQL's parser or dictionaries, so its lexemes are the query's own folded
tokens, exactly the words the vector holds. The store runs the query's own `matches` on the rows
it returns, so a looser tsquery costs time, never a match.
"""

from __future__ import annotations

from listener.query.syntax import And, Node, Or, Words

__all__ = ["to_tsquery", "MAX_LEXEME"]

MAX_LEXEME = 2047  # bytes: PostgreSQL keeps no longer word in a tsvector (and refuses one in a tsquery)


def to_tsquery(node: Node) -> str | None:
    """A tsquery accepting a superset of what `node` matches; None means 'any row'.

    A phrase becomes all of its words (the vector keeps no positions); excluded terms, hashtags and
    handles are left out, as in `fts.to_fts5`; so is a word too long for a tsvector.
    """
    if isinstance(node, Words):
        if any(len(word.encode()) > MAX_LEXEME for word in node.words):
            return None
        *head, last = node.words
        return " & ".join([*map(_lexeme, head), _lexeme(last) + (":*" if node.prefix else "")])
    if isinstance(node, And):
        parts = [(child, to_tsquery(child)) for child in node.children]
        kept = [f"( {part} )" if isinstance(child, Or) else part for child, part in parts if part is not None]
        return " & ".join(kept) if kept else None
    if isinstance(node, Or):  # '&' binds tighter than '|': its alternatives need no parentheses
        alternatives = [to_tsquery(child) for child in node.children]
        if any(part is None for part in alternatives):
            return None
        return " | ".join(alternatives)  # type: ignore[arg-type]
    return None  # Not, Hashtag, Handle


def _lexeme(word: str) -> str:
    """One word as a quoted tsquery lexeme: taken as it is (quotes doubled, backslashes escaped)."""
    return "'" + word.replace("\\", "\\\\").replace("'", "''") + "'"

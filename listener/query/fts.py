"""A parsed query as an FTS5 prefilter: a MATCH expression that keeps every row the query matches.

This writes no SQL statement: only the string the store binds as the right-hand side of
`... MATCH ?` on a table `fts5(title, text, tokenize="unicode61 remove_diacritics 2")`. The store
runs the query's own `matches` on the rows it returns, so a looser expression costs time, never
a match. How to quote a term for FTS5 is part of the query language, so it lives here.
"""

from __future__ import annotations

from listener.query.syntax import And, Node, Or, Words

__all__ = ["to_fts5"]


def to_fts5(node: Node) -> str | None:
    """An FTS5 expression accepting a superset of what `node` matches; None means 'any row'.

    Excluded terms, hashtags and handles are left out (they cannot be checked safely in FTS5):
    the mention's own hashtag list and its author are not in the FTS table, and FTS5 cannot tell
    '#x' from 'x', so excluding 'x' would drop true matches.
    """
    if isinstance(node, Words):
        return _string(node.words) + ("*" if node.prefix else "")
    if isinstance(node, And):
        parts = []
        for child in node.children:
            part = to_fts5(child)
            if part is not None:
                parts.append(f"({part})" if isinstance(child, Or) else part)
        return " AND ".join(parts) if parts else None
    if isinstance(node, Or):
        alternatives = [to_fts5(child) for child in node.children]
        if any(part is None for part in alternatives):
            return None
        return " OR ".join(alternatives)  # type: ignore[arg-type]
    return None  # Not, Hashtag, Handle


def _string(words: tuple[str, ...]) -> str:
    """Consecutive words as one FTS5 string: quoted, inner quotes doubled (input is never syntax)."""
    return '"' + " ".join(words).replace('"', '""') + '"'

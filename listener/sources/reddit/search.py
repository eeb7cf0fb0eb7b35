"""Reddit's search syntax, read roughly: the local filter for a subreddit's comments.

Reddit's search API never sees comments, so `comments = true` reads the comment stream and keeps
the comments whose text contains the source's `query`. That query is written in Reddit's search
syntax (field prefixes such as `title:`, `&&`, words matched loosely), not in listener's topic
query language (whole tokens, #hashtags, @handles, strict errors), so it is not parsed as a topic
query: the topics are matched afterwards, by the pipeline, as for every mention.
"""

from __future__ import annotations

import shlex

__all__ = ["query_matches"]


def query_matches(query: str, text: str) -> bool:
    """Whether text contains the query's words, case-insensitively: the local filter for comments.

    Every word or "quoted phrase" must occur (as a substring), except words after a `-` or `NOT`,
    which must not; `OR` between terms makes either one enough. Field prefixes such as `title:`
    and the word `AND` are ignored. Approximate by design: Reddit's own search never sees comments.
    """
    try:
        tokens = shlex.split(query)
    except ValueError:
        tokens = query.split()
    haystack = text.casefold()
    groups: list[list[str]] = [[]]  # OR-groups of required terms
    excluded: list[str] = []
    negate = False
    for token in tokens:
        if token == "OR":
            groups.append([])
            continue
        if token in ("AND", "&&"):
            continue
        if token in ("NOT", "-"):
            negate = True
            continue
        if token.startswith("-") and len(token) > 1:
            negate, token = True, token[1:]
        if ":" in token:
            token = token.split(":", 1)[1]
        token = token.strip().casefold()
        if token:
            (excluded if negate else groups[-1]).append(token)
        negate = False
    if any(term in haystack for term in excluded):
        return False
    groups = [g for g in groups if g]
    return not groups or any(all(term in haystack for term in group) for group in groups)

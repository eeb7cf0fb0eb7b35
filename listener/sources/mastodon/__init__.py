"""Mastodon: hashtag timelines on one or more instances, and keyword search with an access token.

- `timeline`: one instance's feeds read newest first down to their marks (the requests, paging
  and rate limit are described there);
- `statuses`: Status entities as mentions;
- here: the source, its options, and the cursor.

A tag group's instance answers an empty list, not an error, when the group's first tag was never
used there, even if the others were; put the most common tag first. Full-text search only finds
posts of accounts that opted in to search (Mastodon 4.2+).

Cursor: JSON, per instance base URL, per feed ("tags:a,b" or "search:QUERY"), the newest status
id seen on that instance (`mark`). A fetch reads newest-first down to the mark, at most
`max_pages` pages per feed. When it stops before reaching the mark (more new posts than
`max_pages` pages, or the rate limit ran low), the cursor keeps the old mark plus the oldest id
read (`below`) and the newest (`top`): the next fetch reads the rest of that gap first, and only
then moves the mark to `top`. Nothing is skipped; nothing is read twice on purpose.

The first fetch (no mark) reads newest-first back to `since`, at most `max_pages` pages (that is
the backfill's bound); without `since` it reads one page. `listener fetch --since` with a mark
reads back to `since` again and leaves the cursor as it was (what it reads twice the pipeline
drops as duplicates).

One failing instance fails the whole fetch (the error names it, and how many others failed):
the pipeline records a fetch as a success or a failure, and a partial cursor would hide it.

Rate limits: `X-RateLimit-Remaining` / `X-RateLimit-Reset` (300 requests per 5 minutes per IP
or per account by default); 429/503 come out of the HttpClient as a FetchError with `retry_after`.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from datetime import datetime

from listener.errors import FetchError, env_secret
from listener.sources import FetchResult, Mention, SourceBase, SourceState
from listener.sources.cursor import dump_cursor, load_cursor
from listener.sources.http import HttpClient
from listener.sources.text import url_hosts
from listener.sources.mastodon.statuses import status_mention
from listener.sources.mastodon.timeline import TAGS_PER_REQUEST, Feed, InstanceReader

__all__ = ["MastodonSource", "status_mention"]

_BAD_TAG = re.compile(r"[\s#/?&%]")


def _tags_problem(tags: tuple[str, ...]) -> str | None:
    for tag in tags:
        if not tag.strip():
            return "tags: a tag is empty"
        if tag.startswith("#"):
            # repr: a tag is echoed on one line whatever it holds ('#a\nb' in the config)
            return f"tags: write tags without '#' ({tag.lstrip('#')!r}, not {tag!r})"
        if _BAD_TAG.search(tag):
            return f"tags: {tag!r} is not a hashtag (letters, digits and _ only)"
    return None


class MastodonSource(SourceBase):
    """Public posts with given hashtags on Mastodon instances; keyword search with a token."""

    kind = "mastodon"

    @dataclass(frozen=True)
    class Options:
        """Hashtag timelines on one or more Mastodon instances (and keyword search with a token)."""

        tags: tuple[str, ...] = field(
            default=(), metadata={"help": "Hashtags to follow, without '#' (read four per request)"}
        )
        instances: tuple[str, ...] = field(
            default=("https://mastodon.social",),
            metadata={"help": "Base URLs of the instances to read", "url": True},
        )
        query: str | None = field(
            default=None,
            metadata={"help": "Keywords for full-text search of posts (needs token_env)"},
        )
        token_env: str | None = field(
            default=None,
            metadata={"help": "Access token (read scope) for search and closed timelines", "secret": True},
        )
        max_pages: int = field(
            default=5, metadata={"help": "Pages of 40 posts per tag group and instance per fetch"}
        )

        def __post_init__(self) -> None:
            if not self.instances:
                raise ValueError("instances: give at least one instance URL")
            if not self.tags and self.query is None:
                raise ValueError("give at least one tag in tags, or a query (with token_env)")
            problem = _tags_problem(self.tags)
            if problem:
                raise ValueError(problem)
            if self.query is not None and not self.query.strip():
                raise ValueError("query: the search query is empty")
            if self.query is not None and not self.token_env:
                raise ValueError("query needs token_env: Mastodon searches post text only for signed-in apps")
            if self.max_pages < 1:
                raise ValueError("max_pages must be at least 1")

    def hosts(self) -> list[str]:
        """The instances' hosts."""
        return sorted(url_hosts(*self.options.instances))

    async def fetch(self, state: SourceState, http: HttpClient, now: datetime,
                    since: datetime | None = None) -> FetchResult:
        """Read every instance's feeds from the cursor (or back to `since`); fail if any instance fails."""
        token = self._token()
        cursor = _read_cursor(state.cursor)
        instances = list(dict.fromkeys(url.rstrip("/") for url in self.options.instances))
        readers = [
            InstanceReader(base, self._feeds(), token, self.options, http, now, since)
            for base in instances
        ]
        results = await asyncio.gather(
            *(reader.read(cursor.get(reader.base, {})) for reader in readers), return_exceptions=True
        )
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            first = errors[0]
            if not isinstance(first, FetchError):
                raise first
            more = len(errors) - 1
            message = str(first)
            if more:
                message += f" (and {more} more instance{'s' if more > 1 else ''} failed)"
            waits = [e.retry_after for e in errors if isinstance(e, FetchError) and e.retry_after is not None]
            raise FetchError(message, retry_after=max(waits, default=None), status=first.status)
        mentions: dict[str, Mention] = {}
        new_cursor: dict[str, dict[str, dict[str, str]]] = {}
        requests = 0
        wait: float | None = None
        for reader in readers:
            for mention in reader.mentions:
                mentions.setdefault(mention.source_id, mention)
            new_cursor[reader.base] = reader.marks
            requests += reader.requests
            if reader.wait is not None:
                wait = max(wait or 0.0, reader.wait)
        new_state = SourceState(
            etag=state.etag, last_modified=state.last_modified,
            cursor=dump_cursor(new_cursor),
        )
        return FetchResult(list(mentions.values()), new_state, requests=requests, wait=wait)

    def _token(self) -> str | None:
        env = self.options.token_env
        if not env:
            return None
        value = (env_secret(env) or "").strip()
        if not value:
            raise FetchError(f"environment variable {env} is not set (needed by token_env)")
        return value

    def _feeds(self) -> list[Feed]:
        tags = list(dict.fromkeys(t.strip().lower() for t in self.options.tags))
        feeds = []
        for start in range(0, len(tags), TAGS_PER_REQUEST):
            group = tags[start:start + TAGS_PER_REQUEST]
            feeds.append(Feed(key="tags:" + ",".join(group), tags=tuple(group)))
        if self.options.query:
            feeds.append(Feed(key="search:" + self.options.query.strip(), query=self.options.query.strip()))
        return feeds


def _read_cursor(cursor: str | None) -> dict[str, dict[str, dict[str, str]]]:
    """The stored marks; an unreadable cursor counts as none (the next fetch starts afresh)."""
    out: dict[str, dict[str, dict[str, str]]] = {}
    for base, feeds in load_cursor(cursor).items():
        if not isinstance(feeds, dict):
            continue
        out[base] = {
            key: {k: v for k, v in entry.items() if k in ("mark", "below", "top") and isinstance(v, str)}
            for key, entry in feeds.items()
            if isinstance(entry, dict) and isinstance(entry.get("mark"), str)
        }
    return out

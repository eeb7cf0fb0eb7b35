"""Sources: where mentions come from. One module or package per kind, all behind one small protocol.

A source is constructed from its validated options and fetched with the state the store kept for
it. It never touches the database: it returns the mentions it found and the state to keep
(validators, cursor). The pipeline stores both in one transaction.

    class Source(Protocol):
        kind: ClassVar[str]                  # the `kind = "..."` in config.toml
        Options: ClassVar[type]              # frozen dataclass of its config keys
        def __init__(self, name: str, options: Options): ...
        def hosts(self) -> list[str]: ...    # hosts it talks to (per-host concurrency limit)
        async def fetch(self, state: SourceState, http: HttpClient, now: datetime,
                        since: datetime | None = None) -> FetchResult

`since` bounds how far back to look when there is no cursor yet (the first fetch: now minus the
source's `backfill`) or when the user asks for a backfill (`listener fetch --since`). A source
whose API can filter by time uses it to bound its requests; the pipeline also drops mentions
older than `since`.

A source object lives as long as the process (the daemon keeps it across cycles), so it may
cache an access token in memory; tokens never go into the state, which is stored in the
database.

Secrets: option fields marked `"secret": True` name an environment variable; read it at fetch
time (`os.environ`) and raise FetchError naming the variable when it is not set.

A fetch that fails raises `listener.errors.FetchError`; it never returns "no mentions" for a
failure. One entry it cannot read is left out (the others are returned); text needs no cleaning
by the source: a `Mention` cleans its own (lone surrogates, control characters).

What the sources share, each in one module: `http` (the client, and the helpers for an API's
answers and errors), `text` (valid text, HTML to text, web URLs, timestamps), `fields` (typed
readers of JSON values, counts included), `cursor` (the cursor's JSON), `ratelimit` (rate-limit
headers). `SourceBase` keeps the name and options every source is constructed with.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from listener.sources.text import clean_text

if TYPE_CHECKING:  # pragma: no cover
    from listener.sources.http import HttpClient


@dataclass(frozen=True)
class Mention:
    """One public post, article or comment as a source returns it (not yet matched or scored)."""

    source_id: str  # unique within the source (guid, status id, ...)
    text: str  # plain text: HTML stripped, entities decoded
    url: str | None = None
    title: str | None = None
    author: str | None = None
    published_at: datetime | None = None  # timezone-aware UTC
    language: str | None = None  # ISO 639-1 when the source says so
    hashtags: tuple[str, ...] = ()  # as the source gives them; the pipeline adds those in the text
    likes: int | None = None
    reposts: int | None = None
    replies: int | None = None
    score: int | None = None  # points / karma where the source has them
    topics: tuple[str, ...] = ()  # set by sources configured with `topics = [...]`
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        # The one place text from outside is made valid (sources.text.clean_text): whatever a
        # source or an import line holds, what is stored encodes as UTF-8 and has no controls.
        # The text keeps its lines; every other field is one line.
        for name in ("text", "source_id", "url", "title", "author", "language"):
            value = getattr(self, name)
            if isinstance(value, str):
                value = clean_text(value)
                object.__setattr__(self, name, value if name in ("text", "source_id") else " ".join(value.split()))
        for name in ("hashtags", "topics"):
            object.__setattr__(self, name, tuple(" ".join(clean_text(v).split()) if isinstance(v, str) else v
                                                 for v in getattr(self, name)))


@dataclass(frozen=True)
class SourceState:
    """What a source needs from its previous fetch. Saved only after the batch is committed."""

    etag: str | None = None
    last_modified: str | None = None
    cursor: str | None = None


@dataclass(frozen=True)
class FetchResult:
    mentions: list[Mention]
    state: SourceState
    not_modified: bool = False  # a 304: nothing parsed, nothing new
    requests: int = 1  # HTTP requests this fetch cost
    wait: float | None = None  # seconds the service asked us to wait before the next request (rate limit)


class Source(Protocol):
    kind: ClassVar[str]
    Options: ClassVar[type]
    name: str

    def hosts(self) -> list[str]: ...

    async def fetch(self, state: SourceState, http: "HttpClient", now: datetime,
                    since: datetime | None = None) -> FetchResult: ...


class SourceBase:
    """What every source's constructor does: keep its name and its validated options. A source
    that keeps more across fetches (a token, a session) adds it after `super().__init__`."""

    def __init__(self, name: str, options: Any) -> None:
        self.name = name
        self.options = options


# kind -> "module:Class". Modules are imported on first use.
KINDS: dict[str, str] = {
    "rss": "listener.sources.rss:RSSSource",
    "mastodon": "listener.sources.mastodon:MastodonSource",
    "hackernews": "listener.sources.hackernews:HackerNewsSource",
    "reddit": "listener.sources.reddit:RedditSource",
    "bluesky": "listener.sources.bluesky:BlueskySource",
    "lemmy": "listener.sources.lemmy:LemmySource",
}


def source_class(kind: str) -> type:
    """The class implementing a source kind; KeyError for an unknown kind."""
    module_name, _, class_name = KINDS[kind].partition(":")
    return getattr(importlib.import_module(module_name), class_name)

"""Matching: a source's mentions become rows to store, each with its hashtags, its language (detected
when the source does not say) and the topics it belongs to; the rest is left out."""

from __future__ import annotations

import hashlib
import re
from datetime import datetime, timedelta
from typing import Iterable, Sequence

from listener.config import SourceConfig, Topic
from listener.pipeline.language import detect_language, normalise_language
from listener.query import Document, extract_hashtags, parse, prepare
from listener.sources import Mention
from listener.sources.text import web_url
from listener.store import MentionRow

FUTURE_TOLERANCE = timedelta(hours=1)  # a date further ahead than this is a feed's mistake


def topics_for(mention: Mention, doc: Document, language: str | None, source: SourceConfig,
               topics: Sequence[Topic]) -> tuple[str, ...]:
    """Topics a mention belongs to: the source's own `topics` without matching, else every match.

    A topic restricted to `languages` accepts only mentions in those languages.
    """
    def language_ok(t: Topic) -> bool:
        return not t.languages or (language is not None and language in t.languages)

    if source.topics or mention.topics:
        names = set(source.topics) | set(mention.topics)
        return tuple(t.name for t in topics if t.name in names and language_ok(t))
    return tuple(t.name for t in topics if language_ok(t) and t.matcher.matches(doc))


def to_rows(source: SourceConfig, mentions: Iterable[Mention], topics: Sequence[Topic],
            now: datetime, *, since: datetime | None = None) -> tuple[list[MentionRow], int]:
    """Turn a source's mentions into rows to store; returns (rows, how many were left out).

    Left out: mentions matching no topic, and mentions published before `since` (the backfill
    limit of a source's first fetch).
    """
    rows, unmatched = [], 0
    for m in mentions:
        if since is not None and m.published_at is not None and m.published_at < since:
            unmatched += 1
            continue
        hashtags = tuple(dict.fromkeys([*filter(None, map(_source_hashtag, m.hashtags)),
                                        *extract_hashtags(m.text), *extract_hashtags(m.title or "")]))
        doc = prepare(m.text, title=m.title, hashtags=hashtags, author=m.author)
        language = normalise_language(m.language)
        detected = False
        if language is None:
            language = detect_language(" ".join(filter(None, [m.title, m.text])))
            detected = language is not None
        matched = topics_for(m, doc, language, source, topics)
        if not matched:
            unmatched += 1
            continue
        published = m.published_at
        if published is None or published > now + FUTURE_TOLERANCE:
            published = now
        rows.append(MentionRow(
            source=source.name, source_id=m.source_id or _fallback_id(m), text=m.text, published_at=published,
            fetched_at=now, topics=matched, hashtags=hashtags, url=web_url(m.url),
            author=m.author, title=m.title, language=language, language_detected=detected,
            likes=m.likes, reposts=m.reposts, replies=m.replies, score=m.score))
    return rows, unmatched


TopicSpecs = tuple[tuple[str, str, tuple[str, ...]], ...]  # each topic's (name, query, languages)
_PARSED: dict[TopicSpecs, tuple[Topic, ...]] = {}  # in a parse process: the topics of each config, parsed once


def topic_specs(topics: Sequence[Topic]) -> TopicSpecs:
    """What `to_rows_of` needs of the topics, as it travels to a parse process (a parsed query does not)."""
    return tuple((t.name, t.query, t.languages) for t in topics)


def to_rows_of(source: SourceConfig, mentions: Iterable[Mention], specs: TopicSpecs, now: datetime,
               since: datetime | None = None) -> tuple[list[MentionRow], int]:
    """`to_rows` with the topics given as `topic_specs`: the job the parse processes run."""
    topics = _PARSED.get(specs)
    if topics is None:
        topics = _PARSED[specs] = tuple(Topic(name=name, query=query, languages=languages, matcher=parse(query))
                                        for name, query, languages in specs)
    return to_rows(source, mentions, topics, now, since=since)


def match_parsed(mentions: Iterable[Mention], source: SourceConfig, specs: TopicSpecs, now: datetime,
                  since: datetime | None = None) -> tuple[list[MentionRow], int]:
    """`to_rows_of` on what a parse returned, in the parse's own job (`sources.http.AfterParse`)."""
    return to_rows_of(source, mentions, specs, now, since)


_WARM_FEED = (b'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>t</title><item>'
              b"<title>Warm</title><link>https://warm.example/1</link><description>&lt;p&gt;A few words to read "
              b"&amp; match&lt;/p&gt;</description><pubDate>Tue, 01 Dec 2026 10:00:00 GMT</pubDate></item></channel></rss>")


def warm_up() -> None:
    """What the parse processes' first job would load, loaded once in the process they are forked
    from (`ParsePool(warm_up=...)`): the feed parser's modules and its first parse, the language model."""
    from listener.sources.rss import parse_feed

    parse_feed(_WARM_FEED, {"content-type": "application/rss+xml"}, "https://warm.example/feed")
    detect_language("A sentence long enough for the language model to be loaded and used once.")


_TAG_WORD = re.compile(r"\w+")


def _source_hashtag(tag: str) -> str | None:
    """A hashtag as a source gives it (`#Acme`, `acme`), as the text's are stored: its leading word,
    lower case; None when it has none. A tag never holds a space or a line break."""
    word = _TAG_WORD.match(tag.lstrip("#"))
    return word[0].lower() if word else None


def _fallback_id(m: Mention) -> str:
    return "sha1:" + hashlib.sha1(f"{m.url}|{m.title}|{m.text}".encode("utf-8", "replace")).hexdigest()

"""RSS 0.9x/1.0/2.0, Atom and JSON Feed: one feed URL, fetched with a conditional GET.

XML feeds are parsed by feedparser from the bytes the HttpClient read (feedparser never fetches
anything itself); JSON Feed 1.0/1.1 is parsed here, as feedparser 6 does not read it.

Before feedparser sees an XML feed, `check_entities` reads every `<!ENTITY` declaration in it and
refuses the feed (FetchError "not a feed: ...") when a declaration could blow up or leak:
an external general entity (XXE), an internal parameter entity, an entity whose value refers to
other entities (billion laughs, cycles), more than MAX_ENTITY_DECLARATIONS declarations, or
entities that together would expand to more than MAX_ENTITY_EXPANSION characters (quadratic
blow-up). A small internal entity (`<!ENTITY id "tag:example.com,">`) and an external parameter
entity that is never loaded (the XHTML entity sets) still parse. feedparser alone is not enough:
it re-inserts every entity whose value has no `&`, so one 100 kB entity referenced 2,000 times
in a 200 kB feed grows to a 200-million-character title and ~800 MB of memory (measured with
feedparser 6.0.14 and expat 2.5; tests/test_rss.py::test_attack_files_stay_small_in_memory
checks that the same documents now stay small).
"""

from __future__ import annotations

import hashlib
import io
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any
from xml.sax import SAXParseException

import feedparser
import feedparser.api

from listener.errors import FetchError
from listener.sources import FetchResult, Mention, SourceBase, SourceState
from listener.sources.fields import identifier, language_code, string
from listener.sources.text import html_to_text, parse_datetime, url_hosts, web_url

if TYPE_CHECKING:  # a parse process needs parse_feed only, not the HTTP client
    from listener.sources.http import HttpClient

# feedparser's strict parser through expat with buffered text (sources/sax_expat.py): the same
# result in 15% less time. feedparser reads this list at each parse; its own choice stays behind.
_SAX_DRIVER = "listener.sources.sax_expat"
if _SAX_DRIVER not in feedparser.api.PREFERRED_XML_PARSERS:
    feedparser.api.PREFERRED_XML_PARSERS.insert(0, _SAX_DRIVER)

try:  # the exact decoding feedparser applies before its own DOCTYPE handling
    from feedparser.encodings import convert_to_utf8 as _convert_to_utf8
except ImportError:  # pragma: no cover - another feedparser layout: fall back to plain UTF-8
    _convert_to_utf8 = None

__all__ = [
    "RSSSource",
    "parse_feed",
    "check_entities",
    "MAX_ENTITY_DECLARATIONS",
    "MAX_ENTITY_EXPANSION",
]

ACCEPT = (
    "application/rss+xml, application/atom+xml, application/feed+json, application/rdf+xml;q=0.9, "
    "application/xml;q=0.9, text/xml;q=0.9, application/json;q=0.8, */*;q=0.5"
)
FEED_HEADERS = ("content-type", "content-language")  # the response headers parse_feed reads (lower case)
MAX_ENTITY_DECLARATIONS = 32
MAX_ENTITY_EXPANSION = 100_000  # characters all entity references may add to a document


class RSSSource(SourceBase):
    """A feed URL: RSS, Atom or JSON Feed. Each entry becomes a mention."""

    kind = "rss"

    @dataclass(frozen=True)
    class Options:
        url: str = field(metadata={"help": "Feed URL (RSS 0.9x/1.0/2.0, Atom or JSON Feed)", "url": True})

    def hosts(self) -> list[str]:
        """The feed's host."""
        return url_hosts(self.options.url)

    async def fetch(self, state: SourceState, http: HttpClient, now: datetime,
                    since: datetime | None = None) -> FetchResult:
        """GET the feed with the stored validators; a 304 is not parsed at all."""
        headers = {"Accept": ACCEPT}
        if state.etag:
            headers["If-None-Match"] = state.etag
        if state.last_modified:
            headers["If-Modified-Since"] = state.last_modified
        response = await http.get(self.options.url, headers=headers)
        if response.status == 304:
            return FetchResult([], state, not_modified=True)
        headers = {k: response.headers[k] for k in FEED_HEADERS if k in response.headers}  # a plain dict travels light
        mentions = await http.parse(parse_feed, response.body, headers, response.url)
        # Only a feed that parsed gets its validators saved (as Miniflux does).
        new_state = replace(
            state,
            etag=response.headers.get("etag") or None,
            last_modified=response.headers.get("last-modified") or None,
        )
        return FetchResult(mentions, new_state)


def parse_feed(body: bytes, headers: Mapping[str, str] | None = None, url: str = "") -> list[Mention]:
    """The mentions in a feed document; FetchError "not a feed: ..." when it is unusable.

    `headers` are the response headers (Content-Type's charset and Content-Language count);
    `url` is the feed's final URL, against which relative entry links are resolved.
    """
    http_headers = {k.lower(): v for k, v in (headers or {}).items() if k.lower() in FEED_HEADERS}
    if not body.strip():
        raise FetchError("not a feed: the response is empty")
    if _is_json(body, http_headers.get("content-type", "")):
        return _parse_json_feed(body, url)
    original = body  # line numbers in errors are the document's own
    if _convert_to_utf8 is not None:  # decoded as feedparser decodes it (also UTF-16/32), now UTF-8
        body = _convert_to_utf8(http_headers, body, {})
        media = http_headers.get("content-type", "application/xml").split(";")[0]
        http_headers = {**http_headers, "content-type": f"{media}; charset=utf-8"}
    _check_entity_declarations(body)  # check_entities on the document as decoded once
    body = _valid_char_refs(body)
    # A stream, never bytes: feedparser.parse(bytes) opens the bytes as a file name if one exists.
    stream = io.BytesIO(body)
    try:
        # feedparser's HTML sanitizer (half of its time) is left out: every HTML value it returns
        # becomes plain text in `_plain` (html_to_text drops every tag and what script and style hold),
        # and nothing from a feed is ever shown as HTML.
        parsed = feedparser.parse(stream, response_headers=http_headers, resolve_relative_uris=False,
                                  sanitize_html=False)
    except Exception as exc:  # noqa: BLE001 - whatever feedparser trips on is this feed's failure, one line
        raise FetchError(f"not a feed: the feed parser failed on it ({type(exc).__name__})") from None
    if not parsed.entries:
        if not parsed.get("version"):
            if parsed.get("bozo"):
                raise FetchError(f"not a feed: {_bozo_reason(parsed, original)}")
            raise FetchError("not a feed: no RSS, Atom or JSON Feed document found")
        if parsed.get("bozo") and not parsed.feed.get("title"):
            raise FetchError(f"not a feed: {_bozo_reason(parsed, original)}")
    feed_language = language_code(parsed.feed.get("language"))
    mentions = (_entry_or_none(entry, feed_language, url) for entry in parsed.entries)
    return [m for m in mentions if m is not None]


# A numeric character reference to a code point no text may hold: NUL and other controls XML
# forbids, a UTF-16 surrogate, beyond U+10FFFF. feedparser's fallback parser raises on them
# (UnicodeEncodeError for &#xD800;), which would cost the whole feed; they become U+FFFD.
_CHAR_REF = re.compile(r"&#(?:[xX]([0-9a-fA-F]+)|([0-9]+));")
_CHAR_REF_BYTES = re.compile(_CHAR_REF.pattern.encode())


def _valid_char_refs(body: bytes | str) -> bytes | str:
    def fix(m: re.Match):
        digits = m[1] or m[2]
        code = -1 if len(digits) > 8 else int(digits, 16) if m[1] else int(digits)  # -1: far beyond U+10FFFF
        ok = code in (0x9, 0xA, 0xD) or 0x20 <= code <= 0xD7FF or 0xE000 <= code <= 0xFFFD or 0x10000 <= code <= 0x10FFFF
        return m[0] if ok else type(m[0])("&#xFFFD;" if isinstance(m[0], str) else b"&#xFFFD;")

    if isinstance(body, str):
        return _CHAR_REF.sub(fix, body) if "&#" in body else body
    return _CHAR_REF_BYTES.sub(fix, body) if b"&#" in body else body


def _entry_or_none(entry: Any, feed_language: str | None, base_url: str) -> Mention | None:
    """One entry's mention; an entry that cannot be read is left out, never the feed."""
    try:
        return _entry_mention(entry, feed_language, base_url)
    except Exception:  # noqa: BLE001 - one bad entry never costs the others
        return None


# ---------------------------------------------------------------------------------------------
# XML entity defence

_ENTITY_START = re.compile(r"<!ENTITY", re.IGNORECASE)
_ENTITY_START_BYTES = re.compile(rb"<!ENTITY", re.IGNORECASE)
_ENTITY_DECL = re.compile(
    r"""<!ENTITY\s+(?P<pe>%\s+)?(?P<name>[^\s"'%&;<>]+)\s+
        (?:(?P<quote>["'])(?P<value>.*?)(?P=quote)|(?P<external>SYSTEM|PUBLIC)\b)""",
    re.IGNORECASE | re.DOTALL | re.VERBOSE,
)
_CHAR_REF = re.compile(r"&#(?:(\d+)|x([0-9a-fA-F]+));")


def check_entities(body: bytes, headers: Mapping[str, str] | None = None) -> None:
    """FetchError when the document's entity declarations could blow up memory or read files.

    The document is decoded as feedparser decodes it (HTTP charset, XML declaration, BOM), then
    every `<!ENTITY` anywhere in it is read; see the module docstring for what is refused.
    """
    if _convert_to_utf8 is not None:
        data = _convert_to_utf8({k.lower(): v for k, v in (headers or {}).items()}, body, {})
    else:  # pragma: no cover
        data = body
    _check_entity_declarations(data)


def _check_entity_declarations(data: bytes | str) -> None:
    """check_entities on the document decoded as feedparser decodes it (UTF-8 bytes, or text)."""
    if isinstance(data, bytes):
        if not _ENTITY_START_BYTES.search(data):  # most feeds: no declaration, nothing to decode
            return
        data = data.decode("utf-8", "replace")
    text = str(data)
    starts = [m.start() for m in _ENTITY_START.finditer(text)]
    if not starts:
        return
    if len(starts) > MAX_ENTITY_DECLARATIONS:
        raise FetchError(f"not a feed: more than {MAX_ENTITY_DECLARATIONS} entity declarations")
    expansion = 0
    for start in starts:
        decl = _ENTITY_DECL.match(text, start)
        if decl is None:
            raise FetchError(f"not a feed: unreadable entity declaration {text[start:start + 40]!r}")
        name, is_parameter = decl["name"], bool(decl["pe"])
        if decl["external"]:
            if is_parameter:
                continue  # never loaded: expat's external entities are off, sgmllib loads nothing
            raise FetchError(f"not a feed: external entity '{name}' is not allowed")
        if is_parameter:
            raise FetchError(f"not a feed: parameter entity '%{name}' is not allowed")
        value = decl["value"]
        if ("&" in value or "%" in value) and not _is_harmless_char_ref(value):
            raise FetchError(f"not a feed: entity '{name}' refers to other entities")
        expansion += len(value) * text.count(f"&{name};")
        if expansion > MAX_ENTITY_EXPANSION:
            raise FetchError(
                f"not a feed: entity '{name}' expands to more than {MAX_ENTITY_EXPANSION} characters"
            )


def _is_harmless_char_ref(value: str) -> bool:
    """A value that is exactly one character reference to something other than & < %."""
    ref = _CHAR_REF.fullmatch(value)
    if ref is None:
        return False
    try:
        char = chr(int(ref[1]) if ref[1] else int(ref[2], 16))
    except (ValueError, OverflowError):
        return False
    return char not in "&<%"


def _bozo_reason(parsed: Any, body: bytes) -> str:
    exc = parsed.get("bozo_exception")
    if isinstance(exc, SAXParseException):
        # feedparser prepends an XML declaration line when the document has none.
        head = body[:200].replace(b"\x00", b"").lstrip(b"\xef\xbb\xbf\xff\xfe")
        line = exc.getLineNumber() - (0 if head.startswith(b"<?xml") else 1)
        return f"{exc.getMessage()} at line {max(line, 1)}, column {exc.getColumnNumber()}"
    reason = " ".join(str(exc).split()) if exc is not None else ""
    return reason or "the document is not well-formed"


# ---------------------------------------------------------------------------------------------
# Entries to mentions


# Entries are feedparser's dicts; only their canonical keys are read, with dict.get (a fifth of
# FeedParserDict.get's time: that one maps old names, and "updated" falls back to "published", as the
# or-chains below do).
_get = dict.get


def _entry_mention(entry: Any, feed_language: str | None, base_url: str) -> Mention | None:
    title = _plain(_get(entry, "title"), _get(entry, "title_detail")) or None
    link = _get(entry, "link") or None
    url = web_url(link, base_url)
    text = ""
    contents = _get(entry, "content") or ()
    for content in contents:
        text = _plain(content.get("value"), content)
        if text:
            break
    summary_detail = _get(entry, "summary_detail")
    if not text:
        text = _plain(_get(entry, "summary"), summary_detail)
    text = text or title or url or ""
    if not text:
        return None  # nothing to match a topic against (e.g. an item with only a guid)
    published = _get(entry, "published_parsed") or _get(entry, "updated_parsed")
    published_at = parse_datetime(published) if published else None
    source_id = (_get(entry, "id") or "").strip() or (link or "").strip()
    if not source_id:
        raw_published = _get(entry, "published") or _get(entry, "updated") or ""
        source_id = _hash_id(title or text, raw_published)
    author_detail = _get(entry, "author_detail") or {}
    author = (author_detail.get("name") or _get(entry, "author") or "").strip() or None
    return Mention(
        source_id=source_id,
        text=text,
        url=url,
        title=title,
        author=author,
        published_at=published_at,
        language=_entry_language(contents, summary_detail, _get(entry, "title_detail")) or feed_language,
    )


def _plain(value: Any, detail: Any) -> str:
    """Plain text of a feedparser text construct: HTML stripped unless its type is plain text."""
    if not isinstance(value, str) or not value:
        return ""
    kind = (detail or {}).get("type", "text/html") if isinstance(detail, Mapping) else "text/html"
    if kind == "text/plain":
        return " ".join(value.split())
    return html_to_text(value)


def _entry_language(contents: Any, summary_detail: Any, title_detail: Any) -> str | None:
    """The first language an entry's text constructs name: its contents', its summary's, its title's."""
    for detail in (*contents, summary_detail, title_detail):
        if isinstance(detail, Mapping):
            code = language_code(detail.get("language"))
            if code:
                return code
    return None


def _hash_id(title: str, published: str) -> str:
    digest = hashlib.sha256(f"{title}\n{published}".encode("utf-8", "replace")).hexdigest()
    return f"sha256:{digest[:32]}"


# ---------------------------------------------------------------------------------------------
# JSON Feed 1.0 / 1.1


def _is_json(body: bytes, content_type: str) -> bool:
    start = body.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    if start in (b"{", b"["):
        return True
    if start == b"<":
        return False
    return "json" in content_type.lower()


def _parse_json_feed(body: bytes, base_url: str) -> list[Mention]:
    try:
        doc = json.loads(body)
    except RecursionError:
        raise FetchError("not a feed: JSON nested too deeply") from None
    except ValueError as exc:
        raise FetchError(f"not a feed: invalid JSON: {' '.join(str(exc).split())}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("items"), list):
        raise FetchError("not a feed: JSON without a JSON Feed items list")
    feed_language = language_code(doc.get("language"))
    feed_author = _json_author(doc)
    mentions = []
    for item in doc["items"]:
        if isinstance(item, dict):
            try:
                mention = _json_item_mention(item, feed_language, feed_author, base_url)
            except Exception:  # noqa: BLE001 - one bad item never costs the others
                continue
            if mention is not None:
                mentions.append(mention)
    return mentions


def _json_item_mention(
    item: dict, feed_language: str | None, feed_author: str | None, base_url: str
) -> Mention | None:
    title = " ".join(string(item.get("title")).split()) or None
    link = string(item.get("url")) or string(item.get("external_url"))
    url = web_url(link, base_url)
    text = (
        html_to_text(string(item.get("content_html")))
        or " ".join(string(item.get("content_text")).split())
        or " ".join(string(item.get("summary")).split())
        or title
        or url
        or ""
    )
    if not text:
        return None
    source_id = identifier(item.get("id")) or ""
    raw_published = string(item.get("date_published")) or string(item.get("date_modified"))
    source_id = source_id or link or _hash_id(title or text, raw_published)
    return Mention(
        source_id=source_id,
        text=text,
        url=url,
        title=title,
        author=_json_author(item) or feed_author,
        published_at=parse_datetime(raw_published) if raw_published else None,
        language=language_code(item.get("language")) or feed_language,
    )


def _json_author(obj: dict) -> str | None:
    authors = obj.get("authors")
    candidates = authors if isinstance(authors, list) else []
    candidates = [*candidates, obj.get("author")]
    for author in candidates:
        if isinstance(author, dict) and string(author.get("name")).strip():
            return string(author.get("name")).strip()
    return None


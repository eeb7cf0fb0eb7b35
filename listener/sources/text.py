"""Text from outside made safe once, for every source: valid text, HTML to plain text, web URLs, timestamps in UTC.

Everything a source returns passes `clean_text` (the `Mention` does it on construction), and
every URL that may become a link passes `web_url`: one policy for every way in (fetch, import,
replay), and the renderers check the same one before they write an `href`.
"""

from __future__ import annotations

import calendar
import email.utils
import math
import re
import time
from datetime import datetime, timezone
from html import unescape
from html.parser import HTMLParser
from urllib.parse import quote, unquote_plus, urljoin, urlsplit, urlunsplit

__all__ = ["CONTROLS", "clean_text", "html_to_text", "canonical_url", "web_url",
           "is_web_url", "url_hosts", "parse_datetime", "TRACKING_PARAMS"]

# C0 controls but tab and newline, DEL and C1 controls: never text a reader sees, and an ESC in a
# terminal is markup. Dropped from what is stored, shown as U+FFFD by listener.terminal, a space in
# an error text (listener.errors).
CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_NONCHARACTERS = {0xFFFE: None, 0xFFFF: None}  # dropped from what is stored too


def clean_text(text: str) -> str:
    """Valid text from whatever a feed or API gave: lone surrogates (`"\\ud800"` in JSON,
    `&#xD800;`) become U+FFFD, CR LF and CR become LF, other control characters are dropped.
    The result always encodes as UTF-8."""
    if not text:
        return text
    if not text.isascii():
        # UTF-16 pairs a high and a low surrogate that came as two escapes; lone ones are replaced
        text = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace").translate(_NONCHARACTERS)
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return CONTROLS.sub("", text)


# Elements whose content is never text a reader sees.
_SKIPPED = frozenset({"script", "style", "template", "noscript"})
# Elements that start a new line: block-level boxes and line breaks.
_BLOCKS = frozenset(
    {
        "address", "article", "aside", "blockquote", "br", "dd", "details", "div", "dl", "dt",
        "fieldset", "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6",
        "header", "hr", "li", "main", "nav", "ol", "p", "pre", "section", "summary", "table",
        "tbody", "td", "tfoot", "th", "thead", "tr", "ul",
    }
)  # fmt: skip


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skip_depth = 0

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag in _SKIPPED:
            self.skip_depth += 1
        elif tag in _BLOCKS:
            self.parts.append("\n")

    def handle_startendtag(self, tag: str, attrs: list) -> None:
        if tag in _BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIPPED:
            self.skip_depth = max(0, self.skip_depth - 1)
        elif tag in _BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.skip_depth:
            self.parts.append(data)


_SPACES = re.compile(r"[^\S\n]+")  # whitespace other than newlines, incl. NBSP and tabs
_NEWLINES = re.compile(r"\s*\n\s*")


def html_to_text(html: str) -> str:
    """Plain text of an HTML fragment: tags dropped, entities decoded, whitespace collapsed.

    The content of script, style, template and noscript is dropped. Block elements (p, div,
    li, h1..h6, tr, blockquote, br, ...) end a line: the result has single newlines between
    blocks and never a blank line, runs of other whitespace (tabs, non-breaking spaces) become
    one space, and it is stripped at both ends. Plain text without tags passes through with
    only its entities decoded and its whitespace collapsed.
    """
    if not html:
        return ""
    text = html
    if "<" in html:
        parts = _simple_parts(html)
        text = "".join(parts if parts is not None else _parsed_parts(html))
    elif "&" in html:  # without a tag or an entity the parser gives the text back as it is
        text = unescape(html)
    return _NEWLINES.sub("\n", _SPACES.sub(" ", text)).strip()


def _parsed_parts(html: str) -> list[str]:
    parser = _TextExtractor()
    try:
        parser.feed(html)
        parser.close()
    except (AssertionError, ValueError):  # pragma: no cover - html.parser is very lenient
        pass
    return parser.parts


# The markup most feeds send, read without html.parser (which takes ~6x as long in pure Python):
# text without "<", start tags with plain attributes, end tags. Within this grammar html.parser
# finds the same tags with the same names and gives each text between them unescaped, so the parts
# are the same (tests/test_properties.py compares the two); anything else (a comment, a "<" in
# text, an unquoted value with a slash, a skipped element) goes to html.parser.
_WS = "[ \t\n\r\f]"
_SIMPLE_TOKEN = re.compile(
    f"([^<]+)"  # text
    f"|</([a-zA-Z][a-zA-Z0-9]*){_WS}*>"  # an end tag
    f"|<([a-zA-Z][a-zA-Z0-9]*)"  # a start tag, its attributes, maybe self-closing
    f"(?:{_WS}+[a-zA-Z_:][-a-zA-Z0-9_:.]*(?:{_WS}*={_WS}*(?:\"[^\"<>]*\"|'[^'<>]*'|[^ \t\n\r\f\"'=<>`/]+))?)*"
    f"{_WS}*/?>"
)


def _simple_parts(html: str) -> list[str] | None:
    """The parts _TextExtractor would give, when `html` is all simple markup; else None."""
    parts: list[str] = []
    end = 0
    for m in _SIMPLE_TOKEN.finditer(html):
        if m.start() != end:
            return None
        end = m.end()
        text, tag = m[1], m[2] or m[3]
        if text is not None:
            parts.append(unescape(text) if "&" in text else text)
            continue
        tag = tag.lower()
        if tag in _SKIPPED:
            return None
        if tag in _BLOCKS:
            parts.append("\n")
    return parts if end == len(html) else None


# Query parameters that only track a click. `utm_*` is matched as a prefix.
TRACKING_PARAMS = frozenset(
    {
        "fbclid", "gclid", "gclsrc", "dclid", "msclkid", "yclid", "twclid", "ttclid", "li_fat_id",
        "igshid", "mc_cid", "mc_eid", "ref_src", "ref_url", "_hsenc", "_hsmi", "mkt_tok",
        "oly_anon_id", "oly_enc_id", "vero_id", "wickedid", "__s",
    }
)  # fmt: skip
_DEFAULT_PORTS = {"http": 80, "https": 443}


def _is_tracking(pair: str) -> bool:
    key = unquote_plus(pair.partition("=")[0]).strip().lower()
    return key.startswith("utm_") or key in TRACKING_PARAMS


def _without_tracking(query: str) -> str:
    """A query string without its tracking parameters and empty pairs, the rest as they are."""
    return "&".join(p for p in query.split("&") if p and not _is_tracking(p))


def canonical_url(url: str) -> str:
    """The URL with a lower-case scheme and host, no default port, no fragment, no tracking.

    Tracking parameters are `utm_*` and those in TRACKING_PARAMS (fbclid, gclid, mc_cid, ...);
    the other query parameters keep their order and their exact spelling. An empty path of an
    http(s) URL becomes "/". A string that is not an absolute URL is returned stripped.
    """
    url = url.strip()
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return url
    if not parts.scheme or not parts.netloc:
        return url
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    netloc = host
    if port is not None and port != _DEFAULT_PORTS.get(scheme):
        netloc = f"{host}:{port}"
    userinfo, at, _ = parts.netloc.rpartition("@")
    if at:
        netloc = f"{userinfo}@{netloc}"
    path = parts.path or ("/" if scheme in _DEFAULT_PORTS else "")
    return urlunsplit((scheme, netloc, path, _without_tracking(parts.query), ""))


def url_hosts(*urls: str) -> list[str]:
    """The lower-case hosts of `urls`, each once, in order (what a source's `hosts()` names)."""
    hosts: list[str] = []
    for url in urls:
        host = (urlsplit(url).hostname or "").lower()
        if host and host not in hosts:
            hosts.append(host)
    return hosts


WEB_SCHEMES = ("http", "https")
_URL_UNSAFE = frozenset('<>"`')  # never raw in a link we write: they would end an href or a Markdown autolink


# A character a link we write may not hold raw: white space (re's \s is str.isspace), a control, or
# one of _URL_UNSAFE
_UNSAFE_IN_URL = re.compile(r"[\s\x00-\x1f" + re.escape("".join(sorted(_URL_UNSAFE))) + "]")


def _encode(text: str) -> str:
    """`text` with the characters `_UNSAFE_IN_URL` matches percent-encoded, and nothing else: letters
    beyond ASCII, brackets, | and existing %-escapes stay as they are (the canonical form of a URL
    stored before is unchanged, so deduplication by URL still finds it)."""
    if not _UNSAFE_IN_URL.search(text):
        return text
    return _UNSAFE_IN_URL.sub(lambda m: quote(m[0], safe=""), text)


# URLs web_url returned lately. It is idempotent (what it returns, it returns unchanged, whatever the
# base), and a fetched link passes it twice: in its source and when the pipeline makes it a row.
_WEB_URLS: dict[str, None] = {}
_WEB_URLS_MAX = 4096


def web_url(url: object, base: str = "") -> str | None:
    """The canonical absolute http(s) URL of a link (resolved against `base`), or None: for
    anything else (`javascript:`, `data:`, `tag:`, a relative path without a base, a host-less
    or malformed URL, not a string), which must never become a link."""
    if not isinstance(url, str) or not url.strip():
        return None
    if url in _WEB_URLS:
        return url
    found = _web_url(url, base)
    if found is not None:
        if len(_WEB_URLS) >= _WEB_URLS_MAX:
            _WEB_URLS.clear()
        _WEB_URLS[found] = None
    return found


# The links most feeds hold, canonicalised without urllib: lower-case http(s), a lower-case host of
# letters, digits, dots and hyphens, no port or user, a path and query of URL characters (no ";",
# which urljoin would re-split), any fragment. For these the general path below gives exactly this
# (tests/test_properties.py compares the two); anything else takes it.
_PLAIN_WEB_URL = re.compile(r"(https?://[a-z0-9.-]+)(/[-A-Za-z0-9._~%!$&'()*+,=:@/]*)?"
                            r"(?:\?([-A-Za-z0-9._~%!$&'()*+,=:@/?]*))?(?:#[!-~]*)?", re.ASCII)


def _plain_web_url(url: str) -> str | None:
    m = _PLAIN_WEB_URL.fullmatch(url)
    if m is None:
        return None
    query = _without_tracking(m[3] or "")
    return f"{m[1]}{m[2] or '/'}?{query}" if query else f"{m[1]}{m[2] or '/'}"


def _web_url(url: str, base: str) -> str | None:
    plain = _plain_web_url(url.strip())
    return plain if plain is not None else _general_web_url(url, base)


def _general_web_url(url: str, base: str) -> str | None:
    # tabs and line breaks are dropped (as urlsplit does); spaces, <, >, " and ` are percent-encoded
    raw = _encode(clean_text(url.strip()).replace("\t", "").replace("\n", "").replace("\r", ""))
    if base and not _absolute_web(raw):  # urljoin would give back an absolute web URL as it is
        try:
            raw = urljoin(base, raw)
        except ValueError:
            return None
    candidate = canonical_url(raw)
    return candidate if is_web_url(candidate) else None


def _absolute_web(url: str) -> bool:
    """Whether urljoin(base, url) is `url` up to what canonical_url normalises anyway (an empty query or
    fragment): an http(s) URL with a host and no ";" (urljoin would re-split path parameters)."""
    if ";" in url or not url[:8].lower().startswith(("http://", "https://")):
        return False
    try:
        return bool(urlsplit(url).netloc)  # urlsplit caches: canonical_url splits the same string again
    except ValueError:
        return False


def is_web_url(url: object) -> bool:
    """Whether `url` is an absolute http(s) URL with a host, safe to write as a link (in an href, a
    Markdown <autolink>, a chat message): no spaces, controls or characters a URL must encode."""
    if not isinstance(url, str) or _UNSAFE_IN_URL.search(url):
        return False
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        return False
    return parts.scheme.lower() in WEB_SCHEMES and bool(host)


# Epoch seconds beyond this are out of datetime's range or clearly not seconds.
_MAX_EPOCH = 253402300799  # 9999-12-31T23:59:59Z


def parse_datetime(value: object) -> datetime | None:
    """A timezone-aware UTC datetime from what feeds and APIs give, or None when unreadable.

    Accepts a datetime (naive ones are taken as UTC), ISO-8601 text ("2024-05-01T10:00:00Z",
    "+02:00" offsets, a bare date), RFC 822 / HTTP dates ("Tue, 10 Jun 2003 04:00:00 GMT"),
    epoch seconds as int, float or digits, and a time.struct_time or 9-tuple in UTC (as
    feedparser's *_parsed fields are).
    """
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, time.struct_time) or (
        isinstance(value, tuple) and len(value) == 9 and all(isinstance(v, int) for v in value)
    ):
        try:
            return datetime.fromtimestamp(calendar.timegm(value), timezone.utc)
        except (OverflowError, ValueError, OSError):
            return None
    elif isinstance(value, (int, float)):
        return _from_epoch(value)
    elif isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        if re.fullmatch(r"-?\d+(\.\d+)?", text):
            return _from_epoch(float(text))
        dt = _from_iso(text) or _from_rfc822(text)
        if dt is None:
            return None
    else:
        return None
    if dt.tzinfo is None or dt.utcoffset() is None:
        return dt.replace(tzinfo=timezone.utc)
    try:
        return dt.astimezone(timezone.utc)
    except (OverflowError, ValueError):  # 9999-12-31T23:59:59-01:00 is beyond datetime's range in UTC
        return None


def _from_epoch(seconds: float) -> datetime | None:
    if not math.isfinite(seconds) or abs(seconds) > _MAX_EPOCH:
        return None
    try:
        return datetime.fromtimestamp(seconds, timezone.utc)
    except (OverflowError, ValueError, OSError):
        return None


def _from_iso(text: str) -> datetime | None:
    candidate = text
    if candidate[-1:] in "zZ":
        candidate = candidate[:-1] + "+00:00"
    try:
        return datetime.fromisoformat(candidate)
    except ValueError:
        return None


def _from_rfc822(text: str) -> datetime | None:
    try:
        return email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def clip(text: str, limit: int = 280) -> str:
    """`text` cut to `limit` characters, an ellipsis marking the cut (a post quoted in a list)."""
    return text if len(text) <= limit else text[:limit - 1] + "…"

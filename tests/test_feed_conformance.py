"""Every sample feed in shared/samples/feeds, served over HTTP and fetched through RSSSource.

The samples are feedparser's own test documents (encodings, ill-formed XML, namespaces,
sanitising) plus defusedxml's XML attack files. INDEX.json gives each file's embedded
expectation (a feedparser expression) and the HTTP headers to serve it with. We do not evaluate
those expressions (they test feedparser); we check what listener relies on: a fetch yields
mentions with an id and some text, or raises FetchError, and never anything else; a document
feedparser calls well-formed ("not bozo") is accepted; an attack never yields its payload.
"""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timezone
from pathlib import Path

import pytest

from listener.errors import FetchError
from listener.sources import FetchResult, SourceState
from listener.sources.http import HttpClient
from listener.sources.rss import RSSSource
from tests.httpserver import http_server  # noqa: F401  (fixture)

FEEDS = Path(__file__).resolve().parents[1].parent / "shared" / "samples" / "feeds"
ATTACKS = FEEDS / "xml_attacks_defusedxml"

if not FEEDS.is_dir():
    pytest.skip(f"no feed samples at {FEEDS}", allow_module_level=True)

INDEX = {entry["file"]: entry for entry in json.loads((FEEDS / "INDEX.json").read_text())}
SAMPLES = sorted(
    p for p in FEEDS.iterdir() if p.is_file() and p.name != "INDEX.json" and not p.name.startswith("README")
)
ATTACK_FILES = sorted(ATTACKS.glob("*.xml")) if ATTACKS.is_dir() else []
NOW = datetime(2024, 6, 1, tzinfo=timezone.utc)


def served_headers(name: str) -> dict[str, str]:
    """The simulated HTTP headers from INDEX.json ("Content-type: text/xml;charset = us-ascii")."""
    headers = {}
    for line in (INDEX.get(name) or {}).get("http_headers") or []:
        key, _, value = line.partition(":")
        headers[key.strip()] = value.strip()
    return headers


def fetch_served(server, path: Path, body: bytes | None = None) -> FetchResult:
    body = path.read_bytes() if body is None else body
    url = server.route("/" + path.name, body=body, headers=served_headers(path.name))

    async def go() -> FetchResult:
        async with HttpClient() as http:
            return await RSSSource(path.stem, RSSSource.Options(url=url)).fetch(SourceState(), http, NOW)

    return asyncio.run(go())


def test_index_lists_every_sample():
    assert set(INDEX) == {p.name for p in SAMPLES}


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.name)
def test_sample_yields_mentions_or_fetch_error(http_server, path):
    expect = (INDEX.get(path.name) or {}).get("expect") or ""
    try:
        result = fetch_served(http_server, path)
    except FetchError as error:
        assert str(error) and "\n" not in str(error)
        assert not expect.startswith("not bozo"), f"well-formed sample refused: {error}"
        return
    assert isinstance(result.mentions, list)
    for mention in result.mentions:
        assert mention.source_id.strip()
        assert mention.text.strip() or (mention.title or "").strip()
        assert mention.published_at is None or mention.published_at.tzinfo == timezone.utc
        assert mention.language is None or (len(mention.language) == 2 and mention.language.islower())


def test_well_formed_samples_keep_their_content(http_server):
    names = ("json__example.json", "encoding__demoronize-1.xml", "wellformed__rss__item_description.xml")
    mentions = {name: fetch_served(http_server, FEEDS / name).mentions for name in names}
    assert [m.title for m in mentions["json__example.json"]] == ["post 2", None]
    assert mentions["json__example.json"][1].text == "Hello, world!"  # the <script> is gone
    assert mentions["encoding__demoronize-1.xml"][0].text == "don\u2019t"
    assert mentions["wellformed__rss__item_description.xml"][0].text == "Example description"


def test_sanitised_samples_lose_their_scripts(http_server):
    for name in ("wellformed__sanitize__entry_content_script.xml", "wellformed__sanitize__item_description_crazy.xml"):
        for mention in fetch_served(http_server, FEEDS / name).mentions:
            assert "alert(" not in mention.text and "<script" not in mention.text.lower()


@pytest.mark.skipif(not ATTACK_FILES, reason="no xml_attacks_defusedxml folder")
@pytest.mark.parametrize("path", ATTACK_FILES, ids=lambda p: p.name)
def test_attack_file_is_refused_or_harmless(http_server, path):
    try:
        result = fetch_served(http_server, path)
    except FetchError as error:
        assert str(error).startswith("not a feed: ")
        return
    for mention in result.mentions:  # none of these files is a feed; anything left must be tiny
        assert len(mention.text) < 1000


@pytest.mark.skipif(not (ATTACKS / "external_file.xml").is_file(), reason="no external_file.xml")
def test_external_file_entity_does_not_leak(http_server, tmp_path):
    # external_file.xml points at "file:///PATH/TO/xmltestdata/simple.xml": point it at the real
    # simple.xml beside it, and at the same entity inside a real feed, and look for its text.
    target = ATTACKS / "simple.xml"
    marker = "element key='value'"
    assert marker in target.read_text()
    original = (ATTACKS / "external_file.xml").read_text()
    aimed = original.replace("file:///PATH/TO/xmltestdata/simple.xml", target.as_uri())
    assert aimed != original
    item = "<item><title>x &ee; y</title><description>&ee;</description></item>"
    as_feed = aimed.replace("<root>&ee;</root>", f"<rss version='2.0'><channel>{item}</channel></rss>")
    for name, body in {"aimed.xml": aimed, "as_feed.xml": as_feed}.items():
        try:
            result = fetch_served(http_server, tmp_path / name, body.encode())
        except FetchError as error:
            assert "external entity 'ee'" in str(error)
            continue
        for mention in result.mentions:
            assert "text" not in mention.text and "tail" not in mention.text and marker not in repr(mention)


def _feedparser_result(body: bytes, headers: dict[str, str], drivers: list[str], monkeypatch) -> tuple:
    import feedparser
    import feedparser.api

    from listener.sources.rss import parse_feed

    monkeypatch.setattr(feedparser.api, "PREFERRED_XML_PARSERS", drivers)
    parsed = feedparser.parse(body, response_headers={k.lower(): v for k, v in headers.items()})
    try:
        ours = parse_feed(body, headers, "https://feeds.example/feed.xml")
    except FetchError as error:
        ours = str(error)
    return parsed.get("version"), parsed.get("bozo"), parsed.get("feed"), parsed.get("entries"), ours


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.name)
def test_buffered_expat_parses_each_sample_as_plain_expat_does(path, monkeypatch):
    # sources/sax_expat.py: what feedparser and parse_feed return is the same through either driver
    headers = served_headers(path.name)
    plain = _feedparser_result(path.read_bytes(), headers, ["xml.sax.expatreader"], monkeypatch)
    buffered = _feedparser_result(path.read_bytes(), headers, ["listener.sources.sax_expat"], monkeypatch)
    assert buffered == plain

"""sources.rss (and sources.text) against a real server on 127.0.0.1, with hand-made feeds."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import feedparser
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from listener.errors import FetchError
from listener.sources import FetchResult, Mention, SourceState, source_class
from listener.sources.http import HttpClient, HttpSettings
from listener.sources.rss import MAX_ENTITY_EXPANSION, RSSSource, check_entities, parse_feed
from listener.sources.text import canonical_url, html_to_text, parse_datetime
from tests.httpserver import Reply, http_server  # noqa: F401  (fixture)

NOW = datetime(2024, 6, 1, 12, 0, tzinfo=timezone.utc)
REPO = Path(__file__).resolve().parents[1]

RSS_NL = b"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/">
<channel>
  <title>Nieuws</title>
  <link>https://nieuws.example.nl/</link>
  <language>nl</language>
  <item>
    <title>Fietsen in de regen</title>
    <link>https://Nieuws.Example.NL:443/artikel/1?utm_source=rss&amp;utm_medium=feed&amp;id=7#reacties</link>
    <guid isPermaLink="false">artikel-1</guid>
    <description>&lt;p&gt;Fietsers &amp;amp; wandelaars klagen over de &lt;b&gt;regen&lt;/b&gt;&amp;nbsp;&amp;mdash; weer.&lt;/p&gt;&lt;script&gt;alert(1)&lt;/script&gt;&lt;p&gt;Tweede alinea&lt;/p&gt;</description>
    <pubDate>Sat, 01 Jun 2024 10:30:00 +0200</pubDate>
    <dc:creator>Jan Jansen</dc:creator>
    <category>weer</category>
  </item>
  <item>
    <title>Zonder guid</title>
    <link>/artikel/2?fbclid=abc&amp;page=2</link>
  </item>
  <item>
    <title>Alleen een titel &amp; niets meer</title>
  </item>
</channel>
</rss>
"""

ATOM = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="en-US">
  <title>Example blog</title>
  <id>urn:uuid:60a76c80-d399-11d9-b93C-0003939e0af6</id>
  <updated>2024-05-02T10:00:00Z</updated>
  <entry>
    <title type="html">Launch &lt;em&gt;day&lt;/em&gt;</title>
    <link href="https://blog.example.com/launch?gclid=xyz"/>
    <id>tag:blog.example.com,2024:launch</id>
    <updated>2024-05-02T10:00:00+02:00</updated>
    <author><name>Ada</name></author>
    <content type="html">&lt;p&gt;We shipped it.&lt;/p&gt;</content>
  </entry>
  <entry xml:lang="de-DE">
    <title>Auf Deutsch</title>
    <id>tag:blog.example.com,2024:de</id>
    <published>2024-05-01T08:00:00Z</published>
    <updated>2024-05-03T08:00:00Z</updated>
    <summary type="text">Ein kurzer Text.</summary>
  </entry>
</feed>
"""

JSON_FEED = json.dumps(
    {
        "version": "https://jsonfeed.org/version/1.1",
        "title": "JSON example",
        "language": "fr",
        "authors": [{"name": "Feed Author"}],
        "items": [
            {
                "id": 42,
                "url": "https://json.example.com/a?utm_campaign=x&b=1",
                "title": "Bonjour",
                "content_html": "<p>Salut &eacute;l&egrave;ves</p>",
                "date_published": "2024-05-01T10:00:00+02:00",
                "language": "fr-CA",
            },
            {
                "id": "b",
                "content_text": "Just text",
                "date_modified": "2024-05-02T00:00:00Z",
                "authors": [{"name": "Item Author"}],
            },
            "not an item",
        ],
    }
).encode()

EMPTY_RSS = b'<?xml version="1.0"?><rss version="2.0"><channel><title>Quiet</title></channel></rss>'


def run_fetch(url: str, state: SourceState = SourceState(), settings: HttpSettings = HttpSettings()) -> FetchResult:
    async def go() -> FetchResult:
        async with HttpClient(settings) as http:
            return await RSSSource("test", RSSSource.Options(url=url)).fetch(state, http, NOW)

    return asyncio.run(go())


def fetch_error(url: str, state: SourceState = SourceState(), **kwargs) -> FetchError:
    with pytest.raises(FetchError) as info:
        run_fetch(url, state, **kwargs)
    assert "\n" not in str(info.value)
    return info.value


# --- the source contract ----------------------------------------------------------------------


def test_registered_kind_and_options():
    assert source_class("rss") is RSSSource
    assert RSSSource.kind == "rss"
    (url_field,) = dataclasses.fields(RSSSource.Options)
    assert url_field.name == "url" and url_field.type in (str, "str")
    assert url_field.metadata["url"] is True
    assert "\n" not in url_field.metadata["help"]
    with pytest.raises(TypeError):
        RSSSource.Options()  # the URL is required
    source = RSSSource("news", RSSSource.Options(url="https://News.Example.com:8443/feed.xml"))
    assert source.name == "news"
    assert source.hosts() == ["news.example.com"]


# --- RSS 2.0 / Atom / JSON Feed over HTTP ------------------------------------------------------


def test_rss_feed_to_mentions_and_validators(http_server):
    url = http_server.route(
        "/nl.xml",
        body=RSS_NL,
        headers={
            "Content-Type": "application/rss+xml; charset=utf-8",
            "ETag": '"abc"',
            "Last-Modified": "Sat, 01 Jun 2024 09:00:00 GMT",
        },
    )
    result = run_fetch(url, SourceState(cursor="kept"))
    assert not result.not_modified
    assert result.state == SourceState(etag='"abc"', last_modified="Sat, 01 Jun 2024 09:00:00 GMT", cursor="kept")
    first, second, third = result.mentions
    assert first == Mention(
        source_id="artikel-1",
        text="Fietsers & wandelaars klagen over de regen \u2014 weer.\nTweede alinea",
        url="https://nieuws.example.nl/artikel/1?id=7",
        title="Fietsen in de regen",
        author="Jan Jansen",
        published_at=datetime(2024, 6, 1, 8, 30, tzinfo=timezone.utc),
        language="nl",
    )
    assert first.hashtags == ()  # categories are not hashtags
    assert second.source_id == "/artikel/2?fbclid=abc&page=2"  # the link as the feed has it
    assert second.url == http_server.url("/artikel/2?page=2")  # resolved against the feed URL
    assert second.text == "Zonder guid" and second.published_at is None
    assert third.title == "Alleen een titel & niets meer" and third.text == third.title
    assert third.source_id.startswith("sha256:")
    assert run_fetch(url).mentions[2].source_id == third.source_id  # stable across fetches
    request = http_server.requests[0]
    assert request.headers["user-agent"].startswith("listener/")
    assert "application/rss+xml" in request.headers["accept"]
    assert "if-none-match" not in request.headers


def test_atom_feed(http_server):
    url = http_server.route("/atom", body=ATOM, headers={"Content-Type": "application/atom+xml"})
    launch, german = run_fetch(url).mentions
    assert launch.source_id == "tag:blog.example.com,2024:launch"
    assert launch.title == "Launch day"
    assert launch.text == "We shipped it."
    assert launch.url == "https://blog.example.com/launch"
    assert launch.author == "Ada"
    assert launch.published_at == datetime(2024, 5, 2, 8, 0, tzinfo=timezone.utc)
    assert launch.language == "en"
    assert german.language == "de"
    assert german.text == "Ein kurzer Text."
    assert german.published_at == datetime(2024, 5, 1, 8, 0, tzinfo=timezone.utc)  # published first
    assert german.url is None and german.author is None


def test_json_feed(http_server):
    url = http_server.route("/feed.json", body=JSON_FEED, headers={"Content-Type": "application/feed+json"})
    first, second = run_fetch(url).mentions
    assert first == Mention(
        source_id="42",
        text="Salut \u00e9l\u00e8ves",
        url="https://json.example.com/a?b=1",
        title="Bonjour",
        author="Feed Author",
        published_at=datetime(2024, 5, 1, 8, 0, tzinfo=timezone.utc),
        language="fr",
    )
    assert second.source_id == "b" and second.text == "Just text" and second.title is None
    assert second.author == "Item Author" and second.language == "fr"
    assert second.published_at == datetime(2024, 5, 2, tzinfo=timezone.utc)


def test_json_feed_1_0_served_as_plain_json(http_server):
    body = json.dumps(
        {
            "version": "https://jsonfeed.org/version/1",
            "author": {"name": "Old Style"},
            "items": [{"id": "1", "summary": "A summary", "external_url": "https://x.example/1"}],
        }
    ).encode()
    url = http_server.route("/v1.json", body=body, headers={"Content-Type": "application/json"})
    (mention,) = run_fetch(url).mentions
    assert (mention.text, mention.author, mention.url) == ("A summary", "Old Style", "https://x.example/1")


def test_feedparser_does_not_read_json_feed_itself():
    # The reason sources.rss parses JSON Feed: feedparser 6 sees only an ill-formed XML document.
    parsed = feedparser.parse(JSON_FEED)
    assert parsed.bozo and parsed.entries == []


def test_empty_valid_feed_is_a_real_zero(http_server):
    result = run_fetch(http_server.route("/empty", body=EMPTY_RSS, headers={"ETag": '"e"'}))
    assert result.mentions == [] and result.state.etag == '"e"'


def test_empty_json_feed_is_a_real_zero(http_server):
    body = b'{"version": "https://jsonfeed.org/version/1.1", "title": "t", "items": []}'
    assert run_fetch(http_server.route("/empty.json", body=body)).mentions == []


def test_charset_from_content_type(http_server):
    body = "<rss version='2.0'><channel><item><title>Caf\u00e9 cr\u00e8me</title></item></channel></rss>"
    url = http_server.route("/latin1", body=body.encode("iso-8859-1"), headers={"Content-Type": "text/xml; charset=iso-8859-1"})
    assert run_fetch(url).mentions[0].title == "Caf\u00e9 cr\u00e8me"


def test_content_language_header_is_the_fallback_language(http_server):
    body = b"<rss version='2.0'><channel><item><title>Hallo</title></item></channel></rss>"
    url = http_server.route("/lang", body=body, headers={"Content-Type": "application/rss+xml", "Content-Language": "nl-BE"})
    assert run_fetch(url).mentions[0].language == "nl"


# --- conditional GET ---------------------------------------------------------------------------


def test_304_on_matching_etag(http_server):
    def conditional(request):
        if request.headers.get("if-none-match") == '"v2"':
            return Reply(304, headers={"ETag": '"v2"'})
        return Reply(200, RSS_NL, {"ETag": '"v2"'})

    url = http_server.route("/cond", conditional)
    state = SourceState(etag='"v2"', last_modified="Sat, 01 Jun 2024 09:00:00 GMT", cursor="c")
    result = run_fetch(url, state)
    assert result == FetchResult([], state, not_modified=True)
    seen = http_server.requests[0].headers
    assert seen["if-none-match"] == '"v2"'
    assert seen["if-modified-since"] == "Sat, 01 Jun 2024 09:00:00 GMT"


def test_304_on_if_modified_since(http_server):
    stamp = "Sat, 01 Jun 2024 09:00:00 GMT"

    def conditional(request):
        if request.headers.get("if-modified-since") == stamp:
            return Reply(304)
        return Reply(200, RSS_NL, {"Last-Modified": stamp})

    url = http_server.route("/since", conditional)
    fresh = run_fetch(url)
    assert fresh.state.last_modified == stamp and len(fresh.mentions) == 3
    again = run_fetch(url, fresh.state)
    assert again.not_modified and again.mentions == [] and again.state == fresh.state
    assert "if-modified-since" not in http_server.requests[0].headers
    assert http_server.requests[1].headers["if-modified-since"] == stamp


def test_validators_come_only_with_a_parsed_feed(http_server):
    # A broken body with new validators raises: the caller keeps the old state.
    url = http_server.route("/broken", body=b"<rss version='2.0'><chan", headers={"ETag": '"new"'})
    error = fetch_error(url, SourceState(etag='"old"'))
    assert str(error).startswith("not a feed: ")


# --- failures ----------------------------------------------------------------------------------


def test_http_errors_propagate(http_server):
    assert fetch_error(http_server.route("/500", status=500)).status == 500
    error = fetch_error(http_server.route("/429", status=429, headers={"Retry-After": "60"}))
    assert (error.status, error.retry_after) == (429, 60.0)
    assert str(fetch_error(http_server.url("/gone"))) == f"HTTP 404 not found at {http_server.url('/gone')}"


def test_timeout(http_server):
    url = http_server.route("/slow", body=EMPTY_RSS, delay=2)
    assert str(fetch_error(url, settings=HttpSettings(timeout=0.2))) == "timed out after 0.2s fetching 127.0.0.1"


def test_oversized_feed(http_server):
    big = EMPTY_RSS.replace(b"</channel>", b"<item><title>x</title></item>" * 2000 + b"</channel>")
    url = http_server.route("/big", body=big, chunked=True)
    assert "larger than 10000 bytes" in str(fetch_error(url, settings=HttpSettings(max_bytes=10_000)))


@pytest.mark.parametrize(
    ("body", "content_type", "reason"),
    [
        (b"<rss version='2.0'>\n<chan", "application/rss+xml", "unclosed token at line 2, column 0"),
        (b"<?xml version='1.0'?>\n<rss version='2.0'>\n<chan", "application/rss+xml", "unclosed token at line 3, column 0"),
        (b"garbage, not XML at all", "application/rss+xml", "syntax error at line 1, column 0"),
        (b"<html><head><title>Hi</title></head><body><p>Welcome</body></html>", "text/html", ""),
        (b"<!DOCTYPE html><html><head><title>Hi</title></head><body><p>Hello</p></body></html>", "text/html", ""),
        (b"%PDF-1.4 binary", "application/pdf", ""),
        (b"   \n", "application/rss+xml", "the response is empty"),
        (b"{not json", "application/json", "invalid JSON"),
        (b'{"title": "no items"}', "application/json", "JSON without a JSON Feed items list"),
        (b"[1, 2, 3]", "application/json", "JSON without a JSON Feed items list"),
        (b"[" * 100_000 + b"]" * 100_000, "application/json", "nested too deeply"),
    ],
)
def test_unusable_documents_are_fetch_errors(http_server, body, content_type, reason):
    url = http_server.route("/doc", body=body, headers={"Content-Type": content_type})
    message = str(fetch_error(url))
    assert message.startswith("not a feed: ")
    assert reason in message


def test_ill_formed_feed_with_entries_is_accepted(http_server):
    body = b"<rss version='2.0'><channel><item><title>Tom &amp Jerry</title><link>http://x.example/?a=1&b=2</link></item></channel></rss>"
    (mention,) = run_fetch(http_server.route("/sloppy", body=body)).mentions
    assert mention.title.startswith("Tom") and mention.url == "http://x.example/?a=1&b=2"


def test_body_is_never_taken_for_a_file_name(tmp_path):
    # feedparser.parse(bytes) opens the bytes as a path when such a file exists; parse_feed must not.
    local = tmp_path / "local-feed.xml"
    local.write_bytes(b"<rss version='2.0'><channel><item><title>LOCAL-CANARY</title></item></channel></rss>")
    assert feedparser.parse(str(local).encode()).entries[0].title == "LOCAL-CANARY"
    with pytest.raises(FetchError, match="not a feed"):
        parse_feed(str(local).encode(), {"Content-Type": "application/rss+xml"})


# --- XML attacks -------------------------------------------------------------------------------


def lol_bomb(levels: int = 9, *, cut_head: bool = False) -> bytes:
    decls = ['<!ENTITY lol0 "lollollollollollollollollollol">']
    if cut_head:  # '<x' inside a value ends feedparser's idea of the prolog: its DOCTYPE scrub misses
        decls.insert(0, '<!ENTITY z "<x/>">')
    decls += [f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, levels + 1)]
    return (
        '<?xml version="1.0"?>\n<!DOCTYPE rss [\n' + "\n".join(decls) + "\n]>\n"
        f"<rss version='2.0'><channel><title>t</title><item><title>&lol{levels};</title></item></channel></rss>"
    ).encode()


def quadratic(value_size: int = 100_000, refs: int = 2000, *, one_line: bool = False) -> bytes:
    newline = "" if one_line else "\n"
    return (
        f'<?xml version="1.0"?>{newline}<!DOCTYPE rss [{newline}<!ENTITY a "{"B" * value_size}">{newline}]>\n'
        f"<rss version='2.0'><channel><title>t</title><item><title>{'&a;' * refs}</title></item></channel></rss>"
    ).encode()


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (lol_bomb(), "entity 'lol1' refers to other entities"),
        (lol_bomb(cut_head=True), "entity 'lol1' refers to other entities"),
        (quadratic(), "entity 'a' expands to more than"),
        (quadratic(one_line=True), "entity 'a' expands to more than"),
        (b'<!DOCTYPE r [<!ENTITY a "x &b;"><!ENTITY b "&a;">]><rss><title>&a;</title></rss>', "refers to other"),
        (b'<!DOCTYPE r [<!ENTITY a "&#38;b;&#38;b;">]><rss/>', "refers to other"),  # & smuggled as a char ref
        (b'<!DOCTYPE r [<!ENTITY % p "<!ENTITY b \'x\'>"> %p;]><rss/>', "parameter entity '%p' is not allowed"),
        (b'<!DOCTYPE r [<!ENTITY e SYSTEM "http://127.0.0.1:9/x">]><rss><title>&e;</title></rss>', "external entity 'e'"),
        (b'<!DOCTYPE r [<!ENTITY e PUBLIC "-//X//Y" "file:///etc/passwd">]><rss/>', "external entity 'e'"),
        (b'<!DOCTYPE r [<!ENTITY e>]><rss/>', "unreadable entity declaration"),
        (b"<!DOCTYPE r [" + b'<!ENTITY a "x">' * 40 + b"]><rss/>", "more than 32 entity declarations"),
    ],
)
def test_xml_attacks_are_refused(http_server, body, reason):
    url = http_server.route("/attack.xml", body=body, headers={"Content-Type": "application/rss+xml"})
    message = str(fetch_error(url))
    assert message.startswith("not a feed: ") and reason in message


def test_attack_in_utf16_is_seen_through_the_encoding():
    body = lol_bomb().decode().replace('<?xml version="1.0"?>', '<?xml version="1.0" encoding="utf-16"?>')
    with pytest.raises(FetchError, match="refers to other entities"):
        parse_feed(body.encode("utf-16"), {})


ITEM = b"""<rss version="2.0"><channel><item><title>TAG2006</title><guid isPermaLink='false'>TAG2006-05-04:/blog/</guid></item></channel></rss>"""


@pytest.mark.parametrize(
    "body",
    [
        # As in the feed samples: a harmless internal entity, the XHTML entity sets (never loaded).
        b"""<!DOCTYPE rss [\n  <!ENTITY id "tag:example.com,">\n]>\n""" + ITEM.replace(b"TAG", b"&id;"),
        b"""<?xml version="1.0"?>\n<!DOCTYPE rdf:RDF [\n<!ENTITY % HTMLlat1 PUBLIC\n"""
        b""" "-//W3C//ENTITIES Latin 1 for XHTML//EN"\n "http://www.w3.org/TR/xhtml1/DTD/xhtml-lat1.ent">\n"""
        b"""%HTMLlat1;\n]>\n""" + ITEM.replace(b"TAG", b"tag:example.com,"),
        b"""<!DOCTYPE rss [<!ENTITY copy "&#169;">]>""" + ITEM.replace(b"TAG", b"tag:example.com,"),
    ],
)
def test_harmless_entities_still_parse(body):
    (mention,) = parse_feed(body, {"Content-Type": "application/rss+xml"})
    assert mention.title == "tag:example.com,2006"
    assert mention.source_id == "tag:example.com,2006-05-04:/blog/"


def test_entity_expansion_budget_allows_modest_use():
    value = "x" * 100
    refs = MAX_ENTITY_EXPANSION // len(value)
    ok = f'<!DOCTYPE rss [<!ENTITY v "{value}">]><rss><channel><title>{"&v;" * refs}</title></channel></rss>'
    check_entities(ok.encode())
    with pytest.raises(FetchError):
        check_entities(ok.replace("&v;", "&v;&v;", 1).encode())


def test_external_entities_never_read_local_files(http_server, tmp_path):
    canary = tmp_path / "secret.txt"
    canary.write_text("CANARY-7f3a")
    dtd = tmp_path / "evil.dtd"
    dtd.write_text(f'<!ENTITY leak SYSTEM "file://{canary}">')
    item = "<item><title>t &leak; t</title><description>&leak;</description><guid>g</guid></item>"
    feed = f'<rss version="2.0"><channel>{item}</channel></rss>'
    documents = {
        # external general entity (XXE): refused outright
        "general": f'<!DOCTYPE rss [<!ENTITY leak SYSTEM "file://{canary}">]>{feed}',
        # external parameter entity and an external DTD subset: allowed, but never loaded
        "parameter": f'<!DOCTYPE rss [\n<!ENTITY % ext SYSTEM "file://{dtd}">\n%ext;\n]>{feed}',
        "dtd": f'<!DOCTYPE rss SYSTEM "file://{dtd}">{feed}',
        "cut": f'<!DOCTYPE rss [\n<!ENTITY z "<x/>">\n<!ENTITY % ext SYSTEM "file://{dtd}">\n%ext;\n]>{feed}',
    }
    for name, document in documents.items():
        url = http_server.route(f"/{name}.xml", body=document.encode(), headers={"Content-Type": "application/rss+xml"})
        try:
            mentions = run_fetch(url).mentions
        except FetchError as error:
            assert "CANARY" not in str(error)
            continue
        assert name != "general"
        assert all("CANARY" not in repr(m) for m in mentions), name


def test_xml_bomb_over_http_is_quick(http_server):
    url = http_server.route("/bomb.xml", body=lol_bomb(12), headers={"Content-Type": "application/rss+xml"})
    started = time.monotonic()
    fetch_error(url)
    assert time.monotonic() - started < 2


MEMORY_PROBE = """
import resource, sys
resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))  # a regression fails here, not the machine
sys.path.insert(0, sys.argv[1])
from pathlib import Path
from listener.errors import FetchError
from listener.sources.rss import parse_feed
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
outcomes = []
for path in sys.argv[2:]:
    try:
        outcomes.append(len(parse_feed(Path(path).read_bytes(), {"Content-Type": "application/xml"})))
    except FetchError:
        outcomes.append("error")
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print((after - before) // 1024, outcomes)
"""


def test_attack_files_stay_small_in_memory(tmp_path):
    """Peak memory of parsing attack documents in a fresh process grows by less than 64 MB.

    Without check_entities, feedparser 6.0 + expat 2.5 peak at about 320 MB on the sample
    quadratic.xml and 800 MB on quadratic(100_000, 2000) (measured while choosing the defence).
    """
    files = []
    for name, body in {"lol": lol_bomb(12), "cut": lol_bomb(12, cut_head=True), "quad": quadratic(),
                       "quad1": quadratic(one_line=True), "wide": quadratic(1_000_000, 2_000)}.items():  # fmt: skip
        path = tmp_path / f"{name}.xml"
        path.write_bytes(body)
        files.append(str(path))
    samples = REPO.parent / "shared" / "samples" / "feeds" / "xml_attacks_defusedxml"
    files += sorted(str(p) for p in samples.glob("*.xml")) if samples.is_dir() else []
    done = subprocess.run(
        [sys.executable, "-c", MEMORY_PROBE, str(REPO), *files], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    grown_mb, outcomes = done.stdout.split(" ", 1)
    assert int(grown_mb) < 64, done.stdout
    assert "[" in outcomes and all(o == "error" for o in eval(outcomes)[:5])


# --- sources.text --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("html", "text"),
    [
        ("<p>Hello&nbsp;<b>world</b> &amp; more</p>", "Hello world & more"),
        ("<p>One</p><p>Two</p>\n\n<p>  Three  </p>", "One\nTwo\nThree"),
        ("line<br>break<br/>again", "line\nbreak\nagain"),
        ("<ul><li>a</li><li>b</li></ul>", "a\nb"),
        ("<script>var x = '<p>';</script><style>p {color: red}</style>Visible", "Visible"),
        ("<div>caf&eacute; &#8364;5 &#x263A;</div>", "caf\u00e9 \u20ac5 \u263a"),
        ("plain text, no tags\tat   all", "plain text, no tags at all"),
        ("a < b and c > d", "a < b and c > d"),
        ("&lt;b&gt;escaped&lt;/b&gt;", "<b>escaped</b>"),
        ("<p>unclosed <i>tags", "unclosed tags"),
        ("<!-- comment -->kept", "kept"),
        ("", ""),
    ],
)
def test_html_to_text(html, text):
    assert html_to_text(html) == text


@pytest.mark.parametrize(
    ("url", "canonical"),
    [
        ("HTTPS://Example.COM:443/Path?b=2&utm_source=x&a=1#frag", "https://example.com/Path?b=2&a=1"),
        ("http://example.com:80", "http://example.com/"),
        ("http://example.com:8080/x", "http://example.com:8080/x"),
        ("https://x.example/a?fbclid=1&gclid=2&mc_cid=3&mc_eid=4&ref_src=twsrc&UTM_Medium=5", "https://x.example/a"),
        ("https://x.example/a?q=caf%C3%A9+au+lait&page=2&utm_term=y", "https://x.example/a?q=caf%C3%A9+au+lait&page=2"),
        ("https://x.example/a?ref=home&reference=1", "https://x.example/a?ref=home&reference=1"),
        ("https://news.google.com/rss/articles/CBMi?oc=5", "https://news.google.com/rss/articles/CBMi?oc=5"),
        ("https://user:pw@Example.com/", "https://user:pw@example.com/"),
        ("http://[::1]:80/x", "http://[::1]/x"),
        ("  https://example.com/a  ", "https://example.com/a"),
        ("/relative/path?utm_source=x", "/relative/path?utm_source=x"),
        ("mailto:someone@example.com", "mailto:someone@example.com"),
        ("http://example.com:bad/", "http://example.com:bad/"),
    ],
)
def test_canonical_url(url, canonical):
    assert canonical_url(url) == canonical


def test_parse_datetime():
    utc = timezone.utc
    expected = datetime(2024, 5, 1, 10, 0, tzinfo=utc)
    assert parse_datetime("2024-05-01T10:00:00Z") == expected
    assert parse_datetime("2024-05-01T12:00:00+02:00") == expected
    assert parse_datetime("2024-05-01T10:00:00.000Z") == expected
    assert parse_datetime("2024-05-01T10:00:00") == expected  # naive: taken as UTC
    assert parse_datetime("2024-05-01") == datetime(2024, 5, 1, tzinfo=utc)
    assert parse_datetime("Wed, 01 May 2024 12:00:00 +0200") == expected
    assert parse_datetime("Wed, 01 May 2024 10:00:00 GMT") == expected
    assert parse_datetime(1714557600) == expected
    assert parse_datetime(1714557600.0) == expected
    assert parse_datetime("1714557600") == expected
    assert parse_datetime(time.gmtime(1714557600)) == expected
    assert parse_datetime(tuple(time.gmtime(1714557600))) == expected
    assert parse_datetime(feedparser.parse(RSS_NL).entries[0].published_parsed) == datetime(2024, 6, 1, 8, 30, tzinfo=utc)
    assert parse_datetime(datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc).astimezone()) == datetime(2024, 5, 1, 12, 0, tzinfo=utc)
    assert parse_datetime(datetime(2024, 5, 1, 10, 0)) == expected
    for bad in (None, "", "yesterday", "2024-13-45", True, 1e20, float("nan"), object(), [1, 2]):
        assert parse_datetime(bad) is None
    assert parse_datetime("2024-05-01T10:00:00Z").tzinfo is timezone.utc


_ITEM_TEXT = st.lists(st.sampled_from(list("ab é\n\t<>&\"'") + ["&amp;", "&lt;b&gt;", "&#233;", "]]"]),
                      max_size=40).map("".join)


@settings(max_examples=60, deadline=None)
@given(items=st.lists(st.tuples(_ITEM_TEXT, _ITEM_TEXT, st.booleans()), min_size=1, max_size=4),
       long_run=st.integers(0, 70_000))
def test_buffered_expat_driver_parses_as_plain_expat(items, long_run):
    # sources/sax_expat.py joins expat's pieces of text; feedparser must return the same as with
    # expat's reader as it is: entities, CDATA, line breaks, and a text longer than the buffer.
    import xml.sax
    from xml.sax.saxutils import escape

    import feedparser.api

    from listener.sources import sax_expat

    assert isinstance(xml.sax.make_parser(feedparser.api.PREFERRED_XML_PARSERS), sax_expat.BufferedExpatParser)
    entries = []
    for n, (title, text, cdata) in enumerate(items):
        body = f"<![CDATA[{text.replace(']]>', '')}]]>" if cdata else escape(text)
        entries.append(f"<item><guid>id-{n}</guid><title>{escape(title)}</title>"
                       f"<description>{body}{'x &amp; ' * (long_run // 8) if n == 0 else ''}</description></item>")
    doc = f"<?xml version='1.0' encoding='utf-8'?><rss version='2.0'><channel><title>t</title>{''.join(entries)}</channel></rss>"
    results = []
    for drivers in (["xml.sax.expatreader"], ["listener.sources.sax_expat"]):
        saved = feedparser.api.PREFERRED_XML_PARSERS[:]
        feedparser.api.PREFERRED_XML_PARSERS[:] = drivers
        try:
            parsed = feedparser.parse(doc.encode())
            results.append((parsed.bozo, parsed.feed, parsed.entries, parse_feed(doc.encode(), {}, "https://x.example/")))
        finally:
            feedparser.api.PREFERRED_XML_PARSERS[:] = saved
    assert results[1] == results[0]
    assert not results[0][0]

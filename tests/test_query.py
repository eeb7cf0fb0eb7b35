"""Tests of the topic query language: parsing, matching, errors, hashtags and the FTS5 prefilter."""

from __future__ import annotations

import sqlite3

import pytest

from listener.errors import QuerySyntaxError
from listener.query import Document, Query, extract_hashtags, normalise, parse, prepare


def matches(query: str, text: str, **kwargs: object) -> bool:
    return parse(query).matches(prepare(text, **kwargs))  # type: ignore[arg-type]


# --- operators and precedence ---


@pytest.mark.parametrize(
    ("query", "text", "expected"),
    [
        ("acme OR globex", "globex is down", True),
        ("acme OR globex", "initech is down", False),
        ("acme AND recall", "acme announces a recall", True),
        ("acme AND recall", "acme announces a sale", False),
        ("acme recall", "recall at acme", True),  # implicit AND
        ("acme recall", "recall at initech", False),
        ("acme NOT job", "acme is great", True),
        ("acme NOT job", "acme job fair", False),
        ("acme AND NOT job", "acme job fair", False),
        ("acme -job", "acme job fair", False),
        ("acme -job", "acme rocks", True),
        ("acme -(job OR hiring)", "acme is hiring", False),
        ("acme -(job OR hiring)", "acme is firing", True),
        ('acme -"we are hiring"', "acme: we are hiring!", False),
        ('acme -"we are hiring"', "acme: are we hiring?", True),
        ("acme NOT NOT job", "acme job", True),
        ("(acme)", "ACME", True),
        ("((acme OR globex) (recall OR lawsuit))", "globex lawsuit", True),
        # lower-case operators are ordinary words
        ("acme or globex", "globex", False),
        ("acme or globex", "acme or globex", True),
        ("acme and globex", "acme globex", False),
        ("acme not globex", "acme not globex", True),
    ],
)
def test_operators(query: str, text: str, expected: bool) -> None:
    assert matches(query, text) is expected


@pytest.mark.parametrize(
    ("query", "equivalent"),
    [
        ("a b OR c", "(a b) OR c"),
        ("a AND b OR c", "(a AND b) OR c"),
        ("a OR b c", "a OR (b c)"),
        ("a OR b AND c", "a OR (b AND c)"),
        ("-a b OR c", "((-a) b) OR c"),
        ("NOT a b", "(NOT a) AND b"),
        ("b OR c NOT a", "b OR (c AND (NOT a))"),
        ("c NOT a OR b", "(c (NOT a)) OR b"),
        ("c -a b", "c AND (NOT a) AND b"),
    ],
)
def test_precedence(query: str, equivalent: str) -> None:
    """NOT/- binds tightest, then AND (explicit or implicit), then OR; checked on all subsets."""
    left, right = parse(query), parse(equivalent)
    words = ["a", "b", "c"]
    for mask in range(8):
        doc = prepare(" ".join(w for i, w in enumerate(words) if mask >> i & 1) or "x")
        assert left.matches(doc) == right.matches(doc), doc.tokens


def test_brief_examples() -> None:
    topic = parse('acme OR "acme corp" OR #acmefail OR @acme_nl -job -"we are hiring"')
    assert topic.text.startswith("acme OR")
    assert topic.matches(prepare("Love my Acme Corp blender"))
    assert topic.matches(prepare("so much #AcmeFail today"))
    assert topic.matches(prepare("hey @Acme_NL, help"))
    assert not topic.matches(prepare("acmefail without the hash"))
    # Exclusions bind to the last OR branch only; parentheses make them apply to every branch.
    assert topic.matches(prepare("#acmefail: we are hiring"))
    grouped = parse('(acme OR "acme corp" OR #acmefail OR @acme_nl) -job -"we are hiring"')
    assert not grouped.matches(prepare("#acmefail: we are hiring"))
    assert grouped.matches(prepare("#acmefail: not hiring"))

    recall = parse('(recall OR lawsuit OR "food poisoning") AND acme')
    assert recall.matches(prepare("Food-poisoning case linked to ACME"))
    assert not recall.matches(prepare("food and poisoning at acme"))
    assert not recall.matches(prepare("a lawsuit against globex"))

    cafe = parse("café NOT (spam OR ad*)")
    assert cafe.matches(prepare("Best CAFE in town"))
    assert not cafe.matches(prepare("café advertising"))
    assert not cafe.matches(prepare("cafe spam"))


# --- terms ---


def test_phrase_is_consecutive_words() -> None:
    assert matches('"acme corp"', "I like ACME  corp.")
    assert not matches('"acme corp"', "corp acme")
    assert not matches('"acme corp"', "acme big corp")
    assert matches('"acme corp"', "acme acme corp")  # second occurrence of the first word


def test_phrase_does_not_span_title_and_text() -> None:
    assert matches('"acme corp"', "corp news", title="Acme corp")
    assert not matches('"acme corp"', "corp news", title="About acme")
    assert matches("acme news", "news", title="acme")  # AND may use both


def test_prefix() -> None:
    assert matches("recall*", "Acme recalls cars")
    assert matches("recall*", "cars were recalled")
    assert matches("recall*", "recall")
    assert not matches("recall*", "a product rec all")
    assert matches("coca-col*", "drinking coca-colas")  # prefix on the last word of a phrase
    assert not matches("coca-col*", "coca and colas")


def test_whole_words_only() -> None:
    assert not matches("acme", "welcome to acmeville")
    assert not matches("acme", "ACMEcorp")
    assert matches("acme", "(acme)")


def test_word_matches_hashtag_and_handle_forms() -> None:
    assert matches("acme", "so much #acme")
    assert matches("acme", "thanks @acme")
    assert not matches("acme", "so much #acmefail")


def test_hashtag_matches_only_hashtags() -> None:
    assert matches("#acme", "so much #ACME")
    assert not matches("#acme", "so much acme")
    assert not matches("#acme", "thanks @acme")
    assert matches("#acme", "nothing here", hashtags=["Acme"])
    assert matches("#acme", "nothing here", hashtags=["#acme"])
    assert matches("#café", "love #cafe")
    assert matches("#cafe", "love #Café")
    assert matches("#acme_fail", "#acme_fail again")
    assert not matches("#acme", "#acme_fail again")
    assert matches("#acme*", "#acmefail again")
    assert not matches("#acme", "C#acme or page/#acme")  # glued to a word or a URL fragment


def test_handle_matches_text_handle_or_author() -> None:
    assert matches("@acme", "thanks @Acme!")
    assert not matches("@acme", "thanks acme")
    assert not matches("@acme", "so much #acme")
    assert not matches("@acme", "mail bob@acme.com")
    assert matches("@acme", "hello", author="acme")
    assert matches("@acme", "hello", author="@ACME")
    assert matches("@acme", "hello", author="acme@mastodon.social")
    assert matches("@acme", "cc @acme@mastodon.social")
    assert not matches("@acme", "hello", author="acmefan")
    assert not matches("@acme", "hello", author="bob@acme")
    assert not matches("acme", "hello", author="acme")  # a plain word looks at the text only
    assert matches("@acme_nl", "ping @acme_nl")
    assert not matches("@acme", "ping @acme_nl")
    assert matches("acme", "ping @acme_nl")  # the token 'acme' is there


def test_case_and_accent_insensitive() -> None:
    assert matches("cafe", "Un CAFÉ noir")
    assert matches("CAFÉ", "le cafe")
    assert matches('"creme brulee"', "Crème Brûlée")
    assert not matches("strasse", "Hauptstraße")  # whole words
    assert matches("strasse", "die Straße")
    assert matches("finance", "ﬁnance news")  # compatibility ligature
    assert matches("zoe", "Zoë")


def test_inner_punctuation_is_a_phrase() -> None:
    assert matches("coca-cola", "I drink Coca Cola")
    assert matches("coca-cola", "I drink coca-cola")
    assert not matches("coca-cola", "coca leaves, cola drinks")
    assert matches("e.on", "E.ON raises prices")
    assert matches("e.on", "e-on raises prices")
    assert not matches("e.on", "on e")


# --- errors ---


@pytest.mark.parametrize(
    ("query", "reason", "position"),
    [
        ("", "empty query", 0),
        ("   ", "empty query", 0),
        ("(acme", "unbalanced parentheses: this '(' is never closed", 0),
        ("acme (a (b)", "unbalanced parentheses: this '(' is never closed", 5),
        ("acme)", "unbalanced parentheses: this ')' has no matching '('", 4),
        ('acme "corp', "unterminated quote", 5),
        ("acme OR", "'OR' needs a term after it", 5),
        ("acme AND", "'AND' needs a term after it", 5),
        ("acme OR OR b", "'OR' needs a term after it", 5),
        ("AND acme", "'AND' needs a term before it", 0),
        ("(OR acme)", "'OR' needs a term before it", 1),
        ("NOT", "'NOT' needs a term after it", 0),
        ("acme NOT", "'NOT' needs a term after it", 5),
        ("acme (NOT)", "'NOT' needs a term after it", 6),
        ("acme -", "'-' must be followed directly", 5),
        ("acme - spam", "'-' must be followed directly", 5),
        ("()", "empty group '()'", 0),
        ("acme ( )", "empty group '()'", 5),
        ("-spam", "a query needs at least one term that is not excluded", 0),
        ("NOT spam", "a query needs at least one term that is not excluded", 0),
        ("-spam -ads", "a query needs at least one term that is not excluded", 0),
        ("-(spam OR ads)", "a query needs at least one term that is not excluded", 0),
        ("acme OR -spam", "this exclusion lets the query match almost every mention", 8),
        ('acme ""', "empty phrase", 5),
        ("acme !!!", "'!!!' has no letters or digits", 5),
        ("re*all", "'*' is only allowed at the end of a word", 2),
        ("#", "a hashtag may contain only letters, digits and '_'", 0),
        ("acme #coca-cola", "a hashtag may contain only letters, digits and '_'", 5),
        ("#2024", "a hashtag needs at least one letter", 0),
        ("@acme@mastodon.social", "a handle may contain only letters, digits and '_'", 0),
    ],
)
def test_errors(query: str, reason: str, position: int) -> None:
    with pytest.raises(QuerySyntaxError) as caught:
        parse(query)
    assert caught.value.reason.startswith(reason)
    assert caught.value.position == position
    assert caught.value.query == query
    assert "\n" not in str(caught.value)


# --- helpers ---


def test_extract_hashtags() -> None:
    text = "#Acme #acme #1 #2024 #2024vote C#sharp &#39; url/#frag #McDStories #café #acme_fail ##x"
    assert extract_hashtags(text) == ["acme", "2024vote", "mcdstories", "café", "acme_fail", "x"]
    assert extract_hashtags("Cafe\u0301 #Cafe\u0301") == ["café"]  # decomposed accent kept whole
    assert extract_hashtags("no tags, just C# and #1.") == []
    assert extract_hashtags("end of #sentence.") == ["sentence"]
    assert extract_hashtags("#Straße") == ["strasse"]


def test_normalise() -> None:
    assert normalise("CAFÉ Crème") == "cafe creme"
    assert normalise("ﬁ İstanbul Straße") == "fi istanbul strasse"
    for text in ["ǰ ΐ ẖ İ ß ﬀ Å", "Zoë"]:
        assert normalise(normalise(text)) == normalise(text)


def test_normalise_drops_exactly_the_combining_marks_of_the_decomposed_text() -> None:
    # the folding stored mentions' search words were made with: NFKD, then every character whose
    # combining class is not 0 left out (only non-ASCII runs are looked at; the result must not change)
    import random
    import unicodedata

    from listener.query.tokens import _strip_marks

    rng = random.Random(7)
    pool = [chr(c) for c in range(0x20, 0x3400) if not 0xD800 <= c <= 0xDFFF] + list("abc ABC 123") * 300
    for _ in range(3000):
        text = "".join(rng.choices(pool, k=rng.randrange(0, 40)))
        decomposed = unicodedata.normalize("NFKD", text)
        assert _strip_marks(text) == "".join(c for c in decomposed if not unicodedata.combining(c))


def test_prepare_builds_reusable_document() -> None:
    doc = prepare("Recalled! @Acme_NL #Fail", title="Café", author="@Boss@mastodon.social")
    assert isinstance(doc, Document)
    assert doc.tokens == ("cafe", "", "recalled", "acme", "nl", "fail")
    assert doc.hashtags == {"fail"}
    assert doc.handles == {"acme_nl", "boss"}
    again = prepare("Recalled! @Acme_NL #Fail", title="Café", author="@Boss@mastodon.social")
    assert doc == again and hash(doc) == hash(again)
    topics = [parse(q) for q in ["recall*", "@boss", "#fail", "cafe", "globex"]]
    assert [topic.matches(doc) for topic in topics] == [True, True, True, True, False]


def test_query_value_semantics() -> None:
    assert parse("acme") == parse("acme")
    assert isinstance(parse("acme"), Query)
    assert repr(parse("acme OR b")) == "Query('acme OR b')"


# --- FTS5 prefilter ---


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("acme", '"acme"'),
        ("Café", '"cafe"'),
        ("recall*", '"recall"*'),
        ('"food poisoning"', '"food poisoning"'),
        ("coca-cola", '"coca cola"'),
        ("a b OR c", '"a" AND "b" OR "c"'),
        ("(a OR b) c", '("a" OR "b") AND "c"'),
        ("acme -job", '"acme"'),
        ("café NOT (spam OR ad*)", '"cafe"'),
        ("acme OR #acmefail", None),
        ("@acme recall", '"recall"'),
        ("#acme", None),
        ("acme OR NOT NOT spam", None),
        ("NEAR(acme corp)", '"near" AND "acme" AND "corp"'),
        ('say"hi" OR "x"', '"say" AND "hi" OR "x"'),
    ],
)
def test_to_fts5_text(query: str, expected: str | None) -> None:
    assert parse(query).to_fts5() == expected


def fts_table(rows: list[tuple[str, str]]) -> sqlite3.Connection:
    """A real in-memory FTS5 table shaped like the store's, rows numbered from 1."""
    db = sqlite3.connect(":memory:")
    db.execute(
        'create virtual table t using fts5(title, text, tokenize="unicode61 remove_diacritics 2")'
    )
    db.executemany("insert into t(title, text) values (?, ?)", rows)
    return db


def fts_rowids(db: sqlite3.Connection, expression: str) -> set[int]:
    return {row[0] for row in db.execute("select rowid from t where t match ?", (expression,))}


DOCUMENTS: list[dict] = [
    {"title": "Acme recall", "text": "Acme recalls 10,000 blenders after food poisoning reports"},
    {"text": "Not a recall: ACME corp says we are hiring #jobs"},
    {"text": "Great café, no spam. #AcmeFail"},
    {"text": "Cafe advertising spam from @acme_nl"},
    {"title": "Coca-Cola", "text": "coca cola and e.on NEAR the station"},
    {"text": 'He said "acme" AND left; title:acme ^start', "author": "acme@mastodon.social"},
    {"text": "Nothing to see", "hashtags": ["acme"], "author": "@globex"},
    {"text": "die Hauptstraße und die Straße, ﬁnance"},
]

QUERIES = [
    "acme",
    "acme OR globex",
    "acme -job",
    '(recall OR lawsuit OR "food poisoning") AND acme',
    'acme OR "acme corp" OR #acmefail OR @acme_nl -job -"we are hiring"',
    "café NOT (spam OR ad*)",
    "recall*",
    "coca-cola e.on",
    "NEAR",
    'NEAR(acme said) OR "title acme" OR AND_x',
    'say"acme" OR x"AND"y',
    "#acme",
    "@acme",
    "@acme recall*",
    "strasse OR finance",
    "straße",
]


@pytest.mark.parametrize("index_normalised", [False, True], ids=["raw", "normalised"])
def test_to_fts5_is_superset_of_matches(index_normalised: bool) -> None:
    """Run each query's FTS5 expression on a real FTS5 table: it must keep every matching row."""
    fold = normalise if index_normalised else str
    db = fts_table([(fold(doc.get("title") or ""), fold(doc["text"])) for doc in DOCUMENTS])
    prepared = {rowid: prepare(**doc) for rowid, doc in enumerate(DOCUMENTS, start=1)}
    narrowed = 0
    for text in QUERIES:
        query = parse(text)
        matching = {rowid for rowid, doc in prepared.items() if query.matches(doc)}
        expression = query.to_fts5()
        if expression is None:
            continue
        found = fts_rowids(db, expression)
        # Raw indexing keeps SQLite's folding, which does not expand 'ß' or 'ﬁ'; see the README.
        if not index_normalised and text in ("strasse OR finance", "straße"):
            assert matching - found == {8}
            continue
        assert matching <= found, (text, expression)
        narrowed += len(found) < len(DOCUMENTS)
    assert narrowed >= 8
    assert {r for r, doc in prepared.items() if parse("@acme").matches(doc)} == {6}
    assert {r for r, doc in prepared.items() if parse("#acme").matches(doc)} == {7}


def test_to_fts5_quotes_hostile_input() -> None:
    """FTS5 syntax in user input is taken literally and never breaks the expression."""
    texts = ["near the acme plant, 3 times", "x near acme", "title: acme", "a+b c"]
    db = fts_table([("", text) for text in texts])
    for text in ["NEAR(acme plant, 3)", 'x"NEAR"acme', "title:acme", "^acme", "{title} OR a+b*"]:
        query = parse(text)
        expression = query.to_fts5()
        assert expression is not None
        expected = {rowid for rowid, t in enumerate(texts, 1) if query.matches(prepare(t))}
        assert expected and expected <= fts_rowids(db, expression), (text, expression)

"""listener.config: loading, defaults, every class of error with its path, durations, the dump."""

from __future__ import annotations

import dataclasses
import textwrap
import tomllib
from dataclasses import dataclass, field
from datetime import time, timedelta
from pathlib import Path

import pytest

from listener import sources
from listener.config import (
    REFERENCE,
    AlertRule,
    Config,
    DigestConfig,
    FetchConfig,
    ModelConfig,
    SourceConfig,
    config_reference,
    dump_config,
    format_duration,
    load_config,
    parse_config,
    parse_duration,
    redact_url,
    resolve_secret,
    starter_config,
)
from listener.errors import ConfigError, QuerySyntaxError
from listener.query import parse

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "config.toml"

MINIMAL = """
[[topics]]
name = "acme"
query = "acme"
"""


# A real source kind with one option of every supported type, registered for these tests only.
class FakeSource:
    kind = "fake"

    @dataclass(frozen=True)
    class Options:
        endpoint: str = field(metadata={"help": "API endpoint.", "url": True})
        token_env: str | None = field(default=None, metadata={"help": "Token variable.", "secret": True})
        limit: int = field(default=50, metadata={"help": "Items per request."})
        threshold: float = field(default=0.5, metadata={"help": "A number."})
        include_replies: bool = field(default=False, metadata={"help": "A switch."})
        tags: tuple[str, ...] = field(default=(), metadata={"help": "A list."})
        lookback: timedelta = field(default=timedelta(hours=1), metadata={"help": "A duration."})

        def __post_init__(self):
            if self.limit > 1000:
                raise ValueError("limit: at most 1000 items per request")

    def __init__(self, name, options):
        self.name, self.options = name, options


@pytest.fixture
def fake_kind(monkeypatch):
    monkeypatch.setitem(sources.KINDS, "fake", f"{__name__}:FakeSource")


def write(tmp_path: Path, text: str, name: str = "config.toml") -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def problems(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text))
    return info.value.problems


# --- the example and the starter ---------------------------------------------------------


def test_example_config_loads():
    config = load_config(EXAMPLE)
    assert config.path == EXAMPLE
    assert config.database.path == REPO / "data" / "mentions.db"
    assert [t.name for t in config.topics] == ["acme", "acme-zomer"]
    acme = config.topic("acme")
    assert acme.query == 'acme OR "acme foods" OR #acme OR @acme -"acme anvil"'
    assert acme.languages == ("nl", "en")
    assert acme.matcher is not None
    news = config.source("google-news-nl")
    assert news.kind == "rss"
    assert news.options.url.startswith("https://news.google.com/rss/search?")
    assert news.every == timedelta(minutes=30)
    assert config.source("mastodon-acmezomer").topics == ("acme-zomer",)
    assert config.email is not None and config.email.sender == "Listener <listener@agency.example>"
    assert config.email.username_env is None and config.email.password_env is None
    assert config.digest.timezone == "Europe/Amsterdam"
    assert config.digest.at == time(8, 0)
    backlash = config.alert("acme-backlash")
    assert (backlash.kind, backlash.min_count, backlash.ratio, backlash.for_) == ("backlash", 6, 5.0, timedelta(0))
    assert [r.kind for r in config.alerts] == ["backlash", "volume_spike", "negative_spike", "keyword"]
    assert dict(backlash.labels) == {"client": "acme", "team": "webcare"}
    recall = config.alert("acme-recall")
    assert recall.kind == "keyword" and recall.matcher is not None and "food poisoning" in recall.query


def test_starter_config_is_the_example():
    assert starter_config() == EXAMPLE.read_text(encoding="utf-8")


def test_starter_config_loads(tmp_path):
    config = load_config(write(tmp_path, starter_config()))
    assert config.database.path == tmp_path / "data" / "mentions.db"


def test_example_comments_every_key():
    text = EXAMPLE.read_text(encoding="utf-8")
    for section, keys in REFERENCE.items():
        for key in keys:
            assert f"\n{key} = " in text or f"\n# {key} = " in text, f"{section}.{key} not in config.toml"


def test_reference_documents_every_key():
    reference = config_reference()
    assert reference.startswith("## Configuration reference\n")
    for section, keys in REFERENCE.items():
        assert f"[{section}]" in reference
        for key, spec in keys.items():
            assert spec.help and "\n" not in spec.help
            assert f"| `{key}` |" in reference


def test_reference_documents_source_options(fake_kind):
    reference = config_reference()
    assert '### `[[sources]]` with `kind = "fake"`' in reference
    assert "| `endpoint` | required | API endpoint. |" in reference
    assert "| `limit` | `50` | Items per request. |" in reference


# --- defaults ---------------------------------------------------------------------------


def test_defaults(tmp_path):
    config = load_config(write(tmp_path, MINIMAL))
    assert config.database.path == tmp_path / "data" / "mentions.db"
    assert config.database.keep is None
    assert config.model == ModelConfig()
    assert config.model.name == "bundled" and config.model.batch_size == 16 and config.model.max_length == 128
    assert config.fetch == FetchConfig()
    assert config.fetch.timeout == timedelta(seconds=20) and config.fetch.max_bytes == 10_000_000
    assert (config.fetch.per_host, config.fetch.concurrency, config.fetch.user_agent) == (2, 8, None)
    assert config.topics[0].languages == ()
    assert config.sources == () and config.alerts == ()
    assert config.email is None
    assert config.digest == DigestConfig(topics=("acme",))
    assert config.digest.at == time(8, 0) and config.digest.timezone == "UTC" and config.digest.enabled


def test_digest_time_and_zone(tmp_path):
    config = load_config(write(tmp_path, '[digest]\nat = 07:30:00\ntimezone = "Europe/Amsterdam"\n'))
    assert config.digest.at == time(7, 30)
    assert config.digest.tzinfo.key == "Europe/Amsterdam"
    assert load_config(write(tmp_path, '[digest]\nat = "7:05"\n')).digest.at == time(7, 5)


def test_empty_file_is_a_valid_config(tmp_path):
    config = load_config(write(tmp_path, ""))
    assert config.topics == () and config.digest.topics == ()


def test_source_defaults(tmp_path, fake_kind):
    config = load_config(write(tmp_path, MINIMAL + '[[sources]]\nname = "api"\nkind = "fake"\nendpoint = "https://api.example.org/v1"\n'))
    source = config.source("api")
    assert source == SourceConfig(name="api", kind="fake", options=FakeSource.Options(endpoint="https://api.example.org/v1"))
    assert source.every == timedelta(minutes=15) and source.backfill == timedelta(days=2)
    assert source.enabled and source.topics == ()


def test_source_options_of_every_type(tmp_path, fake_kind):
    config = load_config(
        write(
            tmp_path,
            MINIMAL
            + """
            [[sources]]
            name = "api"
            kind = "fake"
            endpoint = "http://127.0.0.1:8080/feed"
            token_env = "API_TOKEN"
            limit = 10
            threshold = 1
            include_replies = true
            tags = ["a", "b"]
            lookback = "1h30m"
            """,
        )
    )
    options = config.source("api").options
    assert options == FakeSource.Options(
        endpoint="http://127.0.0.1:8080/feed",
        token_env="API_TOKEN",
        limit=10,
        threshold=1.0,
        include_replies=True,
        tags=("a", "b"),
        lookback=timedelta(hours=1, minutes=30),
    )


@pytest.mark.parametrize(
    "security, port",
    [("none", 25), ("starttls", 587), ("ssl", 465)],
)
def test_email_port_follows_security(tmp_path, security, port):
    config = load_config(
        write(tmp_path, f'[email]\nsecurity = "{security}"\nfrom = "l@example.org"\nto = ["a@example.org"]\n')
    )
    assert config.email.port == port
    assert config.email.host == "localhost" and config.email.subject_prefix == "[listener]"
    assert config.email.timeout == timedelta(seconds=30)
    assert config.digest.to == ("a@example.org",)


def test_alert_defaults_per_kind(tmp_path):
    config = load_config(
        write(
            tmp_path,
            MINIMAL
            + """
            [[alerts]]
            name = "spike"
            kind = "volume_spike"
            topic = "acme"
            [[alerts]]
            name = "negative"
            kind = "negative_spike"
            topic = "acme"
            [[alerts]]
            name = "backlash"
            kind = "backlash"
            topic = "acme"
            [[alerts]]
            name = "words"
            kind = "keyword"
            topic = "acme"
            query = "recall OR lawsuit"
            [[alerts]]
            name = "custom"
            kind = "sql"
            sql = "SELECT 1"
            """,
        )
    )
    spike = config.alert("spike")
    assert spike == AlertRule(name="spike", kind="volume_spike", topic="acme", ratio=3.0, for_=timedelta(minutes=10),
                              surges="worse")
    assert (spike.window, spike.baseline, spike.min_count) == (timedelta(hours=1), timedelta(days=7), 10)
    assert (spike.for_, spike.keep_firing_for, spike.repeat) == (timedelta(minutes=10), timedelta(hours=1), timedelta(hours=24))
    assert spike.send_resolved and spike.channels == ("email",) and spike.severity == "warning"
    assert dict(spike.labels) == {}
    negative = config.alert("negative")
    assert (negative.ratio, negative.negative_share, negative.min_count, negative.for_) == (2.0, 0.4, 10, timedelta(minutes=10))
    backlash = config.alert("backlash")
    assert (backlash.ratio, backlash.negative_share, backlash.min_count, backlash.for_) == (5.0, 0.35, 6, timedelta(0))
    words = config.alert("words")
    assert words.query == "recall OR lawsuit" and words.matcher is not None and words.ratio is None
    custom = config.alert("custom")
    assert custom.topic is None and custom.sql == "SELECT 1"


def test_relative_paths_resolve_against_the_config_folder(tmp_path, monkeypatch):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    path = write(tmp_path, '[database]\npath = "db/m.db"\n[model]\ncache_dir = "cache"\n', name="conf/config.toml")
    config = load_config(path)
    assert config.database.path == tmp_path / "conf" / "db" / "m.db"
    assert config.model.cache_dir == tmp_path / "conf" / "cache"
    relative = load_config(Path("..") / "conf" / "config.toml")  # a relative config path too
    assert relative.database.path.resolve() == (tmp_path / "conf" / "db" / "m.db").resolve()


def test_absolute_database_path_is_kept(tmp_path):
    target = tmp_path / "x" / "m.db"
    config = load_config(write(tmp_path, f"[database]\npath = {str(target)!r}\nkeep = \"90d\"\n"))
    assert config.database.path == target and config.database.keep == timedelta(days=90)


def test_parse_config_without_file_uses_base_dir(tmp_path):
    config = parse_config({}, base_dir=tmp_path)
    assert config.path is None and config.database.path == tmp_path / "data" / "mentions.db"


def test_lookups_raise_key_error(tmp_path):
    config = load_config(write(tmp_path, MINIMAL))
    with pytest.raises(KeyError):
        config.topic("nope")
    with pytest.raises(KeyError):
        config.source("nope")


def test_config_is_frozen(tmp_path):
    config = load_config(write(tmp_path, MINIMAL))
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.model = ModelConfig()  # type: ignore[misc]
    assert isinstance(config, Config)


# --- errors -----------------------------------------------------------------------------

TOPIC = '[[topics]]\nname = "acme"\nquery = "acme"\n'
FAKE = '[[sources]]\nname = "api"\nkind = "fake"\nendpoint = "https://api.example.org"\n'
EMAIL = '[email]\nfrom = "l@example.org"\nto = ["a@example.org"]\n'


def alert(body: str) -> str:
    return TOPIC + '[[alerts]]\nname = "r"\n' + body


@pytest.mark.parametrize(
    "text, expected",
    [
        # unknown keys, everywhere
        ("[databse]\n", "databse: unknown section (known sections: database, model, fetch, topics, sources, email, notify, digest, alerts, webhooks)"),
        ("[database]\npaht = 'x'\n", "database.paht: unknown key (known: path, url, keep)"),
        ("[model]\nbatch = 1\n", "model.batch: unknown key (known: name, batch_size, max_length, cache_dir, threads)"),
        ("[fetch]\nretries = 1\n", "fetch.retries: unknown key (known: timeout, max_bytes, per_host, concurrency, user_agent)"),
        (TOPIC + "lang = ['nl']\n", "topics[0].lang: unknown key (known: name, query, languages)"),
        (EMAIL + "pasword_env = 'X'\n", "email.pasword_env: unknown key (known: host, port, security, username_env, password_env, from, to, subject_prefix, timeout)"),
        ("[digest]\ntime = '08:00'\n", "digest.time: unknown key (known: at, timezone, to, topics, enabled)"),
        (FAKE + "endpont = 'x'\n", "sources[0].endpont: unknown key (known: endpoint, token_env, limit, threshold, include_replies, tags, lookback, name, kind, every, topics, enabled, backfill)"),
        # section shapes
        ("database = 5\n", "database: expected a table ([database]), got integer 5"),
        ("debug = true\n", "debug: unknown key (known sections: database, model, fetch, topics, sources, email, notify, digest, alerts, webhooks)"),
        ("[topics]\nname = 'acme'\n", "topics: expected an array of tables ([[topics]]), got a table ([topics])"),
        # types and values
        ("[database]\nkeep = 90\n", 'database.keep: expected a duration string like "15m", got integer 90'),
        ("[database]\nurl = 'postgresql://ana:s3cret@db:5432/listener'\n",
         "database.url: must not hold a password: set PGPASSWORD in the environment (or use ~/.pgpass)"),
        ("[database]\nurl = 'mysql://db/listener'\n", 'database.url: "mysql://db/listener" is not a postgresql:// URL'),
        ("[database]\nurl = 'postgresql://ana@db:5432'\n",
         'database.url: "postgresql://REDACTED@db:5432" names no database (postgresql://user@host:5432/DATABASE)'),
        ("[database]\nkeep = '0s'\n", "database.keep: must be longer than 0s"),
        ("[model]\nbatch_size = '32'\n", 'model.batch_size: expected an integer, got string "32"'),
        ("[model]\nbatch_size = 0\n", "model.batch_size: 0 is less than the minimum of 1"),
        ("[model]\nthreads = true\n", "model.threads: expected an integer, got boolean true"),
        ("[fetch]\ntimeout = '20 s'\n", 'fetch.timeout: "20 s" is not a duration like 30s, 10m, 1h, 7d'),
        # topics
        ('[[topics]]\nquery = "acme"\n', "topics[0].name: required key is missing"),
        ('[[topics]]\nname = "acme"\n', "topics[0].query: required key is missing"),
        ('[[topics]]\nname = "Acme Foods"\nquery = "acme"\n', 'topics[0].name: "Acme Foods" is not a valid name (lower-case letters, digits, `-` and `_`, starting with a letter or digit, 64 at most)'),
        (TOPIC + TOPIC, "topics[1].name: duplicate name 'acme' (also topics[0])"),
        (TOPIC + "languages = ['nl', 'EN']\n", 'topics[0].languages[1]: "EN" is not an ISO 639-1 language code (two lower-case letters, like "nl")'),
        (TOPIC + "languages = 'nl'\n", 'topics[0].languages: expected an array, got string "nl"'),
        ('[[topics]]\nname = "acme"\nquery = ""\n', "topics[0].query: must not be empty"),
        # sources
        (TOPIC + '[[sources]]\nname = "t"\nkind = "tweeter"\n', "sources[0].kind: unknown kind 'tweeter' (known: bluesky, fake, hackernews, lemmy, mastodon, reddit, rss)"),
        (TOPIC + '[[sources]]\nname = "t"\n', "sources[0].kind: required key is missing"),
        (TOPIC + '[[sources]]\nkind = "fake"\nendpoint = "https://x.org"\n', "sources[0].name: required key is missing"),
        (TOPIC + FAKE + FAKE, "sources[1].name: duplicate name 'api' (also sources[0])"),
        (TOPIC + '[[sources]]\nname = "api"\nkind = "fake"\n', "sources[0].endpoint: required key is missing"),
        (TOPIC + FAKE + "every = '10 min'\n", 'sources[0].every: "10 min" is not a duration like 30s, 10m, 1h, 7d'),
        (TOPIC + FAKE + "every = '10s'\n", "sources[0].every: 10s is shorter than the minimum of 30s"),
        (TOPIC + FAKE + "topics = ['acme', 'acmee']\n", "sources[0].topics[1]: unknown topic 'acmee' (defined: acme)"),
        (TOPIC + FAKE + "enabled = 'yes'\n", 'sources[0].enabled: expected true or false, got string "yes"'),
        (TOPIC + FAKE + "limit = 2.5\n", "sources[0].limit: expected an integer, got float 2.5"),
        (TOPIC + FAKE + "limit = 5000\n", "sources[0]: limit: at most 1000 items per request"),
        (TOPIC + FAKE + "tags = ['a', 1]\n", "sources[0].tags[1]: expected a string, got integer 1"),
        (TOPIC + FAKE + "lookback = 'soon'\n", 'sources[0].lookback: "soon" is not a duration like 30s, 10m, 1h, 7d'),
        (TOPIC + FAKE.replace("https://api.example.org", "ftp://api.example.org"), 'sources[0].endpoint: "ftp://api.example.org" is not an http(s) URL with a host'),
        (TOPIC + FAKE.replace("https://api.example.org", "https:///feed"), 'sources[0].endpoint: "https:///feed" is not an http(s) URL with a host'),
        (TOPIC + FAKE.replace("api.example.org", "api.example.org/a b"), 'sources[0].endpoint: "https://api.example.org/a b" is not a URL: it contains white space'),
        (TOPIC + FAKE + "token_env = 'abc123'\n", "sources[0].token_env: must be the name of an environment variable (upper-case letters, digits and _, like SMTP_PASSWORD), not the secret itself"),
        # email
        ('[email]\nto = ["a@example.org"]\n', "email.from: required key is missing"),
        ('[email]\nfrom = "l@example.org"\n', "email.to: required key is missing"),
        ('[email]\nfrom = "l@example.org"\nto = []\n', "email.to: must not be empty"),
        ('[email]\nfrom = "l@example.org"\nto = ["webcare"]\n', 'email.to[0]: "webcare" is not an email address'),
        ('[email]\nfrom = "listener"\nto = ["a@example.org"]\n', 'email.from: "listener" is not an email address'),
        (EMAIL + "security = 'tls'\n", "email.security: \"tls\" is not one of 'none', 'starttls', 'ssl'"),
        (EMAIL + "port = 70000\n", "email.port: 70000 is more than the maximum of 65535"),
        (EMAIL + "password_env = 'SMTP_PASSWORD'\n", "email.username_env: required when password_env is set (SMTP login needs both)"),
        (EMAIL + "username_env = 'U'\npassword_env = 'hunter2'\n", "email.password_env: must be the name of an environment variable (upper-case letters, digits and _, like SMTP_PASSWORD), not the secret itself"),
        # digest
        ("[digest]\nat = '8am'\n", 'digest.at: "8am" is not a time of day like "08:00" (HH:MM, 24-hour clock)'),
        ("[digest]\nat = '24:00'\n", 'digest.at: "24:00" is not a time of day like "08:00" (HH:MM, 24-hour clock)'),
        ("[digest]\nat = 08:00:30\n", 'digest.at: 08:00:30 is not a time of day like "08:00" (HH:MM, 24-hour clock)'),
        ("[digest]\ntimezone = 'Europe/Amsterdm'\n", 'digest.timezone: unknown time zone "Europe/Amsterdm" (use an IANA name like "Europe/Amsterdam")'),
        (TOPIC + "[digest]\ntopics = ['acme', 'other']\n", "digest.topics[1]: unknown topic 'other' (defined: acme)"),
        ("[digest]\nto = ['nobody']\n", 'digest.to[0]: "nobody" is not an email address'),
        # alerts
        (alert('kind = "spike"\ntopic = "acme"\n'), "alerts[0].kind (rule 'r'): unknown kind 'spike' (known: backlash, keyword, negative_spike, sql, volume_spike)"),
        (alert('topic = "acme"\n'), "alerts[0].kind (rule 'r'): required key is missing"),
        (alert('kind = "volume_spike"\n'), "alerts[0].topic (rule 'r'): required key is missing"),
        (alert('kind = "volume_spike"\ntopic = "acm"\n'), "alerts[0].topic (rule 'r'): unknown topic 'acm' (defined: acme)"),
        (alert('kind = "sql"\ntopic = "acm"\nsql = "SELECT 1"\n'), "alerts[0].topic (rule 'r'): unknown topic 'acm' (defined: acme)"),
        (alert('kind = "keyword"\ntopic = "acme"\nquery = "recall"\nratio = 2.0\n'), "alerts[0].ratio (rule 'r'): not a key of keyword rules (ratio is for volume_spike, negative_spike, backlash)"),
        (alert('kind = "volume_spike"\ntopic = "acme"\nsql = "SELECT 1"\n'), "alerts[0].sql (rule 'r'): not a key of volume_spike rules (sql is for sql)"),
        (alert('kind = "volume_spike"\ntopic = "acme"\nthreshold = 2\n'), "alerts[0].threshold (rule 'r'): unknown key (known: name, kind, topic, window, baseline, min_count, for, keep_firing_for, repeat, send_resolved, channels, severity, labels, ratio, surges)"),
        (alert('kind = "volume_spike"\ntopic = "acme"\nratio = 0.5\n'), "alerts[0].ratio (rule 'r'): 0.5 must be greater than 1"),
        (alert('kind = "backlash"\ntopic = "acme"\nnegative_share = 60\n'), "alerts[0].negative_share (rule 'r'): 60 is not between 0 and 1"),
        (alert('kind = "volume_spike"\ntopic = "acme"\nwindow = "1d"\nbaseline = "1d"\n'), "alerts[0].baseline (rule 'r'): 1d must be longer than window (1d)"),
        (alert('kind = "volume_spike"\ntopic = "acme"\nfor = "5 minutes"\n'), "alerts[0].for (rule 'r'): \"5 minutes\" is not a duration like 30s, 10m, 1h, 7d"),
        (alert('kind = "volume_spike"\ntopic = "acme"\nmin_count = -1\n'), "alerts[0].min_count (rule 'r'): -1 is less than the minimum of 0"),
        (alert('kind = "volume_spike"\ntopic = "acme"\nchannels = ["slack"]\n'), "alerts[0].channels[0] (rule 'r'): \"slack\" is not one of 'email'"),
        (alert('kind = "volume_spike"\ntopic = "acme"\nseverity = "high"\n'), "alerts[0].severity (rule 'r'): \"high\" is not one of 'info', 'warning', 'critical'"),
        (alert('kind = "volume_spike"\ntopic = "acme"\nlabels = { team = 1 }\n'), "alerts[0].labels.team (rule 'r'): expected a string, got integer 1"),
        (alert('kind = "volume_spike"\ntopic = "acme"\nsend_resolved = 1\n'), "alerts[0].send_resolved (rule 'r'): expected true or false, got integer 1"),
        (alert('kind = "keyword"\ntopic = "acme"\n'), "alerts[0].query (rule 'r'): required key is missing"),
        (alert('kind = "sql"\n'), "alerts[0].sql (rule 'r'): required key is missing"),
        (alert('kind = "sql"\nsql = "DELETE FROM mentions"\n'), "alerts[0].sql (rule 'r'): must start with SELECT or WITH, not DELETE"),
        (alert('kind = "sql"\nsql = "SELECT 1; DROP TABLE mentions"\n'), "alerts[0].sql (rule 'r'): must be a single statement, found 2"),
        (TOPIC + '[[alerts]]\nname = "r"\nkind = "sql"\nsql = "SELECT 1"\n[[alerts]]\nname = "r"\nkind = "sql"\nsql = "SELECT 2"\n', "alerts[1].name (rule 'r'): duplicate name 'r' (also alerts[0])"),
        ("alerts = [1]\n", "alerts[0]: expected a table, got integer 1"),
    ],
)
def test_error_names_its_path(tmp_path, fake_kind, text, expected):
    assert expected in problems(tmp_path, text)


@pytest.mark.parametrize("query", ["acme OR", '"acme', "(acme", "acme -"])
def test_query_syntax_error_names_reason_and_position(tmp_path, query):
    with pytest.raises(QuerySyntaxError) as info:
        parse(query)
    expected = f"{info.value.reason} at position {info.value.position}"
    topic = f"[[topics]]\nname = 'acme'\nquery = '{query}'\n"
    assert problems(tmp_path, topic) == [f"topics[0].query: {expected}"]
    rule = TOPIC + f"[[alerts]]\nname = 'r'\nkind = 'keyword'\ntopic = 'acme'\nquery = '{query}'\n"
    assert problems(tmp_path, rule) == [f"alerts[0].query (rule 'r'): {expected}"]


def test_sql_semicolons_in_strings_and_comments_are_one_statement(tmp_path):
    sql = "-- counts\\nWITH x AS (SELECT ';' AS s) /* ; */ SELECT * FROM x;"
    config = load_config(write(tmp_path, alert(f'kind = "sql"\nsql = "{sql}"\n')))
    assert config.alert("r").sql.startswith("-- counts")


def test_rss_url_errors(tmp_path):
    text = TOPIC + '[[sources]]\nname = "news"\nkind = "rss"\nurll = "https://example.org/feed"\n'
    found = problems(tmp_path, text)
    assert any(p.startswith("sources[0].urll: unknown key (known: url, ") for p in found)
    assert "sources[0].url: required key is missing" in found
    text = TOPIC + '[[sources]]\nname = "news"\nkind = "rss"\nurl = "example.org/feed"\n'
    assert 'sources[0].url: "example.org/feed" is not an http(s) URL with a host' in problems(tmp_path, text)


def test_all_problems_are_reported_together(tmp_path, fake_kind):
    path = write(
        tmp_path,
        """
        [databse]
        path = "x.db"

        [[topics]]
        name = "acme"
        query = "acme OR"

        [[sources]]
        name = "api"
        kind = "fake"
        endpoint = "https://api.example.org"
        every = "10 min"

        [[sources]]
        name = "t"
        kind = "tweeter"

        [[alerts]]
        name = "r"
        kind = "spike"
        topic = "acme"
        """,
    )
    with pytest.raises(ConfigError) as info:
        load_config(path)
    error = info.value
    assert error.file == str(path)
    assert error.problems == [
        "databse: unknown section (known sections: database, model, fetch, topics, sources, email, notify, digest, alerts, webhooks)",
        "topics[0].query: 'OR' needs a term after it at position 5",
        'sources[0].every: "10 min" is not a duration like 30s, 10m, 1h, 7d',
        "sources[1].kind: unknown kind 'tweeter' (known: bluesky, fake, hackernews, lemmy, mastodon, reddit, rss)",
        "alerts[0].kind (rule 'r'): unknown kind 'spike' (known: backlash, keyword, negative_spike, sql, volume_spike)",
    ]
    assert str(error).startswith(f"{path}: 5 problems: databse: unknown section")


def test_toml_syntax_error_names_file_line_and_column(tmp_path):
    path = write(tmp_path, '[database]\npath = "x.db"\nkeep = 90d\n')
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.file == str(path)
    assert info.value.problems[0].startswith("invalid TOML: ")
    assert "line 3, column 10" in info.value.problems[0]
    assert str(info.value).startswith(f"{path}: invalid TOML: ")


def test_missing_file(tmp_path):
    path = tmp_path / "nope.toml"
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == f"config file not found: {path} (run `listener init` to create one)"


def test_not_utf8(tmp_path):
    path = tmp_path / "config.toml"
    path.write_bytes(b'[model]\nname = "caf\xe9"\n')
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(path)


# --- durations --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("30s", timedelta(seconds=30)),
        ("10m", timedelta(minutes=10)),
        ("1h", timedelta(hours=1)),
        ("7d", timedelta(days=7)),
        ("2w", timedelta(weeks=2)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("1d2h3m4s", timedelta(days=1, hours=2, minutes=3, seconds=4)),
        ("0s", timedelta(0)),
        ("0", timedelta(0)),
        ("90m", timedelta(minutes=90)),
    ],
)
def test_parse_duration(text, expected):
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "10", "10 min", "1.5h", "-5m", "1m1h", "1h1h", "1H", " 1h", "1y", "h"])
def test_parse_duration_rejects(text):
    with pytest.raises(ValueError, match="is not a duration like 30s, 10m, 1h, 7d"):
        parse_duration(text)


@pytest.mark.parametrize(
    "td, text",
    [
        (timedelta(0), "0s"),
        (timedelta(seconds=30), "30s"),
        (timedelta(minutes=90), "1h30m"),
        (timedelta(days=7), "7d"),
        (timedelta(days=1, seconds=1), "1d1s"),
        (timedelta(hours=4), "4h"),
    ],
)
def test_format_duration(td, text):
    assert format_duration(td) == text
    assert parse_duration(text) == td


# --- secrets and the dump ------------------------------------------------------------------

SECRET_CONFIG = (
    TOPIC
    + """
[[sources]]
name = "api"
kind = "fake"
endpoint = "https://bob:pa55w0rd-in-url@api.example.org/v1?q=acme&access_token=tok-in-url-123&api_key=key-in-url-456"
token_env = "FAKE_API_TOKEN"

[email]
security = "starttls"
username_env = "SMTP_USERNAME"
password_env = "SMTP_PASSWORD"
from = "l@example.org"
to = ["a@example.org"]
"""
)


def test_secrets_never_appear_in_the_dump(tmp_path, fake_kind, monkeypatch):
    monkeypatch.setenv("SMTP_USERNAME", "smtp-user-value-1")
    monkeypatch.setenv("SMTP_PASSWORD", "smtp-password-value-2")
    monkeypatch.delenv("FAKE_API_TOKEN", raising=False)
    config = load_config(write(tmp_path, SECRET_CONFIG))
    dump = dump_config(config)
    for secret in ("smtp-user-value-1", "smtp-password-value-2", "pa55w0rd-in-url", "tok-in-url-123", "key-in-url-456"):
        assert secret not in dump
    assert 'password_env = "SMTP_PASSWORD"  # set in the environment' in dump
    assert 'token_env = "FAKE_API_TOKEN"  # NOT set in the environment' in dump
    assert 'endpoint = "https://REDACTED@api.example.org/v1?q=acme&access_token=REDACTED&api_key=REDACTED"' in dump


def test_dump_is_toml_with_every_section_and_reloads_equal(tmp_path, fake_kind, monkeypatch):
    config = load_config(
        write(
            tmp_path,
            TOPIC
            + FAKE
            + EMAIL
            + '[database]\nkeep = "90d"\n'
            + '[[alerts]]\nname = "r"\nkind = "keyword"\ntopic = "acme"\nquery = \'recall OR "food poisoning"\'\nlabels = { team = "pr" }\n'
            + '[[alerts]]\nname = "s"\nkind = "sql"\nsql = "SELECT 1"\n',
        )
    )
    dump = dump_config(config)
    data = tomllib.loads(dump)
    assert set(data) == {"database", "model", "fetch", "topics", "sources", "email", "notify", "digest", "alerts"}
    assert data["fetch"]["timeout"] == "20s" and data["digest"]["at"] == "08:00"
    assert data["email"]["port"] == 25 and data["alerts"][0]["for"] == "0s"
    assert "ratio" not in data["alerts"][0]
    assert "# keep_firing_for" not in dump and "# user_agent: not set" in dump
    again = parse_config(data, base_dir=tmp_path)
    assert dataclasses.replace(again, path=config.path) == config


def test_dump_without_email(tmp_path):
    dump = dump_config(load_config(write(tmp_path, MINIMAL)))
    assert "# [email]: not set" in dump and "[digest]" in dump
    assert "# keep: not set (mentions are kept forever)" in dump


@pytest.mark.parametrize(
    "url, expected",
    [
        ("https://example.org/feed?q=acme", "https://example.org/feed?q=acme"),
        ("https://user:pw@example.org/feed", "https://REDACTED@example.org/feed"),
        ("https://example.org/f?token=abc&page=2", "https://example.org/f?token=REDACTED&page=2"),
        ("https://example.org/f?key=abc&keywords=acme", "https://example.org/f?key=REDACTED&keywords=acme"),
        ("https://example.org/f?client_secret=a&password=b&apiKey=c", "https://example.org/f?client_secret=REDACTED&password=REDACTED&apiKey=REDACTED"),
    ],
)
def test_redact_url(url, expected):
    assert redact_url(url) == expected


def test_resolve_secret(monkeypatch):
    monkeypatch.setenv("SMTP_PASSWORD", "s3cret")
    assert resolve_secret("email.password_env", "SMTP_PASSWORD") == "s3cret"
    monkeypatch.delenv("SMTP_PASSWORD")
    with pytest.raises(ConfigError) as info:
        resolve_secret("email.password_env", "SMTP_PASSWORD")
    assert str(info.value) == "email.password_env: environment variable SMTP_PASSWORD is not set"


def test_the_dataclass_defaults_are_the_documented_defaults(tmp_path):
    """Each key's default is declared once (listener.config.schema) and is both what the parser fills
    in and the dataclass's own default: a config with only the required keys equals the defaults."""
    import dataclasses

    from listener.config import (AlertRule, EmailConfig, FetchConfig, ModelConfig, NotifyConfig, SourceConfig,
                                 WebhookConfig)

    config = parse_config({
        "topics": [{"name": "acme", "query": "acme"}],
        "sources": [{"name": "s", "kind": "rss", "url": "https://x.example/feed"}],
        "email": {"from": "a@example.org", "to": ["b@example.org"]},
        "webhooks": [{"name": "h", "url_env": "HOOK_URL"}],
        "alerts": [{"name": "k", "kind": "keyword", "topic": "acme", "query": "recall"}],
    }, base_dir=tmp_path)
    assert config.fetch == FetchConfig() and config.model == ModelConfig() and config.notify == NotifyConfig()
    source = config.sources[0]
    assert dataclasses.replace(SourceConfig("s", "rss", source.options)) == source
    assert config.email == EmailConfig(sender="a@example.org", to=("b@example.org",))
    assert config.webhooks[0] == WebhookConfig("h", "HOOK_URL")
    rule = config.alerts[0]
    defaults = AlertRule("k", "keyword", "acme", query="recall", min_count=1, matcher=rule.matcher)
    assert rule == defaults

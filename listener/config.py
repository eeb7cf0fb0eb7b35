"""Configuration: config.toml, parsed once into frozen dataclasses.

    config = load_config("config.toml")      # ConfigError listing every problem, each "path: message"
    config.topic("acme").matcher             # the parsed query
    config.source("google-news").options     # an instance of that source kind's Options
    print(dump_config(config))               # effective config as TOML, defaults filled in, no secrets

Parsing is strict, in the manner of Prometheus: unknown keys are errors, every value is checked
for its type and range, and all problems are reported together, each naming its path
(`sources[2].every: "10 min" is not a duration like 30s, 10m, 1h, 7d`).

Secrets never appear in the file: keys ending in `_env` (and source options marked secret) hold
the *name* of an environment variable; `resolve_secret` reads it when it is needed.

Every key is documented in REFERENCE (section -> key -> Key(default, help)); `config_reference()`
turns it, and each source kind's Options metadata, into the README's tables.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import tomllib
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import time, timedelta
from email.utils import parseaddr
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from listener import sources
from listener.errors import ConfigError, QuerySyntaxError, env_secret, redact_url

if TYPE_CHECKING:  # pragma: no cover
    from listener.query import Query

__all__ = [
    "AlertRule",
    "Config",
    "DatabaseConfig",
    "DigestConfig",
    "EmailConfig",
    "FetchConfig",
    "Key",
    "ModelConfig",
    "REFERENCE",
    "SourceConfig",
    "Topic",
    "config_reference",
    "dump_config",
    "format_duration",
    "load_config",
    "parse_config",
    "parse_duration",
    "redact_url",
    "resolve_secret",
    "starter_config",
]


# --------------------------------------------------------------------------------------------
# What a key is: its default and a one-line help. The parser and the README read the same table.


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()


@dataclass(frozen=True)
class Key:
    """One config key: its default as written in TOML (REQUIRED, or None for "absent") and help."""

    default: Any
    help: str
    shown: str | None = None  # the default as the reference shows it, when the value can't say

    def default_text(self) -> str:
        if self.shown is not None:
            return self.shown
        if self.default is REQUIRED:
            return "required"
        if self.default is None:
            return "not set"
        return f"`{_toml_value(self.default)}`"


NAME_HELP = "lower-case letters, digits, `-` and `_`, starting with a letter or digit, 64 at most"
NAME_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
ENV_NAME_RE = re.compile(r"[A-Z_][A-Z0-9_]*")
LABEL_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
LANGUAGE_RE = re.compile(r"[a-z]{2}")

DATABASE_KEYS: dict[str, Key] = {
    "path": Key("data/mentions.db", "SQLite file of mentions; relative to the config file's folder."),
    "keep": Key(None, "Delete mentions older than this (like `90d`), and fetch, alert and sent-notification logs "
                     "of that age; absent keeps them forever.", "forever"),
}
MODEL_KEYS: dict[str, Key] = {
    "name": Key("bundled", "Sentiment model: `bundled` (shipped, offline), a Hugging Face name or a local folder."),
    "batch_size": Key(16, "Texts per model batch (texts of similar length are batched together)."),
    "max_length": Key(128, "Tokens of a text the model reads; the rest is cut off."),
    "cache_dir": Key(None, "Folder where the bundled model is built; relative to the config file's folder.",
                     "package default"),
    "threads": Key(None, "CPU cores used for scoring (the bundled model runs one worker per core); absent uses all.",
                   "all cores"),
}
FETCH_KEYS: dict[str, Key] = {
    "timeout": Key("20s", "Time limit of one HTTP request."),
    "max_bytes": Key(10_000_000, "Largest response body read; a bigger one fails that fetch."),
    "per_host": Key(2, "Requests in flight to one host at a time."),
    "concurrency": Key(8, "Requests in flight in total."),
    "user_agent": Key(None, "User-Agent header of every request; absent sends listener's own.", "listener/VERSION"),
}
TOPIC_KEYS: dict[str, Key] = {
    "name": Key(REQUIRED, f"Unique name: {NAME_HELP}."),
    "query": Key(REQUIRED, 'What a mention must match: words, "phrases", #hashtags, @handles, OR, and -exclusions.'),
    "languages": Key([], "ISO 639-1 codes (like `nl`, `en`) a mention must be in; empty accepts any.", "any language"),
}
SOURCE_KEYS: dict[str, Key] = {
    "name": Key(REQUIRED, f"Unique name: {NAME_HELP}."),
    "kind": Key(REQUIRED, "What kind of source this is, like `rss`; its own keys are listed per kind below."),
    "every": Key("15m", "How often the source is fetched; 30s at least."),
    "topics": Key([], "Topics every mention of this source belongs to, unmatched; empty: match every topic's query.",
                  "matched"),
    "enabled": Key(True, "`false` keeps the source configured but never fetches it."),
    "backfill": Key("2d", "On the first fetch, keep only mentions published this long ago or later."),
}
SECURITY_PORTS = {"none": 25, "starttls": 587, "ssl": 465}
EMAIL_KEYS: dict[str, Key] = {
    "host": Key("localhost", "SMTP server."),
    "port": Key(None, "SMTP port.", "25 (none), 587 (starttls), 465 (ssl)"),
    "security": Key("none", "`none`, `starttls` (upgrade a plain connection) or `ssl` (TLS from the start)."),
    "username_env": Key(None, "Name of the environment variable holding the SMTP user name.", "no login"),
    "password_env": Key(None, "Name of the environment variable holding the SMTP password.", "no login"),
    "from": Key(REQUIRED, "Sender, like `Listener <listener@example.org>`."),
    "to": Key(REQUIRED, "Recipient addresses: a non-empty list."),
    "subject_prefix": Key("[listener]", "Put in front of every subject."),
    "timeout": Key("30s", "Time limit of one SMTP conversation."),
}
NOTIFY_KEYS: dict[str, Key] = {
    "retry_first": Key("30s", "After a failed delivery (SMTP server down, webhook answering 5xx), wait this long "
                              "before the first retry; the wait doubles on each failure."),
    "retry_max": Key("5m", "The longest wait between retries (they go on until the message is delivered)."),
}
WEBHOOK_KEYS: dict[str, Key] = {
    "name": Key(REQUIRED, f"Unique name, used in an alert's `channels`: {NAME_HELP}."),
    "url_env": Key(REQUIRED, "Name of the environment variable holding the webhook URL (it is a secret)."),
    "timeout": Key("10s", "Time limit of one POST."),
}
DIGEST_KEYS: dict[str, Key] = {
    "at": Key("08:00", "Time of day (HH:MM, 24-hour clock) the daily digest is sent."),
    "timezone": Key("UTC", "IANA time zone of `at`, like `Europe/Amsterdam`."),
    "to": Key(None, "Recipient addresses; absent sends to `email.to`.", "email.to"),
    "topics": Key(None, "Topics (by name) in the digest; absent includes all.", "all topics"),
    "enabled": Key(True, "`false` sends no digest."),
}
ALERT_KEYS: dict[str, Key] = {
    "name": Key(REQUIRED, f"Unique name: {NAME_HELP}."),
    "kind": Key(REQUIRED, "`volume_spike`, `negative_spike`, `backlash`, `keyword` or `sql`."),
    "topic": Key(REQUIRED, "Topic (by name) the rule watches; optional for `sql`.", "required (optional for sql)"),
    "window": Key("1h", "Recent period the rule looks at."),
    "baseline": Key("7d", "Longer earlier period the window is compared with (spike kinds)."),
    "min_count": Key(10, "Mentions needed in the window before the rule can fire (for backlash: posts with the hashtag).",
                     "10 (8 for backlash, 1 for keyword)"),
    "for": Key("0s", "How long the condition must hold before the alert fires (pending until then).",
               "`\"10m\"` volume_spike and negative_spike, `\"0s\"` others"),
    "keep_firing_for": Key("1h", "How long the evidence must be clearly gone before a firing alert resolves (no flapping)."),
    "repeat": Key("24h", "Send a still-open incident's message again after this long."),
    "send_resolved": Key(True, "Also notify when the incident closes."),
    "channels": Key(["email"], "Where notifications go: `email` and/or the names of `[[webhooks]]`."),
    "severity": Key("warning", "`info`, `warning` or `critical`."),
    "labels": Key({}, 'Extra string labels passed on with notifications, like `{ team = "pr" }`.'),
    "ratio": Key(None, "Spike kinds: how many times the baseline's rate the window's rate must be.",
                 "3.0 volume_spike, 2.0 negative_spike, 5.0 backlash"),
    "surges": Key(None, "volume_spike: which surges fire: `worse` (their extra mentions more negative than usual), "
                        "`not_better` (all but good news: more positive and less negative than usual) or `all`.",
                  "`\"worse\"` volume_spike"),
    "negative_share": Key(None, "negative_spike, backlash: the least negative share (0 to 1, as the model scores it) "
                                "that can fire, whatever the topic's usual share.",
                          "0.4 negative_spike, 0.35 backlash"),
    "query": Key(None, "keyword: the query (topic syntax) a mention in the window must match.", "required for keyword"),
    "sql": Key(None, "sql: one SELECT or WITH statement, run read-only on the mention database.", "required for sql"),
}
# The keys only some kinds of rule take, with their defaults for that kind (these override the
# common defaults above, as backlash's min_count does).
ALERT_KINDS: dict[str, dict[str, Any]] = {
    "volume_spike": {"ratio": 3.0, "for": "10m", "surges": "worse"},
    "negative_spike": {"negative_share": 0.4, "ratio": 2.0, "for": "10m"},
    "backlash": {"ratio": 5.0, "negative_share": 0.35, "min_count": 8},
    "keyword": {"query": REQUIRED, "min_count": 1},
    "sql": {"sql": REQUIRED},
}
SPIKE_KINDS = ("volume_spike", "negative_spike", "backlash")
ALERT_KIND_ONLY_KEYS = ("ratio", "surges", "negative_share", "query", "sql")
SURGES = ("worse", "not_better", "all")
CHANNELS = ("email",)
SEVERITIES = ("info", "warning", "critical")

REFERENCE: dict[str, dict[str, Key]] = {
    "database": DATABASE_KEYS,
    "model": MODEL_KEYS,
    "fetch": FETCH_KEYS,
    "topics": TOPIC_KEYS,
    "sources": SOURCE_KEYS,
    "email": EMAIL_KEYS,
    "notify": NOTIFY_KEYS,
    "digest": DIGEST_KEYS,
    "alerts": ALERT_KEYS,
    "webhooks": WEBHOOK_KEYS,
}
ARRAY_SECTIONS = ("topics", "sources", "alerts", "webhooks")  # [[topics]] ...; the others are [tables]
SECTION_HELP = {
    "database": "Where mentions are stored.",
    "model": "The sentiment model.",
    "fetch": "How sources are fetched over HTTP.",
    "topics": "What to listen for; one `[[topics]]` table per topic.",
    "sources": "Where mentions come from; one `[[sources]]` table per feed or API.",
    "email": "How mail is sent. Optional; without it nothing is mailed.",
    "notify": "How queued notifications (email and webhooks) are retried when delivery fails.",
    "digest": "The daily digest mail.",
    "alerts": "Rules that notify when something happens; one `[[alerts]]` table per rule.",
    "webhooks": "Chat webhooks for alerts (Slack, Mattermost, Rocket.Chat, Discord's /slack endpoint...): a JSON POST with a Slack-compatible `text` field.",
}


# --------------------------------------------------------------------------------------------
# The parsed configuration.


@dataclass(frozen=True, slots=True)
class DatabaseConfig:
    path: Path
    keep: timedelta | None = None  # None: keep forever


@dataclass(frozen=True, slots=True)
class ModelConfig:
    name: str = "bundled"
    batch_size: int = 16
    max_length: int = 128
    cache_dir: Path | None = None
    threads: int | None = None


@dataclass(frozen=True, slots=True)
class FetchConfig:
    timeout: timedelta = timedelta(seconds=20)
    max_bytes: int = 10_000_000
    per_host: int = 2
    concurrency: int = 8
    user_agent: str | None = None


@dataclass(frozen=True, slots=True)
class Topic:
    name: str
    query: str
    languages: tuple[str, ...] = ()  # empty: every language
    matcher: Query | None = field(default=None, compare=False, repr=False)  # parsed `query`


@dataclass(frozen=True, slots=True)
class SourceConfig:
    name: str
    kind: str
    options: Any  # an instance of source_class(kind).Options
    every: timedelta = timedelta(minutes=15)
    topics: tuple[str, ...] = ()  # empty: all topics
    enabled: bool = True
    backfill: timedelta = timedelta(days=2)

    def feeds(self, topic: str) -> bool:
        """Whether this source's mentions can belong to `topic` (a source without `topics` feeds every one)."""
        return not self.topics or topic in self.topics


@dataclass(frozen=True, slots=True)
class EmailConfig:
    sender: str  # `from` in the file
    to: tuple[str, ...]
    host: str = "localhost"
    port: int = 25
    security: str = "none"  # none | starttls | ssl
    username_env: str | None = None  # names of environment variables, never their values
    password_env: str | None = None
    subject_prefix: str = "[listener]"
    timeout: timedelta = timedelta(seconds=30)


@dataclass(frozen=True, slots=True)
class NotifyConfig:
    retry_first: timedelta = timedelta(seconds=30)
    retry_max: timedelta = timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class DigestConfig:
    at: time = time(8, 0)
    timezone: str = "UTC"
    to: tuple[str, ...] = ()  # filled in from email.to when absent
    topics: tuple[str, ...] = ()  # filled in with every topic when absent
    enabled: bool = True

    @property
    def tzinfo(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


@dataclass(frozen=True, slots=True)
class AlertRule:
    name: str
    kind: str  # volume_spike | negative_spike | backlash | keyword | sql
    topic: str | None = None  # None only for kind sql
    window: timedelta = timedelta(hours=1)
    baseline: timedelta = timedelta(days=7)
    min_count: int = 10
    for_: timedelta = timedelta(0)  # `for` in the file
    keep_firing_for: timedelta = timedelta(hours=1)
    repeat: timedelta = timedelta(hours=24)
    send_resolved: bool = True
    channels: tuple[str, ...] = ("email",)
    severity: str = "warning"
    labels: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}), hash=False)
    ratio: float | None = None  # spike kinds
    surges: str | None = None  # volume_spike: worse / not_better / all
    negative_share: float | None = None  # negative_spike, backlash
    query: str | None = None  # keyword
    sql: str | None = None  # sql
    matcher: Query | None = field(default=None, compare=False, repr=False)  # parsed `query`


@dataclass(frozen=True, slots=True)
class WebhookConfig:
    name: str
    url_env: str  # the NAME of the environment variable holding the URL
    timeout: timedelta = timedelta(seconds=10)


@dataclass(frozen=True, slots=True)
class Config:
    path: Path | None  # the file it was read from
    database: DatabaseConfig
    model: ModelConfig
    fetch: FetchConfig
    topics: tuple[Topic, ...]
    sources: tuple[SourceConfig, ...]
    email: EmailConfig | None
    digest: DigestConfig
    alerts: tuple[AlertRule, ...]
    webhooks: tuple[WebhookConfig, ...] = ()
    notify: NotifyConfig = NotifyConfig()

    def topic(self, name: str) -> Topic:
        """The topic called `name`; KeyError if there is none."""
        return _named(self.topics, name, "topic")

    def source(self, name: str) -> SourceConfig:
        """The source called `name`; KeyError if there is none."""
        return _named(self.sources, name, "source")

    def webhook(self, name: str) -> WebhookConfig:
        """The webhook called `name`; KeyError if there is none."""
        return _named(self.webhooks, name, "webhook")

    def alert(self, name: str) -> AlertRule:
        """The alert rule called `name`; KeyError if there is none."""
        return _named(self.alerts, name, "alert rule")


def _named(items: tuple, name: str, what: str) -> Any:
    for item in items:
        if item.name == name:
            return item
    raise KeyError(f"no {what} named {name!r} in the config")


# --------------------------------------------------------------------------------------------
# Durations.

_DURATION_RE = re.compile(r"(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")
_DURATION_UNITS = (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60), ("s", 1))
DURATION_HINT = "a duration like 30s, 10m, 1h, 7d"


def parse_duration(value: str) -> timedelta:
    """Parse "30s", "10m", "1h", "7d", "2w" or combinations in that order ("1h30m"); ValueError if not."""
    if not isinstance(value, str):
        raise ValueError(f"{_show(value)} is not {DURATION_HINT}")
    if value == "0":
        return timedelta(0)
    match = _DURATION_RE.fullmatch(value)
    if not value or match is None:
        raise ValueError(f"{_show(value)} is not {DURATION_HINT}")
    seconds = sum(int(n) * unit for n, (_, unit) in zip(match.groups(), _DURATION_UNITS) if n)
    try:
        return timedelta(seconds=seconds)
    except OverflowError:
        raise ValueError(f"{_show(value)} is too long a duration") from None


def format_duration(td: timedelta) -> str:
    """Write a timedelta the way parse_duration reads it, in whole seconds: 5400s -> "1h30m"."""
    seconds = int(td.total_seconds())
    if seconds < 0:
        raise ValueError(f"negative duration {td}")
    if seconds == 0:
        return "0s"
    parts = []
    for unit, size in _DURATION_UNITS[1:]:  # days at most: "7d" reads better than "1w"
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


# --------------------------------------------------------------------------------------------
# Reading values. Each check takes (reader, path, value) and returns the parsed value, or
# INVALID after recording a problem.


class _Invalid:
    def __repr__(self) -> str:
        return "INVALID"


INVALID: Any = _Invalid()
Check = Callable[["_Reader", str, Any], Any]


class _Reader:
    def __init__(self, base_dir: Path):
        self.base_dir = base_dir
        self.problems: list[str] = []

    def problem(self, path: str, message: str) -> Any:
        """Record a problem: one line whatever a value echoed in it holds (controls escaped)."""
        self.problems.append(_one_line(f"{path}: {message}"))
        return INVALID

    def get(self, table: Mapping[str, Any], path: str, key: str, check: Check, default: Any) -> Any:
        """table[key] checked; the default (a TOML value, REQUIRED or None) when absent."""
        where = _join(path, key)
        if key in table:
            return check(self, where, table[key])
        if default is REQUIRED:
            return self.problem(where, "required key is missing")
        if default is None:
            return None
        return check(self, where, default)

    def keys(self, table: Mapping[str, Any], path: str, known: list[str] | tuple[str, ...]) -> None:
        for key in table:
            if key not in known:
                self.problem(_join(path, key), f"unknown key (known: {', '.join(known)})")


_BARE_KEY_RE = re.compile(r"[A-Za-z0-9_-]+")


def _key(key: str) -> str:
    return key if _BARE_KEY_RE.fullmatch(key) else json.dumps(key, ensure_ascii=False)


def _join(path: str, key: str) -> str:
    return f"{path}.{_key(key)}" if path else _key(key)


def _type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "table"
    return "date/time"


_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _one_line(text: str) -> str:
    """Text for a one-line message: control characters, line and paragraph separators escaped,
    lone surrogates replaced."""
    text = _UNPRINTABLE.sub(lambda m: m[0].encode("unicode_escape").decode("ascii"), text)
    return text.encode("utf-8", "replace").decode("utf-8") if not text.isascii() else text


def _show(value: Any) -> str:
    """A value as a message shows it: strings in double quotes, long ones shortened."""
    if isinstance(value, str):
        text = value if len(value) <= 60 else value[:57] + "..."
        return json.dumps(text, ensure_ascii=False)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if hasattr(value, "isoformat"):  # a TOML date, time or date-time
        return value.isoformat()
    return _type_name(value)


def _got(value: Any) -> str:
    if isinstance(value, (list, dict)):
        return f"got {'an' if isinstance(value, list) else 'a'} {_type_name(value)}"
    return f"got {_type_name(value)} {_show(value)}"


def _string(*, choices: tuple[str, ...] | None = None, empty: bool = False) -> Check:
    def check(r: _Reader, path: str, value: Any) -> Any:
        if not isinstance(value, str):
            return r.problem(path, f"expected a string, {_got(value)}")
        if choices is not None and value not in choices:
            known = ", ".join(f"'{c}'" for c in choices)
            return r.problem(path, f"{_show(value)} is not one of {known}")
        if not empty and not value.strip():
            return r.problem(path, "must not be empty")
        return value

    return check


def _name(r: _Reader, path: str, value: Any) -> Any:
    if not isinstance(value, str):
        return r.problem(path, f"expected a string, {_got(value)}")
    if not NAME_RE.fullmatch(value):
        return r.problem(path, f"{_show(value)} is not a valid name ({NAME_HELP})")
    return value


def _integer(*, minimum: int | None = None, maximum: int | None = None) -> Check:
    def check(r: _Reader, path: str, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int):
            return r.problem(path, f"expected an integer, {_got(value)}")
        if minimum is not None and value < minimum:
            return r.problem(path, f"{value} is less than the minimum of {minimum}")
        if maximum is not None and value > maximum:
            return r.problem(path, f"{value} is more than the maximum of {maximum}")
        return value

    return check


def _number(*, minimum: float | None = None, maximum: float | None = None, above: float | None = None) -> Check:
    def check(r: _Reader, path: str, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return r.problem(path, f"expected a number, {_got(value)}")
        try:
            value = float(value)
        except OverflowError:  # a TOML integer beyond 1e308
            return r.problem(path, f"{str(value)[:20]}... is too large a number")
        if not math.isfinite(value):
            return r.problem(path, f"expected a finite number, got {value}")
        if above is not None and value <= above:
            return r.problem(path, f"{value:g} must be greater than {above:g}")
        if minimum is not None and value < minimum or maximum is not None and value > maximum:
            return r.problem(path, f"{value:g} is not between {minimum:g} and {maximum:g}")
        return value

    return check


def _boolean(r: _Reader, path: str, value: Any) -> Any:
    if not isinstance(value, bool):
        return r.problem(path, f"expected true or false, {_got(value)}")
    return value


def _duration(*, minimum: timedelta | None = None, positive: bool = False) -> Check:
    def check(r: _Reader, path: str, value: Any) -> Any:
        if not isinstance(value, str):
            return r.problem(path, f'expected a duration string like "15m", {_got(value)}')
        try:
            td = parse_duration(value)
        except ValueError as e:
            return r.problem(path, str(e))
        if positive and not td:
            return r.problem(path, "must be longer than 0s")
        if minimum is not None and td < minimum:
            return r.problem(path, f"{value} is shorter than the minimum of {format_duration(minimum)}")
        return td

    return check


def _list(item: Check, *, non_empty: bool = False, unique: bool = True) -> Check:
    """A TOML array checked item by item (paths `key[i]`), as a tuple."""

    def check(r: _Reader, path: str, value: Any) -> Any:
        if not isinstance(value, list):
            return r.problem(path, f"expected an array, {_got(value)}")
        if non_empty and not value:
            return r.problem(path, "must not be empty")
        out = []
        ok = True
        for i, element in enumerate(value):
            parsed = item(r, f"{path}[{i}]", element)
            if parsed is INVALID:
                ok = False
            elif unique and parsed in out:
                r.problem(f"{path}[{i}]", f"{_show(element)} is listed twice")
                ok = False
            else:
                out.append(parsed)
        return tuple(out) if ok else INVALID

    return check


def _path(r: _Reader, path: str, value: Any) -> Any:
    if not isinstance(value, str):
        return r.problem(path, f"expected a path string, {_got(value)}")
    if not value.strip():
        return r.problem(path, "must not be empty")
    try:
        p = Path(value).expanduser()
    except RuntimeError:  # ~name of a user that does not exist
        return r.problem(path, f"{_show(value)}: no such user's home folder")
    return p if p.is_absolute() else r.base_dir.absolute() / p


def _env_name(r: _Reader, path: str, value: Any) -> Any:
    # The value is echoed in neither message: someone may have pasted the secret itself here.
    if not isinstance(value, str):
        return r.problem(path, f"expected the name of an environment variable, got {_type_name(value)}")
    if not ENV_NAME_RE.fullmatch(value):
        return r.problem(
            path,
            "must be the name of an environment variable (upper-case letters, digits and _, like "
            "SMTP_PASSWORD), not the secret itself",
        )
    return value


def _url(r: _Reader, path: str, value: Any) -> Any:
    if not isinstance(value, str):
        return r.problem(path, f"expected a URL string, {_got(value)}")
    try:
        parts = urlsplit(value)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        parts, host = None, None
    if re.search(r"\s", value):
        return r.problem(path, f"{_show(redact_url(value))} is not a URL: it contains white space")
    if parts is None or parts.scheme not in ("http", "https") or not host:
        return r.problem(path, f"{_show(redact_url(value))} is not an http(s) URL with a host")
    return value


def _address(r: _Reader, path: str, value: Any) -> Any:
    if not isinstance(value, str):
        return r.problem(path, f"expected an email address string, {_got(value)}")
    _, address = parseaddr(value)
    if not re.fullmatch(r"[^@\s<>]+@[^@\s<>]+", address or ""):
        return r.problem(path, f"{_show(value)} is not an email address")
    return value


def _time_of_day(r: _Reader, path: str, value: Any) -> Any:
    if isinstance(value, time) and not value.second and not value.microsecond and value.tzinfo is None:
        return value  # a TOML local time, 08:00:00
    if isinstance(value, str):
        match = re.fullmatch(r"(\d{1,2}):(\d{2})", value)
        if match and int(match[1]) < 24 and int(match[2]) < 60:
            return time(int(match[1]), int(match[2]))
    return r.problem(path, f"{_show(value)} is not a time of day like \"08:00\" (HH:MM, 24-hour clock)")


def _timezone(r: _Reader, path: str, value: Any) -> Any:
    if not isinstance(value, str):
        return r.problem(path, f"expected a time zone name, {_got(value)}")
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a folder, or too long a name
        return r.problem(path, f"unknown time zone {_show(value)} (use an IANA name like \"Europe/Amsterdam\")")
    return value


def _language(r: _Reader, path: str, value: Any) -> Any:
    if not isinstance(value, str):
        return r.problem(path, f"expected a string, {_got(value)}")
    if not LANGUAGE_RE.fullmatch(value):
        return r.problem(path, f'{_show(value)} is not an ISO 639-1 language code (two lower-case letters, like "nl")')
    return value


def _query(r: _Reader, path: str, value: Any) -> Any:
    """A query string, parsed: (text, Query)."""
    from listener.query import parse

    text = _string()(r, path, value)
    if text is INVALID:
        return INVALID
    try:
        return text, parse(text)
    except QuerySyntaxError as e:
        return r.problem(path, f"{e.reason} at position {e.position}")


def _defined(names: Mapping[str, str], what: str = "topic") -> Check:
    def check(r: _Reader, path: str, value: Any) -> Any:
        if not isinstance(value, str):
            return r.problem(path, f"expected a {what} name, {_got(value)}")
        if value not in names:
            defined = ", ".join(names) or "none"
            return r.problem(path, f"unknown {what} '{value}' (defined: {defined})")
        return value

    return check


def _labels(r: _Reader, path: str, value: Any) -> Any:
    if not isinstance(value, dict):
        return r.problem(path, f"expected a table of strings, {_got(value)}")
    ok = True
    for name, text in value.items():
        where = _join(path, name)
        if not LABEL_NAME_RE.fullmatch(name):
            r.problem(where, "not a valid label name (letters, digits and _, not starting with a digit)")
            ok = False
        elif not isinstance(text, str):
            r.problem(where, f"expected a string, {_got(text)}")
            ok = False
    return MappingProxyType(dict(value)) if ok else INVALID


def _sql_statements(sql: str) -> list[str]:
    """The statements of `sql` with comments removed, split at semicolons outside quotes."""
    statements, current, i, n = [], [], 0, len(sql)
    closing = {"'": "'", '"': '"', "`": "`", "[": "]"}
    while i < n:
        c = sql[i]
        if c in closing:
            end = sql.find(closing[c], i + 1)
            while end != -1 and c in "'\"`" and sql[end + 1 : end + 2] == c:  # doubled quote
                end = sql.find(closing[c], end + 2)
            end = n - 1 if end == -1 else end
            current.append(sql[i : end + 1])
            i = end + 1
        elif sql.startswith("--", i):
            end = sql.find("\n", i)
            i = n if end == -1 else end
        elif sql.startswith("/*", i):
            end = sql.find("*/", i + 2)
            current.append(" ")
            i = n if end == -1 else end + 2
        elif c == ";":
            statements.append("".join(current))
            current = []
            i += 1
        else:
            current.append(c)
            i += 1
    statements.append("".join(current))
    return [s.strip() for s in statements if s.strip()]


def _sql(r: _Reader, path: str, value: Any) -> Any:
    text = _string()(r, path, value)
    if text is INVALID:
        return INVALID
    statements = _sql_statements(text)
    if len(statements) != 1:
        return r.problem(path, f"must be a single statement, found {len(statements)}")
    first = statements[0].split(None, 1)[0].upper()
    if first not in ("SELECT", "WITH"):
        return r.problem(path, f"must start with SELECT or WITH, not {first}")
    return text


# --------------------------------------------------------------------------------------------
# Sections.


def _table(r: _Reader, data: Mapping[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        r.problem(key, f"expected a table ([{key}]), {_got(value)}")
        return {}
    return value


def _tables(r: _Reader, data: Mapping[str, Any], key: str) -> list[tuple[str, dict[str, Any]]]:
    value = data.get(key, [])
    if isinstance(value, dict):
        r.problem(key, f"expected an array of tables ([[{key}]]), got a table ([{key}])")
        return []
    if not isinstance(value, list):
        r.problem(key, f"expected an array of tables ([[{key}]]), {_got(value)}")
        return []
    out = []
    for i, item in enumerate(value):
        if isinstance(item, dict):
            out.append((f"{key}[{i}]", item))
        else:
            r.problem(f"{key}[{i}]", f"expected a table, {_got(item)}")
    return out


def _names(r: _Reader, items: list[tuple[str, dict[str, Any]]]) -> dict[str, str]:
    """Each item's `name` (checked, unique) -> its path. Bad names are kept: no cascade of errors."""
    seen: dict[str, str] = {}
    for path, table in items:
        name = table.get("name")
        if name is None:
            continue  # reported as missing by the section's parser
        if _name(r, f"{path}.name", name) is INVALID:
            if isinstance(name, str):
                seen.setdefault(name, path)
            continue
        if name in seen:
            r.problem(f"{path}.name", f"duplicate name '{name}' (also {seen[name]})")
        else:
            seen[name] = path
    return seen


def _read(
    r: _Reader, table: Mapping[str, Any], path: str, keys: Mapping[str, Key], checks: Mapping[str, Check]
) -> dict[str, Any]:
    return {key: r.get(table, path, key, check, keys[key].default) for key, check in checks.items()}


def _parse_database(r: _Reader, data: Mapping[str, Any]) -> DatabaseConfig:
    t = _table(r, data, "database")
    r.keys(t, "database", list(DATABASE_KEYS))
    v = _read(r, t, "database", DATABASE_KEYS, {"path": _path, "keep": _duration(positive=True)})
    return DatabaseConfig(**v)


def _parse_model(r: _Reader, data: Mapping[str, Any]) -> ModelConfig:
    t = _table(r, data, "model")
    r.keys(t, "model", list(MODEL_KEYS))
    checks = {
        "name": _string(),
        "batch_size": _integer(minimum=1),
        "max_length": _integer(minimum=8),
        "cache_dir": _path,
        "threads": _integer(minimum=1),
    }
    return ModelConfig(**_read(r, t, "model", MODEL_KEYS, checks))


def _parse_fetch(r: _Reader, data: Mapping[str, Any]) -> FetchConfig:
    t = _table(r, data, "fetch")
    r.keys(t, "fetch", list(FETCH_KEYS))
    checks = {
        "timeout": _duration(positive=True),
        "max_bytes": _integer(minimum=1024),
        "per_host": _integer(minimum=1),
        "concurrency": _integer(minimum=1),
        "user_agent": _string(),
    }
    return FetchConfig(**_read(r, t, "fetch", FETCH_KEYS, checks))


def _parse_topics(r: _Reader, data: Mapping[str, Any]) -> tuple[tuple[Topic, ...], dict[str, str]]:
    items = _tables(r, data, "topics")
    names = _names(r, items)
    topics = []
    for path, t in items:
        r.keys(t, path, list(TOPIC_KEYS))
        name = r.get(t, path, "name", lambda r, p, v: v, REQUIRED)  # checked by _names
        query = r.get(t, path, "query", _query, REQUIRED)
        languages = r.get(t, path, "languages", _list(_language), [])
        text, matcher = query if query is not INVALID else (INVALID, None)
        topics.append(Topic(name=name, query=text, languages=languages, matcher=matcher))
    return tuple(topics), names


def _option_check(hint: Any, metadata: Mapping[str, Any]) -> Check | None:
    """The check for a field of a source's Options, from its type and metadata."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(args) != 1:
            return None
        hint, origin = args[0], typing.get_origin(args[0])
    item: Check
    if hint is str:
        item = _string(empty=True)
    elif hint is bool:
        return _boolean
    elif hint is int:
        return _integer()
    elif hint is float:
        return _number()
    elif hint is timedelta:
        return _duration()
    elif origin is tuple and typing.get_args(hint) in ((str, ...),):
        item = _string()
        if metadata.get("url"):
            item = _url
        elif metadata.get("secret"):
            item = _env_name
        return _list(item, unique=False)
    else:
        return None
    if metadata.get("url"):
        return _url
    if metadata.get("secret"):
        return _env_name
    return item


def _parse_options(r: _Reader, path: str, t: Mapping[str, Any], options_class: type) -> Any:
    before = len(r.problems)
    hints = typing.get_type_hints(options_class)
    values = {}
    for f in dataclasses.fields(options_class):
        if not f.init:
            continue
        where = _join(path, f.name)
        check = _option_check(hints[f.name], f.metadata)
        if check is None:  # pragma: no cover - a source kind with a field type we can't read
            raise TypeError(f"{options_class.__qualname__}.{f.name}: unsupported option type {hints[f.name]}")
        if f.name in t:
            values[f.name] = check(r, where, t[f.name])
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            r.problem(where, "required key is missing")
    if len(r.problems) > before:
        return INVALID
    try:
        return options_class(**values)
    except (TypeError, ValueError) as e:  # the Options class's own validation
        return r.problem(path, str(e))


def _parse_sources(r: _Reader, data: Mapping[str, Any], topics: Mapping[str, str]) -> tuple[SourceConfig, ...]:
    items = _tables(r, data, "sources")
    _names(r, items)
    known_kinds = sorted(sources.KINDS)
    out = []
    for path, t in items:
        kind = r.get(t, path, "kind", _string(), REQUIRED)
        options_class = None
        if kind is not INVALID:
            if kind not in sources.KINDS:
                r.problem(f"{path}.kind", f"unknown kind '{kind}' (known: {', '.join(known_kinds)})")
            else:
                try:
                    options_class = sources.source_class(kind).Options
                except (ImportError, AttributeError) as e:
                    r.problem(f"{path}.kind", f"cannot load source kind '{kind}': {e}")
        if options_class is not None:
            option_names = [f.name for f in dataclasses.fields(options_class) if f.init]
            r.keys(t, path, option_names + [k for k in SOURCE_KEYS if k not in option_names])
        # Without a known kind, no key can be called unknown: the kind's Options decide.
        name = r.get(t, path, "name", lambda r, p, v: v, REQUIRED)
        common = _read(
            r,
            t,
            path,
            SOURCE_KEYS,
            {
                "every": _duration(minimum=timedelta(seconds=30)),
                "topics": _list(_defined(topics)),
                "enabled": _boolean,
                "backfill": _duration(),
            },
        )
        common_keys = set(SOURCE_KEYS)
        option_table = {k: v for k, v in t.items() if k not in common_keys}
        options = _parse_options(r, path, option_table, options_class) if options_class else INVALID
        out.append(SourceConfig(name=name, kind=kind, options=options, **common))
    return tuple(out)


def _parse_email(r: _Reader, data: Mapping[str, Any]) -> EmailConfig | None:
    if "email" not in data:
        return None
    t = _table(r, data, "email")
    r.keys(t, "email", list(EMAIL_KEYS))
    v = _read(
        r,
        t,
        "email",
        EMAIL_KEYS,
        {
            "host": _string(),
            "security": _string(choices=tuple(SECURITY_PORTS)),
            "username_env": _env_name,
            "password_env": _env_name,
            "from": _address,
            "to": _list(_address, non_empty=True),
            "subject_prefix": _string(empty=True),
            "timeout": _duration(positive=True),
        },
    )
    port = r.get(t, "email", "port", _integer(minimum=1, maximum=65535), SECURITY_PORTS.get(v["security"], 25))
    if (v["username_env"] is None) != (v["password_env"] is None):
        missing = "password_env" if v["password_env"] is None else "username_env"
        other = "username_env" if missing == "password_env" else "password_env"
        r.problem(f"email.{missing}", f"required when {other} is set (SMTP login needs both)")
    v["sender"] = v.pop("from")
    return EmailConfig(port=port, **v)


def _parse_notify(r: _Reader, data: Mapping[str, Any]) -> NotifyConfig:
    t = _table(r, data, "notify")
    r.keys(t, "notify", list(NOTIFY_KEYS))
    v = _read(r, t, "notify", NOTIFY_KEYS, {"retry_first": _duration(positive=True),
                                            "retry_max": _duration(positive=True)})
    if not any(x is INVALID for x in v.values()) and v["retry_max"] < v["retry_first"]:
        r.problem("notify.retry_max", f"must be at least notify.retry_first ({format_duration(v['retry_first'])})")
    return NotifyConfig(**v)


def _parse_webhooks(r: _Reader, data: Mapping[str, Any]) -> tuple[WebhookConfig, ...]:
    items = _tables(r, data, "webhooks")
    _names(r, items)
    out = []
    for path, t in items:
        r.keys(t, path, list(WEBHOOK_KEYS))
        v = _read(r, t, path, WEBHOOK_KEYS, {"name": lambda r, p, v: v, "url_env": _env_name,
                                              "timeout": _duration(positive=True)})
        if v["name"] == "email":
            r.problem(f"{path}.name", "'email' is the email channel's name: choose another")
        out.append(WebhookConfig(**v))
    return tuple(out)


def _parse_digest(
    r: _Reader, data: Mapping[str, Any], topics: Mapping[str, str], email: EmailConfig | None
) -> DigestConfig:
    t = _table(r, data, "digest")
    r.keys(t, "digest", list(DIGEST_KEYS))
    v = _read(
        r,
        t,
        "digest",
        DIGEST_KEYS,
        {
            "at": _time_of_day,
            "timezone": _timezone,
            "to": _list(_address),
            "topics": _list(_defined(topics)),
            "enabled": _boolean,
        },
    )
    if v["to"] is None:
        v["to"] = email.to if email is not None and email.to is not INVALID else ()
    if v["topics"] is None:
        v["topics"] = tuple(topics)
    return DigestConfig(**v)


def _name_rules_in_problems(r: _Reader, items, first: int) -> None:
    """`alerts[2].window: ...` -> `alerts[2].window (rule 'hijack'): ...` for rules with a name."""
    names = {path: t.get("name") for path, t in items if isinstance(t.get("name"), str)}
    for i in range(first, len(r.problems)):
        where, sep, message = r.problems[i].partition(": ")
        base = where.split(".", 1)[0]
        if sep and base in names:
            r.problems[i] = f"{where} (rule '{names[base]}'): {message}"


def _parse_alerts(r: _Reader, data: Mapping[str, Any], topics: Mapping[str, str],
                  webhooks: tuple[str, ...] = ()) -> tuple[AlertRule, ...]:
    items = _tables(r, data, "alerts")
    first_problem = len(r.problems)
    _names(r, items)
    kinds = sorted(ALERT_KINDS)
    common = [k for k in ALERT_KEYS if k not in ALERT_KIND_ONLY_KEYS]
    out = []
    for path, t in items:
        kind = r.get(t, path, "kind", _string(), REQUIRED)
        if kind is not INVALID and kind not in ALERT_KINDS:
            kind = r.problem(f"{path}.kind", f"unknown kind '{kind}' (known: {', '.join(kinds)})")
        specific = ALERT_KINDS.get(kind, {}) if kind is not INVALID else {}
        own = [k for k in specific if k not in common]
        for key in t:
            if key in common or key in own:
                continue
            if kind is not INVALID and key in ALERT_KIND_ONLY_KEYS:
                takers = ", ".join(k for k in ALERT_KINDS if key in ALERT_KINDS[k])
                r.problem(_join(path, key), f"not a key of {kind} rules ({key} is for {takers})")
            elif kind is INVALID and key in ALERT_KEYS:
                continue  # can't tell without a kind
            else:
                r.problem(_join(path, key), f"unknown key (known: {', '.join(common + own)})")

        def default(key: str) -> Any:
            return specific.get(key, ALERT_KEYS[key].default)

        name = r.get(t, path, "name", lambda r, p, v: v, REQUIRED)
        topic = r.get(t, path, "topic", _defined(topics), None if kind == "sql" else REQUIRED)
        checks: dict[str, Check] = {
            "window": _duration(positive=True),
            "baseline": _duration(positive=True),
            "min_count": _integer(minimum=0),
            "for": _duration(),
            "keep_firing_for": _duration(),
            "repeat": _duration(positive=True),
            "send_resolved": _boolean,
            "channels": _list(_string(choices=CHANNELS + webhooks)),
            "severity": _string(choices=SEVERITIES),
            "labels": _labels,
        }
        v = {key: r.get(t, path, key, check, default(key)) for key, check in checks.items()}
        v["for_"] = v.pop("for")
        if kind == "volume_spike" and v["baseline"] is not INVALID and v["baseline"] < timedelta(days=1):
            r.problem(f"{path}.baseline", f"{format_duration(v['baseline'])} is less than 1d: a volume spike compares "
                                          "with the same hour on earlier days")
        elif kind in SPIKE_KINDS and INVALID not in (v["window"], v["baseline"]) and v["baseline"] <= v["window"]:
            r.problem(
                f"{path}.baseline",
                f"{format_duration(v['baseline'])} must be longer than window ({format_duration(v['window'])})",
            )
        extra: dict[str, Any] = {}
        if "ratio" in specific:
            extra["ratio"] = r.get(t, path, "ratio", _number(above=1.0), specific["ratio"])
        if "surges" in specific:
            extra["surges"] = r.get(t, path, "surges", _string(choices=SURGES), specific["surges"])
        if "negative_share" in specific:
            extra["negative_share"] = r.get(
                t, path, "negative_share", _number(minimum=0.0, maximum=1.0), specific["negative_share"]
            )
        if "query" in specific:
            query = r.get(t, path, "query", _query, REQUIRED)
            extra["query"], extra["matcher"] = query if query is not INVALID else (INVALID, None)
        if "sql" in specific:
            extra["sql"] = r.get(t, path, "sql", _sql, REQUIRED)
        out.append(AlertRule(name=name, kind=kind, topic=topic, **v, **extra))
    _name_rules_in_problems(r, items, first_problem)
    return tuple(out)


def parse_config(data: Mapping[str, Any], *, file: str | None = None, base_dir: Path | None = None) -> Config:
    """Check a parsed TOML document and build the Config; ConfigError lists every problem found.

    Relative paths are resolved against `base_dir`: the folder of `file` when not given, else the
    current directory.
    """
    if base_dir is None:
        base_dir = Path(file).parent if file else Path.cwd()
    r = _Reader(base_dir)
    if not isinstance(data, Mapping):
        raise ConfigError(["expected a TOML document (a table) at the top level"], file=file)
    for key in data:
        if key not in REFERENCE:
            what = "section" if isinstance(data[key], (dict, list)) else "key"
            r.problem(_key(key), f"unknown {what} (known sections: {', '.join(REFERENCE)})")
    database = _parse_database(r, data)
    model = _parse_model(r, data)
    fetch = _parse_fetch(r, data)
    topics, topic_names = _parse_topics(r, data)
    source_configs = _parse_sources(r, data, topic_names)
    email = _parse_email(r, data)
    digest = _parse_digest(r, data, topic_names, email)
    webhooks = _parse_webhooks(r, data)
    notify = _parse_notify(r, data)
    alerts = _parse_alerts(r, data, topic_names, tuple(h.name for h in webhooks))
    if r.problems:
        raise ConfigError(r.problems, file=file)
    return Config(
        path=Path(file).absolute() if file else None,
        database=database,
        model=model,
        fetch=fetch,
        topics=topics,
        sources=source_configs,
        email=email,
        digest=digest,
        alerts=alerts,
        webhooks=webhooks,
        notify=notify,
    )


def load_config(path: str | Path) -> Config:
    """Read and check a config file; ConfigError lists every problem, each as "path: message"."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError([f"config file not found: {path} (run `listener init` to create one)"]) from None
    except IsADirectoryError:
        raise ConfigError([f"{path} is a folder, not a config file"]) from None
    except OSError as e:
        raise ConfigError([f"cannot read config file {path}: {e.strerror or e}"]) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError([f"not UTF-8 text (byte {e.start}); save the file as UTF-8"], file=str(path)) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError([f"invalid TOML: {e}"], file=str(path)) from None
    return parse_config(data, file=str(path), base_dir=path.absolute().parent)


def resolve_secret(config_path_label: str, env_name: str, *, secret: bool = True) -> str:
    """The value of the environment variable a config key names; ConfigError if it is not set.
    `secret` (the default) keeps it out of every error text (listener.errors.env_secret)."""
    value = env_secret(env_name, secret=secret)
    if value is None:
        raise ConfigError([f"{config_path_label}: environment variable {env_name} is not set"])
    if not value:
        raise ConfigError([f"{config_path_label}: environment variable {env_name} is empty"])
    return value


# --------------------------------------------------------------------------------------------
# Writing: the effective config as TOML, with secrets redacted.

def _toml_string(text: str) -> str:
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, Path):
        return _toml_string(str(value))
    if isinstance(value, timedelta):
        return _toml_string(format_duration(value))
    if isinstance(value, time):
        return _toml_string(value.strftime("%H:%M"))
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        if not value:
            return "{}"
        return "{ " + ", ".join(f"{_key(k)} = {_toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


def _env_state(name: str) -> str:
    return "set in the environment" if os.environ.get(name) else "NOT set in the environment"


class _Writer:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def header(self, text: str) -> None:
        if self.lines:
            self.lines.append("")
        self.lines.append(text)

    def value(self, key: str, value: Any, note: str = "") -> None:
        if value is None:
            self.lines.append(f"# {_key(key)}: not set{' (' + note + ')' if note else ''}")
        else:
            self.lines.append(f"{_key(key)} = {_toml_value(value)}" + (f"  # {note}" if note else ""))

    def secret(self, key: str, env_name: str | None) -> None:
        if env_name is None:
            self.value(key, None)
        else:
            self.value(key, env_name, _env_state(env_name))


def _option_values(w: _Writer, options: Any) -> None:
    for f in dataclasses.fields(options):
        if not f.init:
            continue
        value = getattr(options, f.name)
        if f.metadata.get("secret"):
            if isinstance(value, tuple):
                w.value(f.name, value, "; ".join(f"{v} {_env_state(v)}" for v in value))
            else:
                w.secret(f.name, value)
            continue
        if isinstance(value, str) and (f.metadata.get("url") or value.startswith(("http://", "https://"))):
            value = redact_url(value)
        elif isinstance(value, tuple) and f.metadata.get("url"):
            value = tuple(redact_url(v) for v in value)
        w.value(f.name, value)


def dump_config(config: Config) -> str:
    """The effective config as TOML: every key with its value or default; secrets only by name."""
    w = _Writer()
    w.lines.append(f"# Effective configuration{' of ' + str(config.path) if config.path else ''}.")
    w.lines.append("# Defaults are filled in; secrets are shown by variable name, never by value.")

    w.header("[database]")
    w.value("path", config.database.path)
    w.value("keep", config.database.keep, "mentions are kept forever")

    w.header("[model]")
    for key in MODEL_KEYS:
        w.value(key, getattr(config.model, key))

    w.header("[fetch]")
    for key in FETCH_KEYS:
        w.value(key, getattr(config.fetch, key))

    for topic in config.topics:
        w.header("[[topics]]")
        w.value("name", topic.name)
        w.value("query", topic.query)
        w.value("languages", topic.languages, "" if topic.languages else "all languages")

    for source in config.sources:
        w.header("[[sources]]")
        w.value("name", source.name)
        w.value("kind", source.kind)
        _option_values(w, source.options)
        for key in SOURCE_KEYS:
            if key not in ("name", "kind"):
                value = getattr(source, key)
                w.value(key, value, "matched against every topic" if key == "topics" and not value else "")

    if config.email is not None:
        e = config.email
        w.header("[email]")
        w.value("host", e.host)
        w.value("port", e.port)
        w.value("security", e.security)
        w.secret("username_env", e.username_env)
        w.secret("password_env", e.password_env)
        w.value("from", e.sender)
        w.value("to", e.to)
        w.value("subject_prefix", e.subject_prefix)
        w.value("timeout", e.timeout)
    else:
        w.header("# [email]: not set (nothing is mailed)")

    w.header("[notify]")
    for key in NOTIFY_KEYS:
        w.value(key, getattr(config.notify, key))

    w.header("[digest]")
    for key in DIGEST_KEYS:
        w.value(key, getattr(config.digest, key))

    for hook in config.webhooks:
        w.header("[[webhooks]]")
        w.value("name", hook.name)
        w.secret("url_env", hook.url_env)
        w.value("timeout", hook.timeout)

    for rule in config.alerts:
        w.header("[[alerts]]")
        for key in ALERT_KEYS:
            if key in ALERT_KIND_ONLY_KEYS and key not in ALERT_KINDS[rule.kind]:
                continue
            w.value(key, getattr(rule, "for_" if key == "for" else key))
    return "\n".join(w.lines) + "\n"


# --------------------------------------------------------------------------------------------
# Documentation.


def config_reference() -> str:
    """The README's configuration reference: one Markdown table per section and per source kind."""

    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    out = ["## Configuration reference", ""]
    for section, keys in REFERENCE.items():
        title = f"[[{section}]]" if section in ARRAY_SECTIONS else f"[{section}]"
        out += [f"### `{title}`", "", SECTION_HELP[section], "", "| key | default | meaning |", "| --- | --- | --- |"]
        for key, spec in keys.items():
            out.append(f"| `{key}` | {cell(spec.default_text())} | {cell(spec.help)} |")
        out.append("")
    for kind in sorted(sources.KINDS):
        options_class = sources.source_class(kind).Options
        out += [f'### `[[sources]]` with `kind = "{kind}"`', ""]
        doc = (options_class.__doc__ or "").strip().splitlines()
        if doc and not doc[0].startswith(options_class.__name__ + "("):
            out += [doc[0], ""]
        out += ["| key | default | meaning |", "| --- | --- | --- |"]
        for f in dataclasses.fields(options_class):
            if not f.init:
                continue
            if f.default is not dataclasses.MISSING:
                default = "not set" if f.default is None else f"`{_toml_value(f.default)}`"
            elif f.default_factory is not dataclasses.MISSING:
                default = f"`{_toml_value(f.default_factory())}`"
            else:
                default = "required"
            help_text = f.metadata.get("help", "")
            if f.metadata.get("secret"):
                help_text += " (the name of an environment variable)"
            out.append(f"| `{f.name}` | {cell(default)} | {cell(help_text)} |")
        out.append("")
    return "\n".join(out).rstrip() + "\n"


# --------------------------------------------------------------------------------------------
# The starter config `listener init` writes; the same text as config.toml at the repo root.


def starter_config() -> str:
    """A commented, working config.toml to start from (what `listener init` writes)."""
    return STARTER_CONFIG


STARTER_CONFIG = """\
# listener configuration: an example for a Dutch agency watching its client "Acme".
#
# Edit it, then check it with `listener check-config` (add `--dump` to see every effective value).
# Every key is optional unless it says "required"; an unknown or misspelt key is an error, and all
# problems are reported at once with their place
# (like `sources[2].every: "10 min" is not a duration like 30s, 10m, 1h, 7d`).
#
# Durations are strings: "30s", "10m", "1h", "7d", "2w" or combinations like "1h30m".
# Secrets never go in this file: keys ending in `_env` hold the NAME of an environment variable.

[database]
# SQLite file of mentions; a relative path is relative to this file's folder.
path = "data/mentions.db"
# Delete mentions older than this (and the fetch, alert and sent-notification logs of that age);
# leave it out to keep them forever.
# keep = "180d"

[model]
# Sentiment model: "bundled" (offline, shipped with listener), a Hugging Face model name
# (like "cardiffnlp/twitter-xlm-roberta-base-sentiment") or a local folder.
name = "bundled"
# Texts per model batch (texts of similar length are batched together).
batch_size = 16
# Tokens of a text the model reads; the rest is cut off.
max_length = 128
# Folder where the bundled model is built (relative to this file); leave it out for the default.
# cache_dir = ".cache/listener"
# CPU cores used for scoring (the bundled model runs one worker per core); leave it out to use all.
# threads = 2

[fetch]
# Time limit of one HTTP request.
timeout = "20s"
# Largest response body read; a bigger one fails that fetch.
max_bytes = 10_000_000
# Requests in flight to one host at a time.
per_host = 2
# Requests in flight in total.
concurrency = 8
# User-Agent header; leave it out to send listener's own.
# user_agent = "listener (+mailto:monitoring@agency.example)"

# --- Topics: what to listen for ------------------------------------------------------------

[[topics]]
# Required, unique: lower-case letters, digits, - and _, starting with a letter or digit.
name = "acme"
# Required. Words, "phrases", #hashtags, @handles, OR, and -exclusions. Matching ignores case and
# accents. Single quotes make a TOML literal string, so the double quotes need no escaping.
query = 'acme OR "acme foods" OR #acme OR @acme -"acme anvil"'
# ISO 639-1 codes a mention must be in; leave it out (or []) for every language.
languages = ["nl", "en"]

[[topics]]
# The summer campaign and its hashtag.
name = "acme-zomer"
query = '#acmezomer OR "acme zomerdeal"'
languages = ["nl"]

# --- Sources: where mentions come from -----------------------------------------------------

[[sources]]
# Required, unique; same rules as topic names.
name = "google-news-nl"
# Required: the kind of source. Each kind has its own keys (rss: url).
kind = "rss"
# Required for rss: the feed's URL. Google News search, Dutch edition.
url = "https://news.google.com/rss/search?q=acme+OR+%22acme+foods%22&hl=nl&gl=NL&ceid=NL:nl"
# How often to fetch; 30s at least.
every = "30m"
# Topics every mention of this source belongs to, without matching; leave it out (or []) to
# match each mention against every topic's query, as here.
topics = []
# false keeps the source configured but never fetches it.
enabled = true
# On the first fetch, keep only mentions published this long ago or later.
backfill = "2d"

[[sources]]
# Public Mastodon posts with #acme (any Mastodon server has /tags/NAME.rss).
name = "mastodon-acme"
kind = "rss"
url = "https://mastodon.social/tags/acme.rss"
every = "10m"

[[sources]]
# The campaign hashtag on Mastodon: every post in it belongs to the campaign topic.
name = "mastodon-acmezomer"
kind = "rss"
url = "https://mastodon.social/tags/acmezomer.rss"
every = "10m"
topics = ["acme-zomer"]

[[sources]]
# Reddit search, newest first. Reddit asks for a slow pace: fetch every hour.
name = "reddit-acme"
kind = "rss"
url = "https://www.reddit.com/search.rss?q=acme&sort=new"
every = "1h"
backfill = "7d"

# --- Email: how mail is sent (leave the whole section out to send nothing) -----------------

[email]
# SMTP server and port. The port's default follows `security`: 25 none, 587 starttls, 465 ssl.
host = "localhost"
port = 25
# "none", "starttls" (upgrade a plain connection) or "ssl" (TLS from the start).
security = "none"
# SMTP login: the NAMES of the environment variables holding user name and password; both or
# neither. Export them before starting listener, e.g. `export SMTP_PASSWORD=...`.
# username_env = "SMTP_USERNAME"
# password_env = "SMTP_PASSWORD"
# Required: the sender.
from = "Listener <listener@agency.example>"
# Required: recipients, a non-empty list.
to = ["acme-team@agency.example"]
# Put in front of every subject.
subject_prefix = "[listener]"
# Time limit of one SMTP conversation.
timeout = "30s"

# --- Notify: retries when a delivery fails (a queued message is never dropped) --------------

[notify]
# Wait before the first retry of a failed delivery; it doubles on each failure ...
retry_first = "30s"
# ... up to this.
retry_max = "5m"

# --- Digest: one mail a day with what was said -------------------------------------------

[digest]
# Time of day (HH:MM, 24-hour clock) in `timezone`.
at = "08:00"
# IANA time zone name.
timezone = "Europe/Amsterdam"
# Recipients; leave it out to use email.to.
to = ["acme-team@agency.example", "accountmanager@agency.example"]
# Topics in the digest; leave it out for all topics.
topics = ["acme", "acme-zomer"]
# false sends no digest.
enabled = true

# --- Alerts: rules that mail when something happens --------------------------------------
# Kinds: backlash (a hashtag bursts and turns negative: a hijacked campaign), volume_spike (far
# more mentions than usual for the time of day), negative_spike (a far more negative share than
# usual), keyword (a mention matches a query), sql (a query on the database returns rows).
# Alerts on one topic that overlap in time are one incident: one mail when it opens (at once for
# a backlash or keyword alert), one when it closes. The defaults suit social data; a new install
# is "learning" for the first week (`listener alerts` shows it) and does not cry wolf meanwhile.

[[alerts]]
# Required, unique; same rules as topic names.
name = "acme-backlash"
# Required: the kind of rule.
kind = "backlash"
# Required (except for sql): the topic the rule watches.
topic = "acme"
# The recent period looked at, and the history it is compared with (days with data only).
window = "1h"
baseline = "7d"
# Posts with the hashtag needed in the window before the rule can fire.
min_count = 8
# The hashtag's rate must reach this many times its usual (default 5.0 for backlash,
# 3.0 for volume_spike; for negative_spike, 2.0 times the usual negative share).
ratio = 5.0
# The least negative share (0 to 1, as the model scores it) that can fire, whatever the topic's
# usual share (default 0.35 for backlash, 0.4 for negative_spike).
negative_share = 0.35
# The condition must hold this long before the alert fires (default 0s; 10m for volume_spike
# and negative_spike).
for = "0s"
# The evidence must be clearly gone this long before a firing alert resolves (no flapping).
keep_firing_for = "1h"
# Mail a still-open incident again after this long.
repeat = "24h"
# Also mail when the incident closes.
send_resolved = true
# Where notifications go: "email" and/or the names of [[webhooks]].
channels = ["email"]
# "info", "warning" or "critical".
severity = "critical"
# Extra labels passed on with the notification.
labels = { client = "acme", team = "webcare" }

[[alerts]]
name = "acme-volume"
kind = "volume_spike"
topic = "acme"
# Which surges fire: "worse" (the extra mentions more negative than usual), "not_better" (all but
# good news, like a loved launch) or "all".
surges = "worse"

[[alerts]]
name = "acme-negative"
kind = "negative_spike"
topic = "acme"

[[alerts]]
name = "acme-recall"
kind = "keyword"
topic = "acme"
# Required for keyword: a mention in the window matching this query fires the rule.
query = 'recall OR lawsuit OR "food poisoning" OR terugroepactie OR voedselvergiftiging'
# Any single match counts.
min_count = 1
severity = "critical"

# An sql rule runs one read-only SELECT or WITH statement on the mention database and fires
# when it returns rows; `topic` is optional. This one: a source without a good fetch for a day.
# [[alerts]]
# name = "stale-sources"
# kind = "sql"
# sql = "SELECT name FROM sources WHERE last_success_at < strftime('%Y-%m-%dT%H:%M:%S', 'now', '-1 day')"

# ---------------------------------------------------------------------------------------------
# Chat webhooks (Slack, Mattermost, Rocket.Chat, ...): alerts POSTed as JSON with a
# Slack-compatible `text`. Name one in an alert's `channels` to use it. The URL is a secret:
# it comes from an environment variable.
# [[webhooks]]
# name = "slack"
# url_env = "LISTENER_SLACK_WEBHOOK"   # export LISTENER_SLACK_WEBHOOK=https://hooks.slack.com/services/...
# timeout = "10s"
"""

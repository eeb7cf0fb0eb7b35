"""What config.toml may hold, declared once: each section is a frozen dataclass whose fields carry
their key's default (as written in TOML), one-line help and check.

The parser (`listener.config.parse`), `check-config --dump` (`listener.config.dump`), the README's
reference and the starter file (`listener.config.docs`) all read these declarations; a field
without a `key(...)` (a parsed query, a source's options) is filled in by the parser.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from listener.config import checks as c
from listener.config.checks import INVALID, NAME_HELP, REQUIRED, Check, Reader

if TYPE_CHECKING:  # pragma: no cover
    from listener.query import Query

_UNSET: Any = object()


@dataclass(frozen=True)
class Key:
    """One config key: its default as written in TOML (REQUIRED, or None for "absent"), help and check."""

    default: Any
    help: str
    check: Check
    shown: str | None = None  # the default as the reference shows it, when the value can't say
    name: str | None = None  # the key as the file spells it, when that is not the field's name

    def default_text(self) -> str:
        from listener.config.toml import toml_value

        if self.shown is not None:
            return self.shown
        if self.default is REQUIRED:
            return "required"
        if self.default is None:
            return "not set"
        return f"`{toml_value(self.default)}`"


def key(default: Any, help: str, check: Check, *, shown: str | None = None, name: str | None = None,
        value: Any = _UNSET) -> Any:
    """A dataclass field declaring a config key. The field's own default is the TOML default as
    the check reads it (`"15m"` -> 15 minutes), or `value` when the parser derives it (a port
    from `security`, recipients from `email.to`)."""
    spec = Key(default, help, check, shown, name)
    if value is _UNSET and default in (REQUIRED, None):
        value = default
    elif value is _UNSET:
        value = check(Reader(Path()), "", default)
        assert value is not INVALID, f"the default {default!r} fails its own check"
    if value is REQUIRED:
        return field(metadata={"key": spec})
    if isinstance(value, Mapping):
        return field(default_factory=lambda: value, hash=False, metadata={"key": spec})
    return field(default=value, metadata={"key": spec})


def keys_of(cls: type) -> dict[str, tuple[str, Key]]:
    """A section's keys as the file spells them -> (field name, Key), in declaration order."""
    return {f.metadata["key"].name or f.name: (f.name, f.metadata["key"])
            for f in dataclasses.fields(cls) if "key" in f.metadata}


def _named(items: tuple, name: str, what: str) -> Any:
    for item in items:
        if item.name == name:
            return item
    raise KeyError(f"no {what} named {name!r} in the config")


# --------------------------------------------------------------------------------------------
# The sections. Each class's docstring is the section's help in the README.


@dataclass(frozen=True, slots=True)
class DatabaseConfig:
    """Where mentions are stored."""

    path: Path = key("data/mentions.db", "SQLite file of mentions; relative to the config file's folder.", c.path,
                     value=REQUIRED)
    url: str | None = key(None, "PostgreSQL instead of the SQLite file (`postgresql://user@host:5432/listener`); "
                                "the password comes from PGPASSWORD, never from this file.", c.database_url,
                          shown="the SQLite file at `path`")
    keep: timedelta | None = key(None, "Delete mentions older than this (like `90d`), and fetch, alert and "
                                       "sent-notification logs of that age; absent keeps them forever.",
                                 c.duration(positive=True), shown="mentions are kept forever")

    @property
    def location(self) -> str | Path:
        """What `listener.store.open_store` opens: the PostgreSQL URL when set, else the SQLite file."""
        return self.url or self.path


@dataclass(frozen=True, slots=True)
class ModelConfig:
    """The sentiment model."""

    name: str = key("bundled", "Sentiment model: `bundled` (shipped, offline), a Hugging Face name or a local folder.",
                    c.string())
    batch_size: int = key(16, "Texts per model batch (texts of similar length are batched together).",
                          c.integer(minimum=1))
    max_length: int = key(128, "Tokens of a text the model reads; the rest is cut off.", c.integer(minimum=8))
    cache_dir: Path | None = key(None, "Folder where the bundled model is built; relative to the config file's folder.",
                                 c.path, shown="package default")
    threads: int | None = key(None, "CPU cores used for scoring (the bundled model runs one worker per core); "
                                    "absent uses all.", c.integer(minimum=1), shown="all cores")


@dataclass(frozen=True, slots=True)
class FetchConfig:
    """How sources are fetched over HTTP."""

    timeout: timedelta = key("20s", "Time limit of one HTTP request.", c.duration(positive=True))
    max_bytes: int = key(10_000_000, "Largest response body read; a bigger one fails that fetch.",
                         c.integer(minimum=1024))
    per_host: int = key(2, "Requests in flight to one host at a time.", c.integer(minimum=1))
    concurrency: int = key(8, "Requests in flight in total (a response waiting to be parsed holds none).",
                           c.integer(minimum=1))
    user_agent: str | None = key(None, "User-Agent header of every request; absent sends listener's own.",
                                 c.string(), shown="listener/VERSION")


def _name_key(help: str = "Unique name") -> Any:
    # Checked by the parser with the section's other names (unique), so that a bad name is one problem.
    return key(REQUIRED, f"{help}: {NAME_HELP}.", lambda r, p, v: v)


@dataclass(frozen=True, slots=True)
class Topic:
    """What to listen for; one `[[topics]]` table per topic."""

    name: str = _name_key()
    query: str = key(REQUIRED, 'What a mention must match: words, "phrases", #hashtags, @handles, OR, and -exclusions.',
                     c.query)
    languages: tuple[str, ...] = key([], "ISO 639-1 codes (like `nl`, `en`) a mention must be in; empty accepts any.",
                                     c.list_of(c.language), shown="any language")
    matcher: Query | None = field(default=None, compare=False, repr=False)  # the parsed `query`


@dataclass(frozen=True, slots=True)
class SourceConfig:
    """Where mentions come from; one `[[sources]]` table per feed or API."""

    name: str = _name_key()
    kind: str = key(REQUIRED, "What kind of source this is, like `rss`; its own keys are listed per kind below.",
                    c.string())
    options: Any  # an instance of source_class(kind).Options: the kind's own keys
    every: timedelta = key("15m", "How often the source is fetched; 30s at least.",
                           c.duration(minimum=timedelta(seconds=30)))
    topics: tuple[str, ...] = key([], "Topics every mention of this source belongs to, unmatched; empty: match "
                                      "every topic's query.", c.list_of(c.defined("topic")),
                                  shown="matched against every topic")
    enabled: bool = key(True, "`false` keeps the source configured but never fetches it.", c.boolean)
    backfill: timedelta = key("2d", "On the first fetch, keep only mentions published this long ago or later.",
                              c.duration())

    def feeds(self, topic: str) -> bool:
        """Whether this source's mentions can belong to `topic` (a source without `topics` feeds every one)."""
        return not self.topics or topic in self.topics


SECURITY_PORTS = {"none": 25, "starttls": 587, "ssl": 465}


@dataclass(frozen=True, slots=True, kw_only=True)
class EmailConfig:
    """How mail is sent. Optional; without it nothing is mailed."""

    host: str = key("localhost", "SMTP server.", c.string())
    port: int = key(None, "SMTP port; absent, it follows `security`: 25 (none), 587 (starttls), 465 (ssl).",
                    c.integer(minimum=1, maximum=65535), shown="follows `security`", value=SECURITY_PORTS["none"])
    security: str = key("none", "`none`, `starttls` (upgrade a plain connection) or `ssl` (TLS from the start).",
                        c.string(choices=tuple(SECURITY_PORTS)))
    username_env: str | None = key(None, "Name of the environment variable holding the SMTP user name.", c.env_name,
                                   shown="no login")
    password_env: str | None = key(None, "Name of the environment variable holding the SMTP password.", c.env_name,
                                   shown="no login")
    sender: str = key(REQUIRED, "Sender, like `Listener <listener@example.org>`.", c.address, name="from")
    to: tuple[str, ...] = key(REQUIRED, "Recipient addresses: a non-empty list.", c.list_of(c.address, non_empty=True))
    subject_prefix: str = key("[listener]", "Put in front of every subject.", c.string(empty=True))
    timeout: timedelta = key("30s", "Time limit of one SMTP conversation.", c.duration(positive=True))


@dataclass(frozen=True, slots=True)
class NotifyConfig:
    """How queued notifications (email and webhooks) are retried when delivery fails."""

    retry_first: timedelta = key("30s", "After a failed delivery (SMTP server down, webhook answering 5xx), wait this "
                                        "long before the first retry; the wait doubles on each failure.",
                                 c.duration(positive=True))
    retry_max: timedelta = key("5m", "The longest wait between retries (they go on until the message is delivered).",
                               c.duration(positive=True))


@dataclass(frozen=True, slots=True)
class DigestConfig:
    """The daily digest mail."""

    at: time = key("08:00", "Time of day (HH:MM, 24-hour clock) the daily digest is sent.", c.time_of_day)
    timezone: str = key("UTC", "IANA time zone of `at`, like `Europe/Amsterdam`.", c.timezone)
    to: tuple[str, ...] = key(None, "Recipient addresses; absent sends to `email.to`.", c.list_of(c.address),
                              shown="email.to", value=())
    topics: tuple[str, ...] = key(None, "Topics (by name) in the digest; absent includes all.", c.list_of(c.defined("topic")),
                                  shown="all topics", value=())
    enabled: bool = key(True, "`false` sends no digest.", c.boolean)

    @property
    def tzinfo(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


SPIKE_KINDS = ("volume_spike", "negative_spike", "backlash")
SURGES = ("worse", "not_better", "all")
SEVERITIES = ("info", "warning", "critical")
# The keys only some kinds of rule take, with their defaults for that kind; these also override
# the common defaults (backlash's min_count, the spikes' `for`).
ALERT_KINDS: dict[str, dict[str, Any]] = {
    "volume_spike": {"ratio": 3.0, "for": "10m", "surges": "worse"},
    "negative_spike": {"negative_share": 0.4, "ratio": 2.0, "for": "10m"},
    "backlash": {"ratio": 5.0, "negative_share": 0.35, "min_count": 6},
    "keyword": {"query": REQUIRED, "min_count": 1},
    "sql": {"sql": REQUIRED},
}
ALERT_KIND_ONLY_KEYS = ("ratio", "surges", "negative_share", "query", "sql")


@dataclass(frozen=True, slots=True)
class AlertRule:
    """Rules that notify when something happens; one `[[alerts]]` table per rule."""

    name: str = _name_key()
    kind: str = key(REQUIRED, f"`{'`, `'.join(list(ALERT_KINDS)[:-1])}` or `{list(ALERT_KINDS)[-1]}`.",
                    c.string(choices=tuple(ALERT_KINDS)))
    topic: str | None = key(REQUIRED, "Topic (by name) the rule watches; optional for `sql`.", c.defined("topic"),
                            shown="required (optional for sql)", value=None)
    window: timedelta = key("1h", "Recent period the rule looks at.", c.duration(positive=True))
    baseline: timedelta = key("7d", "Longer earlier period the window is compared with (spike kinds).",
                              c.duration(positive=True))
    min_count: int = key(10, "Mentions needed in the window before the rule can fire (for backlash: posts with the "
                             "hashtag).", c.integer(minimum=0))
    for_: timedelta = key("0s", "How long the condition must hold before the alert fires (pending until then).",
                          c.duration(), name="for")
    keep_firing_for: timedelta = key("1h", "How long the evidence must be clearly gone before a firing alert "
                                           "resolves (no flapping).", c.duration())
    repeat: timedelta = key("24h", "Send a still-open incident's message again after this long.",
                            c.duration(positive=True))
    send_resolved: bool = key(True, "Also notify when the incident closes.", c.boolean)
    channels: tuple[str, ...] = key(["email"], "Where notifications go: `email` and/or the names of `[[webhooks]]`.",
                                    c.list_of(c.channel))
    severity: str = key("warning", "`info`, `warning` or `critical`.", c.string(choices=SEVERITIES))
    labels: Mapping[str, str] = key({}, 'Extra string labels passed on with notifications, like `{ team = "pr" }`.',
                                    c.labels)
    ratio: float | None = key(None, "Spike kinds: how many times the baseline's rate the window's rate must be.",
                              c.number(above=1.0))
    surges: str | None = key(None, "volume_spike: which surges fire: `worse` (their extra mentions more negative than "
                                   "usual), `not_better` (all but good news: more positive and less negative than "
                                   "usual) or `all`.", c.string(choices=SURGES))
    negative_share: float | None = key(None, "negative_spike, backlash: the least negative share (0 to 1, as the model "
                                             "scores it) that can fire, whatever the topic's usual share.",
                                       c.number(minimum=0.0, maximum=1.0))
    query: str | None = key(None, "keyword: the query (topic syntax) a mention in the window must match.", c.query)
    sql: str | None = key(None, "sql: one SELECT or WITH statement, run read-only on the mention database.", c.sql)
    matcher: Query | None = field(default=None, compare=False, repr=False)  # the parsed `query`


@dataclass(frozen=True, slots=True)
class WebhookConfig:
    """Chat webhooks for alerts (Slack, Mattermost, Rocket.Chat, Discord's /slack endpoint...): a JSON POST with a Slack-compatible `text` field."""

    name: str = _name_key("Unique name, used in an alert's `channels`")
    url_env: str = key(REQUIRED, "Name of the environment variable holding the webhook URL (it is a secret).",
                       c.env_name)
    timeout: timedelta = key("10s", "Time limit of one POST.", c.duration(positive=True))


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

    def topics_fed_by(self, sources: Iterable[str]) -> set[str]:
        """The topics that the named sources feed (a source without `topics` feeds every topic);
        a name that is no configured source feeds none."""
        configured = {s.name: s for s in self.sources}
        return {t.name for name in sources if name in configured for t in self.topics
                if configured[name].feeds(t.name)}

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


# The file's sections in the order the reference and the dump show them: name -> class, and
# which are arrays of tables ([[topics]]); the others are [tables].
SECTIONS: dict[str, type] = {
    "database": DatabaseConfig,
    "model": ModelConfig,
    "fetch": FetchConfig,
    "topics": Topic,
    "sources": SourceConfig,
    "email": EmailConfig,
    "notify": NotifyConfig,
    "digest": DigestConfig,
    "alerts": AlertRule,
    "webhooks": WebhookConfig,
}
ARRAY_SECTIONS = ("topics", "sources", "alerts", "webhooks")


def _kind_defaults(key_name: str, spec: Key) -> str:
    """An alert key's default for every kind, from ALERT_KINDS: "`10` (`8` backlash, `1` keyword)"."""
    from listener.config.toml import toml_value

    def text(v: Any) -> str:
        return "required for" if v is REQUIRED else f"`{toml_value(v)}`"

    by_kind: dict[str, list[str]] = {}
    for kind, values in ALERT_KINDS.items():
        if key_name in values:
            by_kind.setdefault(text(values[key_name]), []).append(kind)
    own = ", ".join(f"{v} {' and '.join(kinds)}" for v, kinds in by_kind.items())
    if spec.default is None:
        return own
    return f"{spec.default_text()} ({own})"


def _reference() -> dict[str, dict[str, Key]]:
    out = {}
    for section, cls in SECTIONS.items():
        keys = {}
        for name, (_, spec) in keys_of(cls).items():
            if cls is AlertRule and spec.shown is None and any(name in v for v in ALERT_KINDS.values()):
                spec = dataclasses.replace(spec, shown=_kind_defaults(name, spec))
            keys[name] = spec
        out[section] = keys
    return out


# section -> key as spelt in the file -> Key: what the README's reference and the starter file show.
REFERENCE: dict[str, dict[str, Key]] = _reference()
SECTION_HELP: dict[str, str] = {section: " ".join((cls.__doc__ or "").split()) for section, cls in SECTIONS.items()}

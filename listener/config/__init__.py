"""Configuration: config.toml, parsed once into frozen dataclasses.

    config = load_config("config.toml")      # ConfigError listing every problem, each "path: message"
    config.topic("acme").matcher             # the parsed query
    config.source("google-news").options     # an instance of that source kind's Options
    print(dump_config(config))               # effective config as TOML, defaults filled in, no secrets

Each key is declared once, in `schema` (its default, help and check); the parser (`parse`), the
dump (`dump`), the README's reference and the starter file (`docs`) are written from that.
Secrets never appear in the file: keys ending in `_env` (and source options marked secret) hold
the *name* of an environment variable; `resolve_secret` reads it when it is needed.
"""

from listener.config.docs import config_reference, starter_config
from listener.config.dump import dump_config
from listener.config.durations import format_duration, parse_duration
from listener.config.parse import load_config, parse_config, resolve_secret
from listener.config.schema import (REFERENCE, AlertRule, Config, DatabaseConfig, DigestConfig, EmailConfig,
                                    FetchConfig, Key, ModelConfig, NotifyConfig, SourceConfig, Topic, WebhookConfig)
from listener.errors import redact_url

__all__ = [
    "AlertRule",
    "Config",
    "DatabaseConfig",
    "DigestConfig",
    "EmailConfig",
    "FetchConfig",
    "Key",
    "ModelConfig",
    "NotifyConfig",
    "REFERENCE",
    "SourceConfig",
    "Topic",
    "WebhookConfig",
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

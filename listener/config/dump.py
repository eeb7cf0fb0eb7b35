"""`listener check-config --dump`: the effective config as TOML, every key with its value or its
default, secrets shown only by the name of their environment variable (and whether it is set)."""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from listener.config import checks as c
from listener.config.schema import ALERT_KIND_ONLY_KEYS, ALERT_KINDS, SECTIONS, Config, keys_of
from listener.config.text import toml_key
from listener.config.toml import toml_value
from listener.errors import redact_url


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
            self.lines.append(f"# {toml_key(key)}: not set{' (' + note + ')' if note else ''}")
        else:
            self.lines.append(f"{toml_key(key)} = {toml_value(value)}" + (f"  # {note}" if note else ""))

    def keys(self, section: str, item: Any, skip: tuple[str, ...] = ()) -> None:
        """Every declared key of `item`: a secret's variable with its state, an unset or empty
        value with what it means (the reference's `shown` default)."""
        for name, (field, spec) in keys_of(SECTIONS[section]).items():
            if name in skip:
                continue
            value = getattr(item, field)
            if spec.check is c.env_name and value is not None:
                self.value(name, value, _env_state(value))
            elif value is None or value == ():
                means = spec.default is None or spec.default == []  # not set or empty is a choice
                self.value(name, value, spec.shown or "" if means else "")
            else:
                self.value(name, value)

    def options(self, options: Any) -> None:
        """A source kind's own keys; URLs with their credentials redacted."""
        for f in dataclasses.fields(options):
            if not f.init:
                continue
            value = getattr(options, f.name)
            if f.metadata.get("secret"):
                if isinstance(value, tuple):
                    self.value(f.name, value, "; ".join(f"{v} {_env_state(v)}" for v in value))
                else:
                    self.value(f.name, value, _env_state(value) if value is not None else "")
                continue
            if isinstance(value, str) and (f.metadata.get("url") or value.startswith(("http://", "https://"))):
                value = redact_url(value)
            elif isinstance(value, tuple) and f.metadata.get("url"):
                value = tuple(redact_url(v) for v in value)
            self.value(f.name, value)


def dump_config(config: Config) -> str:
    """The effective config as TOML: every key with its value or default; secrets only by name."""
    w = _Writer()
    w.lines.append(f"# Effective configuration{' of ' + str(config.path) if config.path else ''}.")
    w.lines.append("# Defaults are filled in; secrets are shown by variable name, never by value.")
    for section in ("database", "model", "fetch"):
        w.header(f"[{section}]")
        w.keys(section, getattr(config, section))
    for topic in config.topics:
        w.header("[[topics]]")
        w.keys("topics", topic)
    for source in config.sources:
        w.header("[[sources]]")
        w.value("name", source.name)
        w.value("kind", source.kind)
        w.options(source.options)
        w.keys("sources", source, skip=("name", "kind"))
    if config.email is not None:
        w.header("[email]")
        w.keys("email", config.email)
    else:
        w.header("# [email]: not set (nothing is mailed)")
    for section in ("notify", "digest"):
        w.header(f"[{section}]")
        w.keys(section, getattr(config, section))
    for hook in config.webhooks:
        w.header("[[webhooks]]")
        w.keys("webhooks", hook)
    for rule in config.alerts:
        w.header("[[alerts]]")
        w.keys("alerts", rule, skip=tuple(k for k in ALERT_KIND_ONLY_KEYS if k not in ALERT_KINDS[rule.kind]))
    return "\n".join(w.lines) + "\n"

"""`listener check-config --dump`: the effective config as TOML, every key with its value or its
default, secrets shown only by the name of their environment variable (and whether it is set)."""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from listener.config import checks as c
from listener.config.schema import ALERT_KIND_ONLY_KEYS, ALERT_KINDS, ARRAY_SECTIONS, SECTIONS, Config, keys_of
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
    for section in SECTIONS:
        if section == "email" and config.email is None:
            w.header("# [email]: not set (nothing is mailed)")
            continue
        array = section in ARRAY_SECTIONS
        for item in getattr(config, section) if array else [getattr(config, section)]:
            w.header(f"[[{section}]]" if array else f"[{section}]")
            skip: tuple[str, ...] = ()
            if section == "sources":
                w.value("name", item.name)
                w.value("kind", item.kind)
                w.options(item.options)
                skip = ("name", "kind")
            elif section == "alerts":
                skip = tuple(k for k in ALERT_KIND_ONLY_KEYS if k not in ALERT_KINDS[item.kind])
            w.keys(section, item, skip)
    return "\n".join(w.lines) + "\n"

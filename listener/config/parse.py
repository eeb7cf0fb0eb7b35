"""Reading config.toml: every key checked as `schema` declares it, every problem reported at once.

Parsing is strict, in the manner of Prometheus: unknown keys are errors, every value is checked
for its type and range, and all problems are reported together, each naming its path
(`sources[2].every: "10 min" is not a duration like 30s, 10m, 1h, 7d`). What one key cannot say
alone is checked here: names unique per section, references to topics and channels, a kind's own
keys and defaults, keys that go in pairs.
"""

from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import Collection, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

from listener import sources
from listener.config import checks as c
from listener.config.checks import INVALID, REQUIRED, Reader
from listener.config.durations import format_duration
from listener.config.options import parse_options
from listener.config.schema import (ALERT_KIND_ONLY_KEYS, ALERT_KINDS, SECTIONS, SECURITY_PORTS, SPIKE_KINDS,
                                    AlertRule, Config, DatabaseConfig, DigestConfig, EmailConfig, FetchConfig,
                                    ModelConfig, NotifyConfig, SourceConfig, Topic, WebhookConfig, keys_of)
from listener.config.text import got, join, toml_key
from listener.errors import ConfigError, env_secret


def read_keys(r: Reader, table: Mapping[str, Any], path: str, cls: type, *,
              defaults: Mapping[str, Any] | None = None, skip: Collection[str] = ()) -> dict[str, Any]:
    """The declared keys of `cls` read from `table`: field name -> checked value (or INVALID).
    `defaults` (by key as the file spells it) override the declared ones, as a rule kind's do."""
    defaults = defaults or {}
    return {field: r.get(table, path, name, spec.check, defaults.get(name, spec.default))
            for name, (field, spec) in keys_of(cls).items() if name not in skip}


def _table(r: Reader, data: Mapping[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        r.problem(key, f"expected a table ([{key}]), {got(value)}")
        return {}
    return value


def _section(r: Reader, data: Mapping[str, Any], key: str) -> dict[str, Any]:
    """A [table] section's declared keys, read and checked; unknown keys are problems."""
    cls = SECTIONS[key]
    t = _table(r, data, key)
    r.keys(t, key, list(keys_of(cls)))
    return read_keys(r, t, key, cls)


def _tables(r: Reader, data: Mapping[str, Any], key: str) -> list[tuple[str, dict[str, Any]]]:
    value = data.get(key, [])
    if isinstance(value, dict):
        r.problem(key, f"expected an array of tables ([[{key}]]), got a table ([{key}])")
        return []
    if not isinstance(value, list):
        r.problem(key, f"expected an array of tables ([[{key}]]), {got(value)}")
        return []
    out = []
    for i, item in enumerate(value):
        if isinstance(item, dict):
            out.append((f"{key}[{i}]", item))
        else:
            r.problem(f"{key}[{i}]", f"expected a table, {got(item)}")
    return out


def _names(r: Reader, items: list[tuple[str, dict[str, Any]]]) -> dict[str, str]:
    """Each item's `name` (checked, unique) -> its path. Bad names are kept: no cascade of errors."""
    seen: dict[str, str] = {}
    for path, table in items:
        name = table.get("name")
        if name is None:
            continue  # reported as missing when the item is read
        if c.name(r, f"{path}.name", name) is INVALID:
            if isinstance(name, str):
                seen.setdefault(name, path)
            continue
        if name in seen:
            r.problem(f"{path}.name", f"duplicate name '{name}' (also {seen[name]})")
        else:
            seen[name] = path
    return seen


def _with_matcher(v: dict[str, Any]) -> dict[str, Any]:
    """A checked `query` is (text, parsed Query): split it into `query` and `matcher`."""
    query = v.get("query")
    if query is not None:
        v["query"], v["matcher"] = query if query is not INVALID else (INVALID, None)
    return v


def _parse_topics(r: Reader, data: Mapping[str, Any]) -> tuple[Topic, ...]:
    items = _tables(r, data, "topics")
    r.names["topic"] = _names(r, items)
    topics = []
    for path, t in items:
        r.keys(t, path, list(keys_of(Topic)))
        topics.append(Topic(**_with_matcher(read_keys(r, t, path, Topic))))
    return tuple(topics)


def _source_options_class(r: Reader, path: str, kind: Any) -> type | None:
    if kind is INVALID:
        return None
    if kind not in sources.KINDS:
        r.problem(f"{path}.kind", f"unknown kind '{kind}' (known: {', '.join(sorted(sources.KINDS))})")
        return None
    try:
        return sources.source_class(kind).Options
    except (ImportError, AttributeError) as e:
        r.problem(f"{path}.kind", f"cannot load source kind '{kind}': {e}")
        return None


def _parse_sources(r: Reader, data: Mapping[str, Any]) -> tuple[SourceConfig, ...]:
    items = _tables(r, data, "sources")
    _names(r, items)
    common = keys_of(SourceConfig)
    out = []
    for path, t in items:
        kind = r.get(t, path, "kind", c.string(), REQUIRED)
        options_class = _source_options_class(r, path, kind)
        if options_class is not None:
            option_names = [f.name for f in dataclasses.fields(options_class) if f.init]
            r.keys(t, path, option_names + [k for k in common if k not in option_names])
        # Without a known kind, no key can be called unknown: the kind's Options decide.
        v = read_keys(r, t, path, SourceConfig, skip={"kind"})
        option_table = {k: value for k, value in t.items() if k not in common}
        options = parse_options(r, path, option_table, options_class) if options_class else INVALID
        out.append(SourceConfig(kind=kind, options=options, **v))
    return tuple(out)


def _parse_email(r: Reader, data: Mapping[str, Any]) -> EmailConfig | None:
    if "email" not in data:
        return None
    v = _section(r, data, "email")
    if v["port"] is None:
        v["port"] = SECURITY_PORTS.get(v["security"], SECURITY_PORTS["none"])
    if (v["username_env"] is None) != (v["password_env"] is None):
        missing = "password_env" if v["password_env"] is None else "username_env"
        other = "username_env" if missing == "password_env" else "password_env"
        r.problem(f"email.{missing}", f"required when {other} is set (SMTP login needs both)")
    return EmailConfig(**v)


def _parse_notify(r: Reader, data: Mapping[str, Any]) -> NotifyConfig:
    v = _section(r, data, "notify")
    if INVALID not in v.values() and v["retry_max"] < v["retry_first"]:
        r.problem("notify.retry_max", f"must be at least notify.retry_first ({format_duration(v['retry_first'])})")
    return NotifyConfig(**v)


def _parse_webhooks(r: Reader, data: Mapping[str, Any]) -> tuple[WebhookConfig, ...]:
    items = _tables(r, data, "webhooks")
    _names(r, items)
    out = []
    for path, t in items:
        r.keys(t, path, list(keys_of(WebhookConfig)))
        v = read_keys(r, t, path, WebhookConfig)
        if v["name"] == "email":
            r.problem(f"{path}.name", "'email' is the email channel's name: choose another")
        out.append(WebhookConfig(**v))
    r.names["channel"] = dict.fromkeys(["email"] + [h.name for h in out if isinstance(h.name, str)], "")
    return tuple(out)


def _parse_digest(r: Reader, data: Mapping[str, Any], email: EmailConfig | None) -> DigestConfig:
    v = _section(r, data, "digest")
    if v["to"] is None:
        v["to"] = email.to if email is not None and email.to is not INVALID else ()
    if v["topics"] is None:
        v["topics"] = tuple(r.names.get("topic", ()))
    return DigestConfig(**v)


def _name_rules_in_problems(r: Reader, items, first: int) -> None:
    """`alerts[2].window: ...` -> `alerts[2].window (rule 'hijack'): ...` for rules with a name."""
    names = {path: t.get("name") for path, t in items if isinstance(t.get("name"), str)}
    for i in range(first, len(r.problems)):
        where, sep, message = r.problems[i].partition(": ")
        base = where.split(".", 1)[0]
        if sep and base in names:
            r.problems[i] = f"{where} (rule '{names[base]}'): {message}"


def _alert_unknown_keys(r: Reader, path: str, t: Mapping[str, Any], kind: Any, own: list[str]) -> None:
    keys = keys_of(AlertRule)
    common = [k for k in keys if k not in ALERT_KIND_ONLY_KEYS]
    for key in t:
        if key in common or key in own:
            continue
        if kind is not INVALID and key in ALERT_KIND_ONLY_KEYS:
            takers = ", ".join(k for k in ALERT_KINDS if key in ALERT_KINDS[k])
            r.problem(join(path, key), f"not a key of {kind} rules ({key} is for {takers})")
        elif kind is INVALID and key in keys:
            continue  # can't tell without a kind
        else:
            r.problem(join(path, key), f"unknown key (known: {', '.join(common + own)})")


def _parse_alert(r: Reader, path: str, t: Mapping[str, Any]) -> AlertRule:
    kind = r.get(t, path, "kind", c.string(), REQUIRED)
    if kind is not INVALID and kind not in ALERT_KINDS:
        kind = r.problem(f"{path}.kind", f"unknown kind '{kind}' (known: {', '.join(sorted(ALERT_KINDS))})")
    specific = ALERT_KINDS.get(kind, {}) if kind is not INVALID else {}
    _alert_unknown_keys(r, path, t, kind, [k for k in specific if k in ALERT_KIND_ONLY_KEYS])
    defaults = dict(specific, topic=None if kind == "sql" else REQUIRED)
    skip = {"kind"} | {k for k in ALERT_KIND_ONLY_KEYS if k not in specific}
    v = _with_matcher(read_keys(r, t, path, AlertRule, defaults=defaults, skip=skip))
    window, baseline = v["window"], v["baseline"]
    if kind == "volume_spike" and baseline is not INVALID and baseline < timedelta(days=1):
        r.problem(f"{path}.baseline", f"{format_duration(baseline)} is less than 1d: a volume spike compares "
                                      "with the same hour on earlier days")
    elif kind in SPIKE_KINDS and INVALID not in (window, baseline) and baseline <= window:
        r.problem(f"{path}.baseline",
                  f"{format_duration(baseline)} must be longer than window ({format_duration(window)})")
    return AlertRule(kind=kind, **v)


def _parse_alerts(r: Reader, data: Mapping[str, Any]) -> tuple[AlertRule, ...]:
    items = _tables(r, data, "alerts")
    first_problem = len(r.problems)
    _names(r, items)
    out = tuple(_parse_alert(r, path, t) for path, t in items)
    _name_rules_in_problems(r, items, first_problem)
    return out


def parse_config(data: Mapping[str, Any], *, file: str | None = None, base_dir: Path | None = None) -> Config:
    """Check a parsed TOML document and build the Config; ConfigError lists every problem found.

    Relative paths are resolved against `base_dir`: the folder of `file` when not given, else the
    current directory.
    """
    if base_dir is None:
        base_dir = Path(file).parent if file else Path.cwd()
    r = Reader(base_dir)
    if not isinstance(data, Mapping):
        raise ConfigError(["expected a TOML document (a table) at the top level"], file=file)
    for key in data:
        if key not in SECTIONS:
            what = "section" if isinstance(data[key], (dict, list)) else "key"
            r.problem(toml_key(key), f"unknown {what} (known sections: {', '.join(SECTIONS)})")
    database = DatabaseConfig(**_section(r, data, "database"))
    model = ModelConfig(**_section(r, data, "model"))
    fetch = FetchConfig(**_section(r, data, "fetch"))
    topics = _parse_topics(r, data)
    source_configs = _parse_sources(r, data)
    email = _parse_email(r, data)
    digest = _parse_digest(r, data, email)
    webhooks = _parse_webhooks(r, data)
    notify = _parse_notify(r, data)
    alerts = _parse_alerts(r, data)
    if r.problems:
        raise ConfigError(r.problems, file=file)
    return Config(path=Path(file).absolute() if file else None, database=database, model=model, fetch=fetch,
                  topics=topics, sources=source_configs, email=email, digest=digest, alerts=alerts,
                  webhooks=webhooks, notify=notify)


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

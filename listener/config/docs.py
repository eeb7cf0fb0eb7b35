"""The config's documentation, written from its declarations (`schema` and each source kind's
Options): the README's configuration reference, and the commented starter file `listener init`
writes (the repository's config.toml is that file).

The starter is an example for a Dutch agency watching its client "Acme": the values below are the
example's; every comment on a key is that key's help from the schema, so the two never disagree.
"""

from __future__ import annotations

import dataclasses
import textwrap
from dataclasses import dataclass, field
from typing import Any

from listener import sources
from listener.config.checks import REQUIRED
from listener.config.schema import ALERT_KIND_ONLY_KEYS, ALERT_KINDS, ARRAY_SECTIONS, REFERENCE, SECTION_HELP, Key
from listener.config.toml import toml_string, toml_value

# --------------------------------------------------------------------------------------------
# The README's reference.


def _option_default(f: dataclasses.Field) -> str:
    if f.default is not dataclasses.MISSING:
        return "not set" if f.default is None else f"`{toml_value(f.default)}`"
    if f.default_factory is not dataclasses.MISSING:
        return f"`{toml_value(f.default_factory())}`"
    return "required"


def _option_help(f: dataclasses.Field) -> str:
    help_text = f.metadata.get("help", "")
    return help_text + (" (the name of an environment variable)" if f.metadata.get("secret") else "")


def _options(kind: str) -> list[dataclasses.Field]:
    return [f for f in dataclasses.fields(sources.source_class(kind).Options) if f.init]


def config_reference() -> str:
    """The README's configuration reference: one Markdown table per section and per source kind."""

    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    out = ["## Configuration reference", ""]
    for section, keys in REFERENCE.items():
        title = f"[[{section}]]" if section in ARRAY_SECTIONS else f"[{section}]"
        out += [f"### `{title}`", "", SECTION_HELP[section], "", "| key | default | meaning |", "| --- | --- | --- |"]
        for name, spec in keys.items():
            out.append(f"| `{name}` | {cell(spec.default_text())} | {cell(spec.help)} |")
        out.append("")
    for kind in sorted(sources.KINDS):
        options_class = sources.source_class(kind).Options
        out += [f'### `[[sources]]` with `kind = "{kind}"`', ""]
        doc = (options_class.__doc__ or "").strip().splitlines()
        if doc and not doc[0].startswith(options_class.__name__ + "("):
            out += [doc[0], ""]
        out += ["| key | default | meaning |", "| --- | --- | --- |"]
        for f in _options(kind):
            out.append(f"| `{f.name}` | {cell(_option_default(f))} | {cell(_option_help(f))} |")
        out.append("")
    return "\n".join(out).rstrip() + "\n"


# --------------------------------------------------------------------------------------------
# The starter file.


@dataclass(frozen=True)
class _Table:
    """One table of the example. `values` are written as keys; `commented` as `# key = value`
    (optional keys the example leaves at their default). `full` tables show every key, the
    defaults too; the others only their own values. A key's help is written the first time
    the key appears in its section. `off` comments the whole table out."""

    section: str
    values: dict[str, Any] = field(default_factory=dict)
    commented: dict[str, Any] = field(default_factory=dict)
    note: str = ""
    full: bool = False
    off: bool = False


HEAD = """\
listener configuration: an example for a Dutch agency watching its client "Acme".

Edit it, then check it with `listener check-config` (add `--dump` to see every effective value).
Every key is optional unless it says "Required"; an unknown or misspelt key is an error, and all
problems are reported at once with their place
(like `sources[2].every: "10 min" is not a duration like 30s, 10m, 1h, 7d`).

Durations are strings: "30s", "10m", "1h", "7d", "2w" or combinations like "1h30m".
Secrets never go in this file: keys ending in `_env` hold the NAME of an environment variable."""

# What a section's banner adds to its help.
SECTION_NOTES = {
    "topics": "Queries ignore case and accents. Single quotes make a TOML literal string, so "
              "double quotes inside need no escaping.",
    "alerts": "Kinds: backlash (a hashtag bursts and turns negative: a hijacked campaign), volume_spike (far more "
              "mentions than usual for the time of day), negative_spike (a far more negative share than usual), "
              "keyword (a mention matches a query), sql (a query on the database returns rows). Alerts on one "
              "topic that overlap in time are one incident: one mail when it opens (at once for a backlash or "
              "keyword alert), one when it closes. The defaults suit social data; a new install is \"learning\" "
              "for the first week (`listener alerts` shows it) and does not cry wolf meanwhile.",
}

EXAMPLE = (
    _Table("database", full=True, commented={"url": "postgresql://listener@db.agency.example:5432/listener", "keep": "180d"}),
    _Table("model", full=True, commented={"cache_dir": ".cache/listener", "threads": 2}),
    _Table("fetch", full=True, commented={"user_agent": "listener (+mailto:monitoring@agency.example)"}),
    _Table("topics", full=True, values={"name": "acme", "query": 'acme OR "acme foods" OR #acme OR @acme -"acme anvil"',
                                        "languages": ["nl", "en"]}),
    _Table("topics", note="The summer campaign and its hashtag.",
           values={"name": "acme-zomer", "query": '#acmezomer OR "acme zomerdeal"', "languages": ["nl"]}),
    _Table("sources", full=True, note="Google News search, Dutch edition.", values={
        "name": "google-news-nl", "kind": "rss",
        "url": "https://news.google.com/rss/search?q=acme+OR+%22acme+foods%22&hl=nl&gl=NL&ceid=NL:nl",
        "every": "30m"}),
    _Table("sources", note="Public Mastodon posts with #acme (any Mastodon server has /tags/NAME.rss).", values={
        "name": "mastodon-acme", "kind": "rss", "url": "https://mastodon.social/tags/acme.rss", "every": "10m"}),
    _Table("sources", note="The campaign hashtag on Mastodon: every post in it belongs to the campaign topic.",
           values={"name": "mastodon-acmezomer", "kind": "rss", "url": "https://mastodon.social/tags/acmezomer.rss",
                   "every": "10m", "topics": ["acme-zomer"]}),
    _Table("sources", note="Reddit search, newest first. Reddit asks for a slow pace: fetch every hour.", values={
        "name": "reddit-acme", "kind": "rss", "url": "https://www.reddit.com/search.rss?q=acme&sort=new",
        "every": "1h", "backfill": "7d"}),
    _Table("email", full=True, values={"from": "Listener <listener@agency.example>", "to": ["acme-team@agency.example"]},
           commented={"port": 587, "username_env": "SMTP_USERNAME", "password_env": "SMTP_PASSWORD"},
           note="For an SMTP login, export the variables named "
                "below before starting listener (`export SMTP_PASSWORD=...`)."),
    _Table("notify", full=True),
    _Table("digest", full=True, values={"timezone": "Europe/Amsterdam",
                                        "to": ["acme-team@agency.example", "accountmanager@agency.example"],
                                        "topics": ["acme", "acme-zomer"]}),
    _Table("alerts", full=True, values={"name": "acme-backlash", "kind": "backlash", "topic": "acme",
                                        "severity": "critical", "labels": {"client": "acme", "team": "webcare"}}),
    _Table("alerts", values={"name": "acme-volume", "kind": "volume_spike", "topic": "acme", "surges": "worse"}),
    _Table("alerts", values={"name": "acme-negative", "kind": "negative_spike", "topic": "acme"}),
    _Table("alerts", values={"name": "acme-recall", "kind": "keyword", "topic": "acme", "min_count": 1,
                             "query": 'recall OR lawsuit OR "food poisoning" OR terugroepactie OR voedselvergiftiging',
                             "severity": "critical"}),
    _Table("alerts", off=True, note="An sql rule fires when its query returns rows; `topic` is optional. This one: "
                                    "a source without a good fetch for a day.",
           values={"name": "stale-sources", "kind": "sql",
                   "sql": "SELECT name FROM sources WHERE last_success_at < "
                          "strftime('%Y-%m-%dT%H:%M:%S', 'now', '-1 day')"}),
    _Table("webhooks", off=True, note="Name one in an alert's `channels` to use it; the URL comes from the "
                                      "environment (export LISTENER_SLACK_WEBHOOK=https://hooks.slack.com/...).",
           values={"name": "slack", "url_env": "LISTENER_SLACK_WEBHOOK", "timeout": "10s"}),
)


def _comment(text: str) -> list[str]:
    return textwrap.wrap(text, width=98, initial_indent="# ", subsequent_indent="# ", break_on_hyphens=False)


def _value(value: Any) -> str:
    """A value as the example writes it: strings holding double quotes as TOML literal strings."""
    if isinstance(value, str) and '"' in value and "'" not in value and "\n" not in value:
        return f"'{value}'"
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    return toml_value(value)


def _keys(table: _Table) -> dict[str, tuple[str, bool]]:
    """The table's keys in reference order -> (help, required), the kind's own keys after `kind`."""
    out: dict[str, tuple[str, bool]] = {}
    kind = table.values.get("kind")
    for name, spec in REFERENCE[table.section].items():
        if name not in table.values and name not in table.commented and not table.full:
            continue
        if table.full and table.section == "alerts" and _not_for_kind(name, kind):
            continue
        out[name] = (spec.help, spec.default is REQUIRED)
        if name == "kind" and table.section == "sources":
            for f in _options(kind):
                out[f.name] = (_option_help(f) + ".", f.default is dataclasses.MISSING
                               and f.default_factory is dataclasses.MISSING)
    return out


def _not_for_kind(name: str, kind: str) -> bool:
    return name in ALERT_KIND_ONLY_KEYS and name not in ALERT_KINDS[kind]


def _default(table: _Table, name: str, spec: Key | None) -> Any:
    if table.section == "alerts":
        return ALERT_KINDS[table.values["kind"]].get(name, spec.default)
    return spec.default if spec is not None else None


def starter_config() -> str:
    """A commented, working config.toml to start from (what `listener init` writes)."""
    lines = [("# " + line).rstrip() for line in HEAD.splitlines()]
    helped: set[tuple[str, str]] = set()
    section = None
    for table in EXAMPLE:
        if table.section != section:
            section = table.section
            title = f"[[{section}]]" if section in ARRAY_SECTIONS else f"[{section}]"
            lines += ["", f"# --- {title} " + "-" * (90 - len(title))]
            lines += _comment(SECTION_HELP[section] + (" " + SECTION_NOTES[section] if section in SECTION_NOTES else ""))
        lines.append("")
        off = "# " if table.off else ""
        if table.note:
            lines += _comment(table.note)
        lines.append(off + (f"[[{section}]]" if section in ARRAY_SECTIONS else f"[{section}]"))
        for name, (help_text, required) in _keys(table).items():
            spec = REFERENCE[section].get(name)
            if (section, name) not in helped:
                helped.add((section, name))
                if section == "alerts" and spec.shown and not required:  # defaults that differ by kind
                    help_text += f" Default: {spec.shown}."
                lines += _comment(("Required. " if required else "") + help_text)
            if name in table.values:
                lines.append(f"{off}{name} = {_value(table.values[name])}")
            elif name in table.commented:
                lines.append(f"# {name} = {_value(table.commented[name])}")
            else:
                default = _default(table, name, spec)
                assert default not in (None, REQUIRED), f"the example needs a value for {section}.{name}"
                lines.append(f"{off}{name} = {_value(default)}")
    return "\n".join(lines) + "\n"

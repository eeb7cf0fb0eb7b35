"""Checks of config values. Each takes (reader, path, value) and returns the parsed value, or INVALID
after recording a problem on the reader, so that every problem of a file is reported at once."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from datetime import time, timedelta
from email.utils import parseaddr
from pathlib import Path
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from listener.config.durations import format_duration, parse_duration
from listener.config.text import got, join, one_line, show, type_name
from listener.errors import QuerySyntaxError, redact_url

NAME_HELP = "lower-case letters, digits, `-` and `_`, starting with a letter or digit, 64 at most"
NAME_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
ENV_NAME_RE = re.compile(r"[A-Z_][A-Z0-9_]*")
LABEL_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
LANGUAGE_RE = re.compile(r"[a-z]{2}")


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()  # the default of a key that must be given

class _Invalid:
    def __repr__(self) -> str:
        return "INVALID"


INVALID: Any = _Invalid()
Check = Callable[["Reader", str, Any], Any]


class Reader:
    """Collects the problems of one file; `names` holds what other sections define (`topic` ->
    name -> path, `channel` -> ...), for the checks of keys that refer to them."""

    def __init__(self, base_dir: Path):
        self.base_dir = base_dir
        self.problems: list[str] = []
        self.names: dict[str, Mapping[str, str]] = {}

    def problem(self, path: str, message: str) -> Any:
        """Record a problem: one line whatever a value echoed in it holds (controls escaped)."""
        self.problems.append(one_line(f"{path}: {message}"))
        return INVALID

    def get(self, table: Mapping[str, Any], path: str, key: str, check: Check, default: Any) -> Any:
        """table[key] checked; the default (a TOML value, REQUIRED or None) when absent."""
        where = join(path, key)
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
                self.problem(join(path, key), f"unknown key (known: {', '.join(known)})")




def string(*, choices: tuple[str, ...] | None = None, empty: bool = False) -> Check:
    def check(r: Reader, path: str, value: Any) -> Any:
        if not isinstance(value, str):
            return r.problem(path, f"expected a string, {got(value)}")
        if choices is not None and value not in choices:
            known = ", ".join(f"'{c}'" for c in choices)
            return r.problem(path, f"{show(value)} is not one of {known}")
        if not empty and not value.strip():
            return r.problem(path, "must not be empty")
        return value

    return check


def matching(pattern: re.Pattern[str], what: str) -> Check:
    """A string the whole of which `pattern` matches; else "<value> is not <what>"."""

    def check(r: Reader, path: str, value: Any) -> Any:
        if not isinstance(value, str):
            return r.problem(path, f"expected a string, {got(value)}")
        if not pattern.fullmatch(value):
            return r.problem(path, f"{show(value)} is not {what}")
        return value

    return check


name = matching(NAME_RE, f"a valid name ({NAME_HELP})")
language = matching(LANGUAGE_RE, 'an ISO 639-1 language code (two lower-case letters, like "nl")')


def integer(*, minimum: int | None = None, maximum: int | None = None) -> Check:
    def check(r: Reader, path: str, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int):
            return r.problem(path, f"expected an integer, {got(value)}")
        if minimum is not None and value < minimum:
            return r.problem(path, f"{value} is less than the minimum of {minimum}")
        if maximum is not None and value > maximum:
            return r.problem(path, f"{value} is more than the maximum of {maximum}")
        return value

    return check


def number(*, minimum: float | None = None, maximum: float | None = None, above: float | None = None) -> Check:
    def check(r: Reader, path: str, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return r.problem(path, f"expected a number, {got(value)}")
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


def boolean(r: Reader, path: str, value: Any) -> Any:
    if not isinstance(value, bool):
        return r.problem(path, f"expected true or false, {got(value)}")
    return value


def duration(*, minimum: timedelta | None = None, positive: bool = False) -> Check:
    def check(r: Reader, path: str, value: Any) -> Any:
        if not isinstance(value, str):
            return r.problem(path, f'expected a duration string like "15m", {got(value)}')
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


def list_of(item: Check, *, non_empty: bool = False, unique: bool = True) -> Check:
    """A TOML array checked item by item (paths `key[i]`), as a tuple."""

    def check(r: Reader, path: str, value: Any) -> Any:
        if not isinstance(value, list):
            return r.problem(path, f"expected an array, {got(value)}")
        if non_empty and not value:
            return r.problem(path, "must not be empty")
        out = []
        ok = True
        for i, element in enumerate(value):
            parsed = item(r, f"{path}[{i}]", element)
            if parsed is INVALID:
                ok = False
            elif unique and parsed in out:
                r.problem(f"{path}[{i}]", f"{show(element)} is listed twice")
                ok = False
            else:
                out.append(parsed)
        return tuple(out) if ok else INVALID

    return check


def path(r: Reader, path: str, value: Any) -> Any:
    if not isinstance(value, str):
        return r.problem(path, f"expected a path string, {got(value)}")
    if not value.strip():
        return r.problem(path, "must not be empty")
    try:
        p = Path(value).expanduser()
    except RuntimeError:  # ~name of a user that does not exist
        return r.problem(path, f"{show(value)}: no such user's home folder")
    return p if p.is_absolute() else r.base_dir.absolute() / p


def database_url(r: Reader, path: str, value: Any) -> Any:
    """A PostgreSQL URL (`postgresql://user@host:5432/listener`) without a password: the password
    comes from the environment (PGPASSWORD, or ~/.pgpass), never from the file."""
    if not isinstance(value, str):
        return r.problem(path, f"expected a URL string, {got(value)}")
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("postgresql", "postgres") or re.search(r"\s", value):
        return r.problem(path, f"{show(redact_url(value))} is not a postgresql:// URL")
    if parts.password is not None:
        return r.problem(path, "must not hold a password: set PGPASSWORD in the environment (or use ~/.pgpass)")
    if not parts.path.strip("/"):
        return r.problem(path, f"{show(redact_url(value))} names no database (postgresql://user@host:5432/DATABASE)")
    return value


def env_name(r: Reader, path: str, value: Any) -> Any:
    # The value is echoed in neither message: someone may have pasted the secret itself here.
    if not isinstance(value, str):
        return r.problem(path, f"expected the name of an environment variable, got {type_name(value)}")
    if not ENV_NAME_RE.fullmatch(value):
        return r.problem(
            path,
            "must be the name of an environment variable (upper-case letters, digits and _, like "
            "SMTP_PASSWORD), not the secret itself",
        )
    return value


def url(r: Reader, path: str, value: Any) -> Any:
    if not isinstance(value, str):
        return r.problem(path, f"expected a URL string, {got(value)}")
    try:
        parts = urlsplit(value)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        parts, host = None, None
    if re.search(r"\s", value):
        return r.problem(path, f"{show(redact_url(value))} is not a URL: it contains white space")
    if parts is None or parts.scheme not in ("http", "https") or not host:
        return r.problem(path, f"{show(redact_url(value))} is not an http(s) URL with a host")
    return value


def address(r: Reader, path: str, value: Any) -> Any:
    if not isinstance(value, str):
        return r.problem(path, f"expected an email address string, {got(value)}")
    _, address = parseaddr(value)
    if not re.fullmatch(r"[^@\s<>]+@[^@\s<>]+", address or ""):
        return r.problem(path, f"{show(value)} is not an email address")
    return value


def time_of_day(r: Reader, path: str, value: Any) -> Any:
    if isinstance(value, time) and not value.second and not value.microsecond and value.tzinfo is None:
        return value  # a TOML local time, 08:00:00
    if isinstance(value, str):
        match = re.fullmatch(r"(\d{1,2}):(\d{2})", value)
        if match and int(match[1]) < 24 and int(match[2]) < 60:
            return time(int(match[1]), int(match[2]))
    return r.problem(path, f"{show(value)} is not a time of day like \"08:00\" (HH:MM, 24-hour clock)")


def timezone(r: Reader, path: str, value: Any) -> Any:
    if not isinstance(value, str):
        return r.problem(path, f"expected a time zone name, {got(value)}")
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a folder, or too long a name
        return r.problem(path, f"unknown time zone {show(value)} (use an IANA name like \"Europe/Amsterdam\")")
    return value


def query(r: Reader, path: str, value: Any) -> Any:
    """A query string, parsed: (text, Query)."""
    from listener.query import parse

    text = string()(r, path, value)
    if text is INVALID:
        return INVALID
    try:
        return text, parse(text)
    except QuerySyntaxError as e:
        return r.problem(path, f"{e.reason} at position {e.position}")


def defined(what: str) -> Check:
    """The name of a `what` (a topic) defined elsewhere in the file (`reader.names[what]`); without
    those names (a default checked on its own) any string."""

    def check(r: Reader, path: str, value: Any) -> Any:
        if not isinstance(value, str):
            return r.problem(path, f"expected a {what} name, {got(value)}")
        names = r.names.get(what)
        if names is not None and value not in names:
            return r.problem(path, f"unknown {what} '{value}' (defined: {', '.join(names) or 'none'})")
        return value

    return check


def channel(r: Reader, path: str, value: Any) -> Any:
    """A notification channel: `email` or a webhook's name (`reader.names["channel"]`)."""
    names = r.names.get("channel")
    return string(choices=tuple(names) if names is not None else None)(r, path, value)


def labels(r: Reader, path: str, value: Any) -> Any:
    if not isinstance(value, dict):
        return r.problem(path, f"expected a table of strings, {got(value)}")
    ok = True
    for name, text in value.items():
        where = join(path, name)
        if not LABEL_NAME_RE.fullmatch(name):
            r.problem(where, "not a valid label name (letters, digits and _, not starting with a digit)")
            ok = False
        elif not isinstance(text, str):
            r.problem(where, f"expected a string, {got(text)}")
            ok = False
    return MappingProxyType(dict(value)) if ok else INVALID


def sql_statements(sql: str) -> list[str]:
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


def sql(r: Reader, path: str, value: Any) -> Any:
    text = string()(r, path, value)
    if text is INVALID:
        return INVALID
    statements = sql_statements(text)
    if len(statements) != 1:
        return r.problem(path, f"must be a single statement, found {len(statements)}")
    first = statements[0].split(None, 1)[0].upper()
    if first not in ("SELECT", "WITH"):
        return r.problem(path, f"must start with SELECT or WITH, not {first}")
    return text


# --------------------------------------------------------------------------------------------
# Sections.

"""Exceptions of listener. Every message is one line: what failed, where, what to do."""

from __future__ import annotations

import os
import re
from urllib.parse import unquote, urlsplit, urlunsplit

from listener.sources.text import CONTROLS


class ListenerError(Exception):
    """Base class: an error a user can act on, shown as one line."""


class ConfigError(ListenerError):
    """The configuration is invalid. Carries every problem found, each with its path."""

    def __init__(self, problems: list[str] | str, file: str | None = None):
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        self.file = file
        where = f"{file}: " if file else ""
        if len(self.problems) == 1:
            message = where + self.problems[0]
        else:
            message = where + f"{len(self.problems)} problems: " + "; ".join(self.problems)
        super().__init__(message)


class QuerySyntaxError(ListenerError):
    """A topic or search query could not be parsed; `position` is the 0-based offset."""

    def __init__(self, message: str, query: str, position: int):
        self.query = query
        self.position = position
        self.reason = message
        super().__init__(f"{message} at position {position} in query {query!r}")


class FetchError(ListenerError):
    """A source could not be fetched or parsed. `retry_after` (seconds) when the server said so."""

    def __init__(self, message: str, retry_after: float | None = None, status: int | None = None):
        self.retry_after = retry_after
        self.status = status
        super().__init__(message)


class ModelError(ListenerError):
    """A sentiment model could not be loaded or run."""


class StoreError(ListenerError):
    """The mention database could not be opened, migrated or queried."""


# ---------------------------------------------------------------- what an error may say
# One redactor for every error text that is stored, printed or logged: secrets never leave the
# process, whichever server echoed them back.

_SECRETS: set[str] = set()
_SECRET_NAME = re.compile(r"token|secret|passw|pwd|apikey|api_key|api-key|credential|signature|session", re.IGNORECASE)
_SECRET_PARTS = {"key", "auth", "sig", "pass", "code"}  # whole parts only: `keywords` is no secret
_URL = re.compile(r"\b[A-Za-z][A-Za-z0-9+.\-]*://[^\s\"'<>`]+")
_AUTH = re.compile(r"\b(Basic|Bearer|Token|Bot|DPoP)(\s+|=)[A-Za-z0-9+/=._~\-]{6,}", re.IGNORECASE)
_JWT = re.compile(r"\beyJ[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]{5,}(\.[A-Za-z0-9_\-]*)?")
_SECRET_FIELD = re.compile(
    r"""(?ix)(["']?[\w\-]*(?:token|secret|passw|pwd|api[_\-]?key|credential|session)[\w\-]*["']?\s*[:=]\s*["']?)
        ([^"'&\s,;}]+)""")
MAX_ERROR = 500  # characters of an error text kept


def register_secret(value: str | None) -> None:
    """Remember a secret's value (from the environment) so that no error text can show it."""
    if value and len(value.strip()) >= 4:
        _SECRETS.add(value.strip())


def env_secret(name: str, *, secret: bool = True) -> str | None:
    """The value of environment variable `name` (None when unset), remembered as a secret unless
    `secret` is False: a user name, a client id or a handle is not one, and registering a common
    word ("listener", "admin") would blank it out of every message."""
    value = os.environ.get(name)
    if secret:
        register_secret(value)
    return value


def redact_url(url: str) -> str:
    """The URL with any user:password@ and secret-looking query values (token, key, ...) as REDACTED."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "REDACTED"
    netloc = parts.netloc
    if "@" in netloc:
        netloc = "REDACTED@" + netloc.rsplit("@", 1)[1]
    query = "&".join(
        (pair.split("=", 1)[0] + "=REDACTED") if _secret_param(pair.split("=", 1)[0]) else pair
        for pair in parts.query.split("&")
    ) if parts.query else ""
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def _secret_param(name: str) -> bool:
    name = unquote(name).lower()
    return bool(_SECRET_NAME.search(name)) or bool(_SECRET_PARTS & set(re.split(r"[_.\-\[\]]", name)))


def redact(text: str) -> str:
    """`text` with every remembered secret, credential in a URL, Authorization value, token-looking
    field and JWT replaced by REDACTED."""
    for secret in sorted(_SECRETS, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, "REDACTED")
    text = _URL.sub(lambda m: redact_url(m[0]), text)
    text = _AUTH.sub(lambda m: f"{m[1]}{m[2]}REDACTED", text)
    text = _JWT.sub("REDACTED", text)
    return _SECRET_FIELD.sub(lambda m: f"{m[1]}REDACTED", text)


def error_text(error: BaseException | str, limit: int = MAX_ERROR) -> str:
    """What an error may say to a person or a database: one line, no control characters, secrets
    redacted, at most `limit` characters."""
    text = str(error) if not isinstance(error, BaseException) or str(error) else type(error).__name__
    text = text.encode("utf-8", "replace").decode("utf-8") if not text.isascii() else text
    text = " ".join(CONTROLS.sub(" ", redact(text)).split())  # tabs and line breaks: split() joins them
    return text if len(text) <= limit else text[: limit - 1] + "…"

"""Exceptions of listener. Every message is one line: what failed, where, what to do."""

from __future__ import annotations


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

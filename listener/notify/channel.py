"""What every notification channel is: a class that delivers queued outbox rows.

    class Channel:
        def send_all(self, rows) -> Iterator[tuple[dict, Delivery]]  # one Delivery per row, in order

A channel that talks to one server per row implements `send(row)`; one that keeps a connection
open across rows (SMTP) overrides `send_all`. `send` returns nothing when the row is delivered
and raises DeliveryError otherwise; its `retry` says whether trying later can help (the row stays
queued) or not (it is given up and kept with its error). Alertmanager's notifiers return the same
pair (retry, err).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from listener.errors import ListenerError, error_text


class DeliveryError(ListenerError):
    """A notification could not be delivered. `retry`: whether trying again later can help (it
    stays queued) or not (it is given up, with this error)."""

    def __init__(self, message: str, retry: bool = True):
        self.retry = retry
        super().__init__(error_text(message))


@dataclass(frozen=True)
class Delivery:
    """What became of one row: delivered, or the error and whether a retry can help."""

    error: str | None = None
    retry: bool = True

    def __post_init__(self) -> None:
        if self.error is not None:  # what is stored and logged: one line, secrets redacted
            object.__setattr__(self, "error", error_text(self.error))

    @property
    def delivered(self) -> bool:
        return self.error is None

    @classmethod
    def failed(cls, exc: BaseException) -> Delivery:
        return cls(str(exc) or type(exc).__name__, getattr(exc, "retry", True))


DELIVERED = Delivery()


class Channel:
    """The base of every channel: `send` one row, or override `send_all` for a session of rows."""

    def send(self, row: dict) -> None:
        raise NotImplementedError

    def send_all(self, rows: Iterable[dict]) -> Iterator[tuple[dict, Delivery]]:
        for row in rows:
            try:
                self.send(row)
            except Exception as exc:  # noqa: BLE001 - one row's failure never blocks another
                yield row, Delivery.failed(exc)
            else:
                yield row, DELIVERED


def one_line(exc: BaseException) -> str:
    """The first line of an exception's text (its type's name when it has none)."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__

"""What an API's rate-limit headers say: how many requests remain, and when the window resets.

Reddit (`X-Ratelimit-*`), Bluesky (`RateLimit-*`) and Mastodon (`X-RateLimit-*`) send a pair of
headers: the requests remaining in the window and its reset. A source stops paging when too few
remain and returns the wait in `FetchResult.wait`. A reset comes as a delay in seconds (Reddit,
the IETF draft), as epoch seconds (Bluesky) or as a date (Mastodon); an absolute one is measured
on the server's clock (its `Date` header) when it sends one, so a skewed local clock cannot make
the wait wrong.
"""

from __future__ import annotations

from datetime import datetime

import httpx

from listener.sources.fields import number
from listener.sources.http import server_clock
from listener.sources.text import parse_datetime

__all__ = ["remaining", "reset_wait"]

_EPOCH_FROM = 1_000_000_000  # a reset number this large is a point in time (2001 on), not a delay


def remaining(headers: httpx.Headers, name: str) -> float | None:
    """The requests left, from header `name`; None when it is missing or not a number."""
    return number(headers.get(name))


def reset_wait(headers: httpx.Headers, name: str, now: datetime) -> float | None:
    """Seconds until the window resets, from header `name`; None when it is missing or unreadable."""
    value = headers.get(name, "")
    delay = number(value)
    if delay is not None and delay < _EPOCH_FROM:
        return delay
    when = parse_datetime(value)  # epoch seconds or a date
    if when is None:
        return None
    return max(0.0, (when - server_clock(headers, now)).total_seconds())

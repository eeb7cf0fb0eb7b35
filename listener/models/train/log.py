"""A training run's progress: one line at a time on stderr (stdout carries the final figures)."""

from __future__ import annotations

import sys

__all__ = ["log"]


def log(message: str) -> None:
    """Print one progress line to stderr at once."""
    print(message, file=sys.stderr, flush=True)

"""The pipeline: due sources fetched concurrently -> matched to topics -> stored -> scored.

    fetch.py     which sources are due, fetching each within the limits
    recording.py storing each result (many sources in one transaction) or failure (with backoff)
    loop.py      the daemon's fetching: one event loop in one thread, each source when it is due
    match.py     a source's mentions -> rows: hashtags, language, topics; the rest left out
    score.py     unscored mentions scored in batches by the sentiment model
    language.py  language identification for mentions whose source does not say

`fetch_due` and `score_pending` are plain functions: `listener fetch` calls them once (through
`run_cycle`), tests call them directly with an injected `now`; the daemon scores on a schedule and
fetches with a `FetchLoop` (each source through `fetch_source`, as `fetch_due` does).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from listener.config import Config
    from listener.pipeline.fetch import SourcePool, due_sources, fetch_due, fetch_due_async, fetch_source, http_settings
    from listener.pipeline.loop import FetchLoop
    from listener.pipeline.match import to_rows, topics_for
    from listener.pipeline.recording import Recorder, SourceOutcome, backoff, record
    from listener.pipeline.score import ScoreCache, score_pending, text_for_scoring
    from listener.store import MentionStore

# Each name is imported from its module when first asked for: a parse process, which needs only
# `match` (and unpickles it by name), does not load the HTTP client, the store and the scheduler with it.
_EXPORTS = {
    "fetch": ("SourcePool", "due_sources", "fetch_due", "fetch_due_async", "fetch_source", "http_settings"),
    "recording": ("Recorder", "SourceOutcome", "backoff", "record"),
    "loop": ("FetchLoop",),
    "match": ("to_rows", "topics_for"),
    "score": ("ScoreCache", "score_pending", "text_for_scoring"),
}
_HOME = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = sorted(["CycleReport", "run_cycle", *_HOME])


def __getattr__(name: str) -> Any:
    module = _HOME.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


@dataclass
class CycleReport:
    outcomes: list[SourceOutcome] = field(default_factory=list)
    scored: int = 0

    @property
    def new(self) -> int:
        return sum(o.new for o in self.outcomes)

    @property
    def failed(self) -> list[SourceOutcome]:
        return [o for o in self.outcomes if not o.ok]

    def summary(self) -> str:
        ok = len(self.outcomes) - len(self.failed)
        parts = [f"{len(self.outcomes)} source{'s' if len(self.outcomes) != 1 else ''} fetched ({ok} ok, {len(self.failed)} failed)",
                 f"{self.new} new mention{'s' if self.new != 1 else ''}",
                 f"{self.scored} scored"]
        return ", ".join(parts)


def run_cycle(config: Config, store: MentionStore, model_factory: Callable[[], object] | None, *,
              now: datetime | None = None, only: str | None = None, since: datetime | None = None,
              on_outcome: Callable[[SourceOutcome], None] | None = None,
              on_scored: Callable[[int], None] | None = None) -> CycleReport:
    """`listener fetch`: fetch what is due, store it, then score what is unscored."""
    from listener.pipeline.fetch import fetch_due
    from listener.pipeline.score import score_pending

    now = now or datetime.now(timezone.utc)
    report = CycleReport(fetch_due(config, store, now, only=only, since=since, on_outcome=on_outcome))
    if model_factory is not None and store.count_unscored():
        report.scored = score_pending(store, model_factory(), now, on_batch=on_scored)
    return report

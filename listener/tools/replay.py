"""Rule testing: replay a stream of mentions in accelerated time through scoring and the rules.

Input is JSON Lines, one mention per line (the format `listener export --format jsonl` writes,
read by `listener.tools.jsonl`). Hashtags in the text count even when the field is absent. Mentions are matched
to the config's topics and stored in a scratch database, scored with the configured model, and
the rules are evaluated every `step` of simulated time, exactly as the daemon would. What comes
out is every transition and every notification that would be sent, in order.
"""

from __future__ import annotations

import tempfile
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable

from listener.alerts import NoticeRecord, Transition, evaluate_all
from listener.config import Config, DatabaseConfig, SourceConfig
from listener.pipeline import score_pending, to_rows
from listener.store import open_store
from listener.sources import Mention, SourceState

if TYPE_CHECKING:  # pragma: no cover
    from listener.models import SentimentModel


def replay(config: Config, items: Iterable[tuple[str, Mention]], model: SentimentModel, *, step: timedelta = timedelta(minutes=1),
           tail: timedelta | None = None, on_event: Callable[[Transition | NoticeRecord], None] | None = None,
           workdir: Path | None = None) -> list[Transition | NoticeRecord]:
    """Feed mentions in published order, scoring and evaluating every `step`; returns the
    transitions and notifications in order (each has `line()` and `as_json()`).

    After the last mention, evaluation goes on for `tail` (default: the longest window plus
    keep_firing_for, plus an hour) so that alerts can resolve.
    """
    stream = sorted(items, key=lambda sm: sm[1].published_at)
    if not stream:
        return []
    tail = tail or max((r.window + r.keep_firing_for for r in config.alerts), default=timedelta(hours=1)) + timedelta(hours=1)
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        db = Path(tmp) / "replay.db"
        sim = replace(config, database=DatabaseConfig(path=db), sources=(), email=config.email)
        sources: dict[str, SourceConfig] = {}
        events: list[Transition | NoticeRecord] = []
        with open_store(db) as store:
            t = _floor(stream[0][1].published_at, step) + step
            end = stream[-1][1].published_at + tail
            i = 0
            while t <= end:
                batch: dict[str, list[Mention]] = {}
                while i < len(stream) and stream[i][1].published_at < t:
                    name, mention = stream[i]
                    batch.setdefault(name, []).append(mention)
                    i += 1
                for name, mentions in batch.items():
                    src = sources.setdefault(name, SourceConfig(name=name, kind="replay", options=None))
                    rows, _ = to_rows(src, mentions, config.topics, t)
                    store.save_fetch(name, "replay", rows, SourceState(), started_at=t, now=t, next_check_at=t,
                                     items=len(mentions), requests=0)
                if batch:
                    score_pending(store, model, t)
                result = evaluate_all(sim, store, t)
                for event in [*result.transitions, *result.notices]:
                    events.append(event)
                    if on_event:
                        on_event(event)
                t += step
    return events


def _floor(dt: datetime, step: timedelta) -> datetime:
    epoch = datetime(1970, 1, 1, tzinfo=dt.tzinfo)
    return epoch + ((dt - epoch) // step) * step

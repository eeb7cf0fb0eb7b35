"""Scoring: unscored mentions read in batches, scored by the sentiment model (each distinct text
once), and their sentiment saved, batch by batch."""

from __future__ import annotations

from collections import OrderedDict
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Callable

from listener.store import MentionStore

if TYPE_CHECKING:  # pragma: no cover
    from listener.models import SentimentModel


def text_for_scoring(text: str, title: str | None) -> str:
    """The title and the text, unless one already contains the other."""
    if title and title.strip() and title.strip() not in text:
        return f"{title.strip()}. {text}" if text else title.strip()
    return text


class ScoreCache:
    """The last `size` texts scored by each model: reposts, copies and spam are scored once."""

    def __init__(self, size: int = 50_000):
        self.size = size
        self._entries: OrderedDict[tuple[str, str], object] = OrderedDict()

    def score(self, model: SentimentModel, texts: list[str]) -> list:
        name = getattr(model, "name", "")
        missing = [t for t in dict.fromkeys(texts) if (name, t) not in self._entries]
        for text, sentiment in zip(missing, model.score(missing) if missing else []):
            self._entries[(name, text)] = sentiment
        out = []
        for t in texts:
            self._entries.move_to_end((name, t))
            out.append(self._entries[(name, t)])
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)
        return out


CLAIM_TTL = timedelta(minutes=10)  # a worker's claim on the batch it is scoring


def score_pending(store: MentionStore, model: SentimentModel, now: datetime | None = None, *, batch: int = 256,
                  on_batch: Callable[[int], None] | None = None, cache: ScoreCache | None = None,
                  worker: str | None = None) -> int:
    """Score every unscored mention in batches; each batch is committed on its own. `cache` keeps
    the texts scored across calls (the daemon's), else it lives for this call. With `worker` (a
    daemon among several), each batch is claimed first: workers scoring at once split the work."""
    cache = cache if cache is not None else ScoreCache()
    now = now or datetime.now(timezone.utc)
    total = 0
    while True:
        pending = store.claim_unscored(worker, now, CLAIM_TTL, batch) if worker else store.unscored(batch)
        if not pending:
            return total
        scores = cache.score(model, [text_for_scoring(text, title) for _, text, title in pending])
        store.save_scores(zip([mid for mid, _, _ in pending], scores), model.name, now)
        total += len(pending)
        if on_batch:
            on_batch(len(pending))

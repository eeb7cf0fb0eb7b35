"""The team's sentiment corrections as labelled examples in the training format (`listener.models.data`):
what `listener model eval --corrections` scores the model against and `listener corrections export`
writes, so that a team's own labels measure (and can retrain) the model on its own brand."""

from __future__ import annotations

from datetime import datetime
from typing import IO, TYPE_CHECKING, Callable

from listener.errors import ListenerError
from listener.models import LABELS
from listener.models.data import Example, write_tsv
from listener.pipeline.score import text_for_scoring

if TYPE_CHECKING:
    from listener.models import SentimentModel
    from listener.store import MentionStore


def corrected_examples(store: MentionStore, since: datetime | None = None) -> list[Example]:
    """Every current sentiment correction (made since `since`) as an example: the words the model
    scores (title and text), the team's label, the mention's language. Not-relevant marks have no
    sentiment and are left out."""
    return [Example(text_for_scoring(c["text"], c["title"]), LABELS.index(c["label"]), c["language"])
            for c in store.corrections(since) if c["label"] in LABELS]


def export_corrections(store: MentionStore, out: IO[str], since: datetime | None = None) -> int:
    """Write the sentiment corrections to `out` as a training TSV (`text`, `label` 0/1/2, `language`); how many."""
    return write_tsv(corrected_examples(store, since), out)


def evaluate_on_corrections(store: MentionStore, load_model: Callable[[], SentimentModel]) -> dict:
    """The figures of the model `load_model` gives on the team's corrected labels, as `listener model
    eval` gives them for a file (the model is loaded once there is something to score)."""
    from listener.models.metrics import evaluate

    examples = corrected_examples(store)
    if not examples:
        raise ListenerError("no sentiment corrections in the database yet: correct some labels in the dashboard "
                            "first, or evaluate on a file (listener model eval FILE.tsv)")
    return evaluate(load_model(), examples)

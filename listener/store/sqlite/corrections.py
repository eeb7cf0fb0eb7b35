"""The team's corrections on SQLite: a corrected sentiment written as the mention's label (the rollup
triggers follow it as they follow a re-score), a mention not relevant to a topic unlinked from it
(m007's triggers take it out of the rollups and keep it from being linked again), and the
corrections read back with their mention's words."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from listener.errors import ListenerError
from listener.models import LABELS
from listener.store.rows import CorrectionRow, ExportedMention
from listener.store.sqlite.connection import SQLiteBase
from listener.store.sqlite.mentions import HASHTAG_LIST, TOPIC_LIST
from listener.store.types import iso

NOT_RELEVANT = "not relevant"
MODEL_COLUMNS = ("model_sentiment", "model_p_negative", "model_p_neutral", "model_p_positive", "model")


class SQLiteCorrections(SQLiteBase):
    """`interface.Corrections` on SQLite."""

    def correct_sentiment(self, mention_id: int, sentiment: str, *, by: str, at: datetime) -> None:
        if sentiment not in LABELS:
            raise ListenerError(f"sentiment {sentiment!r} is not one of {', '.join(LABELS)}")
        probs = tuple(1.0 if label == sentiment else 0.0 for label in LABELS)
        with self.transaction():
            self._record(mention_id, None, sentiment, by, at)
            self.conn.execute(
                """UPDATE mentions SET sentiment = ?, p_negative = ?, p_neutral = ?, p_positive = ?,
                   sentiment_score = ? WHERE id = ?""", (sentiment, *probs, probs[2] - probs[0], mention_id))

    def mark_not_relevant(self, mention_id: int, *, topic: str | None, by: str, at: datetime) -> None:
        with self.transaction():
            self._record(mention_id, topic, NOT_RELEVANT, by, at)
            # after the correction is recorded: m007's trigger on this delete moves the rollups
            self.conn.execute("DELETE FROM mention_topics WHERE mention_id = ? AND topic = coalesce(?, topic)",
                              (mention_id, topic))

    def corrections(self, since: datetime | None = None) -> list[CorrectionRow]:
        return list(self._dicts(
            """SELECT c.id, c.mention_id, c.topic, c.label, c.model_sentiment, c.model_p_negative, c.model_p_neutral,
                      c.model_p_positive, c.model, c.corrected_by, c.corrected_at,
                      m.source, m.url, m.title, m.text, m.language
               FROM corrections c JOIN mentions m ON m.id = c.mention_id
               WHERE c.corrected_at >= ? ORDER BY c.corrected_at, c.id""", (iso(since) if since else "",)))

    def get_mention(self, mention_id: int) -> ExportedMention | None:
        return next(self._dicts(f"SELECT m.*, {TOPIC_LIST}, {HASHTAG_LIST} FROM mentions m WHERE m.id = ?",
                                (mention_id,)), None)

    def _record(self, mention_id: int, topic: str | None, label: str, by: str, at: datetime) -> None:
        """Store `by`'s correction of one mention, replacing the current one of its kind (its sentiment;
        not relevant to `topic`), with the model's label from before any correction."""
        if not by or not by.strip():
            raise ListenerError(f"a correction of mention {mention_id} needs who made it")
        mention = self.conn.execute("SELECT sentiment, p_negative, p_neutral, p_positive, model FROM mentions "
                                    "WHERE id = ?", (mention_id,)).fetchone()
        if mention is None:
            raise ListenerError(f"there is no mention {mention_id}")
        kind = "label = 'not relevant'" if label == NOT_RELEVANT else "label != 'not relevant'"
        current = self.conn.execute(f"SELECT id FROM corrections WHERE mention_id = ? AND {kind} AND topic IS ?",
                                    (mention_id, topic)).fetchone()
        if current is not None:
            self.conn.execute("UPDATE corrections SET label = ?, corrected_by = ?, corrected_at = ? WHERE id = ?",
                              (label, by, iso(at), current[0]))
            return
        if topic is not None:
            self._check_topic(mention_id, topic)
        self.conn.execute(
            f"""INSERT INTO corrections (mention_id, topic, label, {', '.join(MODEL_COLUMNS)}, corrected_by, corrected_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            (mention_id, topic, label, *self._model_label(mention_id, mention), by, iso(at)))

    def _model_label(self, mention_id: int, mention: tuple[Any, ...]) -> tuple[Any, ...]:
        """The model's label and probabilities for a mention: kept by its sentiment correction once
        there is one (the mention then carries the team's), else the mention's own."""
        kept = self.conn.execute(
            f"SELECT {', '.join(MODEL_COLUMNS)} FROM corrections WHERE mention_id = ? AND label != 'not relevant'",
            (mention_id,)).fetchone()
        return tuple(kept) if kept is not None else tuple(mention)

    def _check_topic(self, mention_id: int, topic: str) -> None:
        topics = [t for t, in self.conn.execute(
            "SELECT topic FROM mention_topics WHERE mention_id = ? ORDER BY topic", (mention_id,))]
        if topic not in topics:
            raise ListenerError(f"mention {mention_id} is not in topic {topic!r} "
                                f"(its topics: {', '.join(topics) if topics else 'none'})")

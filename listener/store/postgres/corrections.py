"""The team's corrections on PostgreSQL: a corrected sentiment written as the mention's label (the rollups
move as after a re-score), a mention not relevant to a topic unlinked from it (its counts taken out
of the topic's rollups; ingest never links it again), and the corrections read back with their
mention's words."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from listener.errors import ListenerError
from listener.models import LABELS
from listener.store.postgres import rollups
from listener.store.postgres.connection import PostgresBase
from listener.store.postgres.mentions import BY_ID, HASHTAG_LIST, MENTION_COLUMNS, TOPIC_LIST
from listener.store.rows import CorrectionRow, ExportedMention
from listener.store.types import iso

NOT_RELEVANT = "not relevant"
MODEL_COLUMNS = ("model_sentiment", "model_p_negative", "model_p_neutral", "model_p_positive", "model")


class PostgresCorrections(PostgresBase):
    """`interface.Corrections` on PostgreSQL."""

    def correct_sentiment(self, mention_id: int, sentiment: str, *, by: str, at: datetime) -> None:
        if sentiment not in LABELS:
            raise ListenerError(f"sentiment {sentiment!r} is not one of {', '.join(LABELS)}")
        probs = tuple(1.0 if label == sentiment else 0.0 for label in LABELS)
        with self.transaction() as conn:
            old = self._record(conn, mention_id, None, sentiment, by, at)
            conn.execute("""UPDATE mentions SET sentiment = %s, p_negative = %s, p_neutral = %s, p_positive = %s,
                            sentiment_score = %s WHERE id = %s AND published_at = %s""",
                         (sentiment, *probs, probs[2] - probs[0], mention_id, old.published_at))
            rollups.move(conn, rollups.rescored(old, old._replace(sentiment=sentiment, p_negative=probs[0])))

    def mark_not_relevant(self, mention_id: int, *, topic: str | None, by: str, at: datetime) -> None:
        with self.transaction() as conn:
            state = self._record(conn, mention_id, topic, NOT_RELEVANT, by, at)
            gone = conn.execute("""DELETE FROM mention_topics WHERE mention_id = %s AND published_at = %s
                                   AND topic = coalesce(%s, topic) RETURNING topic""",
                                (mention_id, state.published_at, topic)).fetchall()
            rollups.move(conn, [(-1, state, r["topic"]) for r in gone])

    def corrections(self, since: datetime | None = None) -> list[CorrectionRow]:
        return self._dicts(
            f"""SELECT c.id, c.mention_id, c.topic, c.label, {', '.join('c.' + col for col in MODEL_COLUMNS)},
                       c.corrected_by, c.corrected_at, m.source, m.url, m.title, m.text, m.language
                FROM corrections c JOIN {BY_ID} ON k.id = c.mention_id
                {'WHERE c.corrected_at >= %s' if since else ''} ORDER BY c.corrected_at, c.id""",
            (iso(since),) if since else ())

    def get_mention(self, mention_id: int) -> ExportedMention | None:
        return self._one(f"SELECT {MENTION_COLUMNS}, {TOPIC_LIST}, {HASHTAG_LIST} FROM {BY_ID} WHERE k.id = %s",
                         (mention_id,))

    def _record(self, conn: Any, mention_id: int, topic: str | None, label: str, by: str,
                at: datetime) -> rollups.Counted:
        """Store `by`'s correction of one mention, replacing the current one of its kind (its sentiment;
        not relevant to `topic`), with the model's label from before any correction; what the mention
        counts for, read under its row lock (scoring and ingest wait)."""
        if not by or not by.strip():
            raise ListenerError(f"a correction of mention {mention_id} needs who made it")
        mention = conn.execute(f"SELECT {rollups.COUNTED_COLUMNS}, m.p_neutral, m.p_positive, m.model FROM {BY_ID} "
                               "WHERE k.id = %s FOR UPDATE OF m", (mention_id,)).fetchone()
        if mention is None:
            raise ListenerError(f"there is no mention {mention_id}")
        state = rollups.Counted(*(mention[c] for c in rollups.Counted._fields))
        kind = "label = 'not relevant'" if label == NOT_RELEVANT else "label <> 'not relevant'"
        current = conn.execute(f"SELECT id FROM corrections WHERE mention_id = %s AND {kind} "
                               "AND topic IS NOT DISTINCT FROM %s", (mention_id, topic)).fetchone()
        if current is not None:
            conn.execute("UPDATE corrections SET label = %s, corrected_by = %s, corrected_at = %s WHERE id = %s",
                         (label, by, iso(at), current["id"]))
            return state
        if topic is not None:
            self._check_topic(conn, mention_id, state.published_at, topic)
        kept = conn.execute(f"SELECT {', '.join(MODEL_COLUMNS)} FROM corrections WHERE mention_id = %s "
                            "AND label <> 'not relevant'", (mention_id,)).fetchone()
        model = ([kept[c] for c in MODEL_COLUMNS] if kept is not None else  # the model's, before any correction
                 [mention[c] for c in ("sentiment", "p_negative", "p_neutral", "p_positive", "model")])
        conn.execute(f"""INSERT INTO corrections (mention_id, topic, label, {', '.join(MODEL_COLUMNS)}, corrected_by,
                         corrected_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)""",
                     (mention_id, topic, label, *model, by, iso(at)))
        return state

    @staticmethod
    def _check_topic(conn: Any, mention_id: int, published_at: str, topic: str) -> None:
        topics = [r["topic"] for r in conn.execute(
            "SELECT topic FROM mention_topics WHERE mention_id = %s AND published_at = %s ORDER BY topic COLLATE \"C\"",
            (mention_id, published_at))]
        if topic not in topics:
            raise ListenerError(f"mention {mention_id} is not in topic {topic!r} "
                                f"(its topics: {', '.join(topics) if topics else 'none'})")

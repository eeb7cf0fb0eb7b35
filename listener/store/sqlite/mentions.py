"""The stored mentions on SQLite: scoring them, searching them (FTS5), streaming them out, counting them."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, Iterable, Iterator

from listener.store.rows import ExportedMention, StoredMention
from listener.store.sqlite.connection import SQLiteBase
from listener.store.sqlite.matching import first_matching
from listener.store.types import iso

if TYPE_CHECKING:  # pragma: no cover
    from listener.query import Query

# Columns of a mention `m`: its hashtags and topics as space-separated text, and its engagement
# (likes + reposts + replies + score; the `mention_details` view of m003 says the same).
HASHTAG_LIST = "(SELECT group_concat(hashtag, ' ') FROM hashtags h WHERE h.mention_id = m.id) AS hashtag_list"
TOPIC_LIST = "(SELECT group_concat(topic, ' ') FROM mention_topics t WHERE t.mention_id = m.id) AS topic_list"
ENGAGEMENT = "coalesce(m.likes, 0) + coalesce(m.reposts, 0) + coalesce(m.replies, 0) + coalesce(m.score, 0)"


class SQLiteMentions(SQLiteBase):
    """`interface.Scoring` and `interface.MentionReads` on SQLite."""

    def unscored(self, limit: int = 1000) -> list[tuple[int, str, str | None]]:
        return self.conn.execute(
            "SELECT id, text, title FROM mentions WHERE sentiment IS NULL ORDER BY id LIMIT ?", (limit,)).fetchall()

    def count_unscored(self, *, topic: str | None = None, since: datetime | None = None) -> int:
        if topic is None and since is None:
            return self.conn.execute("SELECT count(*) FROM mentions WHERE sentiment IS NULL").fetchone()[0]
        return self.conn.execute(
            """SELECT count(*) FROM mentions m JOIN mention_topics t ON t.mention_id = m.id
               WHERE m.sentiment IS NULL AND t.topic = coalesce(?, t.topic) AND m.published_at >= ?""",
            (topic, iso(since) if since else "")).fetchone()[0]

    def save_scores(self, scores: Iterable[tuple[int, Any]], model: str, now: datetime) -> int:
        """(The rollups follow by trigger: `mentions_scored` and its siblings. A mention with a sentiment
        correction keeps it.)"""
        at = iso(now)
        rows = [(s.label, s.p_negative, s.p_neutral, s.p_positive, s.score, model, at, mid, mid) for mid, s in scores]
        with self.transaction():
            return self.conn.executemany(
                """UPDATE mentions SET sentiment = ?, p_negative = ?, p_neutral = ?, p_positive = ?,
                   sentiment_score = ?, model = ?, scored_at = ? WHERE id = ? AND NOT EXISTS (
                       SELECT 1 FROM corrections WHERE mention_id = ? AND label != 'not relevant')""", rows).rowcount

    def search(self, query: Query | None, *, limit: int = 50, topic: str | None = None) -> list[StoredMention]:
        if topic:  # walk the topic's index newest first
            return first_matching(self, f"m.*, {HASHTAG_LIST}", "mention_topics d JOIN mentions m ON m.id = d.mention_id",
                                  ["d.topic = ?"], [topic], query, limit, at="d.published_at", mid="d.mention_id")
        return first_matching(self, f"m.*, {HASHTAG_LIST}", "mentions m", [], [], query, limit)

    def iter_mentions(self, *, since: datetime | None = None, topic: str | None = None) -> Iterator[ExportedMention]:
        where, params = [], []
        if since is not None:
            where.append("m.published_at >= ?")
            params.append(iso(since))
        if topic is not None:
            where.append("m.id IN (SELECT mention_id FROM mention_topics WHERE topic = ?)")
            params.append(topic)
        return self._dicts(f"SELECT m.*, {TOPIC_LIST}, {HASHTAG_LIST} FROM mentions m"
                           + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY m.published_at, m.id",
                           params)

    def count_by_sentiment(self) -> dict[str | None, int]:
        return dict(self.conn.execute("SELECT sentiment, count(*) FROM mentions GROUP BY 1 ORDER BY 1"))

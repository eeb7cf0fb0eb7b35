"""The stored mentions on PostgreSQL: scoring them (the rollups follow), searching them, streaming them
out, counting them; and the column lists every read of whole mentions uses."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, Iterable, Iterator

from listener.store.postgres import rollups
from listener.store.postgres.connection import PostgresBase
from listener.store.postgres.matching import first_matching
from listener.store.rows import ExportedMention, StoredMention
from listener.store.types import iso

if TYPE_CHECKING:  # pragma: no cover
    from listener.query import Query

ENGAGEMENT = rollups.ENGAGEMENT  # likes + reposts + replies + score of a mention `m`
# A mention `m`'s columns, as on SQLite (`m.*` would add its search vector, `words`).
MENTION_COLUMNS = ", ".join(f"m.{c}" for c in (
    "id", "source", "source_id", "url", "author", "title", "text", "language", "language_detected", "published_at",
    "fetched_at", "likes", "reposts", "replies", "score", "sentiment", "p_negative", "p_neutral", "p_positive",
    "sentiment_score", "model", "scored_at"))
# Its hashtags and topics as space-separated text (sorted), each looked for in its month's partition.
HASHTAG_LIST = ("(SELECT string_agg(h.hashtag, ' ' ORDER BY h.hashtag COLLATE \"C\") FROM hashtags h "
                "WHERE h.mention_id = m.id AND h.published_at = m.published_at) AS hashtag_list")
TOPIC_LIST = ("(SELECT string_agg(t.topic, ' ' ORDER BY t.topic COLLATE \"C\") FROM mention_topics t "
              "WHERE t.mention_id = m.id AND t.published_at = m.published_at) AS topic_list")
# Mentions `m` by id (`k.id`): the key says the month, so only that partition is read.
BY_ID = "mention_keys k JOIN mentions m ON m.id = k.id AND m.published_at = k.published_at"
# A topic's (hashtag's) mentions `m` through its links `d`, walked newest first by its index.
BY_TOPIC = "mention_topics d JOIN mentions m ON m.id = d.mention_id AND m.published_at = d.published_at"
BY_HASHTAG = "hashtags d JOIN mentions m ON m.id = d.mention_id AND m.published_at = d.published_at"


# lock the scored mentions (oldest id first), read what they count for; then write the scores the
# team's sentiment corrections do not override (the UPDATE's own snapshot sees a correction just made)
_LOCK = rollups.locked(rollups.COUNTED_COLUMNS)
_SCORE = """UPDATE mentions m SET sentiment = v.sentiment, p_negative = v.p_negative, p_neutral = v.p_neutral,
        p_positive = v.p_positive, sentiment_score = v.score, model = %s, scored_at = %s
    FROM unnest(%b::bigint[], %b::timestamptz[], %b::text[], %b::float8[], %b::float8[], %b::float8[], %b::float8[])
         AS v(id, at, sentiment, p_negative, p_neutral, p_positive, score)
    WHERE m.id = v.id AND m.published_at = v.at AND m.published_at >= %s AND m.published_at <= %s AND NOT EXISTS (
        SELECT 1 FROM corrections c WHERE c.mention_id = m.id AND c.label <> 'not relevant')
    RETURNING m.id"""  # (bounded by the first and last time: a join planned for many rows reads those months only)


class PostgresMentions(PostgresBase):
    """`interface.Scoring` and `interface.MentionReads` on PostgreSQL."""

    def unscored(self, limit: int = 1000) -> list[tuple[int, str, str | None]]:
        return [(r["id"], r["text"], r["title"]) for r in self._dicts(
            "SELECT id, text, title FROM mentions WHERE sentiment IS NULL ORDER BY id LIMIT %s", (limit,))]

    def count_unscored(self, *, topic: str | None = None, since: datetime | None = None) -> int:
        if topic is None and since is None:
            return self._one("SELECT count(*) AS n FROM mentions WHERE sentiment IS NULL")["n"]
        where, params = ["m.sentiment IS NULL"], []
        if topic is not None:
            where.append("t.topic = %s")
            params.append(topic)
        if since is not None:  # on both sides: each table read from that month on only
            where.append("m.published_at >= %s AND t.published_at >= %s")
            params += [iso(since)] * 2
        return self._one("SELECT count(*) AS n FROM mention_topics t JOIN mentions m ON m.id = t.mention_id "
                         f"AND m.published_at = t.published_at WHERE {' AND '.join(where)}", params)["n"]

    def save_scores(self, scores: Iterable[tuple[int, Any]], model: str, now: datetime) -> int:
        """(The rollups move by the old and new state of each mention written. A mention with a
        sentiment correction keeps it.)"""
        latest = {mention_id: s for mention_id, s in scores}  # scored twice: the last one
        if not latest:
            return 0
        with self.transaction() as conn:
            old = {r["id"]: rollups.Counted(*(r[c] for c in rollups.Counted._fields))
                   for r in conn.execute(_LOCK, (sorted(latest),)).fetchall()}
            if not old:
                return 0
            ids = sorted(old)
            at = [old[i].published_at for i in ids]
            written = {r["id"] for r in conn.execute(_SCORE, (
                model, iso(now), ids, at,
                *([getattr(latest[i], name) for i in ids] for name in ("label", "p_negative", "p_neutral",
                                                                       "p_positive", "score")),
                min(at), max(at)), prepare=False).fetchall()}
            rollups.move(conn, [change for i in sorted(written) for change in rollups.rescored(
                old[i], old[i]._replace(sentiment=latest[i].label, p_negative=latest[i].p_negative))])
        return len(written)

    def search(self, query: Query | None, *, limit: int = 50, topic: str | None = None) -> list[StoredMention]:
        if topic:  # walk the topic's index newest first
            return first_matching(self, f"{MENTION_COLUMNS}, {HASHTAG_LIST}", BY_TOPIC, ["d.topic = %s"], [topic],
                                  query, limit, at="d.published_at", mid="d.mention_id")
        return first_matching(self, f"{MENTION_COLUMNS}, {HASHTAG_LIST}", "mentions m", [], [], query, limit)

    def iter_mentions(self, *, since: datetime | None = None, topic: str | None = None) -> Iterator[ExportedMention]:
        where, params = [], []
        if since is not None:
            where.append("m.published_at >= %s")
            params.append(iso(since))
        if topic is not None:
            where.append("EXISTS (SELECT 1 FROM mention_topics t WHERE t.mention_id = m.id "
                         "AND t.published_at = m.published_at AND t.topic = %s)")
            params.append(topic)
        return self._stream(f"SELECT {MENTION_COLUMNS}, {TOPIC_LIST}, {HASHTAG_LIST} FROM mentions m"
                            + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY m.published_at, m.id",
                            params)

    def count_by_sentiment(self) -> dict[str | None, int]:
        return {r["sentiment"]: r["n"] for r in self._dicts(
            "SELECT sentiment, count(*) AS n FROM mentions GROUP BY 1 ORDER BY 1 NULLS FIRST")}

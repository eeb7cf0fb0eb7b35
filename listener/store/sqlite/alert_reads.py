"""What alert kinds read on SQLite: scored mentions in a window, and the hourly rollups behind
every baseline (`topic_hourly`, `hashtag_hourly`, kept by the triggers of the migrations)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Sequence

from listener.store.rows import ExampleMention, MentionText, TopicWindow
from listener.store.sqlite.connection import SQLiteBase
from listener.store.sqlite.mentions import ENGAGEMENT, HASHTAG_LIST
from listener.store.types import HourCounts, iso, parse_iso


class SQLiteAlertReads(SQLiteBase):
    """`interface.AlertWindows` on SQLite."""

    def topic_data_since(self, topic: str, sources: Sequence[str] | None = None) -> datetime | None:
        first_hour = self.conn.execute("SELECT min(hour) FROM topic_hourly WHERE topic = ? AND mentions > 0",
                                       (topic,)).fetchone()[0]
        if first_hour is None:
            return None
        first = self.conn.execute(
            """SELECT min(t.published_at) FROM mention_topics t JOIN mentions m ON m.id = t.mention_id
               WHERE t.topic = ? AND t.published_at < ? AND m.sentiment IS NOT NULL""",
            (topic, iso(parse_iso(first_hour) + timedelta(hours=1)))).fetchone()[0]
        since = parse_iso(first or first_hour)
        where, params = "status != 'error'", []
        if sources is not None:
            if not sources:
                return since
            where += f" AND source IN ({','.join('?' * len(sources))})"
            params = list(sources)
        fetched = self.conn.execute(f"SELECT min(started_at) FROM fetches WHERE {where}", params).fetchone()[0]
        return max(since, parse_iso(fetched)) if fetched else since

    def topic_window(self, topic: str, start: datetime, end: datetime) -> TopicWindow:
        r = self.conn.execute(
            """SELECT count(*), coalesce(sum(m.sentiment = 'negative'), 0), coalesce(sum(m.sentiment = 'neutral'), 0),
                      coalesce(sum(m.sentiment = 'positive'), 0), coalesce(sum(m.p_negative), 0)
               FROM mention_topics t JOIN mentions m ON m.id = t.mention_id
               WHERE t.topic = ? AND t.published_at >= ? AND t.published_at < ? AND m.sentiment IS NOT NULL""",
            (topic, iso(start), iso(end))).fetchone()
        return {"mentions": r[0], "negative": r[1], "neutral": r[2], "positive": r[3], "p_negative": r[4]}

    def hashtag_posts(self, topic: str, start: datetime, end: datetime, *,
                      hashtag: str | None = None) -> dict[str, list[tuple[datetime, float, bool]]]:
        out: dict[str, list[tuple[datetime, float, bool]]] = {}
        only = " AND h.hashtag = ?" if hashtag is not None else ""
        for tag, at, p_negative, negative in self.conn.execute(
                f"""SELECT h.hashtag, t.published_at, m.p_negative, m.sentiment = 'negative'
                   FROM mention_topics t JOIN hashtags h ON h.mention_id = t.mention_id
                   JOIN mentions m ON m.id = t.mention_id
                   WHERE t.topic = ? AND t.published_at >= ? AND t.published_at < ? AND m.sentiment IS NOT NULL{only}
                   ORDER BY t.published_at""", (topic, iso(start), iso(end), *([hashtag] if hashtag is not None else []))):
            out.setdefault(tag, []).append((parse_iso(at), p_negative or 0.0, bool(negative)))
        return out

    def hashtag_pairs(self, topic: str, start: datetime, end: datetime) -> dict[tuple[str, str], int]:
        return {tuple(sorted((a, b))): n for a, b, n in self.conn.execute(  # type: ignore[misc]
            """SELECT a.hashtag, b.hashtag, count(*)
               FROM mention_topics t JOIN mentions m ON m.id = t.mention_id
               JOIN hashtags a ON a.mention_id = t.mention_id
               JOIN hashtags b ON b.mention_id = t.mention_id AND a.hashtag < b.hashtag
               WHERE t.topic = ? AND t.published_at >= ? AND t.published_at < ? AND m.sentiment IS NOT NULL
               GROUP BY a.hashtag, b.hashtag""", (topic, iso(start), iso(end)))}

    def topic_hours(self, topic: str, start: datetime, end: datetime) -> dict[str, HourCounts]:
        return {h: HourCounts(n, neg, pneg, pos, sq) for h, n, neg, pneg, pos, sq in self.conn.execute(
            """SELECT hour, mentions, negative, p_negative, positive, p_negative_sq FROM topic_hourly
               WHERE topic = ? AND hour >= ? AND hour < ?""",
            (topic, iso(start), iso(end)))}

    def hashtag_hours(self, topic: str, hashtag: str, start: datetime, end: datetime) -> dict[str, HourCounts]:
        return {h: HourCounts(n, neg, pneg, pos) for h, n, neg, pneg, pos in self.conn.execute(
            """SELECT hour, mentions, negative, p_negative, positive FROM hashtag_hourly
               WHERE topic = ? AND hashtag = ? AND hour >= ? AND hour < ?""",
            (topic, hashtag, iso(start), iso(end)))}

    def hashtag_first_seen(self, topic: str, hashtag: str) -> datetime | None:
        r = self.conn.execute(
            """SELECT min(t.published_at) FROM hashtags h JOIN mention_topics t ON t.mention_id = h.mention_id
               WHERE h.hashtag = ? AND t.topic = ?""", (hashtag, topic)).fetchone()[0]
        hour = self.conn.execute("SELECT min(hour) FROM hashtag_hourly WHERE topic = ? AND hashtag = ? AND mentions > 0",
                                 (topic, hashtag)).fetchone()[0]
        return parse_iso(min(x for x in (r, hour) if x) if (r or hour) else None)

    def hashtag_share(self, topic: str, hashtag: str, start: datetime, end: datetime) -> tuple[int, int]:
        r = self.conn.execute(
            """SELECT (SELECT coalesce(sum(mentions), 0) FROM hashtag_hourly WHERE topic = :t AND hashtag = :h
                         AND hour >= :s AND hour < :e),
                      (SELECT coalesce(sum(mentions), 0) FROM topic_hourly WHERE topic = :t AND hour >= :s AND hour < :e)""",
            {"t": topic, "h": hashtag, "s": iso(start), "e": iso(end)}).fetchone()
        return r[0], r[1]

    def examples(self, topic: str | None, start: datetime, end: datetime, *, sentiment: str | None = "negative",
                 hashtag: str | None = None, ids: Sequence[int] | None = None, limit: int = 5) -> list[ExampleMention]:
        where, params = ["m.published_at >= ?", "m.published_at < ?"], [iso(start), iso(end)]
        if topic is not None:
            where.append("m.id IN (SELECT mention_id FROM mention_topics WHERE topic = ? AND published_at >= ? AND published_at < ?)")
            params += [topic, iso(start), iso(end)]
        if sentiment is not None:
            where.append("m.sentiment = ?")
            params.append(sentiment)
        if hashtag is not None:
            where.append("m.id IN (SELECT mention_id FROM hashtags WHERE hashtag = ? AND published_at >= ? AND published_at < ?)")
            params += [hashtag, iso(start), iso(end)]
        if ids is not None:
            where.append(f"m.id IN ({','.join('?' * len(ids))})")
            params += list(ids)
        return list(self._dicts(
            f"""SELECT m.id, m.source, m.url, m.author, m.title, m.text, m.published_at, m.sentiment, m.p_negative,
                       m.likes, m.reposts, m.replies, m.score, {ENGAGEMENT} AS engagement
                FROM mentions m WHERE {' AND '.join(where)}
                ORDER BY engagement DESC, m.p_negative DESC, m.id LIMIT ?""", (*params, limit)))

    def mentions_in(self, topic: str, start: datetime, end: datetime) -> list[MentionText]:
        return list(self._dicts(
            f"""SELECT m.id, m.text, m.title, m.author, {HASHTAG_LIST}
               FROM mention_topics t JOIN mentions m ON m.id = t.mention_id
               WHERE t.topic = ? AND t.published_at >= ? AND t.published_at < ? AND m.sentiment IS NOT NULL""",
            (topic, iso(start), iso(end))))

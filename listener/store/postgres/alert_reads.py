"""What alert kinds read on PostgreSQL: scored mentions in a window, and the hourly rollups behind
every baseline (`topic_hourly`, `hashtag_hourly`, kept by `rollups`)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Sequence

from listener.store.postgres.connection import PostgresBase
from listener.store.postgres.mentions import ENGAGEMENT, HASHTAG_LIST
from listener.store.rows import ExampleMention, MentionText, TopicWindow
from listener.store.types import HourCounts, iso, parse_iso

# a topic's links `t` in [%(start)s, %(end)s) joined to their mentions `m`, each looked for in its month only
TOPIC_MENTIONS = """mention_topics t JOIN mentions m ON m.id = t.mention_id AND m.published_at = t.published_at
    WHERE t.topic = %(topic)s AND t.published_at >= %(start)s AND t.published_at < %(end)s
      AND m.published_at >= %(start)s AND m.published_at < %(end)s"""


def _window(topic: str, start: datetime, end: datetime, **more: Any) -> dict[str, Any]:
    return {"topic": topic, "start": iso(start), "end": iso(end), **more}


class PostgresAlertReads(PostgresBase):
    """`interface.AlertWindows` on PostgreSQL."""

    def topic_data_since(self, topic: str, sources: Sequence[str] | None = None) -> datetime | None:
        first_hour = self._one("SELECT min(hour) AS at FROM topic_hourly WHERE topic = %s AND mentions > 0",
                               (topic,))["at"]  # type: ignore[index]
        if first_hour is None:
            return None
        first = self._one(
            """SELECT min(t.published_at) AS at FROM mention_topics t
                   JOIN mentions m ON m.id = t.mention_id AND m.published_at = t.published_at
               WHERE t.topic = %(topic)s AND t.published_at < %(before)s AND m.published_at < %(before)s
                 AND m.sentiment IS NOT NULL""",
            {"topic": topic, "before": iso(parse_iso(first_hour) + timedelta(hours=1))})["at"]  # type: ignore[index]
        since = parse_iso(first or first_hour)
        if sources is not None and not sources:
            return since
        fetched = self._one("SELECT min(started_at) AS at FROM fetches WHERE status != 'error'"
                            + (" AND source = ANY(%s)" if sources is not None else ""),
                            (list(sources),) if sources is not None else ())["at"]  # type: ignore[index]
        return max(since, parse_iso(fetched)) if fetched else since  # type: ignore[type-var,return-value]

    def topic_window(self, topic: str, start: datetime, end: datetime) -> TopicWindow:
        return self._one(  # type: ignore[return-value]
            f"""SELECT count(*) AS mentions, count(*) FILTER (WHERE m.sentiment = 'negative') AS negative,
                       count(*) FILTER (WHERE m.sentiment = 'neutral') AS neutral,
                       count(*) FILTER (WHERE m.sentiment = 'positive') AS positive,
                       coalesce(sum(m.p_negative), 0) AS p_negative
                FROM {TOPIC_MENTIONS} AND m.sentiment IS NOT NULL""", _window(topic, start, end))

    def hashtag_posts(self, topic: str, start: datetime, end: datetime, *,
                      hashtag: str | None = None) -> dict[str, list[tuple[datetime, float, bool]]]:
        out: dict[str, list[tuple[datetime, float, bool]]] = {}
        for r in self._dicts(
                f"""SELECT h.hashtag, t.published_at, m.p_negative, m.sentiment = 'negative' AS negative
                    FROM hashtags h, {TOPIC_MENTIONS}
                      AND h.mention_id = t.mention_id AND h.published_at = t.published_at
                      AND h.published_at >= %(start)s AND h.published_at < %(end)s AND m.sentiment IS NOT NULL"""
                + (" AND h.hashtag = %(hashtag)s" if hashtag is not None else "")
                + " ORDER BY t.published_at, t.mention_id", _window(topic, start, end, hashtag=hashtag)):
            out.setdefault(r["hashtag"], []).append((parse_iso(r["published_at"]), r["p_negative"] or 0.0,  # type: ignore[arg-type]
                                                     bool(r["negative"])))
        return out

    def hashtag_pairs(self, topic: str, start: datetime, end: datetime) -> dict[tuple[str, str], int]:
        return {tuple(sorted((r["a"], r["b"]))): r["n"] for r in self._dicts(  # type: ignore[misc]
            f"""SELECT a.hashtag AS a, b.hashtag AS b, count(*) AS n
                FROM hashtags a, hashtags b, {TOPIC_MENTIONS}
                  AND a.mention_id = t.mention_id AND a.published_at = t.published_at
                  AND b.mention_id = t.mention_id AND b.published_at = t.published_at AND a.hashtag < b.hashtag
                  AND a.published_at >= %(start)s AND a.published_at < %(end)s
                  AND b.published_at >= %(start)s AND b.published_at < %(end)s AND m.sentiment IS NOT NULL
                GROUP BY a.hashtag, b.hashtag""", _window(topic, start, end))}

    def topic_hours(self, topic: str, start: datetime, end: datetime) -> dict[str, HourCounts]:
        return {r["hour"]: HourCounts(r["mentions"], r["negative"], r["p_negative"], r["positive"], r["p_negative_sq"])
                for r in self._dicts(
                    """SELECT hour, mentions, negative, p_negative, positive, p_negative_sq FROM topic_hourly
                       WHERE topic = %(topic)s AND hour >= %(start)s AND hour < %(end)s ORDER BY hour""",
                    _window(topic, start, end))}

    def hashtag_hours(self, topic: str, hashtag: str, start: datetime, end: datetime) -> dict[str, HourCounts]:
        return {r["hour"]: HourCounts(r["mentions"], r["negative"], r["p_negative"], r["positive"])
                for r in self._dicts(
                    """SELECT hour, mentions, negative, p_negative, positive FROM hashtag_hourly
                       WHERE topic = %(topic)s AND hashtag = %(hashtag)s AND hour >= %(start)s AND hour < %(end)s
                       ORDER BY hour""", _window(topic, start, end, hashtag=hashtag))}

    def hashtag_first_seen(self, topic: str, hashtag: str) -> datetime | None:
        """(Every scored mention of the hashtag counts in `hashtag_hourly` from its hour on, so the first
        counted hour, an index seek, is at or before the first scored mention, pruned ones included.
        Only a mention not scored yet can be earlier: looked for among the months from the oldest
        unscored mention to that hour, usually none. Joining the hashtag's mentions to their topics
        instead read its whole history, and planning that join over every month took longer still.)"""
        args: dict[str, Any] = {"topic": topic, "hashtag": hashtag}
        with self.transaction():
            args["before"] = self._one("""SELECT min(hour) AS at FROM hashtag_hourly
                                          WHERE topic = %(topic)s AND hashtag = %(hashtag)s AND mentions > 0""",
                                       args)["at"]  # type: ignore[index]
            before = " AND {t}.published_at < %(before)s" if args["before"] else ""
            args["oldest"] = self._one("SELECT min(m.published_at) AS at FROM mentions m WHERE m.sentiment IS NULL"
                                       + before.format(t="m"), args)["at"]  # type: ignore[index]
            unscored = args["oldest"] and self._one(
                """SELECT min(t.published_at) AS at FROM mentions m
                       JOIN hashtags h ON h.mention_id = m.id AND h.published_at = m.published_at
                       JOIN mention_topics t ON t.mention_id = m.id AND t.published_at = m.published_at
                   WHERE m.sentiment IS NULL AND h.hashtag = %(hashtag)s AND t.topic = %(topic)s"""
                + "".join(f" AND {t}.published_at >= %(oldest)s" + before.format(t=t) for t in "mht"),
                args)["at"]  # type: ignore[index]
        seen = [at for at in (unscored, args["before"]) if at]
        return parse_iso(min(seen)) if seen else None

    def hashtag_share(self, topic: str, hashtag: str, start: datetime, end: datetime) -> tuple[int, int]:
        r = self._one(
            """SELECT (SELECT coalesce(sum(mentions), 0) FROM hashtag_hourly WHERE topic = %(topic)s
                         AND hashtag = %(hashtag)s AND hour >= %(start)s AND hour < %(end)s) AS tagged,
                      (SELECT coalesce(sum(mentions), 0) FROM topic_hourly WHERE topic = %(topic)s
                         AND hour >= %(start)s AND hour < %(end)s) AS mentions""",
            _window(topic, start, end, hashtag=hashtag))
        return int(r["tagged"]), int(r["mentions"])  # type: ignore[index]

    def examples(self, topic: str | None, start: datetime, end: datetime, *, sentiment: str | None = "negative",
                 hashtag: str | None = None, ids: Sequence[int] | None = None, limit: int = 5) -> list[ExampleMention]:
        where = ["m.published_at >= %(start)s", "m.published_at < %(end)s"]
        if topic is not None:
            where.append("(m.id, m.published_at) IN (SELECT mention_id, published_at FROM mention_topics "
                         "WHERE topic = %(topic)s AND published_at >= %(start)s AND published_at < %(end)s)")
        if sentiment is not None:
            where.append("m.sentiment = %(sentiment)s")
        if hashtag is not None:
            where.append("(m.id, m.published_at) IN (SELECT mention_id, published_at FROM hashtags "
                         "WHERE hashtag = %(hashtag)s AND published_at >= %(start)s AND published_at < %(end)s)")
        if ids is not None:
            where.append("m.id = ANY(%(ids)s)")
        return self._dicts(  # type: ignore[return-value]
            f"""SELECT m.id, m.source, m.url, m.author, m.title, m.text, m.published_at, m.sentiment, m.p_negative,
                       m.likes, m.reposts, m.replies, m.score, {ENGAGEMENT} AS engagement
                FROM mentions m WHERE {' AND '.join(where)}
                ORDER BY engagement DESC, m.p_negative DESC NULLS LAST, m.id LIMIT %(limit)s""",
            _window(topic, start, end, sentiment=sentiment, hashtag=hashtag, ids=list(ids or ()), limit=limit))  # type: ignore[arg-type]

    def mentions_in(self, topic: str, start: datetime, end: datetime) -> list[MentionText]:
        return self._dicts(  # type: ignore[return-value]
            f"""SELECT m.id, m.text, m.title, m.author, {HASHTAG_LIST}
                FROM {TOPIC_MENTIONS} AND m.sentiment IS NOT NULL ORDER BY t.published_at, t.mention_id""",
            _window(topic, start, end))

"""What the digest reads on PostgreSQL: a day's counts per period from the hourly rollups
(`topic_hourly`, `hashtag_hourly`, `topic_breakdown_hourly`), and its most engaged mentions."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Sequence

from listener.store.periods import add_counts, hour_floor
from listener.store.postgres.alert_reads import TOPIC_MENTIONS
from listener.store.postgres.connection import PostgresBase
from listener.store.postgres.mentions import ENGAGEMENT
from listener.store.rows import TopMention
from listener.store.types import Counts, iso

# rollup_counts kinds: (key in the rollup, rollup table, the same key over the mentions, extra join)
_ROLLUPS = {
    "topic": ("''::text", "topic_hourly", "''::text", ""),
    "source": ("source", "topic_breakdown_hourly", "m.source", ""),
    "language": ("language", "topic_breakdown_hourly", "coalesce(m.language, '')", ""),
    "hashtag": ("hashtag", "hashtag_hourly", "h.hashtag", "hashtags h, "),
}
_COUNTS = "mentions, negative, neutral, positive"
_RAW_COUNTS = ("count(*) AS mentions, count(*) FILTER (WHERE m.sentiment = 'negative') AS negative, "
               "count(*) FILTER (WHERE m.sentiment = 'neutral') AS neutral, "
               "count(*) FILTER (WHERE m.sentiment = 'positive') AS positive")


class PostgresDigestReads(PostgresBase):
    """`interface.DigestRollups` on PostgreSQL."""

    def rollup_counts(self, kind: str, topic: str, bounds: Sequence[datetime],
                      keys: Sequence[str] | None = None) -> list[dict[str, Counts]]:
        key, table, raw_key, raw_from = _ROLLUPS[kind]
        out: list[dict[str, Counts]] = [{} for _ in bounds[1:]]
        if len(bounds) < 2 or (keys is not None and not keys):
            return out
        cut = sorted({hour_floor(b) for b in bounds if hour_floor(b) != b})
        params = {"topic": topic, "start": iso(hour_floor(bounds[0])), "end": iso(bounds[-1]), "keys": list(keys or ()),
                  "cut": [iso(c) for c in cut], **{f"b{i}": iso(b) for i, b in enumerate(bounds[1:])}}
        cases = " ".join(f"WHEN hour < %(b{i})s THEN {i}" for i in range(len(bounds) - 1))
        for r in self._dicts(
                f"""SELECT CASE {cases} END AS period, {key} AS key, {', '.join(f'sum({c})::bigint AS {c}' for c in _COUNTS.split(', '))}
                    FROM {table} WHERE topic = %(topic)s AND hour >= %(start)s AND hour < %(end)s"""
                + (f" AND {key} = ANY(%(keys)s)" if keys is not None else "")
                + (" AND hour <> ALL(%(cut)s::timestamptz[])" if cut else "")
                + f' GROUP BY 1, 2 ORDER BY 1, {key} COLLATE "C"', params):
            add_counts(out[r["period"]], r["key"], (r["mentions"], r["negative"], r["neutral"], r["positive"]))
        for hour in cut:  # the pieces of a cut hour, each in its own period
            for i, (a, b) in enumerate(zip(bounds, bounds[1:])):
                lo, hi = max(a, hour), min(b, hour + timedelta(hours=1))
                if lo >= hi:
                    continue
                tagged = " AND h.mention_id = t.mention_id AND h.published_at = t.published_at" if raw_from else ""
                for r in self._dicts(
                        f"""SELECT {raw_key} AS key, {_RAW_COUNTS} FROM {raw_from}{TOPIC_MENTIONS}{tagged}
                              AND m.sentiment IS NOT NULL"""
                        + (f" AND {raw_key} = ANY(%(keys)s)" if keys is not None else "") + f' GROUP BY 1 ORDER BY {raw_key} COLLATE "C"',
                        {"topic": topic, "start": iso(lo), "end": iso(hi), "keys": list(keys or ())}):
                    add_counts(out[i], r["key"], (r["mentions"], r["negative"], r["neutral"], r["positive"]))
        return out

    def topic_hourly_counts(self, topic: str, start: datetime, end: datetime) -> dict[str, Counts]:
        return {r["hour"]: (r["mentions"], r["negative"], r["neutral"], r["positive"]) for r in self._dicts(
            f"""SELECT hour, {_COUNTS} FROM topic_hourly WHERE topic = %s AND hour >= %s AND hour < %s
                ORDER BY hour""", (topic, iso(start), iso(end)))}

    def top_mentions(self, topic: str, start: datetime, end: datetime,
                     sentiments: Sequence[str] = ("positive", "negative"),
                     per_sentiment: int = 3) -> dict[str, list[TopMention]]:
        return {sentiment: self._dicts(  # type: ignore[misc]
            f"""SELECT m.id, m.source, m.url, m.author, m.title, m.text, m.language, m.published_at, m.sentiment,
                       m.sentiment_score, m.likes, m.reposts, m.replies, m.score, {ENGAGEMENT} AS engagement
                FROM {TOPIC_MENTIONS} AND m.sentiment = %(sentiment)s
                ORDER BY engagement DESC, abs(m.sentiment_score) DESC NULLS LAST, m.id LIMIT %(limit)s""",
            {"topic": topic, "start": iso(start), "end": iso(end), "sentiment": sentiment, "limit": per_sentiment})
            for sentiment in sentiments}

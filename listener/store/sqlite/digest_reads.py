"""What the digest reads on SQLite: a day's counts per period from the hourly rollups
(`topic_hourly`, `hashtag_hourly`, `topic_breakdown_hourly`), and its most engaged mentions."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Sequence

from listener.store.rows import TopMention
from listener.store.sqlite.connection import SQLiteBase
from listener.store.sqlite.mentions import ENGAGEMENT
from listener.store.periods import add_counts as _add, hour_floor as _hour_floor
from listener.store.types import Counts, iso

# rollup_counts kinds: (key in the rollup, rollup table, the same key over the mentions, extra join)
_ROLLUPS = {
    "topic": ("''", "topic_hourly", "''", ""),
    "source": ("source", "topic_breakdown_hourly", "m.source", ""),
    "language": ("language", "topic_breakdown_hourly", "coalesce(m.language, '')", ""),
    "hashtag": ("hashtag", "hashtag_hourly", "h.hashtag", "JOIN hashtags h ON h.mention_id = t.mention_id"),
}


class SQLiteDigestReads(SQLiteBase):
    """`interface.DigestRollups` on SQLite."""

    def rollup_counts(self, kind: str, topic: str, bounds: Sequence[datetime],
                      keys: Sequence[str] | None = None) -> list[dict[str, Counts]]:
        key, table, raw_key, raw_join = _ROLLUPS[kind]
        out: list[dict[str, Counts]] = [{} for _ in bounds[1:]]
        if len(bounds) < 2 or (keys is not None and not keys):
            return out
        only, only_raw, key_params = "", "", list(keys or ())
        if keys is not None:
            only = f" AND {key} IN ({','.join('?' * len(keys))})"
            only_raw = f" AND {raw_key} IN ({','.join('?' * len(keys))})"
        cut = sorted({_hour_floor(b) for b in bounds if _hour_floor(b) != b})
        cases = " ".join(f"WHEN hour < ? THEN {i}" for i in range(len(bounds) - 1))
        sql = (f"SELECT CASE {cases} END AS period, {key}, sum(mentions), sum(negative), sum(neutral), sum(positive) "
               f"FROM {table} WHERE topic = ? AND hour >= ? AND hour < ?" + only
               + (f" AND hour NOT IN ({','.join('?' * len(cut))})" if cut else "") + " GROUP BY 1, 2")
        params = ([iso(b) for b in bounds[1:]] + [topic, iso(_hour_floor(bounds[0])), iso(bounds[-1])] + key_params
                  + [iso(c) for c in cut])
        for period, k, *counts in self.conn.execute(sql, params):
            _add(out[period], k, counts)
        for hour in cut:  # the pieces of a cut hour, each in its own period
            for i, (a, b) in enumerate(zip(bounds, bounds[1:])):
                lo, hi = max(a, hour), min(b, hour + timedelta(hours=1))
                if lo >= hi:
                    continue
                for k, *counts in self.conn.execute(
                        f"""SELECT {raw_key}, count(*), sum(m.sentiment = 'negative'), sum(m.sentiment = 'neutral'),
                                   sum(m.sentiment = 'positive')
                            FROM mention_topics t {raw_join} JOIN mentions m ON m.id = t.mention_id
                            WHERE t.topic = ? AND t.published_at >= ? AND t.published_at < ?
                              AND m.sentiment IS NOT NULL{only_raw} GROUP BY 1""", (topic, iso(lo), iso(hi), *key_params)):
                    _add(out[i], k, counts)
        return out

    def topic_hourly_counts(self, topic: str, start: datetime, end: datetime) -> dict[str, Counts]:
        return {h: (n, neg, neu, pos) for h, n, neg, neu, pos in self.conn.execute(
            "SELECT hour, mentions, negative, neutral, positive FROM topic_hourly WHERE topic = ? AND hour >= ? AND hour < ?",
            (topic, iso(start), iso(end)))}

    def top_mentions(self, topic: str, start: datetime, end: datetime,
                     sentiments: Sequence[str] = ("positive", "negative"),
                     per_sentiment: int = 3) -> dict[str, list[TopMention]]:
        return {sentiment: list(self._dicts(
            f"""SELECT m.id, m.source, m.url, m.author, m.title, m.text, m.language, m.published_at, m.sentiment,
                      m.sentiment_score, m.likes, m.reposts, m.replies, m.score, {ENGAGEMENT} AS engagement
               FROM mention_topics t JOIN mentions m ON m.id = t.mention_id
               WHERE t.topic = ? AND t.published_at >= ? AND t.published_at < ? AND m.sentiment = ?
               ORDER BY engagement DESC, abs(m.sentiment_score) DESC, m.id LIMIT ?""",
            (topic, iso(start), iso(end), sentiment, per_sentiment))) for sentiment in sentiments}

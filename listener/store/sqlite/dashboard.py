"""What the web dashboard reads on SQLite beyond the digest's rollups: a filtered page of mentions
(newest first, by keyset), engagement and top authors per topic (from the m008 rollups), source
outages and recent errors, and one incident with its events and notifications."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Sequence

from listener.store.rows import (AlertEventRow, AuthorRow, ExportedMention, FetchRecord, IncidentRecord, Outage,
                                 OutboxRow)
from listener.store.sqlite.alert_state import SQLiteAlertState
from listener.store.sqlite.matching import first_matching
from listener.store.sqlite.mentions import ENGAGEMENT, HASHTAG_LIST, TOPIC_LIST
from listener.models import LABELS as SENTIMENTS  # the labels, in the model's order
from listener.store.periods import add_authors as _add_authors, whole_and_cut as _whole_and_cut
from listener.store.types import MentionFilter, iso
from listener.store.decode import incident_record

if TYPE_CHECKING:
    from listener.query import Query

HOUR, DAY = timedelta(hours=1), timedelta(days=1)
# an author's counts over some whole days of `topic_author_daily` (its days a JSON list), of some authors only
_AUTHOR_SUMS = "sum(mentions), sum(engagement), sum(negative), sum(neutral), sum(positive)"
_DAYS = "FROM topic_author_daily WHERE topic = ? AND day IN (SELECT value FROM json_each(?))"
_ONLY = "AND author IN (SELECT value FROM json_each(?))"
MAX_CANDIDATES = 1000  # more authors that could make the top: sum them all, one pass beats a lookup each


class SQLiteDashboard(SQLiteAlertState):
    """`interface.DashboardReads` on SQLite."""

    def filtered_mentions(self, where: MentionFilter, query: Query | None = None, *, limit: int = 50,
                          before: tuple[str, int] | None = None, after_id: int | None = None) -> list[ExportedMention]:
        # walk the most selective index newest first: a hashtag's, a topic's, else every mention's
        if where.hashtag is not None:
            source, at, mid = "hashtags d JOIN mentions m ON m.id = d.mention_id", "d.published_at", "d.mention_id"
            conds, params = ["d.hashtag = ?"], [where.hashtag]
            if where.topic is not None:
                conds.append("EXISTS (SELECT 1 FROM mention_topics t WHERE t.mention_id = m.id AND t.topic = ?)")
                params.append(where.topic)
        elif where.topic is not None:
            source, at, mid = "mention_topics d JOIN mentions m ON m.id = d.mention_id", "d.published_at", "d.mention_id"
            conds, params = ["d.topic = ?"], [where.topic]
        else:
            source, at, mid = "mentions m", "m.published_at", "m.id"
            conds, params = [], []
        for column, value in (("sentiment", where.sentiment), ("source", where.source),
                              ("language", where.language), ("author", where.author)):
            if value is not None:
                conds.append(f"m.{column} = ?")
                params.append(value)
        if where.start is not None:
            conds.append(f"{at} >= ?")
            params.append(iso(where.start))
        if where.end is not None:
            conds.append(f"{at} < ?")
            params.append(iso(where.end))
        if before is not None:
            conds.append(f"({at} < ? OR ({at} = ? AND {mid} < ?))")
            params += [before[0], before[0], before[1]]
        if after_id is not None:
            conds.append("m.id > ?")
            params.append(after_id)
        return first_matching(self, f"m.*, {TOPIC_LIST}, {HASHTAG_LIST}", source, conds, params, query, limit,
                              at=at, mid=mid)

    def topic_engagement(self, topic: str, start: datetime, end: datetime) -> dict[str, int]:
        """(Whole hours from `topic_hourly`, the cut hours at either end from the mentions.)"""
        lo, hi, cut = _whole_and_cut(start, end, HOUR)
        totals = {s: [0, 0] for s in SENTIMENTS}  # sentiment -> [mentions, engagement]
        if lo < hi:
            r = self.conn.execute(
                f"""SELECT {", ".join(f"coalesce(sum({s}), 0), coalesce(sum({s}_engagement), 0)" for s in SENTIMENTS)}
                    FROM topic_hourly WHERE topic = ? AND hour >= ? AND hour < ?""", (topic, iso(lo), iso(hi))).fetchone()
            for i, s in enumerate(SENTIMENTS):
                totals[s] = [r[2 * i], r[2 * i + 1]]
        for a, b in cut:
            for s, n, e in self.conn.execute(
                    f"""SELECT m.sentiment, count(*), sum({ENGAGEMENT}) FROM mention_topics t JOIN mentions m ON m.id = t.mention_id
                        WHERE t.topic = ? AND t.published_at >= ? AND t.published_at < ? AND m.sentiment IS NOT NULL
                        GROUP BY 1""", (topic, iso(a), iso(b))):
                totals[s][0] += n
                totals[s][1] += e
        return {s: e for s, (n, e) in totals.items() if n}

    def top_authors(self, topic: str, start: datetime, end: datetime, limit: int = 10) -> list[AuthorRow]:
        """(Whole UTC days from `topic_author_daily`, the cut days at either end from the mentions; only
        the authors that can make the top `limit` are summed, see `_author_candidates`.)"""
        lo, hi, cut = _whole_and_cut(start, end, DAY)
        totals: dict[str, list[int]] = {}  # author -> [mentions, engagement, negative, neutral, positive]
        for a, b in cut:
            _add_authors(totals, self.conn.execute(
                f"""SELECT m.author, count(*), sum({ENGAGEMENT}), sum(m.sentiment = 'negative'),
                           sum(m.sentiment = 'neutral'), sum(m.sentiment = 'positive')
                    FROM mention_topics t JOIN mentions m ON m.id = t.mention_id
                    WHERE t.topic = ? AND t.published_at >= ? AND t.published_at < ? AND m.sentiment IS NOT NULL
                      AND m.author IS NOT NULL GROUP BY m.author""", (topic, iso(a), iso(b))))
        if lo < hi:
            days = [iso(lo + k * DAY)[:10] for k in range((hi - lo) // DAY)]
            candidates = self._author_candidates(topic, days, totals, len(days) + len(cut), limit)
            if candidates is None:
                _add_authors(totals, self.conn.execute(f"SELECT author, {_AUTHOR_SUMS} {_DAYS} GROUP BY author",
                                                       (topic, json.dumps(days))))
            else:
                _add_authors(totals, self.conn.execute(f"SELECT author, {_AUTHOR_SUMS} {_DAYS} {_ONLY} GROUP BY author",
                                                       (topic, json.dumps(days), json.dumps(sorted(candidates)))))
        ranked = sorted(totals.items(), key=lambda kv: (-kv[1][0], -kv[1][1], kv[0]))[:limit]
        return [{"author": author, "mentions": n, "engagement": e, "negative": neg, "neutral": neu, "positive": pos}
                for author, (n, e, neg, neu, pos) in ranked]

    def _author_candidates(self, topic: str, days: list[str], cut: dict[str, list[int]], pieces: int,
                           limit: int) -> set[str] | None:
        """The authors that can be among `topic`'s top `limit` over the whole `days` and the `cut` counts
        (None: any author can; sum them all). Exact, not a sample: the `limit`-th best total of a few
        likely authors (the last day's and the cut's busiest) is a floor F for the `limit`-th best of
        all, and an author with at least F mentions over `pieces` days or cut pieces has at least
        ceil(F / pieces) in one of them, so only authors with such a piece are summed."""
        seeds = {a for a, in self.conn.execute(
            "SELECT author FROM topic_author_daily WHERE topic = ? AND day = ? ORDER BY mentions DESC LIMIT ?",
            (topic, days[-1], limit))}
        seeds |= {a for a, _ in sorted(cut.items(), key=lambda kv: -kv[1][0])[:limit]}
        if limit < 1 or len(seeds) < limit:
            return None
        seeded = {a: cut[a][0] if a in cut else 0 for a in seeds}
        for a, n in self.conn.execute(f"SELECT author, sum(mentions) {_DAYS} {_ONLY} GROUP BY author",
                                      (topic, json.dumps(days), json.dumps(sorted(seeds)))):
            seeded[a] += n
        floor = sorted(seeded.values(), reverse=True)[limit - 1]
        least = -(-floor // pieces)  # ceil
        if least <= 1:
            return None
        found = {a for a, in self.conn.execute(
            "SELECT DISTINCT author FROM topic_author_daily WHERE topic = ? AND day >= ? AND day <= ? AND mentions >= ?",
            (topic, days[0], days[-1], least))}
        found |= {a for a, c in cut.items() if c[0] >= least}
        return found if len(found) <= MAX_CANDIDATES else None

    def source_outages(self, start: datetime, end: datetime, sources: Sequence[str] | None = None) -> list[Outage]:
        names = list(sources) if sources is not None else [r[0] for r in self.conn.execute("SELECT name FROM sources")]
        out: list[Outage] = []
        for name in sorted(names):
            run: Outage | None = None
            for started, status, error in self.conn.execute(
                    "SELECT started_at, status, error FROM fetches WHERE source = ? AND started_at >= ? AND started_at < ?"
                    " ORDER BY started_at, id", (name, iso(start), iso(end))):
                if status == "error":
                    if run is None:
                        run = {"source": name, "start": started, "end": None, "errors": 0, "error": None}
                        out.append(run)
                    run["errors"] += 1
                    run["error"] = error
                elif run is not None:
                    run["end"], run = started, None
        return out

    def recent_fetch_errors(self, source: str, limit: int = 5) -> list[FetchRecord]:
        return list(self._dicts(
            "SELECT * FROM fetches WHERE source = ? AND status = 'error' ORDER BY started_at DESC, id DESC LIMIT ?",
            (source, limit)))

    def incident(self, incident_id: int) -> IncidentRecord | None:
        rows = list(self._dicts("SELECT * FROM incidents WHERE id = ?", (incident_id,)))
        return incident_record(rows[0]) if rows else None

    def incident_events(self, incident_id: int) -> list[AlertEventRow]:
        return list(self._dicts("SELECT * FROM alert_events WHERE incident_id = ? ORDER BY at, id", (incident_id,)))

    def incident_notifications(self, incident_id: int) -> list[OutboxRow]:
        return list(self._decoded("SELECT * FROM outbox WHERE json_extract(payload, '$.incident') = ? ORDER BY id",
                                  (incident_id,)))

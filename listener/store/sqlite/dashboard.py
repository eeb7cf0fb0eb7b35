"""What the web dashboard reads on SQLite beyond the digest's rollups: a filtered page of mentions
(newest first, by keyset), engagement and authors per topic, source outages and recent errors, and
one incident with its events and notifications."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Sequence

from listener.store.rows import (AlertEventRow, AuthorRow, ExportedMention, FetchRecord, IncidentRecord, Outage,
                                 OutboxRow)
from listener.store.sqlite.alert_state import SQLiteAlertState
from listener.store.sqlite.mentions import ENGAGEMENT, HASHTAG_LIST, TOPIC_LIST, first_matching
from listener.store.types import MentionFilter, iso

if TYPE_CHECKING:
    from listener.query import Query


class SQLiteDashboard(SQLiteAlertState):
    """`interface.DashboardReads` on SQLite."""

    def filtered_mentions(self, where: MentionFilter, query: Query | None = None, *, limit: int = 50,
                          before: tuple[str, int] | None = None, after_id: int | None = None) -> list[ExportedMention]:
        fts = query.to_fts5() if query is not None else None
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
        if fts:
            conds.append("m.id IN (SELECT rowid FROM mentions_fts WHERE mentions_fts MATCH ?)")
            params.append(fts)
        sql = (f"SELECT m.*, {TOPIC_LIST}, {HASHTAG_LIST} FROM {source}"
               + (" WHERE " + " AND ".join(conds) if conds else "") + f" ORDER BY {at} DESC, {mid} DESC")
        if query is None:
            sql += f" LIMIT {int(limit)}"
        return first_matching(self, sql, params, query, limit)

    def topic_engagement(self, topic: str, start: datetime, end: datetime) -> dict[str, int]:
        return dict(self.conn.execute(
            f"""SELECT m.sentiment, sum({ENGAGEMENT}) FROM mention_topics t JOIN mentions m ON m.id = t.mention_id
                WHERE t.topic = ? AND t.published_at >= ? AND t.published_at < ? AND m.sentiment IS NOT NULL
                GROUP BY 1 ORDER BY 1""", (topic, iso(start), iso(end))))

    def top_authors(self, topic: str, start: datetime, end: datetime, limit: int = 10) -> list[AuthorRow]:
        return list(self._dicts(
            f"""SELECT m.author, count(*) AS mentions, sum({ENGAGEMENT}) AS engagement,
                       sum(m.sentiment = 'negative') AS negative, sum(m.sentiment = 'neutral') AS neutral,
                       sum(m.sentiment = 'positive') AS positive
                FROM mention_topics t JOIN mentions m ON m.id = t.mention_id
                WHERE t.topic = ? AND t.published_at >= ? AND t.published_at < ? AND m.sentiment IS NOT NULL
                  AND m.author IS NOT NULL
                GROUP BY m.author ORDER BY mentions DESC, engagement DESC, m.author LIMIT ?""",
            (topic, iso(start), iso(end), limit)))

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
        return self._incident_record(rows[0]) if rows else None

    def incident_events(self, incident_id: int) -> list[AlertEventRow]:
        return list(self._dicts("SELECT * FROM alert_events WHERE incident_id = ? ORDER BY at, id", (incident_id,)))

    def incident_notifications(self, incident_id: int) -> list[OutboxRow]:
        return list(self._decoded("SELECT * FROM outbox WHERE json_extract(payload, '$.incident') = ? ORDER BY id",
                                  (incident_id,)))

"""What the web dashboard reads on PostgreSQL beyond the digest's rollups: a filtered page of mentions
(newest first, by keyset), engagement and top authors per topic (from the rollups), source outages
and recent errors, and one incident with its events and notifications."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Sequence

from listener.models import LABELS as SENTIMENTS  # the labels, in the model's order
from listener.store.periods import add_authors, whole_and_cut
from listener.store.postgres.alert_reads import TOPIC_MENTIONS
from listener.store.postgres.alert_state import PostgresAlertState
from listener.store.postgres.matching import first_matching
from listener.store.postgres.mentions import BY_HASHTAG, BY_TOPIC, ENGAGEMENT, HASHTAG_LIST, MENTION_COLUMNS, TOPIC_LIST
from listener.store.rows import (AlertEventRow, AuthorRow, ExportedMention, FetchRecord, IncidentRecord, Outage,
                                 OutboxRow)
from listener.store.types import MentionFilter, iso
from listener.store.decode import incident_record

if TYPE_CHECKING:
    from listener.query import Query

HOUR, DAY = timedelta(hours=1), timedelta(days=1)
# an author's counts over some whole days of `topic_author_daily`, of some authors only
_AUTHOR_SUMS = ("sum(mentions)::bigint AS mentions, sum(engagement)::bigint AS engagement, "
                "sum(negative)::bigint AS negative, sum(neutral)::bigint AS neutral, sum(positive)::bigint AS positive")
_DAYS = "FROM topic_author_daily WHERE topic = %(topic)s AND day = ANY(%(days)s::date[])"
_ONLY = "AND author = ANY(%(authors)s)"
MAX_CANDIDATES = 1000  # more authors that could make the top: sum them all, one pass beats a lookup each


def _authors(rows: Sequence[dict[str, Any]]) -> list[tuple]:
    return [(r["author"], r["mentions"], r["engagement"], r["negative"], r["neutral"], r["positive"]) for r in rows]


class PostgresDashboard(PostgresAlertState):
    """`interface.DashboardReads` on PostgreSQL."""

    def filtered_mentions(self, where: MentionFilter, query: Query | None = None, *, limit: int = 50,
                          before: tuple[str, int] | None = None, after_id: int | None = None) -> list[ExportedMention]:
        # walk the most selective index newest first: a hashtag's, a topic's, else every mention's
        if where.hashtag is not None:
            source, at, mid = BY_HASHTAG, "d.published_at", "d.mention_id"
            conds, params = ["d.hashtag = %s"], [where.hashtag]
            if where.topic is not None:
                conds.append("EXISTS (SELECT 1 FROM mention_topics t WHERE t.mention_id = m.id "
                             "AND t.published_at = m.published_at AND t.topic = %s)")
                params.append(where.topic)
        elif where.topic is not None:
            source, at, mid = BY_TOPIC, "d.published_at", "d.mention_id"
            conds, params = ["d.topic = %s"], [where.topic]
        else:
            source, at, mid = "mentions m", "m.published_at", "m.id"
            conds, params = [], []
        for column, value in (("sentiment", where.sentiment), ("source", where.source),
                              ("language", where.language), ("author", where.author)):
            if value is not None:
                conds.append(f"m.{column} = %s")
                params.append(value)
        if where.start is not None:
            conds.append(f"{at} >= %s")
            params.append(iso(where.start))
        if where.end is not None:
            conds.append(f"{at} < %s")
            params.append(iso(where.end))
        if before is not None:
            conds.append(f"({at}, {mid}) < (%s::timestamptz, %s::bigint)")
            params += [before[0], before[1]]
        if after_id is not None:
            conds.append("m.id > %s")
            params.append(after_id)
        return first_matching(self, f"{MENTION_COLUMNS}, {TOPIC_LIST}, {HASHTAG_LIST}", source, conds, params, query,
                              limit, at=at, mid=mid)

    def topic_engagement(self, topic: str, start: datetime, end: datetime) -> dict[str, int]:
        """(Whole hours from `topic_hourly`, the cut hours at either end from the mentions.)"""
        lo, hi, cut = whole_and_cut(start, end, HOUR)
        totals = {s: [0, 0] for s in SENTIMENTS}  # sentiment -> [mentions, engagement]
        if lo < hi:
            r = self._one(
                f"""SELECT {", ".join(f"coalesce(sum({s}), 0)::bigint AS {s}, coalesce(sum({s}_engagement), 0)::bigint AS {s}_e"
                                      for s in SENTIMENTS)}
                    FROM topic_hourly WHERE topic = %s AND hour >= %s AND hour < %s""", (topic, iso(lo), iso(hi)))
            for s in SENTIMENTS:
                totals[s] = [r[s], r[f"{s}_e"]]  # type: ignore[index]
        for a, b in cut:
            for r in self._dicts(
                    f"""SELECT m.sentiment, count(*) AS n, sum({ENGAGEMENT})::bigint AS e FROM {TOPIC_MENTIONS}
                          AND m.sentiment IS NOT NULL GROUP BY 1""", {"topic": topic, "start": iso(a), "end": iso(b)}):
                totals[r["sentiment"]][0] += r["n"]
                totals[r["sentiment"]][1] += r["e"]
        return {s: e for s, (n, e) in totals.items() if n}

    def top_authors(self, topic: str, start: datetime, end: datetime, limit: int = 10) -> list[AuthorRow]:
        """(Whole UTC days from `topic_author_daily`, the cut days at either end from the mentions; only
        the authors that can make the top `limit` are summed, see `_author_candidates`.)"""
        lo, hi, cut = whole_and_cut(start, end, DAY)
        totals: dict[str, list[int]] = {}  # author -> [mentions, engagement, negative, neutral, positive]
        for a, b in cut:
            add_authors(totals, _authors(self._dicts(
                f"""SELECT m.author, count(*) AS mentions, sum({ENGAGEMENT})::bigint AS engagement,
                           count(*) FILTER (WHERE m.sentiment = 'negative') AS negative,
                           count(*) FILTER (WHERE m.sentiment = 'neutral') AS neutral,
                           count(*) FILTER (WHERE m.sentiment = 'positive') AS positive
                    FROM {TOPIC_MENTIONS} AND m.sentiment IS NOT NULL AND m.author IS NOT NULL GROUP BY m.author""",
                {"topic": topic, "start": iso(a), "end": iso(b)})))
        if lo < hi:
            days = [iso(lo + k * DAY)[:10] for k in range((hi - lo) // DAY)]
            candidates = self._author_candidates(topic, days, totals, len(days) + len(cut), limit)
            add_authors(totals, _authors(self._dicts(
                f"SELECT author, {_AUTHOR_SUMS} {_DAYS} {'' if candidates is None else _ONLY} GROUP BY author",
                {"topic": topic, "days": days, "authors": sorted(candidates or ())})))
        ranked = sorted(totals.items(), key=lambda kv: (-kv[1][0], -kv[1][1], kv[0]))[:limit]
        return [{"author": author, "mentions": n, "engagement": e, "negative": neg, "neutral": neu, "positive": pos}
                for author, (n, e, neg, neu, pos) in ranked]

    def _author_candidates(self, topic: str, days: list[str], cut: dict[str, list[int]], pieces: int,
                           limit: int) -> set[str] | None:
        """The authors that can be among `topic`'s top `limit` over the whole `days` and the `cut` counts
        (None: any author can; sum them all). Exact, as on SQLite (`SQLiteDashboard._author_candidates`):
        the `limit`-th best total of a few likely authors is a floor F for the `limit`-th best of all,
        and an author with F mentions over `pieces` days or cut pieces has ceil(F / pieces) in one."""
        seeds = {r["author"] for r in self._dicts(
            "SELECT author FROM topic_author_daily WHERE topic = %s AND day = %s ORDER BY mentions DESC LIMIT %s",
            (topic, days[-1], limit))}
        seeds |= {a for a, _ in sorted(cut.items(), key=lambda kv: -kv[1][0])[:limit]}
        if limit < 1 or len(seeds) < limit:
            return None
        seeded = {a: cut[a][0] if a in cut else 0 for a in seeds}
        for r in self._dicts(f"SELECT author, sum(mentions)::bigint AS n {_DAYS} {_ONLY} GROUP BY author",
                             {"topic": topic, "days": days, "authors": sorted(seeds)}):
            seeded[r["author"]] += r["n"]
        floor = sorted(seeded.values(), reverse=True)[limit - 1]
        least = -(-floor // pieces)  # ceil
        if least <= 1:
            return None
        found = {r["author"] for r in self._dicts(
            """SELECT DISTINCT author FROM topic_author_daily WHERE topic = %s AND day >= %s AND day <= %s
                 AND mentions >= %s""", (topic, days[0], days[-1], least))}
        found |= {a for a, c in cut.items() if c[0] >= least}
        return found if len(found) <= MAX_CANDIDATES else None

    def source_outages(self, start: datetime, end: datetime, sources: Sequence[str] | None = None) -> list[Outage]:
        names = list(sources) if sources is not None else [r["name"] for r in self._dicts("SELECT name FROM sources")]
        out: list[Outage] = []
        runs: dict[str, Outage | None] = {}
        for r in self._dicts(
                """SELECT source, started_at, status, error FROM fetches
                   WHERE source = ANY(%s) AND started_at >= %s AND started_at < %s ORDER BY started_at, id""",
                (names, iso(start), iso(end))):
            runs.setdefault(r["source"], None)
            run = runs[r["source"]]
            if r["status"] == "error":
                if run is None:
                    run = runs[r["source"]] = {"source": r["source"], "start": r["started_at"], "end": None,
                                               "errors": 0, "error": None}
                    out.append(run)
                run["errors"] += 1
                run["error"] = r["error"]
            elif run is not None:
                run["end"], runs[r["source"]] = r["started_at"], None
        order = {name: k for k, name in enumerate(sorted(names))}
        return sorted(out, key=lambda o: order[o["source"]])  # by source, each's runs in time (a stable sort)

    def recent_fetch_errors(self, source: str, limit: int = 5) -> list[FetchRecord]:
        return self._dicts(  # type: ignore[return-value]
            "SELECT * FROM fetches WHERE source = %s AND status = 'error' ORDER BY started_at DESC, id DESC LIMIT %s",
            (source, limit))

    def incident(self, incident_id: int) -> IncidentRecord | None:
        row = self._one("SELECT * FROM incidents WHERE id = %s", (incident_id,))
        return incident_record(row) if row else None

    def incident_events(self, incident_id: int) -> list[AlertEventRow]:
        return self._dicts("SELECT * FROM alert_events WHERE incident_id = %s ORDER BY at, id",  # type: ignore[return-value]
                           (incident_id,))

    def incident_notifications(self, incident_id: int) -> list[OutboxRow]:
        return list(self._decoded(
            "SELECT * FROM outbox WHERE payload::jsonb @> jsonb_build_object('incident', %s::bigint) ORDER BY id",
            (incident_id,)))

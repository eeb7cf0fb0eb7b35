"""The rollups on PostgreSQL: every change of what a mention counts for, moved into `topic_hourly`,
`hashtag_hourly`, `topic_breakdown_hourly` and `topic_author_daily` at once, in the transaction
of the change (the contract is `listener.store.interface`'s).

What a scored mention adds to a topic it is in is its `Counted` state: one mention of its
sentiment, its P(negative) (and square), its engagement, at its hour, source, language, author
and day, and the same for each of its hashtags. Every change is a list of such states with a sign:
a re-score or a correction takes the old state out and puts the new one in over the topics the
mention is in; a refreshed engagement the same; a topic linked to a scored mention puts its state
in for that topic; a mention no longer relevant to a topic takes it out (and a row left with no
mention goes, as on SQLite). Pruning moves nothing: trends outlive the mentions.

`move` sums the states per rollup row and upserts each table in one statement, its rows in key
order, so that writers changing the same hours at once never deadlock. The engine's writers call
it (ingest, scoring, corrections) with the states they read under a row lock of the mention; no
trigger does it behind them, so that storing new mentions, which count nowhere until they are
scored, costs the rollups nothing.
"""

from __future__ import annotations

from typing import Any, Iterable, NamedTuple

# A mention `m`'s engagement, and its columns that `Counted` names (read them `locked`).
ENGAGEMENT = "coalesce(m.likes, 0) + coalesce(m.reposts, 0) + coalesce(m.replies, 0) + coalesce(m.score, 0)"
COUNTED_COLUMNS = (f"m.id, m.published_at, m.sentiment, m.p_negative, {ENGAGEMENT} AS engagement, m.author, "
                   "m.source, m.language")


def locked(columns: str) -> str:
    """SELECT `columns` of the mentions `m` whose ids are the parameter (a list, sorted), each row locked
    FOR UPDATE in that order (writers lock mentions in id order: no deadlock) before its change is
    read and moved. Row by row through its key, so that no plan reads a partition whole."""
    return (f"SELECT {columns} FROM unnest(%b::bigint[]) AS v(id) "
            "CROSS JOIN LATERAL (SELECT * FROM mention_keys k WHERE k.id = v.id LIMIT 1) AS k "
            "CROSS JOIN LATERAL (SELECT * FROM mentions m WHERE m.id = k.id AND m.published_at = k.published_at "
            "LIMIT 1 FOR UPDATE) AS m")


class Counted(NamedTuple):
    """What a mention counts for in the rollups of each topic it is in (nothing until it is scored)."""

    id: int
    published_at: str
    sentiment: str | None
    p_negative: float | None
    engagement: int
    author: str | None
    source: str
    language: str | None


# (sign, state, topic): +1 puts the state in, -1 takes it out; topic None: each topic it is in now
Change = tuple[int, Counted, "str | None"]

_CHANGES = """c AS MATERIALIZED (
    SELECT coalesce(x.topic, t.topic) AS topic, x.id, x.at, x.sign, x.s, coalesce(x.p, 0) AS p, x.e, x.author,
           x.source, coalesce(x.language, '') AS language,
           date_trunc('hour', x.at, 'UTC') AS hour, (x.at AT TIME ZONE 'UTC')::date AS day
    FROM unnest(%(sign)b::int[], %(id)b::bigint[], %(at)b::timestamptz[], %(s)b::text[], %(p)b::float8[],
                %(e)b::bigint[], %(author)b::text[], %(source)b::text[], %(language)b::text[], %(topic)b::text[])
         AS x(sign, id, at, s, p, e, author, source, language, topic)
    LEFT JOIN mention_topics t ON x.topic IS NULL AND t.mention_id = x.id AND t.published_at = x.at
         AND t.published_at >= %(first)s AND t.published_at <= %(last)s
    WHERE x.s IS NOT NULL AND coalesce(x.topic, t.topic) IS NOT NULL)"""
# (the changes' first and last times bound each join to the months they are in: a join planned
# for many rows would otherwise read every month's partition whole)


def _counts(**extra: str) -> tuple[str, str]:
    """The summed columns of a rollup (counts per sentiment, then `extra`) and their upsert."""
    sums = {"mentions": "sum(sign)", **{s: f"sum(sign * (s = '{s}')::int)" for s in ("negative", "neutral", "positive")},
            **extra}
    return (", ".join(sums), ", ".join(sums.values()),
            ", ".join(f"{col} = r.{col} + excluded.{col}" for col in sums))  # type: ignore[return-value]


def _upsert(table: str, keys: str, source: str, **extra: str) -> str:
    columns, values, update = _counts(**extra)
    return (f"INSERT INTO {table} AS r ({keys}, {columns}) SELECT {keys}, {values} FROM {source} "
            f"GROUP BY {keys} ORDER BY {keys} ON CONFLICT ({keys}) DO UPDATE SET {update}")


_TOPIC = _upsert("topic_hourly", "topic, hour", "c", p_negative="sum(sign * p)", p_negative_sq="sum(sign * p * p)",
                 **{f"{s}_engagement": f"sum(sign * e * (s = '{s}')::int)" for s in ("negative", "neutral", "positive")})
_HASHTAG = _upsert("hashtag_hourly", "topic, hashtag, hour",
                   "c JOIN hashtags h ON h.mention_id = c.id AND h.published_at = c.at "
                   "AND h.published_at >= %(first)s AND h.published_at <= %(last)s", p_negative="sum(sign * p)")
_BREAKDOWN = _upsert("topic_breakdown_hourly", "topic, hour, source, language", "c")
_AUTHOR = _upsert("topic_author_daily", "topic, day, author", "(SELECT * FROM c WHERE author IS NOT NULL) AS c",
                  engagement="sum(sign * e)")

MOVE = (f"WITH {_CHANGES}, th AS ({_TOPIC}), hh AS ({_HASHTAG}), bh AS ({_BREAKDOWN}), ad AS ({_AUTHOR}) "
        "SELECT count(*) AS n FROM c")

# rows of the hours (days) a removal touched that count no mention any more
DROP_EMPTY = f"""WITH {_CHANGES},
    th AS (DELETE FROM topic_hourly r USING c WHERE r.topic = c.topic AND r.hour = c.hour AND r.mentions = 0),
    hh AS (DELETE FROM hashtag_hourly r USING c WHERE r.topic = c.topic AND r.hour = c.hour AND r.mentions = 0),
    bh AS (DELETE FROM topic_breakdown_hourly r USING c WHERE r.topic = c.topic AND r.hour = c.hour AND r.mentions = 0),
    ad AS (DELETE FROM topic_author_daily r USING c WHERE r.topic = c.topic AND r.day = c.day AND r.mentions = 0)
    SELECT count(*) AS n FROM c"""


def move(conn: Any, changes: Iterable[Change]) -> None:
    """Apply `changes` to every rollup at once (see the module's docstring); states not scored count nothing."""
    changes = [(sign, state, topic) for sign, state, topic in changes if state.sentiment is not None]
    if not changes:
        return
    params = {"sign": [c[0] for c in changes], "topic": [c[2] for c in changes],
              **{name: [c[1][i] for c in changes] for i, name in enumerate(("id", "at", "s", "p", "e", "author",
                                                                             "source", "language"))}}
    params["first"], params["last"] = min(params["at"]), max(params["at"])
    # planned each time (prepare=False): a generic plan kept from when the tables were small scans them whole
    conn.execute(MOVE, params, prepare=False)
    if any(sign < 0 and topic is not None for sign, _, topic in changes):  # a topic left: empty rows go
        conn.execute(DROP_EMPTY, params, prepare=False)


def rescored(old: Counted, new: Counted) -> list[Change]:
    """A mention's state changed (a score, a correction, its engagement): out with the old, in with the new."""
    return [(-1, old, None), (1, new, None)]

"""Storing fetches on PostgreSQL: mentions once each (by source id, then by canonical URL), their topics
and hashtags, the source's state and its fetch log, all in one transaction, a batch at a time.

A batch costs a few statements, whatever its size: one looks up the stored mentions it repeats
(`mention_keys`), one inserts the new mentions' keys, topics and hashtags (arrays unnested), one
COPY their rows, and only a batch that changes stored mentions (more engagement, a new topic)
locks them and moves the rollups (`rollups.move`). Which rows repeat which is decided in order, as
SQLite's engine does one row after another. Two processes storing the same mention at once: the
second one's key insert waits for the first, finds it taken, and its batch runs again from the
start, seeing the stored mention (as does a batch that lost a deadlock, or whose month another
process's retention had just dropped).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable, Sequence, TypeVar

from listener.errors import StoreError
from listener.query import search_words
from listener.query.tsquery import MAX_LEXEME
from listener.sources import SourceState
from listener.store.postgres import rollups
from listener.store.postgres.partitions import PostgresPartitions
from listener.store.types import Fetched, MentionRow, SaveResult, SavesFetchesInBatches, iso, iso_once

ATTEMPTS = 4  # a batch that lost a race (see the module's docstring) runs again, at most this often
ENGAGEMENT = ("likes", "reposts", "replies", "score")
T = TypeVar("T")

# each row's stored mention, by its key and by its URL (a key found twice is read twice); written so
# that even a plan made while the table was small looks them up by index, row by row
_STORED = f"""SELECT k.id, k.source AS key_source, k.source_id, k.url, m.id IS NOT NULL AS alive,
        {', '.join('m.' + c for c in ENGAGEMENT)},
        ARRAY(SELECT t.topic FROM mention_topics t WHERE t.mention_id = k.id AND t.published_at = k.published_at) AS topics
    FROM unnest(%b::text[], %b::text[], %b::text[]) AS x(source, source_id, url)
    CROSS JOIN LATERAL (SELECT * FROM mention_keys k WHERE k.source = x.source AND k.source_id = x.source_id
                        UNION ALL SELECT * FROM mention_keys k WHERE k.url = x.url) AS k
    LEFT JOIN LATERAL (SELECT * FROM mentions m WHERE m.id = k.id AND m.published_at = k.published_at LIMIT 1) AS m
        ON true"""

_COLUMNS = ("source", "source_id", "url", "author", "title", "text", "language", "language_detected", "published_at",
            "fetched_at", *ENGAGEMENT)
# new keys, their ids in the batch's order, inserted in the order of the key (writers storing the same
# mentions at once wait for each other instead of deadlocking), and their topics and hashtags; whether
# each key went in (one that another writer stored meanwhile did not)
_KEYS = """WITH x AS MATERIALIZED (
        SELECT nextval('mention_keys_id_seq') AS id, x.*
        FROM unnest(%(source)b::text[], %(source_id)b::text[], %(url)b::text[], %(at)b::timestamptz[]) WITH ORDINALITY
             AS x(source, source_id, url, published_at, ord)),
    k AS (INSERT INTO mention_keys (id, source, source_id, url, published_at)
          SELECT id, source, source_id, url, published_at FROM x ORDER BY source, source_id
          ON CONFLICT DO NOTHING RETURNING id),
    t AS (INSERT INTO mention_topics (mention_id, topic, published_at)
          SELECT x.id, l.name, x.published_at FROM unnest(%(topic_of)b::bigint[], %(topic)b::text[]) AS l(ord, name)
          JOIN x USING (ord)),
    h AS (INSERT INTO hashtags (mention_id, hashtag, published_at)
          SELECT x.id, l.name, x.published_at FROM unnest(%(hashtag_of)b::bigint[], %(hashtag)b::text[]) AS l(ord, name)
          JOIN x USING (ord))
    SELECT x.id, k.id IS NOT NULL AS stored FROM x LEFT JOIN k USING (id) ORDER BY x.ord"""

_LOCK = rollups.locked(f"{rollups.COUNTED_COLUMNS}, {', '.join('m.' + c for c in ENGAGEMENT)}")

_REFRESH = f"""UPDATE mentions m SET {', '.join(f'{c} = v.{c}' for c in ENGAGEMENT)}
    FROM unnest(%b::bigint[], %b::timestamptz[], %b::bigint[], %b::bigint[], %b::bigint[], %b::bigint[])
         AS v(id, at, {', '.join(ENGAGEMENT)})
    WHERE m.id = v.id AND m.published_at = v.at"""

# new topics of stored mentions, except those a team said they are not relevant to
_LINK = """INSERT INTO mention_topics (mention_id, topic, published_at)
    SELECT x.id, x.topic, x.at FROM unnest(%b::bigint[], %b::timestamptz[], %b::text[]) AS x(id, at, topic)
    WHERE NOT EXISTS (SELECT 1 FROM corrections c WHERE c.mention_id = x.id AND c.label = 'not relevant'
                      AND (c.topic IS NULL OR c.topic = x.topic))
    ORDER BY x.id, x.topic ON CONFLICT DO NOTHING RETURNING mention_id, topic"""

_FETCHED = """WITH s AS (
        INSERT INTO sources (name, kind, etag, last_modified, cursor, last_attempt_at, last_success_at, next_check_at)
        VALUES (%(source)s, %(kind)s, %(etag)s, %(last_modified)s, %(cursor)s, %(started_at)s, %(now)s, %(next_check_at)s)
        ON CONFLICT (name) DO UPDATE SET kind = excluded.kind, etag = excluded.etag,
            last_modified = excluded.last_modified, cursor = excluded.cursor, last_attempt_at = excluded.last_attempt_at,
            last_success_at = excluded.last_success_at, consecutive_errors = 0, next_check_at = excluded.next_check_at)
    INSERT INTO fetches (source, started_at, finished_at, status, items, new_mentions, requests)
    VALUES (%(source)s, %(started_at)s, %(now)s, %(status)s, %(items)s, %(new)s, %(requests)s)"""

_FAILED = """WITH s AS (
        INSERT INTO sources (name, kind, last_attempt_at, last_error, last_error_at, consecutive_errors, next_check_at)
        VALUES (%(source)s, %(kind)s, %(started_at)s, %(error)s, %(now)s, 1, %(next_check_at)s)
        ON CONFLICT (name) DO UPDATE SET kind = excluded.kind, last_attempt_at = excluded.last_attempt_at,
            last_error = excluded.last_error, last_error_at = excluded.last_error_at,
            consecutive_errors = sources.consecutive_errors + 1, next_check_at = excluded.next_check_at
        RETURNING consecutive_errors),
    f AS (INSERT INTO fetches (source, started_at, finished_at, status, requests, error)
          VALUES (%(source)s, %(started_at)s, %(now)s, 'error', %(requests)s, %(error)s))
    SELECT consecutive_errors FROM s"""


def _words(row: MentionRow) -> str:
    return search_vector(row.text, row.title)


def search_vector(text: str, title: str | None) -> str:
    """A mention's search vector as tsvector input: its words, which hold no space, quote, backslash or
    colon (a word longer than a tsvector keeps is left out; a character is 4 bytes at most)."""
    words = search_words(text, title)
    joined = " ".join(words)
    if len(joined) > MAX_LEXEME // 4 and max(map(len, words)) > MAX_LEXEME // 4:  # (no word is longer than all)
        joined = " ".join(w for w in words if len(w.encode()) <= MAX_LEXEME)
    return joined


class _Again(Exception):
    """The batch lost a race to another writer: run it again from the start."""


@dataclass
class _New:
    """A mention of the batch to insert: its row, and what its repeats in the same batch add."""

    row: MentionRow
    topics: dict[str, None]
    engagement: list[int | None]


@dataclass
class _Stored:
    """A stored mention the batch repeats: its key, and what the repeats bring (engagement, topics)."""

    id: int
    topics: set[str]
    engagement: list[int | None]
    brought: list[int | None] = field(default_factory=lambda: [None] * len(ENGAGEMENT))
    new_topics: dict[str, None] = field(default_factory=dict)


class PostgresIngest(SavesFetchesInBatches, PostgresPartitions):
    """`interface.Ingest` on PostgreSQL (each method's contract is written there)."""

    def save_fetches(self, fetches: Sequence[Fetched]) -> list[SaveResult]:
        def write(conn: Any) -> list[SaveResult]:
            saved = self._save_groups(conn, [f.rows for f in fetches])
            with conn.cursor() as cur:  # one round trip for them all (psycopg pipelines executemany)
                cur.executemany(_FETCHED, [
                    {"source": f.source, "kind": f.kind, "etag": f.state.etag, "last_modified": f.state.last_modified,
                     "cursor": f.state.cursor, "started_at": iso(f.started_at), "now": iso(f.now),
                     "next_check_at": iso(f.next_check_at), "status": "not_modified" if f.not_modified else "ok",
                     "items": f.items, "new": len(s.new_ids), "requests": f.requests} for f, s in zip(fetches, saved)])
            return saved

        return self._store_batch([r for f in fetches for r in f.rows], write)

    def save_mentions(self, rows: Sequence[MentionRow]) -> SaveResult:
        return self._store_batch(rows, lambda conn: self._save_rows(conn, rows))

    def record_failure(self, source: str, kind: str, error: str, *, started_at: datetime, now: datetime,
                       next_check_at: datetime, requests: int = 1) -> int:
        with self.transaction() as conn:
            return conn.execute(_FAILED, {"source": source, "kind": kind, "started_at": iso(started_at), "error": error,
                                          "now": iso(now), "next_check_at": iso(next_check_at),
                                          "requests": requests}).fetchone()["consecutive_errors"]

    def source_state(self, name: str) -> SourceState:
        r = self._one("SELECT etag, last_modified, cursor FROM sources WHERE name = %s", (name,))
        return SourceState(r["etag"], r["last_modified"], r["cursor"]) if r else SourceState()

    def _store_batch(self, rows: Sequence[MentionRow], write: Callable[[Any], T]) -> T:
        """`write` in one transaction, after the partitions its mentions need; again when it lost a race."""
        import psycopg

        for attempt in range(1, ATTEMPTS + 1):
            self._ensure_partitions(r.published_at for r in rows)
            try:
                with self.transaction() as conn:
                    return write(conn)
            except _Again:
                pass
            except StoreError as exc:
                cause = exc.__cause__
                lost = isinstance(cause, (psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure))
                dropped = isinstance(cause, psycopg.errors.CheckViolation) and "no partition" in str(cause)
                if not (lost or dropped) or attempt == ATTEMPTS:
                    raise
                if dropped:
                    self._forget_partitions()
        raise StoreError(f"storing {len(rows)} mentions lost to other writers {ATTEMPTS} times; nothing was saved")

    def _save_rows(self, conn: Any, rows: Sequence[MentionRow]) -> SaveResult:
        return self._save_groups(conn, [rows])[0]

    def _save_groups(self, conn: Any, groups: Sequence[Sequence[MentionRow]]) -> list[SaveResult]:
        """The rows of every group stored as one batch, in order (a later group's row may repeat an
        earlier group's); what each group did."""
        rows = [row for group in groups for row in group]
        if not rows:
            return [SaveResult([], 0) for _ in groups]
        by_key, by_url = self._stored(conn, rows)
        fresh: list[_New] = []
        owner: list[int] = []  # the group of each fresh mention
        updated = [0] * len(groups)
        seen_key: dict[tuple[str, str], _New | _Stored] = {}
        seen_url: dict[str, _New | _Stored] = {}
        repeated: dict[int, _Stored] = {}
        for g, row in ((g, row) for g, group in enumerate(groups) for row in group):
            # in order: a row repeats a stored mention, or one earlier in the batch
            key = (row.source, row.source_id)
            target = seen_key.get(key) or by_key.get(key) or (
                (seen_url.get(row.url) or by_url.get(row.url)) if row.url else None)
            if target is None:
                target = _New(row, dict.fromkeys(row.topics), [getattr(row, c) for c in ENGAGEMENT])
                fresh.append(target)
                owner.append(g)
                seen_key[key] = target  # a repeat's own key and URL are not stored: only a new mention's
                if row.url:
                    seen_url[row.url] = target
            else:
                updated[g] += 1
                values = target.engagement if isinstance(target, _New) else target.brought
                for i, c in enumerate(ENGAGEMENT):
                    if getattr(row, c) is not None:
                        values[i] = getattr(row, c)
                if isinstance(target, _New):
                    target.topics.update(dict.fromkeys(row.topics))
                else:
                    repeated[target.id] = target
                    target.new_topics.update({t: None for t in row.topics if t not in target.topics})
        new_ids: list[list[int]] = [[] for _ in groups]
        for g, mention_id in zip(owner, self._insert(conn, fresh)):
            new_ids[g].append(mention_id)
        self._refresh(conn, list(repeated.values()))
        return [SaveResult(ids, n) for ids, n in zip(new_ids, updated)]

    def _stored(self, conn: Any, rows: Sequence[MentionRow]) -> tuple[dict[tuple[str, str], _Stored], dict[str, _Stored]]:
        """The stored mentions the rows repeat, by (source, source id) and by URL. A key left by a mention
        whose month was dropped (retention cut short) goes: the row is new."""
        found = conn.execute(_STORED, ([r.source for r in rows], [r.source_id for r in rows],
                                       [r.url for r in rows])).fetchall()
        stale = list({r["id"] for r in found if not r["alive"]})
        if stale:
            conn.execute("DELETE FROM mention_keys WHERE id = ANY(%b::bigint[])", (stale,))
        by_key, by_url, by_id = {}, {}, {}
        for r in found:
            if r["alive"] and r["id"] not in by_id:
                by_id[r["id"]] = stored = _Stored(r["id"], set(r["topics"]), [r[c] for c in ENGAGEMENT])
                by_key[(r["key_source"], r["source_id"])] = stored
                if r["url"]:
                    by_url[r["url"]] = stored
        return by_key, by_url

    def _insert(self, conn: Any, fresh: list[_New]) -> list[int]:
        """Insert the new mentions' keys, topics and hashtags, then (COPY: the fastest way in) their rows;
        their ids, in order."""
        if not fresh:
            return []
        rows = [new.row for new in fresh]
        stamp = iso_once()
        at = [stamp(row.published_at) for row in rows]
        params: dict[str, list[Any]] = {"source": [row.source for row in rows],
                                        "source_id": [row.source_id for row in rows], "url": [row.url for row in rows],
                                        "at": at}
        for kind, names in (("topic", [new.topics for new in fresh]), ("hashtag", [dict.fromkeys(r.hashtags) for r in rows])):
            params[f"{kind}_of"] = [n for n, these in enumerate(names, 1) for _ in these]
            params[kind] = [name for these in names for name in these]
        keys = conn.execute(_KEYS, params).fetchall()
        if not all(k["stored"] for k in keys):  # another writer stored some of them meanwhile
            raise _Again()
        new_ids = [k["id"] for k in keys]
        with conn.cursor() as cur, cur.copy(f"COPY mentions (id, {', '.join(_COLUMNS)}, words) FROM STDIN") as copy:
            for mention_id, new, when in zip(new_ids, fresh, at):
                row = new.row
                copy.write_row((mention_id, row.source, row.source_id, row.url, row.author, row.title, row.text,
                                row.language, int(row.language_detected), when, stamp(row.fetched_at), *new.engagement,
                                _words(row)))
        return new_ids

    def _refresh(self, conn: Any, repeated: list[_Stored]) -> None:
        """Bring the repeats to their stored mentions: engagement refreshed, new topics linked (not one
        the mention was marked not relevant to), and the rollups moved by both."""
        changing = [s for s in repeated
                    if s.new_topics or any(b is not None and b != e for b, e in zip(s.brought, s.engagement))]
        if not changing:
            return
        by_id = {s.id: s for s in changing}
        locked = conn.execute(_LOCK, (sorted(by_id),)).fetchall()  # what they count for now
        changes: list[rollups.Change] = []
        refreshed = []
        for r in locked:
            old = rollups.Counted(*(r[c] for c in rollups.Counted._fields))
            brought = by_id[r["id"]].brought
            now = [b if b is not None else r[c] for b, c in zip(brought, ENGAGEMENT)]
            if now != [r[c] for c in ENGAGEMENT]:
                refreshed.append((r["id"], r["published_at"], *now))
                changes += rollups.rescored(old, old._replace(engagement=sum(v or 0 for v in now)))
        if refreshed:
            conn.execute(_REFRESH, [list(col) for col in zip(*refreshed)], prepare=False)
        links = [(r["id"], r["published_at"], t) for r in locked for t in by_id[r["id"]].new_topics]
        if links:
            linked = conn.execute(_LINK, [list(col) for col in zip(*links)]).fetchall()
            # a new topic counts the mention as it was: the refresh above moves every topic it is in now
            states = {r["id"]: rollups.Counted(*(r[c] for c in rollups.Counted._fields)) for r in locked}
            changes += [(1, states[r["mention_id"]], r["topic"]) for r in linked]
        rollups.move(conn, changes)

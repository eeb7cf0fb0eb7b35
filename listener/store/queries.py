"""Ready SQL for common questions: one constant per query, shared by the README, the tests and
`listener sql --query NAME`.

Every query is a read-only SELECT over the documented tables and views. `:now` (UTC ISO-8601,
`2026-11-22T08:00:00Z`) is the moment the question is asked: `listener sql` binds it to the
current time unless `--param now=...` is given, so a query can also be asked about the past.

Each is written twice, in SQLite's dialect and in PostgreSQL's, with the same columns and the same
rows on the same data (tests/test_store_postgres_reads.py runs both): `for_location` picks the one
for the database. Text sorts by code point on both (`collate "C"`), as SQLite's does.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ReadyQuery:
    name: str  # for `listener sql --query NAME`
    question: str  # what it answers, one sentence
    sql: str  # SQLite's
    postgresql: str  # the same question in PostgreSQL's SQL

    def for_location(self, location: str | Path) -> str:
        """The text to run on the database at `location` (`DatabaseConfig.location`)."""
        from listener.store import is_postgres

        return self.postgresql if is_postgres(location) else self.sql


ANGRY_THIS_WEEK = ReadyQuery(
    "angry-this-week",
    "What are people angry about this week? The hashtags with the most negative mentions in the 7 days before :now, "
    "per topic.",
    """\
select topic, hashtag, sum(negative) as negative, sum(mentions) as mentions,
       round(1.0 * sum(negative) / sum(mentions), 2) as negative_share
from hashtag_hourly
where hour >= strftime('%Y-%m-%dT%H:00:00Z', :now, '-7 days') and hour < :now
group by topic, hashtag
having sum(negative) > 0
order by negative desc, negative_share desc, topic, hashtag
limit 20""",
    """\
select topic, hashtag, sum(negative) as negative, sum(mentions) as mentions,
       round(1.0 * sum(negative) / sum(mentions), 2) as negative_share
from hashtag_hourly
where hour >= date_trunc('hour', :now::timestamptz, 'UTC') - interval '7 days' and hour < :now::timestamptz
group by topic, hashtag
having sum(negative) > 0
order by negative desc, negative_share desc, topic collate "C", hashtag collate "C"
limit 20""")

LOUDEST_COMPLAINTS = ReadyQuery(
    "loudest-complaints",
    "Which complaints got the most attention this week? The most engaged negative mentions of the 7 days before :now.",
    """\
select t.topic, m.published_at, m.source, m.author, m.engagement,
       substr(coalesce(m.title || ': ', '') || m.text, 1, 200) as text, m.url
from mention_topics t join mention_details m on m.id = t.mention_id
where t.published_at >= strftime('%Y-%m-%dT%H:%M:%SZ', :now, '-7 days') and t.published_at < :now
  and m.sentiment = 'negative'
order by m.engagement desc, m.published_at desc, m.id
limit 20""",
    """\
select t.topic, m.published_at, m.source, m.author, m.engagement,
       substr(coalesce(m.title || ': ', '') || m.text, 1, 200) as text, m.url
from mention_topics t join mention_details m on m.id = t.mention_id
where t.published_at >= :now::timestamptz - interval '7 days' and t.published_at < :now::timestamptz
  and m.sentiment = 'negative'
order by m.engagement desc, m.published_at desc, m.id
limit 20""")

SHARE_OF_VOICE = ReadyQuery(
    "share-of-voice",
    "How loud is each topic compared with the others? Mentions per topic in the 30 days before :now, their share of "
    "all topic mentions and their net sentiment.",
    """\
select topic, sum(mentions) as mentions,
       round(100.0 * sum(mentions) / sum(sum(mentions)) over (), 1) as share_percent,
       round(1.0 * (sum(positive) - sum(negative)) / nullif(sum(positive) + sum(negative), 0), 2) as net_sentiment
from topic_hourly
where hour >= strftime('%Y-%m-%dT%H:00:00Z', :now, '-30 days') and hour < :now
group by topic
order by mentions desc, topic""",
    """\
select topic, sum(mentions) as mentions,
       round(100.0 * sum(mentions) / sum(sum(mentions)) over (), 1) as share_percent,
       round(1.0 * (sum(positive) - sum(negative)) / nullif(sum(positive) + sum(negative), 0), 2) as net_sentiment
from topic_hourly
where hour >= date_trunc('hour', :now::timestamptz, 'UTC') - interval '30 days' and hour < :now::timestamptz
group by topic
order by mentions desc, topic collate "C\"""")

TOP_AUTHORS = ReadyQuery(
    "top-authors",
    "Who talks about us most? Authors with the most mentions per topic in the 30 days before :now, with their "
    "sentiment and the engagement they got.",
    """\
select t.topic, m.author, m.source, count(*) as mentions,
       sum(m.sentiment = 'negative') as negative, sum(m.sentiment = 'positive') as positive,
       sum(m.engagement) as engagement
from mention_topics t join mention_details m on m.id = t.mention_id
where t.published_at >= strftime('%Y-%m-%dT%H:%M:%SZ', :now, '-30 days') and t.published_at < :now
  and coalesce(m.author, '') != ''
group by t.topic, m.author, m.source
order by mentions desc, engagement desc, t.topic, m.author
limit 20""",
    """\
select t.topic, m.author, m.source, count(*) as mentions,
       count(*) filter (where m.sentiment = 'negative') as negative,
       count(*) filter (where m.sentiment = 'positive') as positive, sum(m.engagement) as engagement
from mention_topics t join mention_details m on m.id = t.mention_id
where t.published_at >= :now::timestamptz - interval '30 days' and t.published_at < :now::timestamptz
  and coalesce(m.author, '') != ''
group by t.topic, m.author, m.source
order by mentions desc, engagement desc, t.topic collate "C", m.author collate "C"
limit 20""")

SENTIMENT_TREND = ReadyQuery(
    "sentiment-trend",
    "How does sentiment move? Per topic and UTC day, the 30 days up to :now: mentions, the split and net sentiment.",
    """\
select topic, day, mentions, negative, neutral, positive, round(net_sentiment, 2) as net_sentiment
from topic_daily
where day > date(:now, '-30 days') and day <= date(:now)
order by topic, day""",
    """\
select topic, day, mentions, negative, neutral, positive, round(net_sentiment::numeric, 2) as net_sentiment
from topic_daily
where day > (:now::timestamptz at time zone 'UTC')::date - 30 and day <= (:now::timestamptz at time zone 'UTC')::date
order by topic collate "C", day""")

FAILING_SOURCES = ReadyQuery(
    "failing-sources",
    "Which sources are failing? Sources failing now or that failed in the 24 hours before :now, worst first.",
    """\
with recent as (
    select source, count(*) as errors_24h from fetches
    where status = 'error' and started_at >= strftime('%Y-%m-%dT%H:%M:%SZ', :now, '-1 day') and started_at < :now
    group by source
)
select s.name as source, s.kind, s.consecutive_errors, coalesce(r.errors_24h, 0) as errors_24h,
       s.last_error, s.last_error_at, s.last_success_at
from sources s left join recent r on r.source = s.name
where s.consecutive_errors > 0 or r.errors_24h > 0
order by s.consecutive_errors desc, errors_24h desc, s.name""",
    """\
with recent as (
    select source, count(*) as errors_24h from fetches
    where status = 'error' and started_at >= :now::timestamptz - interval '1 day' and started_at < :now::timestamptz
    group by source
)
select s.name as source, s.kind, s.consecutive_errors, coalesce(r.errors_24h, 0) as errors_24h,
       s.last_error, s.last_error_at, s.last_success_at
from sources s left join recent r on r.source = s.name
where s.consecutive_errors > 0 or r.errors_24h > 0
order by s.consecutive_errors desc, errors_24h desc, s.name collate "C\"""")

QUERIES: dict[str, ReadyQuery] = {q.name: q for q in (
    ANGRY_THIS_WEEK, LOUDEST_COMPLAINTS, SHARE_OF_VOICE, TOP_AUTHORS, SENTIMENT_TREND, FAILING_SOURCES)}


def ready_query(name: str) -> ReadyQuery:
    """The ready query called `name`; KeyError naming the known ones."""
    try:
        return QUERIES[name]
    except KeyError:
        raise KeyError(f"no ready query named {name!r} (known: {', '.join(QUERIES)})") from None


def queries_markdown() -> str:
    """The README's section on ready queries, generated from the constants above."""
    out = []
    for q in QUERIES.values():
        out += [f"#### `{q.name}`", "", q.question, "", "```sql", q.sql, "```", ""]
    return "\n".join(out)

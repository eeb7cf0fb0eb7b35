"""The daily digest: one local day per topic, built from the rollups, mailed once a day.

Modules: `figures` (build_digest: every number, a plain dict), `format` (shared wording),
`text`, `markdown`, `html`, `charts` (renderers that only format), `mail` (queue and send).

`build_digest` gathers every figure into one plain dict (what `listener digest --format json`
prints); the renderers (`print_text`, `render_markdown`, `render_html`, `render_charts`) only
format it. The day runs from local midnight to local midnight in `[digest] timezone`, converted
to UTC (23 or 25 hours on a daylight-saving day). Counts are scored mentions, read from the hourly
rollups (`topic_hourly`, `hashtag_hourly`, `topic_breakdown_hourly`), so a digest costs the same
on a database of a thousand mentions or of millions.

Per topic:
- volume, its change against the previous day and against the average of the 7 days before;
- the sentiment split and net sentiment, (positive - negative) / (positive + negative), and its
  change against the previous day (in points);
- volume by source and by language;
- the top hashtags with their change against the previous day; `new` marks a hashtag not seen
  in the 7 days before;
- the most engaged positive and negative mentions (likes + reposts + replies + score);
- the alerts of the day (alert events `firing` and `resolved`) and the failing sources feeding it;
- the series behind the charts: mentions per hour by sentiment over 7 days, net sentiment per day.

`send_digest_if_due` is the daemon's job: once `[digest] at` has passed (local time), it queues
yesterday's digest unless the outbox already has it. The outbox message id is fixed per day,
recipients and topics, so a digest is queued once, whatever restarts or repeated calls happen.
"""

from listener.digest.charts import data_uris, render_charts
from listener.digest.figures import (COLORS, SENTIMENTS, build_digest, day_bounds, failing_sources, local_midnight,
                                     yesterday)
from listener.digest.format import fmt_change, fmt_net, sparkline, subject
from listener.digest.html import render_html
from listener.digest.mail import SendResult, queue_digest, send_digest, send_digest_if_due
from listener.notify.message_ids import content_id, digest_message_id as message_id
from listener.digest.markdown import render_markdown
from listener.digest.text import print_text, render_text

__all__ = ["build_digest", "day_bounds", "local_midnight", "yesterday", "failing_sources", "COLORS", "SENTIMENTS",
           "render_text", "print_text", "render_markdown", "render_html", "render_charts", "data_uris", "content_id",
           "subject", "fmt_change", "fmt_net", "sparkline", "message_id", "queue_digest", "send_digest",
           "send_digest_if_due", "SendResult"]


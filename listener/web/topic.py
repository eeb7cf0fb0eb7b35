"""A topic's page over a chosen range: mentions per hour stacked by sentiment and net sentiment per
day (JSON for the charts, from the hourly rollups) with incidents and source outages marked; share
of voice against the other topics (count and engagement, by sentiment); top hashtags with their
change and a "new" mark, top authors, sources and languages, each linking to its mentions."""

from __future__ import annotations

from datetime import datetime, timedelta
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from listener.config import Config
from listener.digest.figures import SENTIMENTS, local_midnight, net_sentiment, relative_change
from listener.store import MentionStore, iso, parse_iso
from listener.web.filters import TimeRange, time_range
from listener.web.render import dashboard, page

TOP = 10
ZERO = (0, 0, 0, 0)
NEW_AFTER = timedelta(days=7)  # a hashtag is new when not seen in the 7 days before the range


def _span(request: Request) -> TimeRange:
    d = dashboard(request)
    return time_range(request.query_params, d.now(), d.config.digest.tzinfo)


def _topic(request: Request) -> str | None:
    name = request.path_params["name"]
    return name if name in [t.name for t in dashboard(request).config.topics] else None


def _epoch(at: str | datetime) -> int:
    return int((parse_iso(at) if isinstance(at, str) else at).timestamp())


def _ranked(counts: dict[str, tuple], key: str) -> list[dict]:
    total = sum(c[0] for c in counts.values())
    return [{key: k or None, "mentions": c[0], **dict(zip(SENTIMENTS, c[1:])),
             "share": c[0] / total if total else 0.0} for k, c in sorted(counts.items(), key=lambda kv: (-kv[1][0], kv[0]))]


def feeding(config: Config, topic: str) -> list[str]:
    """The configured sources that feed `topic`."""
    return [s.name for s in config.sources if s.feeds(topic)]


def chart_data(store: MentionStore, config: Config, topic: str, span: TimeRange) -> dict:
    """The charts' series (times as Unix seconds): mentions per hour by sentiment, net sentiment per
    local day, and the incidents and source outages to mark on the time axis."""
    tz = config.digest.tzinfo
    hourly = store.topic_hourly_counts(topic, span.start, span.end)
    hours, at = [], span.start.replace(minute=0, second=0, microsecond=0)
    while at < span.end:
        hours.append(iso(at))
        at += timedelta(hours=1)
    first, last = span.start.astimezone(tz).date(), (span.end - timedelta(seconds=1)).astimezone(tz).date()
    days = [first + timedelta(days=k) for k in range((last - first).days + 1)]
    bounds = [local_midnight(day, tz) for day in days] + [local_midnight(last + timedelta(days=1), tz)]
    daily = [c.get("", ZERO) for c in store.rollup_counts("topic", topic, bounds)]
    markers = [{"kind": "incident", "start": _epoch(i["opened_at"]), "end": _epoch(i["closed_at"] or span.end),
                "label": f"incident {i['id']}", "href": f"/incident/{i['id']}"}
               for i in store.incidents(span.start, span.end) if i["topic"] == topic]
    markers += [{"kind": "outage", "start": _epoch(o["start"]), "end": _epoch(o["end"] or span.end),
                 "label": f"{o['source']} down", "href": "/sources"}
                for o in store.source_outages(span.start, span.end, feeding(config, topic))]
    return {"topic": topic, "zone": config.digest.timezone, "hours": [_epoch(h) for h in hours],
            **{s: [hourly.get(h, ZERO)[i + 1] for h in hours] for i, s in enumerate(SENTIMENTS)},
            "days": [_epoch(b) for b in bounds[:-1]], "net": [net_sentiment(c) for c in daily],
            "day_mentions": [c[0] for c in daily], "markers": markers}


def share_of_voice(store: MentionStore, config: Config, span: TimeRange) -> list[dict]:
    """Every topic's scored mentions (rollups) and engagement in the range, by sentiment, with its share."""
    rows = []
    for t in config.topics:
        counts = store.rollup_counts("topic", t.name, [span.start, span.end])[0].get("", ZERO)
        engagement = store.topic_engagement(t.name, span.start, span.end)
        rows.append({"topic": t.name, "mentions": counts[0], **dict(zip(SENTIMENTS, counts[1:])),
                     "engagement": sum(engagement.values()),
                     "engagement_by": {s: engagement.get(s, 0) for s in SENTIMENTS}})
    total, engaged = sum(r["mentions"] for r in rows), sum(r["engagement"] for r in rows)
    for r in rows:
        r["share"] = r["mentions"] / total if total else 0.0
        r["engagement_share"] = r["engagement"] / engaged if engaged else 0.0
    return rows


def hashtags(store: MentionStore, topic: str, span: TimeRange) -> list[dict]:
    """The range's top hashtags with their change against the period before and a "new" mark."""
    length = span.end - span.start
    top = sorted(store.rollup_counts("hashtag", topic, [span.start, span.end])[0].items(),
                 key=lambda kv: (-kv[1][0], kv[0]))[:TOP]
    earlier, before = store.rollup_counts("hashtag", topic, [span.start - length - NEW_AFTER, span.start - length,
                                                            span.start], keys=[t for t, _ in top])
    return [{"hashtag": tag, "mentions": c[0], **dict(zip(SENTIMENTS, c[1:])), "previous": before.get(tag, ZERO)[0],
             "change": relative_change(c[0], before.get(tag, ZERO)[0]),
             "new": before.get(tag, ZERO)[0] == 0 and earlier.get(tag, ZERO)[0] == 0} for tag, c in top]


def topic_page(request: Request) -> Response:
    """GET /topic/{name}: the topic's page (the charts load /api/topic/{name} with the same range)."""
    name = _topic(request)
    if name is None:
        return page(request, "missing.html", status_code=404, what=f"no topic named {request.path_params['name']!r}")
    d, span = dashboard(request), _span(request)
    with d.store() as store:
        breakdown = {kind: _ranked(store.rollup_counts(kind, name, [span.start, span.end])[0], kind)
                     for kind in ("source", "language")}
        figures = {"voice": share_of_voice(store, d.config, span), "hashtags": hashtags(store, name, span),
                   "authors": store.top_authors(name, span.start, span.end, TOP), **breakdown}
    link = lambda **f: _mentions_url(name, span, **f)  # noqa: E731
    return page(request, "topic.html", name=name, span=span, ranges=("24h", "7d", "30d"), mentions_url=link,
                link_source=lambda k: link(source=k or ""), link_language=lambda k: link(language=k or ""), **figures)


def _mentions_url(topic: str, span: TimeRange, **filters: str) -> str:
    return "/mentions?" + urlencode({"topic": topic, **filters, "start": iso(span.start), "end": iso(span.end)})


def topic_chart(request: Request) -> Response:
    """GET /api/topic/{name}: the chart series of `chart_data`, JSON."""
    name = _topic(request)
    if name is None:
        return JSONResponse({"error": "no such topic"}, status_code=404)
    d = dashboard(request)
    with d.store() as store:
        return JSONResponse(chart_data(store, d.config, name, _span(request)))


ROUTES = [Route("/topic/{name}", topic_page), Route("/api/topic/{name}", topic_chart)]

"""The overview, the page opened every morning: open incidents first, every topic with today's volume
against the usual by this hour and its net sentiment with a 7-day sparkline (the digest's figures
for today, `listener.digest.build_digest`), and the sources failing now (`listener.status`)."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from listener.digest.figures import SENTIMENTS, build_digest, local_midnight, relative_change
from listener.status import alert_overview, source_statuses
from listener.store import parse_iso
from listener.web.render import dashboard, page


def usual_by_now(section: dict, now: datetime, tz: ZoneInfo) -> float:
    """Mentions the topic usually has by this time of day: the mean, over the 6 days before today, of
    each day's mentions from its local midnight to the same local time (whole hours, from the
    digest's hourly series)."""
    today = now.astimezone(tz).date()
    elapsed = now - local_midnight(today, tz)
    hourly = section["hourly"]
    per_hour = {h: sum(hourly[s][i] for s in SENTIMENTS) for i, h in enumerate(hourly["hours"])}
    days = []
    for k in range(1, 7):
        start = local_midnight(today - timedelta(days=k), tz)
        days.append(sum(n for h, n in per_hour.items() if start <= parse_iso(h) < start + elapsed))
    return sum(days) / len(days)


def overview_figures(store, config, now: datetime) -> dict:
    """Everything the overview shows, JSON-ready."""
    tz = config.digest.tzinfo
    names = [t.name for t in config.topics]
    digest = build_digest(store, config, now.astimezone(tz).date(), names) if names else {"topics": []}
    topics = []
    for t in digest["topics"]:
        usual = usual_by_now(t, now, tz)
        topics.append({"topic": t["topic"], "mentions": t["mentions"], "usual": round(usual, 1),
                       "change": relative_change(t["mentions"], usual), "net_sentiment": t["net_sentiment"],
                       "sentiment": t["sentiment"], "net_7d": [d["net_sentiment"] for d in t["daily"]],
                       "days_7d": [d["date"] for d in t["daily"]], "failing_sources": t["failing_sources"]})
    alerts = alert_overview(config, store, now, days=7)
    return {"topics": topics, "open_incidents": [i for i in alerts.incidents if i["state"] == "open"],
            "recent_incidents": [i for i in alerts.incidents if i["state"] != "open"][-5:],
            "failing_sources": [s.as_json() for s in source_statuses(config, store, counts=False)
                                if s.consecutive_errors > 0]}


def overview(request: Request) -> Response:
    """GET /: the overview."""
    d = dashboard(request)
    with d.store() as store:
        figures = overview_figures(store, d.config, d.now())
    return page(request, "overview.html", **figures)


ROUTES = [Route("/", overview)]

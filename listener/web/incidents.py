"""Incidents: the list of the last 30 days, and one incident's page: the alert's explanation, its
transitions, the hashtag's curve against its usual (JSON for the chart, from the hourly rollups),
the example posts with their links, and the notifications sent about it and when."""

from __future__ import annotations

from datetime import datetime, timedelta
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from listener.store import MentionStore, iso, parse_iso
from listener.web.render import dashboard, page

LIST_DAYS = 30
BEFORE, AFTER = timedelta(hours=24), timedelta(hours=6)  # the curve around the incident
USUAL_DAYS = 7  # the usual of an hour: the mean of the same hour on the 7 days before
EXAMPLES = 5
LEAD_IN = timedelta(hours=1)  # the examples: from the hour before it opened (what made it fire) to its close


def _window(incident: dict, now: datetime) -> tuple[datetime, datetime]:
    """The incident's [opened, closed) (still open: up to now)."""
    opened = parse_iso(incident["opened_at"])
    closed = parse_iso(incident["closed_at"]) if incident["closed_at"] else now
    return opened, max(closed, opened + timedelta(hours=1))


def _hashtag(incident: dict) -> str | None:
    lead = incident["lead"] or {}
    return (lead.get("labels") or {}).get("hashtag") or (incident["hashtags"][0] if incident["hashtags"] else None)


def curve(store: MentionStore, incident: dict, now: datetime) -> dict:
    """Mentions per hour of the incident's hashtag (else its topic) from a day before to 6 hours
    after, against its usual: the mean of the same hour on the 7 days before (Unix seconds)."""
    opened, closed = _window(incident, now)
    start = (opened - BEFORE).replace(minute=0, second=0, microsecond=0)
    end = min(closed + AFTER, now + timedelta(hours=1))
    tag, topic = _hashtag(incident), incident["topic"]

    def hours(a: datetime, b: datetime) -> dict[str, int]:
        rows = store.hashtag_hours(topic, tag, a, b) if tag else store.topic_hours(topic, a, b)
        return {h: c.mentions for h, c in rows.items()}

    seen, history = hours(start, end), hours(start - timedelta(days=USUAL_DAYS), start)
    xs, counts, usual, at = [], [], [], start
    while at < end:
        xs.append(int(at.timestamp()))
        counts.append(seen.get(iso(at), 0))
        usual.append(round(sum(history.get(iso(at - timedelta(days=k)), 0) for k in range(1, USUAL_DAYS + 1))
                           / USUAL_DAYS, 2))  # hours inside the window use the days before it only
        at += timedelta(hours=1)
    return {"label": f"#{tag}" if tag else topic, "hours": xs, "mentions": counts, "usual": usual,
            "opened": int(opened.timestamp()), "closed": int(closed.timestamp()) if incident["closed_at"] else None}


def incident_list(request: Request) -> Response:
    """GET /incidents: the incidents open at some time in the last 30 days, newest first."""
    d = dashboard(request)
    with d.store() as store:
        rows = store.incidents(d.now() - timedelta(days=LIST_DAYS))
    return page(request, "incidents.html", incidents=list(reversed(rows)), days=LIST_DAYS)


def _incident(request: Request, store: MentionStore) -> dict | None:
    raw = request.path_params["id"]
    return store.incident(int(raw)) if raw.isdigit() else None


def incident_page(request: Request) -> Response:
    """GET /incident/{id}."""
    d = dashboard(request)
    with d.store() as store:
        incident = _incident(request, store)
        if incident is None:
            return page(request, "missing.html", status_code=404, what="no such incident")
        opened, closed = _window(incident, d.now())
        examples = store.examples(incident["topic"], opened - LEAD_IN, closed, sentiment=None, hashtag=_hashtag(incident),
                                  limit=EXAMPLES)
        events = store.incident_events(incident["id"])
        notifications = store.incident_notifications(incident["id"])
    lead = incident["lead"] or {}
    return page(request, "incident.html", incident=incident, lead=lead, details=lead.get("details") or {},
                examples=examples, events=events, notifications=notifications, hashtag=_hashtag(incident),
                mentions_url="/mentions?" + urlencode({"topic": incident["topic"], "start": iso(opened), "end": iso(closed),
                                                       **({"hashtag": _hashtag(incident)} if _hashtag(incident) else {})}))


def incident_chart(request: Request) -> Response:
    """GET /api/incident/{id}: the curve of `curve`, JSON."""
    d = dashboard(request)
    with d.store() as store:
        incident = _incident(request, store)
        if incident is None:
            return JSONResponse({"error": "no such incident"}, status_code=404)
        return JSONResponse({"zone": d.config.digest.timezone, **curve(store, incident, d.now())})


ROUTES = [Route("/incidents", incident_list), Route("/incident/{id}", incident_page),
          Route("/api/incident/{id}", incident_chart)]

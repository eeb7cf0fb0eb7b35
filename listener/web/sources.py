"""The sources page: the health table of `listener sources` (`listener.status.source_statuses`), each
source with its last errors, and the alert rules' states (`listener.status.alert_overview`)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from listener.status import alert_overview, source_statuses
from listener.web.render import dashboard, page

ERRORS = 5


def sources_page(request: Request) -> Response:
    """GET /sources."""
    d = dashboard(request)
    with d.store() as store:
        statuses = source_statuses(d.config, store)
        errors = {s.name: store.recent_fetch_errors(s.name, ERRORS) for s in statuses}
        alerts = alert_overview(d.config, store, d.now(), days=1)
    return page(request, "sources.html", sources=statuses, errors=errors, rules=alerts.rules, outbox=alerts.outbox,
                outbox_problems=alerts.outbox_problems)


ROUTES = [Route("/sources", sources_page)]

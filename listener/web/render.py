"""How the dashboard's pages are made: what every route works with (`Dashboard`: the config, a store
per request, the injected clock), the Jinja2 templates with autoescape on, and their filters: times
in the display zone, named; links only when http(s); numbers worded as in the digest."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.templating import Jinja2Templates

from listener.alerts.wording import engagement_text, percent, shown_time
from listener.config import Config
from listener.digest.format import fmt_change, fmt_net
from listener.sources.text import web_url
from listener.store import MentionStore
from listener.web.security import csrf_token

HERE = Path(__file__).parent


@dataclass(frozen=True)
class Dashboard:
    """What every route works with."""

    config: Config
    open_store: Callable[[], MentionStore]
    clock: Callable[[], datetime]
    users: Mapping[str, str]
    templates: Jinja2Templates

    @contextmanager
    def store(self) -> Iterator[MentionStore]:
        """The database for one request (opened in the thread that uses it, closed after)."""
        store = self.open_store()
        try:
            yield store
        finally:
            store.close()

    def now(self) -> datetime:
        return self.clock()


def dashboard(request: Request) -> Dashboard:
    return request.app.state.dashboard


def page(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """A template rendered with what every page shows: the user, the CSRF token, the display zone."""
    d = dashboard(request)
    return d.templates.TemplateResponse(request, template, {
        **context, "user": request.session.get("user"), "login": bool(d.users), "csrf": csrf_token(request.session),
        "zone": d.config.digest.timezone, "topic_names": [t.name for t in d.config.topics]}, status_code=status_code)


def spark_points(values: Sequence[float | None], width: int = 80, height: int = 20, low: float = -1.0,
                 high: float = 1.0) -> str:
    """SVG polyline points of a sparkline of `values` in [low, high] (None: left out)."""
    step = width / max(len(values) - 1, 1)
    return " ".join(f"{i * step:.1f},{height - (v - low) / (high - low) * height:.1f}"
                    for i, v in enumerate(values) if v is not None)


def probability(m: Mapping[str, Any]) -> float | None:
    """The model's probability of the label a mention was given."""
    return m.get(f"p_{m['sentiment']}") if m.get("sentiment") else None


def make_templates(config: Config) -> Jinja2Templates:
    """The page templates, autoescaped, with the dashboard's filters."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    tz = config.digest.tzinfo
    env.filters.update({
        "when": lambda v: shown_time(v, tz), "href": web_url, "change": fmt_change, "net": fmt_net,
        "pct": percent, "engagement": lambda m: engagement_text(m, "no engagement"), "probability": probability,
        "spark": spark_points})
    return Jinja2Templates(env=env)

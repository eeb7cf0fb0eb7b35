"""The dashboard as an ASGI app: `create_app` puts the pages, the static files and the security
layers (headers, signed-cookie sessions, login, CSRF) together around a config, a way to open the
store and a clock."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Callable, Mapping, Sequence

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from listener.config import Config
from listener.errors import QuerySyntaxError
from listener.store import MentionStore
from listener.web import auth, corrections, incidents, mentions, overview, sources, topic
from listener.web.filters import BadFilter
from listener.web.render import HERE, Dashboard, make_templates
from listener.web.security import CSRFCheck, LoginRequired, SecurityHeaders

SESSION_DAYS = 14
PAGES = (overview, topic, mentions, corrections, incidents, sources, auth)  # each a group of pages with its ROUTES


def _bad_request(request: Request, exc: Exception) -> PlainTextResponse:
    return PlainTextResponse(str(exc), status_code=400)


def create_app(config: Config, open_store: Callable[[], MentionStore], *, secret_key: str,
               users: Mapping[str, str] | None = None, hosts: Sequence[str] | None = None,
               clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)) -> Starlette:
    """The dashboard on the database `open_store` opens (once per request). With `users` (name ->
    scrypt hash) every page needs a login; `secret_key` signs the session cookies. `hosts`, when given,
    are the only Host headers answered: without users the dashboard trusts its loopback address alone,
    and a page from elsewhere whose domain is rebound to 127.0.0.1 must not be able to read or post."""
    users = dict(users or {})
    routes = [route for module in PAGES for route in module.ROUTES]
    routes.append(Mount("/static", StaticFiles(directory=HERE / "static"), name="static"))
    app = Starlette(routes=routes, middleware=[
        *([Middleware(TrustedHostMiddleware, allowed_hosts=list(hosts))] if hosts is not None else []),
        Middleware(SecurityHeaders),
        Middleware(SessionMiddleware, secret_key=secret_key, session_cookie="listener_session",
                   max_age=SESSION_DAYS * 86400, same_site="strict", https_only=False),
        Middleware(LoginRequired, users=users),
        Middleware(CSRFCheck),
    ], exception_handlers={BadFilter: _bad_request, QuerySyntaxError: _bad_request})
    app.state.dashboard = Dashboard(config, open_store, clock, users, make_templates(config))
    return app

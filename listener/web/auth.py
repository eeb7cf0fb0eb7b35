"""Logging in and out: a user's name and password checked against the scrypt hashes the dashboard
was started with; the session (a signed cookie) then carries the name and a fresh CSRF token."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.routing import Route

from listener.web.render import dashboard, page
from listener.web.security import verify_password


def login_form(request: Request) -> Response:
    """GET /login."""
    return page(request, "login.html", failed=False)


async def login(request: Request) -> Response:
    """POST /login: name and password (the CSRF check ran before)."""
    form = await request.form()
    name, password = str(form.get("name", "")), str(form.get("password", ""))
    users = dashboard(request).users
    if not await run_in_threadpool(verify_password, password, users.get(name)):  # ~50 ms of scrypt
        return page(request, "login.html", status_code=401, failed=True)
    request.session.clear()  # a new session: no token from before the login survives it
    request.session["user"] = name
    return RedirectResponse("/", status_code=303)


def logout(request: Request) -> Response:
    """POST /logout."""
    request.session.clear()
    return RedirectResponse("/login" if dashboard(request).users else "/", status_code=303)


ROUTES = [Route("/login", login_form, methods=["GET"]), Route("/login", login, methods=["POST"]),
          Route("/logout", logout, methods=["POST"])]

"""How the dashboard keeps its door: users' password hashes (scrypt with a salt, from the environment
or a file, never the config), who must log in, a CSRF token on every change, and the security
headers of every answer (a Content-Security-Policy that lets no inline script or style run)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import os
import secrets
from pathlib import Path
from typing import Mapping
from urllib.parse import parse_qs

from starlette.datastructures import Headers
from starlette.responses import PlainTextResponse, RedirectResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from listener.errors import ListenerError

USERS_ENV, USERS_FILE_ENV, SECRET_ENV = "LISTENER_USERS", "LISTENER_USERS_FILE", "LISTENER_SECRET_KEY"
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2 ** 14, 8, 1  # ~16 MiB and ~50 ms a check: slow to guess, quick to log in
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
HEADERS = {"content-security-policy": CSP, "x-content-type-options": "nosniff", "x-frame-options": "DENY",
           "referrer-policy": "no-referrer", "cross-origin-opener-policy": "same-origin"}
PUBLIC = ("/login", "/static/")  # what a visitor who has not logged in may load
CSRF_FIELD, CSRF_HEADER = "csrf_token", "x-csrf-token"
MAX_FORM = 64 * 1024


class UsersError(ListenerError):
    """The users' file or variable cannot be read: one line saying where and what to do."""


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    """`scrypt$N$r$p$salt$hash` (base64): what a line `name:hash` of LISTENER_USERS holds."""
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32)
    b64 = lambda b: base64.b64encode(b).decode()  # noqa: E731
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${b64(salt)}${b64(digest)}"


def verify_password(password: str, encoded: str | None) -> bool:
    """Whether `password` matches `encoded` (None: an unknown user, checked against a dummy all the same)."""
    try:
        kind, n, r, p, salt, digest = (encoded or _DUMMY).split("$")
        want = base64.b64decode(digest)
        got = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p),
                             dklen=len(want))
    except (ValueError, TypeError):
        return False
    return kind == "scrypt" and encoded is not None and hmac.compare_digest(got, want)


_DUMMY = hash_password("", salt=b"\0" * 16)  # an unknown user costs the same time as a known one


def parse_users(text: str, where: str) -> dict[str, str]:
    """`name:hash` lines (blank lines and `#` comments skipped) as {name: hash}."""
    users = {}
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, encoded = line.partition(":")
        if not sep or not name.strip() or not encoded.startswith("scrypt$") or encoded.count("$") != 5:
            raise UsersError(f"{where} line {n}: expected name:scrypt$... (make one with `listener user-hash`)")
        users[name.strip()] = encoded.strip()
    return users


def load_users(environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """The dashboard's users from LISTENER_USERS (lines `name:hash`) or the file LISTENER_USERS_FILE names."""
    if environ.get(USERS_ENV, "").strip():
        return parse_users(environ[USERS_ENV], USERS_ENV)
    if environ.get(USERS_FILE_ENV):
        path = Path(environ[USERS_FILE_ENV])
        try:
            return parse_users(path.read_text(encoding="utf-8"), str(path))
        except OSError as exc:
            raise UsersError(f"{USERS_FILE_ENV}={path}: cannot read it ({exc.strerror or exc})") from None
    return {}


def secret_key(environ: Mapping[str, str] = os.environ) -> tuple[str, bool]:
    """The key that signs session cookies: LISTENER_SECRET_KEY, else a random one (True: from the environment)."""
    key = environ.get(SECRET_ENV, "")
    return (key, True) if key else (secrets.token_urlsafe(32), False)


def is_loopback(host: str) -> bool:
    """Whether `host` is only reachable from this machine (127.0.0.1, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def trusted_hosts(host: str, users: Mapping[str, str]) -> list[str] | None:
    """The Host headers the dashboard answers: without users only this machine's own names (a web
    page whose domain an attacker rebinds to 127.0.0.1 is refused); with users any (the login guards)."""
    return None if users else sorted({host, "127.0.0.1", "localhost"})


def csrf_token(session: dict) -> str:
    """The session's CSRF token (made on first use): every form and htmx request sends it back."""
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(24)
    return session["csrf"]


class SecurityHeaders:
    """Adds the security headers (CSP, nosniff, no framing, no referrer) to every answer."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] += [(k.encode(), v.encode()) for k, v in HEADERS.items()]
            await send(message)

        await self.app(scope, receive, with_headers)


class LoginRequired:
    """With users configured, every page but the login page and static files needs a logged-in session:
    a page redirects to /login, anything else (JSON, htmx) is refused with 401."""

    def __init__(self, app: ASGIApp, users: Mapping[str, str]):
        self.app, self.users = app, users

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.users or scope["path"].startswith(PUBLIC) \
                or scope.get("session", {}).get("user") in self.users:
            return await self.app(scope, receive, send)
        headers = Headers(scope=scope)
        if scope["method"] == "GET" and "text/html" in headers.get("accept", "") and "hx-request" not in headers:
            response = RedirectResponse("/login", status_code=303)
        else:
            response = PlainTextResponse("log in first (/login)", status_code=401)
        await response(scope, receive, send)


class CSRFCheck:
    """Refuses every POST (PUT, PATCH, DELETE) whose CSRF token, in the X-CSRF-Token header or the
    form field `csrf_token`, is not the session's: a change never comes from another site's page."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            return await self.app(scope, receive, send)
        headers = Headers(scope=scope)
        given, messages = headers.get(CSRF_HEADER), []
        if given is None and headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            body, more = b"", True
            while more and len(body) <= MAX_FORM:
                message = await receive()
                messages.append(message)
                body += message.get("body", b"")
                more = message.get("more_body", False)
            given = parse_qs(body.decode("ascii", "replace")).get(CSRF_FIELD, [None])[0]
        expected = scope.get("session", {}).get("csrf")
        if not expected or not given or not hmac.compare_digest(expected, given):
            response = PlainTextResponse("refused: this form is stale or came from elsewhere (reload the page and "
                                         "try again)", status_code=403)
            return await response(scope, receive, send)

        async def replay() -> Message:
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)

"""Signing in to Bluesky with an app password, and one search request on the session.

Anonymous search was closed in 2025, so every search carries an access token. The source signs
in with `com.atproto.server.createSession` (the handle and app password come from the
environment variables named by `handle_env` and `app_password_env`) and keeps the session in
memory only: never in the state, which goes to the database. An access token lives about two
hours; its `exp` claim (read from the JWT payload, the signature is not checked) says when to
renew it with `com.atproto.server.refreshSession`, a minute before it expires. A refresh token
that is expired or refused leads to a new session. A search refused with 401, or with the
reference PDS's `400 ExpiredToken`, gets one refresh and one retry. The server limits
createSession to 30 per 5 minutes per account, which is why the session is reused.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from listener.errors import FetchError, env_secret
from listener.sources.http import HttpClient, Response
from listener.sources.text import parse_datetime

if TYPE_CHECKING:  # pragma: no cover
    from listener.sources.bluesky import BlueskySource

__all__ = ["Calls", "Session", "Sessions", "credentials", "jwt_expiry", "REFRESH_MARGIN"]

REFRESH_MARGIN = timedelta(seconds=60)  # renew an access token this long before it expires


@dataclass
class Calls:
    """One fetch's requests: the client, the injected time, the credentials and the count."""

    http: HttpClient
    now: datetime
    credentials: tuple[str, str] = field(repr=False)  # (handle, app password)
    requests: int = 0

    @property
    def handle(self) -> str:
        return self.credentials[0]

    @property
    def password(self) -> str:
        return self.credentials[1]

    async def get(self, url: str, session: Session, params: dict[str, Any]) -> Response:
        self.requests += 1
        headers = {"Authorization": f"Bearer {session.access}", "Accept": "application/json"}
        return await self.http.get(url, headers=headers, params=params)

    async def post(self, url: str, *, headers: dict[str, str] | None = None, json: Any = None) -> Response:
        self.requests += 1
        return await self.http.post(url, headers={"Accept": "application/json", **(headers or {})}, json=json)


@dataclass(frozen=True)
class Session:
    login: str  # the handle signed in with
    base_url: str
    did: str
    access: str = field(repr=False)
    refresh: str = field(repr=False)
    access_expires: datetime | None
    refresh_expires: datetime | None

    @classmethod
    def from_reply(cls, response: Response, login: str, base_url: str, method: str) -> Session:
        body = response.json()
        access = body.get("accessJwt") if isinstance(body, dict) else None
        refresh = body.get("refreshJwt") if isinstance(body, dict) else None
        if not isinstance(access, str) or not access or not isinstance(refresh, str) or not refresh:
            raise FetchError(
                f"unexpected response from {host(response.url)}: {method} gave no accessJwt and refreshJwt"
            )
        did = body.get("did")
        return cls(login, base_url, did if isinstance(did, str) else "", access, refresh,
                   jwt_expiry(access), jwt_expiry(refresh))


class Sessions:
    """The source's session, kept across fetches: signed in, refreshed or renewed as needed."""

    def __init__(self, options: BlueskySource.Options):
        self.options = options
        self.session: Session | None = None  # memory only, never in the state

    async def search(self, calls: Calls, params: dict[str, Any]) -> Response:
        """One searchPosts request with the session; one refresh and retry when it is refused."""
        url = self._xrpc("app.bsky.feed.searchPosts")
        session = await self._ensure(calls)
        try:
            return await calls.get(url, session, params)
        except FetchError as exc:
            if exc.status not in (400, 401):
                raise
        # An access token the server no longer takes: ExpiredToken (400) from the reference PDS,
        # 401 from others. A 400 may also be a bad query; the retry tells them apart.
        session = await self._refresh_or_sign_in(calls, self.session)
        try:
            return await calls.get(url, session, params)
        except FetchError as exc:
            if exc.status == 401:
                self.session = None
                raise FetchError(
                    f"Bluesky search at {host(url)} refused a fresh session (HTTP 401): check that the app "
                    f"password in {self.options.app_password_env} is not revoked and the account is active",
                    status=401,
                ) from None
            if exc.status == 400:
                raise FetchError(
                    f"Bluesky search at {host(url)} refused the request (HTTP 400): check the query and "
                    "language options",
                    status=400,
                ) from None
            raise

    async def _ensure(self, calls: Calls) -> Session:
        session = self.session
        if session is None or session.login != calls.handle or session.base_url != self.options.base_url:
            return await self._sign_in(calls)
        if session.access_expires is not None and session.access_expires - REFRESH_MARGIN <= calls.now:
            return await self._refresh_or_sign_in(calls, session)
        return session

    async def _refresh_or_sign_in(self, calls: Calls, session: Session | None) -> Session:
        if session is None or (session.refresh_expires is not None and session.refresh_expires <= calls.now):
            return await self._sign_in(calls)
        url = self._xrpc("com.atproto.server.refreshSession")
        try:
            response = await calls.post(url, headers={"Authorization": f"Bearer {session.refresh}"})
        except FetchError as exc:
            if exc.status in (400, 401):  # ExpiredToken, InvalidToken, revoked: sign in again
                self.session = None
                return await self._sign_in(calls)
            raise
        self.session = Session.from_reply(response, calls.handle, self.options.base_url, "refreshSession")
        return self.session

    async def _sign_in(self, calls: Calls) -> Session:
        self.session = None
        url = self._xrpc("com.atproto.server.createSession")
        try:
            response = await calls.post(url, json={"identifier": calls.handle, "password": calls.password})
        except FetchError as exc:
            if exc.status in (400, 401):
                raise FetchError(
                    f"Bluesky sign-in refused by {host(url)} (HTTP {exc.status}): check that "
                    f"{self.options.handle_env} holds the account's handle and {self.options.app_password_env} "
                    "an app password (Settings > Privacy and security > App passwords)",
                    status=exc.status,
                ) from None
            raise
        self.session = Session.from_reply(response, calls.handle, self.options.base_url, "createSession")
        return self.session

    def _xrpc(self, method: str) -> str:
        return f"{self.options.base_url.rstrip('/')}/xrpc/{method}"


def credentials(options: BlueskySource.Options) -> tuple[str, str]:
    """(handle, app password) from the environment variables the options name; FetchError naming
    the variable when one is not set or empty."""
    values = []
    for option in ("handle_env", "app_password_env"):
        name = getattr(options, option)
        value = env_secret(name, secret=option == "app_password_env")
        if value is None:
            raise FetchError(f"environment variable {name} is not set (needed by {option})")
        if not value.strip():
            raise FetchError(f"environment variable {name} is empty (needed by {option})")
        values.append(value.strip())
    return values[0].removeprefix("@"), values[1]


def jwt_expiry(token: str) -> datetime | None:
    """The `exp` claim of a JWT as a UTC datetime (the signature is not checked); None if unreadable."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, RecursionError):
        return None
    exp = claims.get("exp") if isinstance(claims, dict) else None
    if not isinstance(exp, (int, float)) or isinstance(exp, bool):
        return None
    return parse_datetime(exp)


def host(url: str) -> str:
    """The host of a URL, for a message."""
    return (urlsplit(url).hostname or "").lower()

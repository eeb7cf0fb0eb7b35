"""How the Reddit source identifies itself: the app-only OAuth token, and the headers of a request.

Reddit refuses anonymous API requests, so the source logs in as an app ("application-only
OAuth", client credentials grant): `POST {auth_url}/api/v1/access_token` with HTTP Basic
(client id : client secret) and `grant_type=client_credentials`. The bearer token it gets
(`access_token`, `expires_in` seconds) is kept in memory, never in the state, and is fetched
again a minute before it expires, when the client id changes, or after the API refused it.
Create the app at https://www.reddit.com/prefs/apps (type "script" or "web app").
"""

from __future__ import annotations

import base64
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from listener.errors import FetchError, env_secret, register_secret
from listener.sources.fields import number
from listener.sources.http import HttpClient

if TYPE_CHECKING:  # pragma: no cover
    from listener.sources.reddit import RedditSource

__all__ = ["AppToken", "TOKEN_MARGIN", "request_headers"]

TOKEN_MARGIN = timedelta(seconds=60)  # refresh the token this long before it expires


def request_headers(options: RedditSource.Options, authorization: str) -> dict[str, str]:
    """Headers of every request to Reddit: the authorization, JSON, and the configured User-Agent."""
    agent = {"User-Agent": options.user_agent} if options.user_agent.strip() else {}
    return {"Authorization": authorization, "Accept": "application/json", **agent}


class AppToken:
    """The app's bearer token, cached in memory for as long as the source object lives."""

    def __init__(self, options: RedditSource.Options):
        self.options = options
        self._token: str | None = None
        self._expires: datetime | None = None
        self._client: str | None = None  # the client id the token belongs to

    def forget(self) -> None:
        """Drop the cached token (the API refused it: expired or revoked)."""
        self._token = None

    async def token(self, http: HttpClient, now: datetime) -> tuple[str, bool]:
        """A bearer token, and whether a request was made for it (none while the cached one is fresh)."""
        client_id, client_secret = self._credentials()
        if (self._token and self._client == client_id and self._expires is not None
                and now < self._expires - TOKEN_MARGIN):
            return self._token, False
        self._token = None
        basic = base64.b64encode(f"{client_id}:{client_secret}".encode()).decode("ascii")
        register_secret(basic)
        url = self.options.auth_url.rstrip("/") + "/api/v1/access_token"
        try:
            response = await http.post(url, headers=request_headers(self.options, f"Basic {basic}"),
                                       data={"grant_type": "client_credentials"})
        except FetchError as error:
            if error.status in (401, 403):
                raise FetchError(
                    f"Reddit refused the app's credentials (HTTP {error.status} at {url}): check "
                    f"{self.options.client_id_env} and {self.options.client_secret_env} "
                    "(a script or web app's id and secret)",
                    status=error.status,
                ) from None
            raise
        body = response.json()
        token = body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise FetchError(
                f"Reddit gave no access token{_reason(body)} at {url}: check {self.options.client_id_env} and "
                f"{self.options.client_secret_env}"
            )
        expires_in = body.get("expires_in")
        seconds = number(expires_in) if not isinstance(expires_in, str) else None
        seconds = 3600.0 if seconds is None else seconds
        self._token, self._client = token, client_id
        self._expires = now + timedelta(seconds=max(seconds, 0.0))
        return token, True

    def _credentials(self) -> tuple[str, str]:
        values = []
        for option in ("client_id_env", "client_secret_env"):
            env_name = getattr(self.options, option)
            value = env_secret(env_name, secret=option == "client_secret_env") or ""
            if not value:
                raise FetchError(f"environment variable {env_name} is not set (needed by {option})")
            values.append(value)
        return values[0], values[1]


def _reason(body: Any) -> str:
    """` (invalid_grant)`: the error a token reply names, if any."""
    reason = body.get("error") if isinstance(body, dict) else None
    return f" ({reason})" if isinstance(reason, (str, int)) and not isinstance(reason, bool) else ""

"""The `webhook:NAME` channels: a queued row's JSON POSTed to the URL in `[[webhooks]] url_env`
(Slack-compatible `text`, an Idempotency-Key of its Message-ID)."""

from __future__ import annotations

from listener.config import Config, resolve_secret
from listener.notify.channel import Channel, DeliveryError, one_line

RETRYABLE_STATUS = frozenset({408, 425, 429})  # 4xx answers that mean "not now" rather than "never"


class WebhookChannel(Channel):
    def __init__(self, config: Config, name: str):
        self.config = config
        self.name = name

    def send(self, row: dict) -> None:
        """POST one row; DeliveryError unless the answer is 2xx (given up for a 4xx or a URL that is not one)."""
        import httpx

        name = self.name
        try:
            hook = self.config.webhook(name)
        except KeyError:
            raise DeliveryError(f"webhook {name!r} is no longer in the config", retry=False) from None
        url = resolve_secret(f"webhooks.{name}.url_env", hook.url_env)
        try:
            request = httpx.Request("POST", url, json=row["payload"],
                                    headers={"User-Agent": "listener", "Idempotency-Key": row["message_id"]})
            if request.url.scheme not in ("http", "https") or not request.url.host:
                raise httpx.UnsupportedProtocol("not an http(s) URL with a host")
        except (httpx.InvalidURL, httpx.UnsupportedProtocol, ValueError, TypeError) as exc:
            raise DeliveryError(f"webhook {name}: ${hook.url_env} is not a usable URL ({one_line(exc)}): "
                                "fix it; this message is given up", retry=False) from None
        try:
            with httpx.Client(timeout=hook.timeout.total_seconds()) as client:
                response = client.send(request)
        except httpx.HTTPError as exc:
            raise DeliveryError(f"webhook {name}: {type(exc).__name__}: {one_line(exc)}") from exc
        status = response.status_code
        if 300 <= status < 400:
            raise DeliveryError(f"webhook {name}: HTTP {status} {response.reason_phrase} (redirects are not followed: "
                                f"set ${hook.url_env} to the final URL)", retry=False)
        if not 200 <= status < 300:
            retry = status >= 500 or status in RETRYABLE_STATUS
            raise DeliveryError(f"webhook {name}: HTTP {status} {response.reason_phrase}"
                                + ("" if retry else " (the server refuses it: not retried)"), retry=retry)

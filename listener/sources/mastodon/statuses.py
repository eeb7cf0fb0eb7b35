"""Mastodon's Status entities as mentions.

source_id is the status `uri` (its ActivityPub id, the same on every instance), so a post seen
through two instances is one mention. A boost (`reblog`) is read as the boosted post (with
`boosted_by` in extra); public and tag timelines leave boosts out anyway. Local accounts come as
`user` only and are written `user@instance`.
"""

from __future__ import annotations

from typing import Any

from listener.sources import Mention
from listener.sources.fields import as_count, identifier, items, language_code, mapping
from listener.sources.text import canonical_url, html_to_text, parse_datetime

__all__ = ["status_mention"]


def status_mention(status: dict[str, Any], host: str) -> Mention | None:
    """A Mention from a Mastodon Status entity read on instance `host` (a boost: the boosted post)."""
    shown = status.get("reblog") if isinstance(status.get("reblog"), dict) else status
    account = mapping(shown.get("account"))
    url = identifier(shown.get("url")) or identifier(shown.get("uri"))
    status_id = identifier(shown.get("id"))
    source_id = identifier(shown.get("uri")) or url
    if source_id is None and status_id:
        source_id = f"https://{host}/statuses/{status_id}"
    if source_id is None:
        return None
    text = html_to_text(identifier(shown.get("content")) or "")
    if not text:  # a picture without words: its descriptions are the words
        media = items(shown.get("media_attachments"))
        text = "\n".join(d for m in media if isinstance(m, dict) and (d := identifier(m.get("description"))))
    hashtags = tuple(dict.fromkeys(
        name.lower().lstrip("#") for t in items(shown.get("tags"))
        if isinstance(t, dict) and (name := identifier(t.get("name")))
    ))
    extra: dict[str, Any] = {"instance": host}
    if status_id:
        extra["status_id"] = status_id
    if display_name := identifier(account.get("display_name")):
        extra["display_name"] = display_name
    if shown is not status:
        extra["boosted_by"] = _acct(status.get("account"), host)
    if shown.get("in_reply_to_id"):
        extra["reply"] = True
    if shown.get("sensitive") is True:
        extra["sensitive"] = True
    return Mention(
        source_id=source_id,
        text=text,
        url=canonical_url(url) if url else None,
        title=identifier(shown.get("spoiler_text")),
        author=_acct(account, host),
        published_at=parse_datetime(shown.get("created_at")),
        language=language_code(identifier(shown.get("language"))),
        hashtags=hashtags,
        likes=as_count(shown.get("favourites_count"), negative=False),
        reposts=as_count(shown.get("reblogs_count"), negative=False),
        replies=as_count(shown.get("replies_count"), negative=False),
        extra=extra,
    )


def _acct(account: Any, host: str) -> str | None:
    """`user@domain`: Mastodon gives local accounts as `user` only."""
    if not isinstance(account, dict):
        return None
    acct = identifier(account.get("acct")) or identifier(account.get("username"))
    if not acct:
        return None
    acct = acct.lstrip("@")
    return acct if "@" in acct else f"{acct}@{host}"

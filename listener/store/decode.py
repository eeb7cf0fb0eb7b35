"""Stored rows made into what the interface gives, the same for every engine: JSON columns decoded
(incidents' lists and lead, a notification's recipients and payload) and a source's row as its
`SourceHealth`."""

from __future__ import annotations

import json
from typing import Any, Mapping

from listener.sources import SourceState
from listener.store.rows import IncidentRecord, OutboxRow
from listener.store.types import SourceHealth, parse_iso

INCIDENT_LISTS = ("hashtags", "rules", "members", "announced")  # JSON lists in `incidents`


def incident_record(row: dict[str, Any]) -> IncidentRecord:
    """A stored incident row with its lists and its lead decoded from JSON."""
    for key in INCIDENT_LISTS:
        row[key] = json.loads(row[key])
    row["lead"] = json.loads(row["lead"]) if row["lead"] else None
    return row  # type: ignore[return-value]


def outbox_row(row: dict[str, Any]) -> OutboxRow:
    """A stored notification with its recipients and payload decoded from JSON."""
    row["recipients"] = json.loads(row["recipients"])
    row["payload"] = json.loads(row["payload"]) if row["payload"] else None
    return row  # type: ignore[return-value]


def health_of(row: Mapping[str, Any], mentions: int = 0) -> SourceHealth:
    """A `sources` row as the source's health (`mentions` counted apart, when asked)."""
    return SourceHealth(
        name=row["name"], kind=row["kind"], state=SourceState(row["etag"], row["last_modified"], row["cursor"]),
        last_attempt_at=parse_iso(row["last_attempt_at"]), last_success_at=parse_iso(row["last_success_at"]),
        last_error=row["last_error"], last_error_at=parse_iso(row["last_error_at"]),
        consecutive_errors=row["consecutive_errors"], next_check_at=parse_iso(row["next_check_at"]), mentions=mentions)

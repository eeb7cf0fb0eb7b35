"""The mentions pages: the stream newest first with its filters and the topic query syntax (the
parser of `listener search`), new mentions appearing without a reload (htmx polls for those stored
since), older ones by page, and every filtered list exported as CSV or JSON Lines."""

from __future__ import annotations

import io
from typing import Iterator

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from listener.errors import QuerySyntaxError
from listener.search import filtered_mentions
from listener.store import MentionFilter
from listener.tools.export import FORMATS, write_mentions
from listener.web.filters import BadFilter, Selection, selection
from listener.web.render import dashboard, page

PAGE = 50
EXPORT_BATCH = 1000
MEDIA = {"csv": "text/csv; charset=utf-8", "jsonl": "application/x-ndjson; charset=utf-8"}


def _selection(request: Request) -> Selection:
    d = dashboard(request)
    return selection(request.query_params, d.now(), d.config.digest.tzinfo)


def _before(request: Request) -> tuple[str, int] | None:
    at, _, mid = (request.query_params.get("before") or "").partition(",")
    return (at, int(mid)) if at and mid.isdigit() else None


def mentions_page(request: Request) -> Response:
    """GET /mentions: the filtered stream, newest first, 50 at a time."""
    try:
        sel = _selection(request)
        with dashboard(request).store() as store:
            rows = filtered_mentions(store, sel.where, sel.query, limit=PAGE, before=_before(request))
            newest = store.filtered_mentions(sel.where, limit=1)  # the poller asks for what comes after
        error = None
    except (BadFilter, QuerySyntaxError) as exc:
        sel, rows, newest, error = None, [], [], str(exc)
    sel = sel or Selection(MentionFilter(), "", None)
    last = rows[-1] if len(rows) == PAGE else None
    return page(request, "mentions.html", status_code=400 if error else 200, sel=sel, rows=rows, error=error,
                asked=request.query_params,
                after_id=max([m["id"] for m in newest], default=0),
                older=sel.url("/mentions", before=f"{last['published_at']},{last['id']}") if last else None,
                export={fmt: sel.url(f"/mentions/export.{fmt}") for fmt in FORMATS})


def new_mentions(request: Request) -> Response:
    """GET /mentions/new?after_id=N (htmx): the mentions stored since N that pass the filters, and the poller again."""
    sel = _selection(request)
    given = request.query_params.get("after_id") or "0"
    if not given.isdigit():
        raise BadFilter("after_id is a mention id (a whole number)")
    after = int(given)
    with dashboard(request).store() as store:
        rows = filtered_mentions(store, sel.where, sel.query, limit=PAGE, after_id=after)
    return page(request, "mention_rows.html", sel=sel, rows=rows,
                after_id=max([after, *(m["id"] for m in rows)]), poller=True)


def export(request: Request) -> Response:
    """GET /mentions/export.csv|jsonl: the whole filtered list (newest first), in the export format."""
    fmt = request.path_params["fmt"]
    if fmt not in FORMATS:
        return Response(f"export as {' or '.join(FORMATS)}", status_code=404)
    sel = _selection(request)
    d = dashboard(request)

    def chunks() -> Iterator[str]:  # each batch in a store of its own: a batch may run in another thread
        before = None
        while True:
            with d.store() as store:
                rows = filtered_mentions(store, sel.where, sel.query, limit=EXPORT_BATCH, before=before)
            out = io.StringIO()
            write_mentions(rows, out, fmt, header=before is None)
            yield out.getvalue()
            if len(rows) < EXPORT_BATCH:
                return
            before = (rows[-1]["published_at"], rows[-1]["id"])

    return StreamingResponse(chunks(), media_type=MEDIA[fmt],
                             headers={"content-disposition": f'attachment; filename="mentions.{fmt}"'})


ROUTES = [Route("/mentions", mentions_page), Route("/mentions/new", new_mentions),
          Route("/mentions/export.{fmt}", export)]

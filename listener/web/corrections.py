"""Corrections from the dashboard: one click says a mention's sentiment is wrong (the right label) or
that it is not relevant (to one topic, or to any); stored with who and when (`Corrections` in the
store), so the charts, the digest and the rules count the corrected label and a not-relevant mention
leaves the counts. The list of corrections, and their export in the training TSV format."""

from __future__ import annotations

import io

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from listener.errors import ListenerError
from listener.models import LABELS
from listener.tools.corrections import export_corrections
from listener.web.filters import Selection
from listener.store import MentionFilter
from listener.web.render import dashboard, page

LOCAL_USER = "local"  # who corrects when the dashboard has no users (loopback only)


def _who(request: Request) -> str:
    return request.session.get("user") or LOCAL_USER


def _answer(request: Request, mention_id: int, said: str) -> Response:
    """The mention again (htmx swaps it in), or back to the stream without JavaScript."""
    if "hx-request" not in request.headers:
        return RedirectResponse(f"/mentions#mention-{mention_id}", status_code=303)
    with dashboard(request).store() as store:
        mention = store.get_mention(mention_id)
    return page(request, "mention_one.html", m=mention, sel=Selection(MentionFilter(), "", None), said=said)


async def correct(request: Request) -> Response:
    """POST /mention/{id}/correct: `sentiment` (negative, neutral, positive) or `not_relevant` (a topic, or
    `*` for all of its topics)."""
    form = await request.form()
    raw = request.path_params["id"]
    if not raw.isdigit():
        return Response("no such mention", status_code=404)
    mention_id, d, who = int(raw), dashboard(request), _who(request)
    sentiment, topic = form.get("sentiment"), form.get("not_relevant")
    try:
        with d.store() as store:
            if sentiment in LABELS:
                store.correct_sentiment(mention_id, str(sentiment), by=who, at=d.now())
                said = f"corrected to {sentiment} by {who}"
            elif topic:
                store.mark_not_relevant(mention_id, topic=None if topic == "*" else str(topic), by=who, at=d.now())
                said = f"marked not relevant{'' if topic == '*' else f' to {topic}'} by {who}"
            else:
                return Response("say the right sentiment or what it is not relevant to", status_code=400)
    except ListenerError as exc:
        return Response(str(exc), status_code=400)
    return _answer(request, mention_id, said)


def corrections_page(request: Request) -> Response:
    """GET /corrections: every current correction, newest first."""
    with dashboard(request).store() as store:
        rows = store.corrections()
    return page(request, "corrections.html", corrections=list(reversed(rows)))


def corrections_tsv(request: Request) -> Response:
    """GET /corrections/export.tsv: the corrected sentiments in the training format (`listener model eval`)."""
    out = io.StringIO()
    with dashboard(request).store() as store:
        export_corrections(store, out)
    return Response(out.getvalue(), media_type="text/tab-separated-values; charset=utf-8",
                    headers={"content-disposition": 'attachment; filename="corrections.tsv"'})


ROUTES = [Route("/mention/{id}/correct", correct, methods=["POST"]), Route("/corrections", corrections_page),
          Route("/corrections/export.tsv", corrections_tsv)]

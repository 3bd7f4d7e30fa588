"""``/_dev/mail``: the outbox as a mailbox, where no SMTP server is configured.

Development and tests only (``enabled``: not production, no ``SMTP_URL``); otherwise the
routes do not exist at all (404). Nothing is sent then: every message stays in the outbox
unsent with its body, so the list (newest first: to, subject, kind, time, status) and each
message (its text, and its HTML in a sandboxed frame) can always be read here. The HTML
part is served by its own route with a CSP that allows no script, no request and no
navigation (``sandbox``), framed only by the message page; the text part's links are made
clickable, each piece escaped.
"""

from __future__ import annotations

import re

from fastapi import APIRouter, Request
from markupsafe import Markup, escape
from starlette.responses import HTMLResponse, Response

from lwa_accounts.errors import NotFound
from lwa_accounts.settings import Settings
from lwa_accounts.store import outbox_view
from lwa_accounts.web.services import get_services
from lwa_accounts.web.templating import render

router = APIRouter(include_in_schema=False)

# The HTML part: inline styles (mail has nothing else), data: images, nothing more.
HTML_PART_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
    "sandbox; frame-ancestors 'self'; base-uri 'none'; form-action 'none'"
)
_URL = re.compile(r"https?://[^\s<>\"']+")


def enabled(settings: Settings) -> bool:
    """The development mailbox exists only where nothing is sent and never in production."""
    return settings.env != "production" and settings.smtp is None


def linkify(text: str) -> Markup:
    """``text`` escaped, with each http(s) URL a link to itself (escaped too)."""
    pieces: list[str] = []
    last = 0
    for match in _URL.finditer(text):
        url = match.group(0).rstrip(".,)")
        pieces.append(str(escape(text[last : match.start()])))
        pieces.append(f'<a href="{escape(url)}">{escape(url)}</a>')
        last = match.start() + len(url)
    pieces.append(str(escape(text[last:])))
    return Markup("".join(pieces))  # noqa: S704 - every piece above is escaped


async def _opened(request: Request, mail_id: int) -> outbox_view.OpenedMail:
    services = get_services(request)
    async with services.database.engine.connect() as conn:
        mail = await outbox_view.opened(conn, services.database.sealer, mail_id)
    if mail is None:
        raise NotFound()
    return mail


@router.get("/_dev/mail")
async def mailbox(request: Request) -> HTMLResponse:
    services = get_services(request)
    async with services.database.engine.connect() as conn:
        entries = await outbox_view.recent(conn)
    return render(request, "dev/mailbox.html", {"entries": entries})


@router.get("/_dev/mail/{mail_id}")
async def message(request: Request, mail_id: int) -> HTMLResponse:
    mail = await _opened(request, mail_id)
    return render(request, "dev/message.html", {"mail": mail, "text": linkify(mail.text)})


@router.get("/_dev/mail/{mail_id}/html")
async def html_part(request: Request, mail_id: int) -> Response:
    mail = await _opened(request, mail_id)
    return HTMLResponse(
        mail.html,
        headers={
            "Content-Security-Policy": HTML_PART_CSP,
            "X-Frame-Options": "SAMEORIGIN",
            "Cache-Control": "no-store",
        },
    )

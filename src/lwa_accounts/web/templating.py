"""Jinja2 templates shared by every page (and the HTML error pages)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.templating import Jinja2Templates

from lwa_accounts.web import csrf

TEMPLATES_DIR = Path(__file__).parent / "templates"
STATIC_DIR = Path(__file__).parent / "static"

templates = Jinja2Templates(directory=TEMPLATES_DIR)


def render(
    request: Request,
    name: str,
    context: dict[str, Any] | None = None,
    *,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    """Render a page with the shared context: settings, CSRF token, the signed-in account.

    A visitor without a CSRF cookie gets one here, so every form works for anonymous
    visitors too.
    """
    services = getattr(request.app.state, "services", None)
    settings = services.settings if services is not None else None
    nonce, fresh = csrf.nonce_for(request, settings) if settings else ("", False)
    token = ""
    if services is not None:
        token = csrf.token_for(request, nonce, services.settings, now=services.clock.now())
    full: dict[str, Any] = {
        "settings": settings,
        "amazon_emulated": bool(settings and settings.amazon_emulated),
        "csrf_token": token,
        "current_account": getattr(request.state, "account", None),
        "errors": {},
    }
    full.update(context or {})
    response = templates.TemplateResponse(
        request, name, full, status_code=status_code, headers=headers
    )
    if fresh and settings is not None:
        csrf.set_cookie(response, nonce, settings)
    return response

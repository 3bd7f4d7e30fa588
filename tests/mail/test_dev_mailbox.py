"""/_dev/mail: with no SMTP server the outbox is the mailbox (list newest first, each message
with text and sandboxed HTML, every value escaped); it does not exist in production or
once SMTP is configured."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from lwa_accounts.core.models import OutgoingMail
from lwa_accounts.flows.context import Context
from lwa_accounts.settings import Settings
from lwa_accounts.web.app import create_app
from lwa_accounts.web.pages.dev_mail import HTML_PART_CSP, enabled
from lwa_accounts.web.services import Services
from tests.config.test_config_check import fit
from tests.mail.conftest import queue
from tests.web.conftest import BASE_URL, make_settings


@asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[tuple[httpx.AsyncClient, Context]]:
    app: FastAPI = create_app(settings)
    async with LifespanManager(app) as manager:
        services: Services = app.state.services
        ctx = Context(deps=services.deps, database=services.database)
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
            yield client, ctx


async def send_raw(ctx: Context, **fields: Any) -> None:
    async with ctx.transaction() as tx:
        await tx.send_mail(OutgoingMail(**{"kind": "test", "account_id": None, **fields}))


async def test_the_mailbox_lists_newest_first_and_shows_each_message(tmp_path: Path) -> None:
    async with running(make_settings(tmp_path)) as (client, ctx):
        empty = await client.get("/_dev/mail")
        assert empty.status_code == 200
        assert "No mail yet" in empty.text
        await queue(ctx, "ada@example.com")
        await queue(ctx, "grace@example.com")

        page = await client.get("/_dev/mail")
        assert page.status_code == 200
        assert page.text.index("grace@example.com") < page.text.index("ada@example.com")
        assert page.text.count("A test message from lwa-accounts") == 2
        assert page.text.count("not sent (no SMTP)") == 2
        assert page.text.count("<code>test</code>") == 2
        ids = sorted(int(i) for i in re.findall(r'href="/_dev/mail/(\d+)"', page.text))
        assert len(ids) == 2

        detail = await client.get(f"/_dev/mail/{ids[0]}")
        assert detail.status_code == 200
        assert "ada@example.com" in detail.text
        assert "If it reached ada@example.com, outgoing mail works." in detail.text
        assert '<a href="http://127.0.0.1:8000">http://127.0.0.1:8000</a>' in detail.text
        frame = re.search(r"<iframe [^>]*>", detail.text)
        assert frame is not None
        assert " sandbox " in frame.group(0)  # no scripts, forms, popups or navigation
        assert f'src="/_dev/mail/{ids[0]}/html"' in frame.group(0)

        html = await client.get(f"/_dev/mail/{ids[0]}/html")
        assert html.status_code == 200
        assert html.text.lstrip().startswith("<!doctype html>")
        assert html.headers["content-security-policy"] == HTML_PART_CSP
        assert "sandbox" in HTML_PART_CSP
        assert "script-src" not in HTML_PART_CSP
        assert html.headers["x-frame-options"] == "SAMEORIGIN"
        # The message page may frame it (default-src 'self'); every other page frames nothing.
        assert "frame-ancestors 'none'" in detail.headers["content-security-policy"]

        assert (await client.get("/_dev/mail/999")).status_code == 404
        assert (await client.get("/_dev/mail/999/html")).status_code == 404


async def test_every_value_on_the_pages_is_escaped(tmp_path: Path) -> None:
    evil = "<script>alert(1)</script>"
    async with running(make_settings(tmp_path)) as (client, ctx):
        await send_raw(
            ctx,
            to=f"x{evil}@example.com",
            subject=f"Hello {evil}",
            text=f'Reset: http://127.0.0.1:8000/reset?t=a&b="><img src=x onerror=alert(2)> {evil}',
            html=f"<p>{evil}</p>",  # as a template would never render it
        )
        page = await client.get("/_dev/mail")
        detail = await client.get("/_dev/mail/1")
        part = await client.get("/_dev/mail/1/html")
    # The HTML part is the message's own markup: never run, only shown in the sandbox.
    assert part.text == f"<p>{evil}</p>"
    assert part.headers["content-security-policy"] == HTML_PART_CSP
    for response in (page, detail):
        assert "<script>alert(1)" not in response.text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in response.text
    assert "<img src=x" not in detail.text
    assert '<a href="http://127.0.0.1:8000/reset?t=a&amp;b=">' in detail.text
    assert "&lt;img src=x onerror=alert(2)&gt;" in detail.text


async def test_no_mailbox_in_production_or_with_smtp_configured(tmp_path: Path) -> None:
    assert enabled(make_settings(tmp_path))
    assert not enabled(make_settings(tmp_path, smtp_url="smtp://127.0.0.1:9"))
    assert not enabled(Settings(env="production", data_dir=tmp_path))
    production = fit(
        tmp_path, database_url=None, allow_sqlite_in_production=True, smtp_url="smtp://127.0.0.1:9"
    )
    for settings in (make_settings(tmp_path, smtp_url="smtp://127.0.0.1:9"), production):
        async with running(settings) as (client, _ctx):
            for path in ("/_dev/mail", "/_dev/mail/1", "/_dev/mail/1/html"):
                assert (await client.get(path)).status_code == 404, (settings.env, path)

"""The FastAPI application: ``create_app`` wires settings, database, services and routes."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from lwa_accounts import config_check, logs
from lwa_accounts.clock import SystemClock
from lwa_accounts.emulator.app import create_app as create_emulator
from lwa_accounts.emulator.config import EmulatorConfig
from lwa_accounts.flows.context import Deps
from lwa_accounts.interfaces import Clock, PasswordHasher
from lwa_accounts.lwa.client import LwaClient
from lwa_accounts.mail.delivery import Delivery
from lwa_accounts.mail.worker import DeliveryWorker
from lwa_accounts.passwords import Argon2Hasher, common_passwords
from lwa_accounts.settings import EMULATOR_MOUNT, Settings, load_settings
from lwa_accounts.store import probes
from lwa_accounts.store.db import Database
from lwa_accounts.throttle import Throttle
from lwa_accounts.web import metrics as web_metrics
from lwa_accounts.web import problems, request_limits
from lwa_accounts.web.api import accounts as api_accounts
from lwa_accounts.web.api import amazon as api_amazon
from lwa_accounts.web.api import devices as api_devices
from lwa_accounts.web.api import recovery as api_recovery
from lwa_accounts.web.api import retired as api_retired
from lwa_accounts.web.api import sessions as api_sessions
from lwa_accounts.web.api.models import ProblemOut
from lwa_accounts.web.auth import BEARER_SCHEME, BEARER_SCHEME_NAME
from lwa_accounts.web.headers import SecurityHeadersMiddleware
from lwa_accounts.web.observe import ObserveMiddleware
from lwa_accounts.web.pages import account as page_account
from lwa_accounts.web.pages import account_amazon as page_account_amazon
from lwa_accounts.web.pages import account_email as page_account_email
from lwa_accounts.web.pages import activate as page_activate
from lwa_accounts.web.pages import activate_link_code as page_activate_link_code
from lwa_accounts.web.pages import amazon as page_amazon
from lwa_accounts.web.pages import amazon_flow as page_amazon_flow
from lwa_accounts.web.pages import amazon_link_code as page_amazon_link_code
from lwa_accounts.web.pages import auth as page_auth
from lwa_accounts.web.pages import dev_mail as page_dev_mail
from lwa_accounts.web.pages import docs as page_docs
from lwa_accounts.web.pages import health as page_health
from lwa_accounts.web.pages import not_me as page_not_me
from lwa_accounts.web.pages import recovery as page_recovery
from lwa_accounts.web.pages import tv as page_tv
from lwa_accounts.web.services import Services
from lwa_accounts.web.templating import STATIC_DIR

logger = logging.getLogger(__name__)
# At shutdown the message being sent gets this long; then the worker is cancelled.
MAIL_STOP_GRACE_SECONDS = 5.0

API_DESCRIPTION = """\
Accounts for TVs and other devices. Sign in with a username (or email) and password to get
a bearer token; send it as `Authorization: Bearer <token>`.

Every error is `application/problem+json` (RFC 9457) with `status`, `title`, `detail` and a
stable machine `code` (for example `invalid_credentials`, `validation_failed`,
`username_taken`, `too_many_attempts`, `not_authenticated`, `unsupported_media_type`,
`request_headers_too_large`). A 429 and a 503 carry `Retry-After`; a 405 carries `Allow`.

Secret handles (flow ids, authorization ids, device codes, tokens) travel in JSON bodies or
headers, never in URLs. The endpoints that took one in their path (`/api/v1/flows/{flow_id}`
and `.../device-authorizations/{authorization_id}/poll`, marked deprecated) answer 410
`moved` with `moved_to` naming the new endpoint for one release, then go away.
"""


def create_app(
    settings: Settings | None = None,
    *,
    database: Database | None = None,
    clock: Clock | None = None,
    amazon_transport: httpx.AsyncBaseTransport | None = None,
    hasher: PasswordHasher | None = None,
    check_database: Callable[[], Awaitable[None]] | None = None,
    dispose_database: bool = False,
    migrate_on_start: bool | None = None,
) -> FastAPI:
    """Build the app. The database opens in the lifespan (and, in development and test,
    is migrated to the latest revision there, so a fresh DATA_DIR just works).

    ``hasher`` replaces argon2id for every flow (sign-in, link, registration, password
    change); ``check_database`` runs at start-up after the migration and may raise to
    refuse to start. A ``database`` passed in stays open unless ``dispose_database``.
    Raises ``ConfigurationRefused`` (every problem at once) when ``config_check`` refuses
    the settings.
    ``migrate_on_start=False``: the lifespan never migrates (``serve --workers N`` migrates
    once in the parent before starting workers, so they cannot race).
    """
    settings = settings or load_settings()
    # Production with an unfit configuration never gets as far as a socket (config_check.py).
    for warning in config_check.enforce(settings):
        logger.warning("configuration: %s", warning.sentence)
    clock = clock or (database.clock if database is not None else SystemClock())
    logs.configure_structlog()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = database is None or dispose_database
        db = database or Database.from_settings(settings, clock=clock)
        throttle = Throttle(settings, on_refused=web_metrics.observe_throttle_refusal)
        probes.watch_pool(db, web_metrics.set_pool)
        amazon = LwaClient(settings, transport=amazon_transport or _emulator_transport(app))
        mail_worker: DeliveryWorker | None = None
        try:
            if settings.is_development if migrate_on_start is None else migrate_on_start:
                await db.upgrade()
            if check_database is not None:
                await check_database()
            password_hasher = hasher or Argon2Hasher(settings)
            mail_worker = _start_mail_delivery(settings, db, clock)
            app.state.services = Services(
                settings=settings,
                database=db,
                hasher=password_hasher,
                throttle=throttle,
                clock=clock,
                deps=Deps(
                    settings=settings,
                    hasher=password_hasher,
                    throttle=throttle,
                    clock=clock,
                    common_passwords=common_passwords(),
                    observe=web_metrics.observe_audit,  # sign-in metrics from audit events
                ),
                amazon_transport=amazon_transport,
                amazon=amazon,
            )
            yield
        finally:
            if mail_worker is not None:
                db.on_mail_committed = None
                await mail_worker.stop(grace_seconds=MAIL_STOP_GRACE_SECONDS)
            await page_health.close(app.state)
            await amazon.aclose()
            await throttle.aclose()
            if owned:
                await db.dispose()

    app = FastAPI(
        title="lwa-accounts",
        version="0.1.0",
        description=API_DESCRIPTION,
        openapi_url="/api/openapi.json",
        docs_url=None,  # our own /api/docs page serves Swagger UI from /static (offline)
        redoc_url=None,
        lifespan=lifespan,
    )
    problems.install(app)
    app.add_middleware(SecurityHeadersMiddleware)
    if settings.trusted_proxies:
        # X-Forwarded-For / -Proto only from a configured proxy (security.md item 24);
        # applied here, not by the server, so it holds under any ASGI server.
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=list(settings.trusted_proxies))
    # Outermost: refuse oversized bodies and headers before anything reads them.
    app.add_middleware(request_limits.BodyLimitMiddleware)
    app.add_middleware(
        request_limits.HeaderLimitMiddleware,
        max_bytes=settings.max_header_bytes,
        max_count=settings.max_header_count,
    )
    # Outside even that: every answer, a 431 too, gets its log line, metrics and request id.
    app.add_middleware(ObserveMiddleware)
    app.state.session_count = web_metrics.SessionCount(settings.metrics_sessions_refresh_seconds)

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    # ---- routers: one include line per feature (other helpers append theirs here) ----
    app.include_router(page_health.router)
    app.include_router(web_metrics.router)
    app.include_router(page_docs.router)
    app.include_router(page_auth.router)
    app.include_router(page_account.router)
    app.include_router(page_account_email.router)
    app.include_router(api_accounts.router)
    app.include_router(api_sessions.router)
    app.include_router(api_amazon.router)
    app.include_router(page_amazon.router)
    app.include_router(page_amazon_flow.router)
    app.include_router(page_amazon_link_code.router)
    app.include_router(page_account_amazon.router)
    app.include_router(api_devices.router)
    app.include_router(api_retired.router)  # old handle-in-the-path endpoints: 410
    app.include_router(page_activate.router)
    app.include_router(page_activate_link_code.router)
    app.include_router(page_tv.router)
    app.include_router(page_not_me.router)
    if page_dev_mail.enabled(settings):  # no SMTP, not production: the outbox is the mailbox
        app.include_router(page_dev_mail.router)
    app.include_router(page_recovery.router)  # password recovery (issue 13)
    app.include_router(api_recovery.router)
    # ---- end of routers ----

    _declare_bearer_scheme(app)
    if settings.amazon_emulated:
        app.mount(EMULATOR_MOUNT, _emulator_app(settings), name="amazon-emulator")
    return app


def _start_mail_delivery(settings: Settings, db: Database, clock: Clock) -> DeliveryWorker | None:
    """With an SMTP server configured, the delivery worker runs beside the requests and
    wakes after every commit that queued mail; without one nothing is sent (the outbox is
    the development mailbox, /_dev/mail)."""
    if settings.smtp is None:
        return None
    worker = DeliveryWorker(
        Delivery(db, settings, clock=clock), poll_seconds=settings.mail_poll_seconds
    )
    db.on_mail_committed = worker.wake
    worker.start()
    return worker


def _declare_bearer_scheme(app: FastAPI) -> None:
    """Add the bearer scheme that routes reference via ``auth.BEARER_SECURITY``, and the
    error responses every operation really has (``problems.describe_problems``)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build()
            schemes = schema.setdefault("components", {}).setdefault("securitySchemes", {})
            schemes[BEARER_SCHEME_NAME] = BEARER_SCHEME
            problems.describe_problems(
                schema, ProblemOut.model_json_schema(ref_template="#/components/schemas/{model}")
            )
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _emulator_transport(app: FastAPI) -> httpx.AsyncBaseTransport | None:
    """With the emulator mounted, reach it in-process (no loopback hop, any port works)."""
    mounted = any(getattr(route, "path", None) == EMULATOR_MOUNT for route in app.routes)
    return httpx.ASGITransport(app=app) if mounted else None


def _emulator_app(settings: Settings) -> ASGIApp:
    """The offline Amazon, registered to redirect back to this service's callback."""
    callback = settings.public_url.rstrip("/") + "/auth/amazon/callback"
    return create_emulator(
        EmulatorConfig(
            web_redirect_uris=[callback],
            environment=settings.env,
            enforce_poll_interval=settings.emulator_enforce_interval,
        )
    )

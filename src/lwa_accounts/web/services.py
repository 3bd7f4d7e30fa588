"""The per-process services every request handler reaches through ``request.app.state``,
and the one place a request's flow context is built (``request_context``)."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from starlette.requests import Request

from lwa_accounts.flows.context import ClientInfo, Context, Deps
from lwa_accounts.interfaces import Clock, PasswordHasher
from lwa_accounts.lwa.client import LwaClient
from lwa_accounts.settings import Settings
from lwa_accounts.store.db import Database
from lwa_accounts.throttle import Throttle
from lwa_accounts.web.cookies import known_browser, presented_device_proof


@dataclass
class Services:
    settings: Settings
    database: Database
    hasher: PasswordHasher
    throttle: Throttle
    clock: Clock
    deps: Deps  # what every flow needs; built once per process
    # Injected by tests (the emulator as a transport); None means real network I/O.
    amazon_transport: httpx.AsyncBaseTransport | None = None
    # The one pooled Login with Amazon client of this process (issue 5).
    amazon: LwaClient | None = None


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def client_info(request: Request) -> ClientInfo:
    """The client's address: the peer's, or the one a configured trusted proxy forwarded
    (``LWA_ACCOUNTS_TRUSTED_PROXIES``, applied by the app's proxy-headers middleware).
    Per-IP limits and the audit log use it; a known-device proof, if sent, goes along
    unverified (``flows/known_devices.py`` checks it where a password is)."""
    ip = request.client.host if request.client else None
    user_agent = request.headers.get("user-agent")
    return ClientInfo(
        ip=ip,
        user_agent=user_agent[:512] if user_agent else None,
        device_proof=presented_device_proof(request, get_services(request).settings),
        known_browser=known_browser(request, get_services(request).settings),
    )


def request_context(request: Request) -> Context:
    """The flows' context for this request: the process's deps and database, the client."""
    services = get_services(request)
    return Context(deps=services.deps, database=services.database, client=client_info(request))

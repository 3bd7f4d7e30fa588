"""The per-process services every request handler reaches through ``request.app.state``."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from starlette.requests import Request

from lwa_accounts.flows.accounts import AccountDeps
from lwa_accounts.interfaces import Clock, PasswordHasher
from lwa_accounts.lwa.client import LwaClient
from lwa_accounts.settings import Settings
from lwa_accounts.store.db import Database
from lwa_accounts.throttle import Throttle


@dataclass
class Services:
    settings: Settings
    database: Database
    hasher: PasswordHasher
    throttle: Throttle
    clock: Clock
    accounts: AccountDeps
    # Injected by tests (the emulator as a transport); None means real network I/O.
    amazon_transport: httpx.AsyncBaseTransport | None = None
    # The one pooled Login with Amazon client of this process (issue 5).
    amazon: LwaClient | None = None


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services

"""Who the emulated Amazon knows: customers and the clients (apps) they sign in to.

Customers sign in with email (any case) and password; clients carry their secret, redirect
URIs and allowed scopes. Passwords and client secrets are compared as bytes in constant time,
and an unknown client, a wrong secret and a missing one all get the same 401 invalid_client.
Nothing here locks: the callers hold the state's one lock.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from lwa_accounts.emulator.compare import same_secret
from lwa_accounts.emulator.config import (
    DEFAULT_CLIENT_SCOPES,
    KNOWN_SCOPES,
    CustomerSeed,
    EmulatorConfig,
)
from lwa_accounts.emulator.records import Client, Customer, new_user_id
from lwa_accounts.emulator.wire import ControlError, WireError
from lwa_accounts.settings import (
    EMULATED_DEVICE_CLIENT_ID,
    EMULATED_WEB_CLIENT_ID,
    EMULATED_WEB_CLIENT_SECRET,
)


def parse_scopes(value: str) -> tuple[str, ...]:
    """Space-separated scopes, de-duplicated in order."""
    return tuple(dict.fromkeys(value.split()))


class Directory:
    """The customers (by user_id) and clients (by client_id)."""

    def __init__(self) -> None:
        self.customers: dict[str, Customer] = {}
        self.clients: dict[str, Client] = {}

    def clear(self) -> None:
        self.customers.clear()
        self.clients.clear()

    def seed(self, config: EmulatorConfig) -> None:
        """The configured customers and the two development clients."""
        for seed in config.customers:
            self.add_customer(seed)
        self.clients[EMULATED_WEB_CLIENT_ID] = Client(
            client_id=EMULATED_WEB_CLIENT_ID,
            client_secret=EMULATED_WEB_CLIENT_SECRET,
            redirect_uris=list(config.web_redirect_uris),
            allowed_scopes=frozenset(DEFAULT_CLIENT_SCOPES),
            name="lwa-accounts (development web client)",
        )
        self.clients[EMULATED_DEVICE_CLIENT_ID] = Client(
            client_id=EMULATED_DEVICE_CLIENT_ID,
            client_secret=None,
            redirect_uris=[],
            allowed_scopes=frozenset(DEFAULT_CLIENT_SCOPES),
            name="lwa-accounts TV (development device client)",
        )

    # ---- customers -------------------------------------------------------------------------

    def add_customer(self, seed: CustomerSeed) -> Customer:
        user_id = seed.user_id or new_user_id()
        if user_id in self.customers:
            raise ControlError("conflict", f"A customer with user_id {user_id} exists", 409)
        if self.customer_by_email(seed.email) is not None:
            raise ControlError("conflict", f"A customer with email {seed.email} exists", 409)
        customer = Customer(
            user_id=user_id,
            name=seed.name,
            email=seed.email,
            password=seed.password,
            postal_code=seed.postal_code,
        )
        self.customers[user_id] = customer
        return customer

    def customer(self, user_id: str) -> Customer:
        """The customer, or a 404 ControlError."""
        customer = self.customers.get(user_id)
        if customer is None:
            raise ControlError("not_found", f"No customer with user_id {user_id}", 404)
        return customer

    def customer_by_email(self, email: str) -> Customer | None:
        wanted = email.strip().casefold()
        for customer in self.customers.values():
            if customer.email.casefold() == wanted:
                return customer
        return None

    def update_customer(self, user_id: str, changes: dict[str, Any]) -> Customer:
        customer = self.customer(user_id)
        email = changes.get("email")
        if isinstance(email, str):
            other = self.customer_by_email(email)
            if other is not None and other.user_id != user_id:
                raise ControlError("conflict", f"A customer with email {email} exists", 409)
        for name in ("name", "email", "password", "postal_code"):
            if name in changes:
                setattr(customer, name, changes[name])
        return customer

    def authenticate_customer(self, email: str, password: str) -> Customer | None:
        customer = self.customer_by_email(email)
        if customer is None or not same_secret(customer.password, password):
            return None
        return customer

    # ---- clients ---------------------------------------------------------------------------

    def add_client(
        self,
        client_id: str,
        client_secret: str | None,
        redirect_uris: list[str],
        allowed_scopes: Iterable[str] | None,
        name: str | None,
    ) -> Client:
        if client_id in self.clients:
            raise ControlError("conflict", f"A client with client_id {client_id} exists", 409)
        scopes = frozenset(allowed_scopes or DEFAULT_CLIENT_SCOPES)
        unknown = scopes - KNOWN_SCOPES
        if unknown:
            raise ControlError("invalid_scope", f"Unknown scopes: {sorted(unknown)}", 422)
        client = Client(
            client_id=client_id,
            client_secret=client_secret,
            redirect_uris=list(redirect_uris),
            allowed_scopes=scopes,
            name=name or client_id,
        )
        self.clients[client_id] = client
        return client

    def check_scopes(self, client: Client, scopes: tuple[str, ...]) -> None:
        """Raise invalid_scope unless every scope is known and allowed for this client."""
        if not scopes or any(
            scope not in KNOWN_SCOPES or scope not in client.allowed_scopes for scope in scopes
        ):
            raise WireError("invalid_scope", "An unknown scope was requested")

    def authenticate_client(
        self, client_id: str, client_secret: str | None, *, secret_optional: bool
    ) -> Client:
        """The client whose secret matches; without a secret only a public client, or one
        for which the caller allows it (`secret_optional`)."""
        client = self.clients.get(client_id)
        if client is None:
            raise WireError("invalid_client", "Client authentication failed", 401)
        if client_secret is not None:
            if client.client_secret is None or not same_secret(client.client_secret, client_secret):
                raise WireError("invalid_client", "Client authentication failed", 401)
        elif client.client_secret is not None and not secret_optional:
            raise WireError("invalid_client", "Client authentication failed", 401)
        return client

"""Access and refresh tokens: issuing, tokeninfo, the profile, refresh and revocation.

Tokens are stored by SHA-256 hash (`records.token_key`), so a dump of the state holds no
usable token. An access token lives `access_token_lifetime` seconds; a refresh token lives
until the customer removes the app. Removed apps' refresh tokens stay known as revoked, so a
device's secret-less refresh is answered as Amazon does (400 invalid_grant, not 401
invalid_client; lwa-protocol.md 2.3, 2.4 and 5). Nothing here locks: the callers hold the
state's one lock.
"""

from __future__ import annotations

from typing import Any

from lwa_accounts.emulator.clock import EmulatorClock, Pruner, unexpired
from lwa_accounts.emulator.config import EmulatorConfig
from lwa_accounts.emulator.directory import Directory
from lwa_accounts.emulator.records import (
    AccessToken,
    RefreshToken,
    new_access_token,
    new_refresh_token,
    token_key,
)
from lwa_accounts.emulator.wire import ControlError, WireError

REVOKED_REFRESH = (
    "The request has an invalid grant parameter : refresh_token. "
    "User may have revoked or didn't grant the permission."
)
EXPIRED_OR_UNKNOWN = "The access token provided is expired, revoked, malformed, or invalid."


class Tokens:
    """The live access tokens, the refresh tokens and those of removed apps (by hash)."""

    def __init__(
        self, config: EmulatorConfig, clock: EmulatorClock, pruner: Pruner, directory: Directory
    ) -> None:
        self._config = config
        self._clock = clock
        self._pruner = pruner
        self._directory = directory
        self.access_tokens: dict[str, AccessToken] = {}
        self.refresh_tokens: dict[str, RefreshToken] = {}
        self.revoked_refresh_tokens: dict[str, RefreshToken] = {}
        pruner.watch(self.access_tokens)

    def clear(self) -> None:
        self.access_tokens.clear()
        self.refresh_tokens.clear()
        self.revoked_refresh_tokens.clear()

    def issue(
        self,
        client_id: str,
        user_id: str,
        scopes: tuple[str, ...],
        *,
        via_device: bool,
        refresh_token: str | None = None,
    ) -> dict[str, Any]:
        """A token response: a new access token, and a new refresh token unless one is given."""
        self._pruner.created()
        now = self._clock.now()
        access = new_access_token()
        self.access_tokens[token_key(access)] = AccessToken(
            client_id=client_id,
            user_id=user_id,
            scopes=scopes,
            issued_at=now,
            expires_at=now + self._config.access_token_lifetime,
        )
        if refresh_token is None:
            refresh_token = new_refresh_token()
            self.refresh_tokens[token_key(refresh_token)] = RefreshToken(
                client_id=client_id, user_id=user_id, scopes=scopes, via_device=via_device
            )
        return {
            "access_token": access,
            "refresh_token": refresh_token,
            "token_type": "bearer",
            "expires_in": self._config.access_token_lifetime,
        }

    def mint(self, user_id: str, client_id: str, scopes: tuple[str, ...]) -> dict[str, Any]:
        """Tokens as if the customer had consented (test control: 404 or 422 otherwise)."""
        self._directory.customer(user_id)
        client = self._directory.clients.get(client_id)
        if client is None:
            raise ControlError("not_found", f"No client with client_id {client_id}", 404)
        try:
            self._directory.check_scopes(client, scopes)
        except WireError as exc:
            raise ControlError("invalid_scope", exc.description, 422) from None
        return self.issue(client_id, user_id, scopes, via_device=client.client_secret is None)

    def access_token(self, token: str) -> AccessToken | None:
        """The live record behind an access token, or None (unknown, expired or revoked)."""
        return unexpired(self.access_tokens.get(token_key(token)), self._clock.now())

    def token_info(self, token: str) -> dict[str, Any]:
        record = self.access_token(token)
        if record is None:
            raise WireError("invalid_token", EXPIRED_OR_UNKNOWN)
        client = self._directory.clients.get(record.client_id)
        app_id = client.app_id if client else ""
        # Amazon's key order; exp is seconds remaining, not an epoch time.
        return {
            "aud": record.client_id,
            "user_id": record.user_id,
            "iss": self._config.issuer,
            "exp": int(record.expires_at - self._clock.now()),
            "app_id": app_id,
            "iat": int(record.issued_at),
        }

    def profile(self, token: str) -> dict[str, Any]:
        record = self.access_token(token)
        customer = self._directory.customers.get(record.user_id) if record else None
        if record is None or customer is None:
            raise WireError("invalid_token", EXPIRED_OR_UNKNOWN, 401)
        scopes = set(record.scopes)
        if not scopes & {"profile", "profile:user_id", "postal_code"}:
            raise WireError(
                "insufficient_scope",
                "The access token does not grant access to the customer profile",
                403,
            )
        body: dict[str, Any] = {"user_id": customer.user_id}
        if "profile" in scopes:
            body["name"] = customer.name
            body["email"] = customer.email
        if "postal_code" in scopes and customer.postal_code is not None:
            body["postal_code"] = customer.postal_code
        return body

    def refresh(
        self, refresh_token: str, client_id: str, client_secret: str | None
    ) -> dict[str, Any]:
        key = token_key(refresh_token)
        record = self.refresh_tokens.get(key)
        revoked = self.revoked_refresh_tokens.get(key)
        known = record or revoked
        # CBL devices refresh with the client id alone (lwa-protocol.md 2.3), also once
        # the customer removed the app; Amazon then answers 400 invalid_grant "...:
        # refresh_token. User may have revoked or didn't grant the permission."
        # (lwa-protocol.md 2.4 and 5), never 401 invalid_client.
        client = self._directory.authenticate_client(
            client_id,
            client_secret,
            secret_optional=known is not None and known.via_device and known.client_id == client_id,
        )
        if record is None or record.client_id != client.client_id:
            raise WireError("invalid_grant", REVOKED_REFRESH)
        if record.user_id not in self._directory.customers:
            raise WireError("invalid_grant", REVOKED_REFRESH)
        if self._config.rotate_refresh_tokens:
            del self.refresh_tokens[key]
            return self.issue(
                client.client_id, record.user_id, record.scopes, via_device=record.via_device
            )
        # SP-API docs: the refresh token returned is the one sent.
        return self.issue(
            client.client_id,
            record.user_id,
            record.scopes,
            via_device=record.via_device,
            refresh_token=refresh_token,
        )

    def revoke(self, user_id: str, client_id: str | None) -> int:
        """The customer removed the app (all apps when client_id is None): its access tokens
        die and its refresh tokens move to the revoked ones. Returns how many went."""

        def hit(owner: str, client: str) -> bool:
            return owner == user_id and (client_id is None or client == client_id)

        before = len(self.access_tokens) + len(self.refresh_tokens)
        for key, access in list(self.access_tokens.items()):
            if hit(access.user_id, access.client_id):
                del self.access_tokens[key]
        for key, refresh in list(self.refresh_tokens.items()):
            if hit(refresh.user_id, refresh.client_id):
                del self.refresh_tokens[key]
                self.revoked_refresh_tokens[key] = refresh
        return before - len(self.access_tokens) - len(self.refresh_tokens)

    def has_grant(self, user_id: str, client_id: str, scopes: tuple[str, ...]) -> bool:
        """True when a live refresh token already covers these scopes (consent was given)."""
        return any(
            r.user_id == user_id and r.client_id == client_id and set(scopes) <= set(r.scopes)
            for r in self.refresh_tokens.values()
        )

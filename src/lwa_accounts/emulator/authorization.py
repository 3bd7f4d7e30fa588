"""The authorization code grant: /ap/oa requests waiting for consent, and their codes.

A validated /ap/oa request waits (10 minutes) for the person to sign in and consent; it is
spent either way. A code is single use: it is spent by the first exchange, even one that
fails, and must come back with the exact redirect_uri and, when the request carried a PKCE
challenge, a matching verifier (S256 or plain, compared in constant time). Nothing here
locks: the callers hold the state's one lock.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from typing import Any

from lwa_accounts.emulator.clock import EmulatorClock, Pruner, unexpired
from lwa_accounts.emulator.compare import same_secret
from lwa_accounts.emulator.config import EmulatorConfig
from lwa_accounts.emulator.directory import Directory
from lwa_accounts.emulator.records import AuthorizationCode, AuthorizeRequest
from lwa_accounts.emulator.tokens import Tokens
from lwa_accounts.emulator.wire import ControlError, WireError, invalid, missing

AUTHORIZE_REQUEST_LIFETIME = 600


def pkce_matches(verifier: str, challenge: str, method: str) -> bool:
    if method == "S256":
        digest = hashlib.sha256(verifier.encode("ascii", "replace")).digest()
        expected = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
        return same_secret(expected, challenge)
    return same_secret(verifier, challenge)


class AuthorizationCodes:
    """The pending /ap/oa requests (by request id) and the codes they gave (by code)."""

    def __init__(
        self,
        config: EmulatorConfig,
        clock: EmulatorClock,
        pruner: Pruner,
        directory: Directory,
        tokens: Tokens,
    ) -> None:
        self._config = config
        self._clock = clock
        self._pruner = pruner
        self._directory = directory
        self._tokens = tokens
        self.authorize_requests: dict[str, AuthorizeRequest] = {}
        self.codes: dict[str, AuthorizationCode] = {}
        pruner.watch(self.authorize_requests)
        pruner.watch(self.codes)

    def clear(self) -> None:
        self.authorize_requests.clear()
        self.codes.clear()

    def start(
        self,
        client_id: str,
        redirect_uri: str,
        scopes: tuple[str, ...],
        state: str | None,
        code_challenge: str | None,
        code_challenge_method: str | None,
    ) -> AuthorizeRequest:
        request = AuthorizeRequest(
            request_id=secrets.token_urlsafe(18),
            client_id=client_id,
            redirect_uri=redirect_uri,
            scopes=scopes,
            state=state,
            code_challenge=code_challenge,
            code_challenge_method=code_challenge_method,
            expires_at=self._clock.now() + AUTHORIZE_REQUEST_LIFETIME,
        )
        self._pruner.created()
        self.authorize_requests[request.request_id] = request
        return request

    def get(self, request_id: str) -> AuthorizeRequest | None:
        return unexpired(self.authorize_requests.get(request_id), self._clock.now())

    def finish(self, request_id: str, user_id: str | None) -> tuple[AuthorizeRequest, str]:
        """Spend the request; with a user_id (consent given) also return a fresh code."""
        request = unexpired(self.authorize_requests.pop(request_id, None), self._clock.now())
        if request is None:
            raise ControlError("not_found", "This sign-in request expired", 404)
        if user_id is None:
            return request, ""
        code = secrets.token_urlsafe(24)
        self.codes[code] = AuthorizationCode(
            client_id=request.client_id,
            user_id=user_id,
            redirect_uri=request.redirect_uri,
            scopes=request.scopes,
            code_challenge=request.code_challenge,
            code_challenge_method=request.code_challenge_method,
            expires_at=self._clock.now() + self._config.authorization_code_lifetime,
        )
        return request, code

    def exchange(
        self,
        code: str,
        client_id: str,
        client_secret: str | None,
        redirect_uri: str | None,
        code_verifier: str | None,
    ) -> dict[str, Any]:
        # Single use: the code is spent even when this exchange fails.
        record = self.codes.pop(code, None)
        has_pkce = record is not None and record.code_challenge is not None
        client = self._directory.authenticate_client(
            client_id,
            client_secret,
            secret_optional=self._config.pkce_without_secret and has_pkce,
        )
        record = unexpired(record, self._clock.now())
        if record is None or record.client_id != client.client_id:
            raise invalid("code", "invalid_grant") from None
        if redirect_uri is None:
            raise missing("redirect_uri")
        if redirect_uri != record.redirect_uri:
            raise WireError(
                "invalid_grant", "The request has an invalid grant parameter : redirect_uri"
            )
        if record.code_challenge is not None:
            if code_verifier is None:
                raise missing("code_verifier")
            if not pkce_matches(
                code_verifier, record.code_challenge, record.code_challenge_method or "plain"
            ):
                raise WireError(
                    "invalid_grant", "The request has an invalid grant parameter : code_verifier"
                )
        if record.user_id not in self._directory.customers:
            raise invalid("code", "invalid_grant")
        return self._tokens.issue(client.client_id, record.user_id, record.scopes, via_device=False)

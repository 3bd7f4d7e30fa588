"""The emulated Amazon's state: one facade, `EmulatorState`, over its parts.

Every public method holds one lock: the state may be touched by request handlers on an event
loop and by tests in another thread at once. The parts do not lock, so a rule that spans
several of them (deleting a customer revokes their tokens and signs their browsers out) runs
under that one lock too. The endpoints (`oauth`, `pages`, `control`) use only this facade:

- `directory`: customers and clients, and who authenticates as them;
- `tokens`: access and refresh tokens (issue, tokeninfo, profile, refresh, revoke);
- `authorization`: /ap/oa requests waiting for consent and their single-use codes (PKCE);
- `code_pairs`: code-based linking for devices (create, decide, poll);
- `sessions`: browser sessions at the emulated Amazon (cookie, CSRF token);
- `clock`: the test-movable clock and the pruning of expired records.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from lwa_accounts.emulator.authorization import (
    AUTHORIZE_REQUEST_LIFETIME,
    AuthorizationCodes,
    pkce_matches,
)
from lwa_accounts.emulator.clock import PRUNE_EVERY, EmulatorClock, Pruner
from lwa_accounts.emulator.code_pairs import CodePairs
from lwa_accounts.emulator.config import CustomerSeed, EmulatorConfig
from lwa_accounts.emulator.directory import Directory, parse_scopes
from lwa_accounts.emulator.faults import FaultBook
from lwa_accounts.emulator.records import (
    AccessToken,
    AuthorizationCode,
    AuthorizeRequest,
    BrowserSession,
    Client,
    CodePair,
    Customer,
    RefreshToken,
)
from lwa_accounts.emulator.sessions import BROWSER_SESSION_LIFETIME, BrowserSessions
from lwa_accounts.emulator.tokens import EXPIRED_OR_UNKNOWN, REVOKED_REFRESH, Tokens
from lwa_accounts.emulator.wire import ControlError

if TYPE_CHECKING:
    from starlette.requests import Request

# Re-exported: tests and the endpoints import these from here.
__all__ = [
    "AUTHORIZE_REQUEST_LIFETIME",
    "BROWSER_SESSION_LIFETIME",
    "EXPIRED_OR_UNKNOWN",
    "PRUNE_EVERY",
    "REVOKED_REFRESH",
    "ControlError",
    "EmulatorState",
    "parse_scopes",
    "pkce_matches",
    "state_of",
]


def state_of(request: Request) -> EmulatorState:
    """The state `create_app` put on the app that serves this request."""
    state: EmulatorState = request.app.state.emulator
    return state


class EmulatorState:
    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self.clock = EmulatorClock()
        self._lock = threading.RLock()
        pruner = Pruner(self.clock)
        self._directory = Directory()
        self._tokens = Tokens(config, self.clock, pruner, self._directory)
        self._authorization = AuthorizationCodes(
            config, self.clock, pruner, self._directory, self._tokens
        )
        self._code_pairs = CodePairs(config, self.clock, pruner, self._directory, self._tokens)
        self._sessions = BrowserSessions(self.clock, pruner)
        self.faults = FaultBook()
        self.reset()

    # ---- the tables, for tests and debugging (the endpoints use the methods) ---------------

    @property
    def customers(self) -> dict[str, Customer]:
        return self._directory.customers

    @property
    def clients(self) -> dict[str, Client]:
        return self._directory.clients

    @property
    def access_tokens(self) -> dict[str, AccessToken]:
        return self._tokens.access_tokens

    @property
    def refresh_tokens(self) -> dict[str, RefreshToken]:
        return self._tokens.refresh_tokens

    @property
    def revoked_refresh_tokens(self) -> dict[str, RefreshToken]:
        return self._tokens.revoked_refresh_tokens

    @property
    def codes(self) -> dict[str, AuthorizationCode]:
        return self._authorization.codes

    @property
    def authorize_requests(self) -> dict[str, AuthorizeRequest]:
        return self._authorization.authorize_requests

    @property
    def code_pairs(self) -> dict[str, CodePair]:
        return self._code_pairs.code_pairs

    @property
    def sessions(self) -> dict[str, BrowserSession]:
        return self._sessions.sessions

    # ---- seed and reset ------------------------------------------------------------------

    def reset(self) -> None:
        with self._lock:
            self.clock.offset = 0.0
            self._directory.clear()
            self._tokens.clear()
            self._authorization.clear()
            self._code_pairs.clear()
            self._sessions.clear()
            self.faults.clear()
            self._directory.seed(self.config)

    def snapshot(self) -> dict[str, Any]:
        """Counts for debugging and tests (never tokens)."""
        with self._lock:
            return {
                "customers": len(self.customers),
                "clients": len(self.clients),
                "access_tokens": len(self.access_tokens),
                "refresh_tokens": len(self.refresh_tokens),
                "code_pairs": len(self.code_pairs),
                "clock_offset_seconds": self.clock.offset,
                "now": int(self.clock.now()),
            }

    # ---- customers -------------------------------------------------------------------------

    def add_customer(self, seed: CustomerSeed) -> Customer:
        with self._lock:
            return self._directory.add_customer(seed)

    def list_customers(self) -> list[Customer]:
        with self._lock:
            return list(self.customers.values())

    def get_customer(self, user_id: str) -> Customer:
        with self._lock:
            return self._directory.customer(user_id)

    def find_customer(self, user_id: str | None) -> Customer | None:
        with self._lock:
            return self.customers.get(user_id or "")

    def update_customer(self, user_id: str, changes: dict[str, Any]) -> Customer:
        with self._lock:
            return self._directory.update_customer(user_id, changes)

    def delete_customer(self, user_id: str) -> None:
        with self._lock:
            self._directory.customer(user_id)  # 404 before anything changes
            self._tokens.revoke(user_id, None)
            del self.customers[user_id]
            self._sessions.forget(user_id)

    def authenticate_customer(self, email: str, password: str) -> Customer | None:
        with self._lock:
            return self._directory.authenticate_customer(email, password)

    # ---- clients ---------------------------------------------------------------------------

    def add_client(
        self,
        client_id: str,
        client_secret: str | None,
        redirect_uris: list[str],
        allowed_scopes: Iterable[str] | None,
        name: str | None,
    ) -> Client:
        with self._lock:
            return self._directory.add_client(
                client_id, client_secret, redirect_uris, allowed_scopes, name
            )

    def get_client(self, client_id: str) -> Client | None:
        with self._lock:
            return self.clients.get(client_id)

    def list_clients(self) -> list[Client]:
        with self._lock:
            return list(self.clients.values())

    def check_scopes(self, client: Client, scopes: tuple[str, ...]) -> None:
        with self._lock:
            self._directory.check_scopes(client, scopes)

    # ---- tokens ----------------------------------------------------------------------------

    def mint_tokens(self, user_id: str, client_id: str, scopes: tuple[str, ...]) -> dict[str, Any]:
        """Tokens as if the customer had consented (test control)."""
        with self._lock:
            return self._tokens.mint(user_id, client_id, scopes)

    def access_token(self, token: str) -> AccessToken | None:
        """The live record behind an access token, or None (unknown, expired or revoked)."""
        with self._lock:
            return self._tokens.access_token(token)

    def token_info(self, token: str) -> dict[str, Any]:
        with self._lock:
            return self._tokens.token_info(token)

    def profile(self, token: str) -> dict[str, Any]:
        with self._lock:
            return self._tokens.profile(token)

    def refresh(
        self, refresh_token: str, client_id: str, client_secret: str | None
    ) -> dict[str, Any]:
        with self._lock:
            return self._tokens.refresh(refresh_token, client_id, client_secret)

    def revoke(self, user_id: str, client_id: str | None = None) -> int:
        """The customer removed the app (all apps when client_id is None)."""
        with self._lock:
            self._directory.customer(user_id)
            return self._tokens.revoke(user_id, client_id)

    def has_grant(self, user_id: str, client_id: str, scopes: tuple[str, ...]) -> bool:
        """True when a live refresh token already covers these scopes (consent was given)."""
        with self._lock:
            return self._tokens.has_grant(user_id, client_id, scopes)

    # ---- authorization code grant ----------------------------------------------------------

    def start_authorize(
        self,
        client_id: str,
        redirect_uri: str,
        scopes: tuple[str, ...],
        state: str | None,
        code_challenge: str | None,
        code_challenge_method: str | None,
    ) -> AuthorizeRequest:
        with self._lock:
            return self._authorization.start(
                client_id, redirect_uri, scopes, state, code_challenge, code_challenge_method
            )

    def get_authorize(self, request_id: str) -> AuthorizeRequest | None:
        with self._lock:
            return self._authorization.get(request_id)

    def finish_authorize(
        self, request_id: str, user_id: str | None
    ) -> tuple[AuthorizeRequest, str]:
        """Spend the request; with a user_id (consent given) also return a fresh code."""
        with self._lock:
            return self._authorization.finish(request_id, user_id)

    def exchange_code(
        self,
        code: str,
        client_id: str,
        client_secret: str | None,
        redirect_uri: str | None,
        code_verifier: str | None,
    ) -> dict[str, Any]:
        with self._lock:
            return self._authorization.exchange(
                code, client_id, client_secret, redirect_uri, code_verifier
            )

    # ---- code-based linking (device flow) --------------------------------------------------

    def create_code_pair(
        self, client: Client, scopes: tuple[str, ...], scope_data: str | None
    ) -> CodePair:
        with self._lock:
            return self._code_pairs.create(client, scopes, scope_data)

    def pending_pair(self, user_code: str) -> CodePair | None:
        """The live, undecided code pair for a typed code (any case), or None."""
        with self._lock:
            return self._code_pairs.pending(user_code)

    def decide_code(self, user_code: str, user_id: str | None) -> CodePair:
        """Approve (user_id given) or deny a pending code pair."""
        with self._lock:
            return self._code_pairs.decide(user_code, user_id)

    def poll(self, device_code: str, user_code: str | None) -> dict[str, Any]:
        with self._lock:
            return self._code_pairs.poll(device_code, user_code)

    # ---- browser sessions at the emulated Amazon -------------------------------------------

    def session(self, session_id: str | None) -> BrowserSession | None:
        with self._lock:
            return self._sessions.get(session_id)

    def new_session(self) -> BrowserSession:
        with self._lock:
            return self._sessions.new()

    def sign_in(self, session: BrowserSession, user_id: str | None) -> None:
        with self._lock:
            self._sessions.sign_in(session, user_id)

    def set_session_code(self, session: BrowserSession, user_code: str | None) -> None:
        with self._lock:
            session.user_code = user_code

    # ---- clock -----------------------------------------------------------------------------

    def advance_clock(self, seconds: float) -> None:
        with self._lock:
            self.clock.advance(seconds)

"""The emulated Amazon's state and rules. Every public method holds one lock: the state may be
touched by request handlers on an event loop and by tests in another thread at once."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
import uuid
from collections.abc import Iterable
from typing import Any

from lwa_accounts.emulator.config import (
    DEFAULT_CLIENT_SCOPES,
    KNOWN_SCOPES,
    CustomerSeed,
    EmulatorConfig,
)
from lwa_accounts.emulator.faults import FaultBook
from lwa_accounts.emulator.records import (
    AccessToken,
    AuthorizationCode,
    AuthorizeRequest,
    BrowserSession,
    Client,
    CodePair,
    Customer,
    EmulatorClock,
    RefreshToken,
    new_access_token,
    new_refresh_token,
    new_user_code,
    new_user_id,
    normalise_user_code,
    token_key,
)
from lwa_accounts.emulator.wire import WireError, invalid, missing
from lwa_accounts.settings import (
    EMULATED_DEVICE_CLIENT_ID,
    EMULATED_WEB_CLIENT_ID,
    EMULATED_WEB_CLIENT_SECRET,
)

BROWSER_SESSION_LIFETIME = 12 * 3600
AUTHORIZE_REQUEST_LIFETIME = 600
PRUNE_EVERY = 200
REVOKED_REFRESH = (
    "The request has an invalid grant parameter : refresh_token. "
    "User may have revoked or didn't grant the permission."
)
EXPIRED_OR_UNKNOWN = "The access token provided is expired, revoked, malformed, or invalid."


class ControlError(WireError):
    """A bad test-control request (404 unknown, 409 conflict, 422 invalid)."""


def parse_scopes(value: str) -> tuple[str, ...]:
    """Space-separated scopes, de-duplicated in order."""
    return tuple(dict.fromkeys(value.split()))


def pkce_matches(verifier: str, challenge: str, method: str) -> bool:
    if method == "S256":
        digest = hashlib.sha256(verifier.encode("ascii", "replace")).digest()
        expected = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
        return hmac.compare_digest(expected.encode(), _utf8(challenge))
    return hmac.compare_digest(_utf8(verifier), _utf8(challenge))


def _utf8(value: str) -> bytes:
    # Compare secrets as bytes: compare_digest raises on non-ASCII str (even a lone
    # surrogate, possible in JSON, encodes with surrogatepass).
    return value.encode("utf-8", "surrogatepass")


class EmulatorState:
    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self.clock = EmulatorClock()
        self._lock = threading.RLock()
        self.customers: dict[str, Customer] = {}
        self.clients: dict[str, Client] = {}
        self.access_tokens: dict[str, AccessToken] = {}
        self.refresh_tokens: dict[str, RefreshToken] = {}
        # Refresh tokens of apps the customer removed: still known, so a device refresh
        # (client id, no secret) is answered as Amazon does (invalid_grant, not a 401).
        self.revoked_refresh_tokens: dict[str, RefreshToken] = {}
        self.codes: dict[str, AuthorizationCode] = {}
        self.code_pairs: dict[str, CodePair] = {}  # by device_code
        self.authorize_requests: dict[str, AuthorizeRequest] = {}
        self.sessions: dict[str, BrowserSession] = {}
        self.faults = FaultBook()
        self._created_since_prune = 0
        self.reset()

    def _prune(self) -> None:
        """Forget expired records now and then, so a long-running dev server stays small.
        Code pairs are kept an hour past expiry so late polls still see `invalid_code_pair`."""
        self._created_since_prune += 1
        if self._created_since_prune < PRUNE_EVERY:
            return
        self._created_since_prune = 0
        now = self.clock.now()
        for table in (self.sessions, self.authorize_requests, self.codes, self.access_tokens):
            for key in [k for k, v in table.items() if v.expires_at <= now]:
                del table[key]
        for key in [k for k, v in self.code_pairs.items() if v.expires_at + 3600 <= now]:
            del self.code_pairs[key]

    # ---- seed and reset ------------------------------------------------------------------

    def reset(self) -> None:
        with self._lock:
            self.clock.offset = 0.0
            for table in (
                self.customers,
                self.clients,
                self.access_tokens,
                self.refresh_tokens,
                self.revoked_refresh_tokens,
                self.codes,
                self.code_pairs,
                self.authorize_requests,
                self.sessions,
            ):
                table.clear()
            self.faults.clear()
            for seed in self.config.customers:
                self._add_customer(seed)
            self.clients[EMULATED_WEB_CLIENT_ID] = Client(
                client_id=EMULATED_WEB_CLIENT_ID,
                client_secret=EMULATED_WEB_CLIENT_SECRET,
                redirect_uris=list(self.config.web_redirect_uris),
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

    def _add_customer(self, seed: CustomerSeed) -> Customer:
        user_id = seed.user_id or new_user_id()
        if user_id in self.customers:
            raise ControlError("conflict", f"A customer with user_id {user_id} exists", 409)
        if self._customer_by_email(seed.email) is not None:
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

    def add_customer(self, seed: CustomerSeed) -> Customer:
        with self._lock:
            return self._add_customer(seed)

    def list_customers(self) -> list[Customer]:
        with self._lock:
            return list(self.customers.values())

    def get_customer(self, user_id: str) -> Customer:
        with self._lock:
            return self._customer(user_id)

    def find_customer(self, user_id: str | None) -> Customer | None:
        with self._lock:
            return self.customers.get(user_id or "")

    def _customer(self, user_id: str) -> Customer:
        customer = self.customers.get(user_id)
        if customer is None:
            raise ControlError("not_found", f"No customer with user_id {user_id}", 404)
        return customer

    def _customer_by_email(self, email: str) -> Customer | None:
        wanted = email.strip().casefold()
        for customer in self.customers.values():
            if customer.email.casefold() == wanted:
                return customer
        return None

    def update_customer(self, user_id: str, changes: dict[str, Any]) -> Customer:
        with self._lock:
            customer = self._customer(user_id)
            email = changes.get("email")
            if isinstance(email, str):
                other = self._customer_by_email(email)
                if other is not None and other.user_id != user_id:
                    raise ControlError("conflict", f"A customer with email {email} exists", 409)
            for name in ("name", "email", "password", "postal_code"):
                if name in changes:
                    setattr(customer, name, changes[name])
            return customer

    def delete_customer(self, user_id: str) -> None:
        with self._lock:
            self._customer(user_id)
            self._revoke(user_id, None)
            del self.customers[user_id]
            for session in self.sessions.values():
                if session.user_id == user_id:
                    session.user_id = None

    def authenticate_customer(self, email: str, password: str) -> Customer | None:
        with self._lock:
            customer = self._customer_by_email(email)
            if customer is None or not hmac.compare_digest(
                _utf8(customer.password), _utf8(password)
            ):
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
        with self._lock:
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

    def get_client(self, client_id: str) -> Client | None:
        with self._lock:
            return self.clients.get(client_id)

    def list_clients(self) -> list[Client]:
        with self._lock:
            return list(self.clients.values())

    def _check_scopes(self, client: Client, scopes: tuple[str, ...]) -> None:
        if not scopes or any(
            scope not in KNOWN_SCOPES or scope not in client.allowed_scopes for scope in scopes
        ):
            raise WireError("invalid_scope", "An unknown scope was requested")

    def check_scopes(self, client: Client, scopes: tuple[str, ...]) -> None:
        with self._lock:
            self._check_scopes(client, scopes)

    def _authenticate_client(
        self, client_id: str, client_secret: str | None, *, secret_optional: bool
    ) -> Client:
        client = self.clients.get(client_id)
        if client is None:
            raise WireError("invalid_client", "Client authentication failed", 401)
        if client_secret is not None:
            if client.client_secret is None or not hmac.compare_digest(
                _utf8(client.client_secret), _utf8(client_secret)
            ):
                raise WireError("invalid_client", "Client authentication failed", 401)
        elif client.client_secret is not None and not secret_optional:
            raise WireError("invalid_client", "Client authentication failed", 401)
        return client

    # ---- tokens ----------------------------------------------------------------------------

    def _issue(
        self,
        client_id: str,
        user_id: str,
        scopes: tuple[str, ...],
        *,
        via_device: bool,
        refresh_token: str | None = None,
    ) -> dict[str, Any]:
        self._prune()
        now = self.clock.now()
        access = new_access_token()
        self.access_tokens[token_key(access)] = AccessToken(
            client_id=client_id,
            user_id=user_id,
            scopes=scopes,
            issued_at=now,
            expires_at=now + self.config.access_token_lifetime,
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
            "expires_in": self.config.access_token_lifetime,
        }

    def mint_tokens(self, user_id: str, client_id: str, scopes: tuple[str, ...]) -> dict[str, Any]:
        """Tokens as if the customer had consented (test control)."""
        with self._lock:
            self._customer(user_id)
            client = self.clients.get(client_id)
            if client is None:
                raise ControlError("not_found", f"No client with client_id {client_id}", 404)
            try:
                self._check_scopes(client, scopes)
            except WireError as exc:
                raise ControlError("invalid_scope", exc.description, 422) from None
            return self._issue(client_id, user_id, scopes, via_device=client.client_secret is None)

    def access_token(self, token: str) -> AccessToken | None:
        """The live record behind an access token, or None (unknown, expired or revoked)."""
        with self._lock:
            record = self.access_tokens.get(token_key(token))
            if record is None or record.expires_at <= self.clock.now():
                return None
            return record

    def token_info(self, token: str) -> dict[str, Any]:
        with self._lock:
            record = self.access_token(token)
            if record is None:
                raise WireError("invalid_token", EXPIRED_OR_UNKNOWN)
            client = self.clients.get(record.client_id)
            app_id = client.app_id if client else ""
            # Amazon's key order; exp is seconds remaining, not an epoch time.
            return {
                "aud": record.client_id,
                "user_id": record.user_id,
                "iss": self.config.issuer,
                "exp": int(record.expires_at - self.clock.now()),
                "app_id": app_id,
                "iat": int(record.issued_at),
            }

    def profile(self, token: str) -> dict[str, Any]:
        with self._lock:
            record = self.access_token(token)
            customer = self.customers.get(record.user_id) if record else None
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
        with self._lock:
            key = token_key(refresh_token)
            record = self.refresh_tokens.get(key)
            revoked = self.revoked_refresh_tokens.get(key)
            known = record or revoked
            # CBL devices refresh with the client id alone (lwa-protocol.md 2.3), also once
            # the customer removed the app; Amazon then answers 400 invalid_grant "...:
            # refresh_token. User may have revoked or didn't grant the permission."
            # (lwa-protocol.md 2.4 and 5), never 401 invalid_client.
            client = self._authenticate_client(
                client_id,
                client_secret,
                secret_optional=known is not None
                and known.via_device
                and known.client_id == client_id,
            )
            if record is None or record.client_id != client.client_id:
                raise WireError("invalid_grant", REVOKED_REFRESH)
            if record.user_id not in self.customers:
                raise WireError("invalid_grant", REVOKED_REFRESH)
            if self.config.rotate_refresh_tokens:
                del self.refresh_tokens[token_key(refresh_token)]
                return self._issue(
                    client.client_id, record.user_id, record.scopes, via_device=record.via_device
                )
            # SP-API docs: the refresh token returned is the one sent.
            return self._issue(
                client.client_id,
                record.user_id,
                record.scopes,
                via_device=record.via_device,
                refresh_token=refresh_token,
            )

    def _revoke(self, user_id: str, client_id: str | None) -> int:
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

    def revoke(self, user_id: str, client_id: str | None = None) -> int:
        """The customer removed the app (all apps when client_id is None)."""
        with self._lock:
            self._customer(user_id)
            return self._revoke(user_id, client_id)

    def has_grant(self, user_id: str, client_id: str, scopes: tuple[str, ...]) -> bool:
        """True when a live refresh token already covers these scopes (consent was given)."""
        with self._lock:
            return any(
                r.user_id == user_id and r.client_id == client_id and set(scopes) <= set(r.scopes)
                for r in self.refresh_tokens.values()
            )

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
            request = AuthorizeRequest(
                request_id=secrets.token_urlsafe(18),
                client_id=client_id,
                redirect_uri=redirect_uri,
                scopes=scopes,
                state=state,
                code_challenge=code_challenge,
                code_challenge_method=code_challenge_method,
                expires_at=self.clock.now() + AUTHORIZE_REQUEST_LIFETIME,
            )
            self._prune()
            self.authorize_requests[request.request_id] = request
            return request

    def get_authorize(self, request_id: str) -> AuthorizeRequest | None:
        with self._lock:
            request = self.authorize_requests.get(request_id)
            if request is None or request.expires_at <= self.clock.now():
                return None
            return request

    def finish_authorize(
        self, request_id: str, user_id: str | None
    ) -> tuple[AuthorizeRequest, str]:
        """Spend the request; with a user_id (consent given) also return a fresh code."""
        with self._lock:
            request = self.authorize_requests.pop(request_id, None)
            if request is None or request.expires_at <= self.clock.now():
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
                expires_at=self.clock.now() + self.config.authorization_code_lifetime,
            )
            return request, code

    def exchange_code(
        self,
        code: str,
        client_id: str,
        client_secret: str | None,
        redirect_uri: str | None,
        code_verifier: str | None,
    ) -> dict[str, Any]:
        with self._lock:
            # Single use: the code is spent even when this exchange fails.
            record = self.codes.pop(code, None)
            has_pkce = record is not None and record.code_challenge is not None
            client = self._authenticate_client(
                client_id,
                client_secret,
                secret_optional=self.config.pkce_without_secret and has_pkce,
            )
            if (
                record is None
                or record.expires_at <= self.clock.now()
                or record.client_id != client.client_id
            ):
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
                        "invalid_grant",
                        "The request has an invalid grant parameter : code_verifier",
                    )
            if record.user_id not in self.customers:
                raise invalid("code", "invalid_grant")
            return self._issue(client.client_id, record.user_id, record.scopes, via_device=False)

    # ---- code-based linking (device flow) --------------------------------------------------

    def create_code_pair(
        self, client: Client, scopes: tuple[str, ...], scope_data: str | None
    ) -> CodePair:
        with self._lock:
            self._check_scopes(client, scopes)
            live = {pair.user_code for pair in self.code_pairs.values()}
            user_code = new_user_code()
            while user_code in live:
                user_code = new_user_code()
            pair = CodePair(
                device_code=str(uuid.uuid4()),
                user_code=user_code,
                client_id=client.client_id,
                scopes=scopes,
                scope_data=scope_data,
                expires_at=self.clock.now() + self.config.code_pair_expires_in,
            )
            self._prune()
            self.code_pairs[pair.device_code] = pair
            return pair

    def _pending_pair(self, user_code: str) -> CodePair | None:
        wanted = normalise_user_code(user_code)
        now = self.clock.now()
        for pair in self.code_pairs.values():
            if pair.user_code == wanted and pair.status == "pending" and pair.expires_at > now:
                return pair
        return None

    def pending_pair(self, user_code: str) -> CodePair | None:
        """The live, undecided code pair for a typed code (any case), or None."""
        with self._lock:
            return self._pending_pair(user_code)

    def decide_code(self, user_code: str, user_id: str | None) -> CodePair:
        """Approve (user_id given) or deny a pending code pair."""
        with self._lock:
            if user_id is not None:
                self._customer(user_id)
            pair = self._pending_pair(user_code)
            if pair is None:
                raise ControlError("not_found", "No pending code pair with that user_code", 404)
            if user_id is None:
                pair.status = "denied"
            else:
                pair.status = "approved"
                pair.user_id = user_id
            return pair

    def poll(self, device_code: str, user_code: str | None) -> dict[str, Any]:
        with self._lock:
            now = self.clock.now()
            pair = self.code_pairs.get(device_code)
            if pair is None or (
                user_code is not None and normalise_user_code(user_code) != pair.user_code
            ):
                raise WireError("invalid_code_pair", "The code pair is invalid")
            if pair.status == "spent":
                raise WireError("invalid_code_pair", "The code pair was already used")
            if pair.expires_at <= now:
                raise WireError(self.config.expired_code_pair_error, "The code pair has expired")
            previous, pair.last_poll_at = pair.last_poll_at, now
            if (
                self.config.enforce_poll_interval
                and previous is not None
                and now - previous < self.config.effective_min_poll_interval
            ):
                raise WireError("slow_down", "Polling too fast; wait for the interval")
            if pair.status == "pending":
                raise WireError("authorization_pending", "Authorization is pending")
            if pair.status == "denied":
                raise WireError("access_denied", "The customer denied the request")
            assert pair.user_id is not None
            if pair.user_id not in self.customers:
                raise WireError("invalid_code_pair", "The code pair is invalid")
            pair.status = "spent"
            return self._issue(pair.client_id, pair.user_id, pair.scopes, via_device=True)

    # ---- browser sessions at the emulated Amazon -------------------------------------------

    def session(self, session_id: str | None) -> BrowserSession | None:
        with self._lock:
            session = self.sessions.get(session_id or "")
            if session is None or session.expires_at <= self.clock.now():
                return None
            return session

    def new_session(self) -> BrowserSession:
        with self._lock:
            session = BrowserSession(
                session_id=secrets.token_urlsafe(32),
                csrf_token=secrets.token_urlsafe(32),
                expires_at=self.clock.now() + BROWSER_SESSION_LIFETIME,
            )
            self._prune()
            self.sessions[session.session_id] = session
            return session

    def sign_in(self, session: BrowserSession, user_id: str | None) -> None:
        with self._lock:
            session.user_id = user_id
            # A new CSRF token at each change of identity, like a new session id.
            session.csrf_token = secrets.token_urlsafe(32)

    def set_session_code(self, session: BrowserSession, user_code: str | None) -> None:
        with self._lock:
            session.user_code = user_code

    # ---- clock -----------------------------------------------------------------------------

    def advance_clock(self, seconds: float) -> None:
        with self._lock:
            self.clock.advance(seconds)

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

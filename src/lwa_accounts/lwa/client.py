"""The Login with Amazon client: one pooled ``httpx.AsyncClient`` per process.

Connection reuse is the main cost lever of an Amazon sign-in (a TLS handshake costs more
CPU than everything else in the request), so build ONE ``LwaClient`` at start-up, share it,
and ``aclose()`` it at shutdown. Only idempotent GETs (tokeninfo, profile) are retried, with
jittered backoff inside ``settings.lwa_deadline_seconds``; a POST to the token endpoint is
never retried (an authorization code is spent even when the exchange fails).
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from types import TracebackType
from typing import TypeVar

import httpx

from lwa_accounts.core.models import AmazonProfile, CodePair, OAuthErrorReply, TokenSet
from lwa_accounts.errors import (
    AmazonAuthorizationFailed,
    AmazonError,
    AmazonProtocolError,
    AmazonSignedOut,
    AmazonUnavailable,
    InsufficientScope,
    InvalidToken,
    TokenForAnotherApp,
)
from lwa_accounts.lwa import calls, protocol
from lwa_accounts.lwa.aiohttp_transport import AiohttpTransport
from lwa_accounts.lwa.protocol import Endpoints, Profile, TokenInfo
from lwa_accounts.settings import Settings

Sleep = Callable[[float], Awaitable[None]]
Clock = Callable[[], float]
_T = TypeVar("_T")

# A token we would send must be printable ASCII without spaces (Amazon's are <= 2048 bytes);
# anything else is refused locally instead of producing an invalid HTTP header.
TOKEN_RE = re.compile(r"[\x21-\x7e]{1,4096}")
SERVER_ERRORS = frozenset({"server_error", "ServerError", "servererror", "temporarily_unavailable"})
MAX_GET_ATTEMPTS = 4
BACKOFF_BASE = 0.1
BACKOFF_CAP = 1.0
DEFAULT_RETRY_AFTER = 5
# What "Amazon could not be reached" looks like. OSError too: an injected transport (the
# emulator under ASGITransport simulating a dropped connection) may raise it unwrapped.
TRANSPORT_FAILURES = (httpx.TransportError, httpx.DecodingError, OSError)


class _RedactTokens(logging.Filter):
    """httpx logs each request URL at INFO; tokeninfo carries the token in its query."""

    _pattern = re.compile(r"(access_token=)[^&\s\"']+")

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                self._pattern.sub(r"\1[redacted]", str(arg)) if "access_token=" in str(arg) else arg
                for arg in record.args
            )
        if isinstance(record.msg, str) and "access_token=" in record.msg:
            record.msg = self._pattern.sub(r"\1[redacted]", record.msg)
        return True


def _install_log_redaction() -> None:
    logger = logging.getLogger("httpx")
    if not any(isinstance(f, _RedactTokens) for f in logger.filters):
        logger.addFilter(_RedactTokens())


_install_log_redaction()


def build_transport(settings: Settings) -> httpx.AsyncBaseTransport:
    """The pooled transport: bounded connections per process, keep-alive on, no retries
    of its own (ours, only for idempotent requests). aiohttp carries the bytes: about half
    httpcore's CPU per call (``benchmarks/perf/http_clients.py``)."""
    return AiohttpTransport(max_connections=settings.lwa_max_connections, keepalive_expiry=30.0)


def _retry_after(response: httpx.Response | None) -> int:
    if response is not None:
        value = response.headers.get("retry-after", "").strip()
        if value.isdigit():
            return max(1, min(int(value), 300))
    return DEFAULT_RETRY_AFTER


class LwaClient:
    """``interfaces.AmazonClient`` (and the device parts) over Login with Amazon."""

    def __init__(
        self,
        settings: Settings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Sleep = asyncio.sleep,
        clock: Clock = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self._settings = settings
        self._endpoints = Endpoints.from_settings(settings)
        self._sleep = sleep
        self._clock = clock
        self._rng = rng or random.Random()
        self._timeout = httpx.Timeout(
            connect=settings.lwa_connect_timeout,
            read=settings.lwa_read_timeout,
            write=settings.lwa_read_timeout,
            pool=settings.lwa_connect_timeout,
        )
        self._http = httpx.AsyncClient(
            # Every request to Amazon is logged and counted there (lwa/calls.py).
            transport=calls.Instrumented(transport or build_transport(settings), self._endpoints),
            timeout=self._timeout,
            headers={"Accept": "application/json", "User-Agent": "lwa-accounts"},
            follow_redirects=False,
            trust_env=False,  # settings are the only configuration source
        )

    @property
    def endpoints(self) -> Endpoints:
        return self._endpoints

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> LwaClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # ---- web flow --------------------------------------------------------------------

    def authorize_url(
        self, *, state: str, code_challenge: str, redirect_uri: str, scope: str | None = None
    ) -> str:
        return protocol.authorize_url(
            self._endpoints.authorize,
            client_id=self._settings.web_client_id,
            scope=scope or self._settings.lwa_scope,
            redirect_uri=redirect_uri,
            state=state,
            code_challenge=code_challenge,
        )

    async def exchange_code(self, code: str, *, redirect_uri: str, code_verifier: str) -> TokenSet:
        """Authorization code -> tokens. Never retried: the code is spent either way."""
        form = protocol.authorization_code_form(
            code=code,
            redirect_uri=redirect_uri,
            client_id=self._settings.web_client_id,
            client_secret=self._settings.web_client_secret,
            code_verifier=code_verifier,
        )
        response = await self._post(self._endpoints.token, form)
        if response.is_success:
            return protocol.parse_token_response(response.content)
        reply = self._oauth_error(response)
        if reply.error == "invalid_grant":
            raise AmazonAuthorizationFailed(
                "Amazon did not accept the sign-in code (expired or already used). Start again.",
                oauth_error=reply.error,
            )
        raise self._refusal(reply)

    async def refresh(self, refresh_token: str, *, device: bool = False) -> TokenSet:
        """New tokens from a refresh token. Device (CBL) grants refresh without a secret.

        ``AmazonSignedOut`` when Amazon no longer honours the grant (the customer removed
        the app): the holder is signed out, not misconfigured (``AmazonProtocolError``).
        """
        form = protocol.refresh_form(
            refresh_token=refresh_token,
            client_id=self._settings.device_client_id if device else self._settings.web_client_id,
            client_secret=None if device else self._settings.web_client_secret,
        )
        response = await self._post(self._endpoints.token, form)
        if response.is_success:
            return protocol.parse_token_response(response.content)
        reply = self._oauth_error(response)
        if protocol.refresh_signed_out(reply):
            raise AmazonSignedOut()
        raise self._refusal(reply)

    # ---- code-based linking ------------------------------------------------------------

    async def create_code_pair(self, *, scope: str | None = None) -> CodePair:
        form = protocol.code_pair_form(
            client_id=self._settings.device_client_id, scope=scope or self._settings.lwa_scope
        )
        response = await self._post(self._endpoints.codepair, form)
        if response.is_success:
            return protocol.parse_code_pair(response.content)
        raise self._refusal(self._oauth_error(response))

    async def poll_device_token(
        self, *, device_code: str, user_code: str
    ) -> TokenSet | OAuthErrorReply:
        """One poll. OAuth errors (``authorization_pending``...) come back as values;
        transport trouble and 5xx raise ``AmazonUnavailable``."""
        form = protocol.device_token_form(device_code=device_code, user_code=user_code)
        response = await self._post(self._endpoints.token, form)
        if response.is_success:
            return protocol.parse_token_response(response.content)
        return self._oauth_error(response)

    # ---- verification --------------------------------------------------------------------

    async def tokeninfo(self, access_token: str, *, deadline: float | None = None) -> TokenInfo:
        self._check_token_shape(access_token)
        response = await self._get(
            self._endpoints.tokeninfo,
            params={"access_token": access_token},  # httpx URL-encodes it ('|' -> %7C)
            headers=None,
            deadline=deadline,
        )
        if response.status_code == 200:
            return protocol.parse_token_info(response.content)
        if response.status_code in (400, 401, 403, 404):
            raise InvalidToken()
        raise AmazonUnavailable(f"Amazon tokeninfo answered {response.status_code}.")

    async def fetch_profile(self, access_token: str, *, deadline: float | None = None) -> Profile:
        self._check_token_shape(access_token)
        response = await self._get(
            self._endpoints.profile,
            params=None,
            headers={"Authorization": f"Bearer {access_token}"},
            deadline=deadline,
        )
        if response.status_code == 200:
            return protocol.parse_profile(response.content)
        if response.status_code in (400, 401):
            raise InvalidToken()
        if response.status_code == 403:
            raise InsufficientScope()
        raise AmazonUnavailable(f"Amazon profile answered {response.status_code}.")

    async def verify_and_fetch(self, access_token: str) -> AmazonProfile:
        """tokeninfo and profile concurrently; the profile is used only if the token checks out.

        The ``aud`` check is what stops a real token minted for another app from signing
        someone in here (token substitution), so tokeninfo's verdict is looked at first,
        whatever the profile call did.
        """
        self._check_token_shape(access_token)
        deadline = self._clock() + self._settings.lwa_deadline_seconds
        info_result, profile_result = await asyncio.gather(
            self.tokeninfo(access_token, deadline=deadline),
            self.fetch_profile(access_token, deadline=deadline),
            return_exceptions=True,
        )
        info = self._unwrap(info_result, TokenInfo)
        if info.aud not in self._settings.allowed_client_ids:
            raise TokenForAnotherApp()
        if info.exp <= 0:
            raise InvalidToken()
        profile = self._unwrap(profile_result, Profile)
        if profile.user_id != info.user_id:
            raise InvalidToken("The Amazon token and profile name different customers.")
        return AmazonProfile(
            user_id=info.user_id,
            client_id=info.aud,
            name=profile.name,
            email=profile.email,
            postal_code=profile.postal_code,
        )

    # ---- plumbing -----------------------------------------------------------------------

    @staticmethod
    def _unwrap(result: _T | BaseException, kind: type[_T]) -> _T:
        if isinstance(result, BaseException):
            raise result  # AmazonError subclasses, or a genuine bug / cancellation
        assert isinstance(result, kind)
        return result

    @staticmethod
    def _check_token_shape(access_token: str) -> None:
        if not TOKEN_RE.fullmatch(access_token):
            raise InvalidToken()

    @staticmethod
    def _oauth_error(response: httpx.Response) -> OAuthErrorReply:
        reply = protocol.parse_error(response.status_code, response.content)
        if response.status_code >= 500 or reply.error in SERVER_ERRORS:
            raise AmazonUnavailable(
                f"Amazon answered {response.status_code}.", retry_after=_retry_after(response)
            )
        if not reply.error:
            raise AmazonUnavailable(
                f"Amazon answered {response.status_code} without an error code."
            )
        return reply

    @staticmethod
    def _refusal(reply: OAuthErrorReply) -> AmazonError:
        return AmazonProtocolError(
            f"Amazon refused the request ({reply.error}).", oauth_error=reply.error
        )

    async def _post(self, url: str, form: Mapping[str, str]) -> httpx.Response:
        # httpx's timeouts bind only its network transports; this bounds any transport
        # (the embedded emulator is reached in-process, where httpx times nothing).
        timer = asyncio.timeout(self._settings.lwa_deadline_seconds)
        try:
            async with timer:
                return await self._http.post(
                    url, data=dict(form), headers={"Content-Type": protocol.FORM_CONTENT_TYPE}
                )
        except TRANSPORT_FAILURES as exc:  # TimeoutError is an OSError
            failure = "no answer in time" if timer.expired() else type(exc).__name__
            raise AmazonUnavailable(f"Amazon could not be reached ({failure}).") from None

    def _backoff(self, attempt: int) -> float:
        """Full jitter: uniform in [0, min(cap, base * 2**attempt)]."""
        return self._rng.uniform(0, min(BACKOFF_CAP, BACKOFF_BASE * 2**attempt))

    async def _get(
        self,
        url: str,
        *,
        params: Mapping[str, str] | None,
        headers: Mapping[str, str] | None,
        deadline: float | None,
    ) -> httpx.Response:
        """GET with retries on transport errors, 429 and 5xx, all within the deadline."""
        if deadline is None:
            deadline = self._clock() + self._settings.lwa_deadline_seconds
        attempt = 0
        while True:
            remaining = deadline - self._clock()
            if remaining <= 0:
                raise AmazonUnavailable("Amazon did not answer in time.")
            response: httpx.Response | None = None
            timer = asyncio.timeout(remaining)  # any transport, as in _post
            try:
                async with timer:
                    response = await self._http.get(
                        url,
                        params=params,
                        headers=headers,
                        timeout=self._timeout_within(remaining),
                        extensions={calls.ATTEMPT: attempt},
                    )
            except TRANSPORT_FAILURES as exc:  # TimeoutError is an OSError
                if timer.expired():
                    raise AmazonUnavailable("Amazon did not answer in time.") from None
                failure = type(exc).__name__
            else:
                if response.status_code < 500 and response.status_code != 429:
                    return response
                failure = f"HTTP {response.status_code}"
            attempt += 1
            delay = self._backoff(attempt)
            if attempt >= MAX_GET_ATTEMPTS or self._clock() + delay >= deadline:
                raise AmazonUnavailable(
                    f"Amazon could not be reached ({failure}).", retry_after=_retry_after(response)
                )
            await self._sleep(delay)

    def _timeout_within(self, remaining: float) -> httpx.Timeout:
        return httpx.Timeout(
            connect=min(self._settings.lwa_connect_timeout, remaining),
            read=min(self._settings.lwa_read_timeout, remaining),
            write=min(self._settings.lwa_read_timeout, remaining),
            pool=min(self._settings.lwa_connect_timeout, remaining),
        )

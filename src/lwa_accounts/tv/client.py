"""The HTTP half of the reference device client: one method per API call, typed results.

A Python device (a TV, a set-top box, a script) uses ``DeviceClient`` to talk to the
lwa-accounts JSON API. It needs no Amazon logic: the server runs Amazon's code-based
linking for it. ``journeys.py`` drives these calls in loops; this module only translates
one response into one value. Secret handles (authorization and flow ids, device codes)
travel in JSON bodies, never in URLs.

Every call answers with one of the small frozen values below, or raises ``DeviceApiError``
for an answer the journey cannot act on (bad request, server error, unreachable server).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal, Self

import httpx

API = "/api/v1"
DEFAULT_TIMEOUT = httpx.Timeout(10.0, connect=5.0)


class DeviceApiError(Exception):
    """The server refused a call, failed, or could not be reached."""

    def __init__(
        self, code: str, detail: str, *, status: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail
        self.status = status
        self.retry_after = retry_after


class NotSignedIn(DeviceApiError):
    """401: the token is unknown, expired or was revoked (e.g. from the account page)."""


# ---- values ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Account:
    id: str
    username: str
    email: str | None
    name: str
    amazon_user_id: str | None

    @classmethod
    def from_json(cls, data: Any) -> Account:
        return cls(
            id=str(data["id"]),
            username=str(data["username"]),
            email=data.get("email"),
            name=str(data.get("name") or ""),
            amazon_user_id=data.get("amazon_user_id"),
        )


@dataclass(frozen=True, slots=True)
class SignedIn:
    token: str = field(repr=False)
    expires_at: str
    account: Account
    created: bool = False


@dataclass(frozen=True, slots=True)
class AmazonCode:
    """Server-assisted code-based linking: Amazon's code, shown on the device."""

    id: str = field(repr=False)  # the device's handle on the authorization: keep it secret
    user_code: str
    verification_uri: str
    expires_in: int
    interval: int


@dataclass(frozen=True, slots=True)
class PhoneCode:
    """Our own device sign-in (RFC 8628 shaped)."""

    device_code: str = field(repr=False)
    user_code: str
    verification_uri: str
    verification_uri_complete: str
    expires_in: int
    interval: int


@dataclass(frozen=True, slots=True)
class HandOff:
    """Finish on the phone: the password or the registration is given there, not here."""

    flow_id: str = field(repr=False)
    reason: Literal["link_required", "registration_required"]
    code: str
    url: str
    expires_at: str
    qr_svg: str = field(default="", repr=False)
    email: str | None = None


@dataclass(frozen=True, slots=True)
class Waiting:
    """Nothing yet; poll again after ``interval`` seconds."""

    interval: int


@dataclass(frozen=True, slots=True)
class CodeExpired:
    """Ask for a new code."""


@dataclass(frozen=True, slots=True)
class Denied:
    """The person said no."""


PollResult = SignedIn | HandOff | Waiting | CodeExpired | Denied


# ---- the client ------------------------------------------------------------------------


class DeviceClient:
    """A device's connection to one lwa-accounts server. Use as an async context manager."""

    def __init__(
        self,
        server_url: str,
        *,
        device_name: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
    ) -> None:
        self.device_name = device_name
        self._http = httpx.AsyncClient(
            base_url=server_url.rstrip("/"),
            transport=transport,
            timeout=timeout,
            headers={"Accept": "application/json"},
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # -- Sign in with Amazon (the server runs Amazon's code-based linking) --

    async def start_amazon(self) -> AmazonCode:
        data = await self._json("POST", "/amazon/device-authorizations", self._name_body())
        return AmazonCode(
            id=str(data["id"]),
            user_code=str(data["user_code"]),
            verification_uri=str(data["verification_uri"]),
            expires_in=int(data["expires_in"]),
            interval=int(data["interval"]),
        )

    async def poll_amazon(self, code: AmazonCode, *, interval: int) -> PollResult:
        # Handles go in the body, never the URL (URLs end up in logs).
        response = await self._send(
            "POST", "/amazon/device-authorizations/poll", {"authorization_id": code.id}
        )
        return self._sign_in_outcome(response, interval)

    # -- Sign in with your phone (our RFC 8628 shaped grant) --

    async def start_phone(self) -> PhoneCode:
        data = await self._json("POST", "/device/authorize", self._name_body())
        return PhoneCode(
            device_code=str(data["device_code"]),
            user_code=str(data["user_code"]),
            verification_uri=str(data["verification_uri"]),
            verification_uri_complete=str(data["verification_uri_complete"]),
            expires_in=int(data["expires_in"]),
            interval=int(data["interval"]),
        )

    async def poll_phone(self, code: PhoneCode, *, interval: int) -> PollResult:
        response = await self._send("POST", "/device/token", {"device_code": code.device_code})
        if response.status_code == 400:
            error = _body(response).get("error")
            if error == "authorization_pending":
                return Waiting(interval)
            if error == "slow_down":
                # RFC 8628 3.5: add 5 seconds, unless the server says how long to wait.
                return Waiting(int(_body(response).get("interval") or interval + 5))
            if error == "expired_token":
                return CodeExpired()
            if error == "access_denied":
                return Denied()
            raise DeviceApiError(
                str(error or "bad_request"),
                str(_body(response).get("error_description") or ""),
                status=400,
            )
        return self._sign_in_outcome(response, interval)

    # -- Finish on your phone --

    async def poll_flow(self, handoff: HandOff, *, interval: int) -> PollResult:
        response = await self._send("POST", "/flows/poll", {"flow_id": handoff.flow_id})
        if response.status_code == 200 and _body(response).get("result") == "pending":
            return Waiting(interval)
        if response.status_code in (404, 410):
            # The flow ran out (or was spent): start over with a new code.
            return CodeExpired()
        return self._sign_in_outcome(response, interval)

    # -- Signed in --

    async def me(self, token: str) -> Account:
        data = await self._json("GET", "/me", None, token=token)
        return Account.from_json(data["account"])

    async def sign_out(self, token: str) -> None:
        response = await self._send("DELETE", "/sessions/current", None, token=token)
        if response.status_code not in (204, 401):
            raise _error(response)

    # -- plumbing --

    def _name_body(self) -> dict[str, Any]:
        return {"device_name": self.device_name} if self.device_name else {}

    def _sign_in_outcome(self, response: httpx.Response, interval: int) -> PollResult:
        status = response.status_code
        body = _body(response)
        if status in (200, 201):
            result = body.get("result")
            if result == "pending":
                return Waiting(interval)
            if result == "signed_in" or (result is None and "session" in body):
                return SignedIn(
                    token=str(body["session"]["token"]),
                    expires_at=str(body["session"]["expires_at"]),
                    account=Account.from_json(body["account"]),
                    created=bool(body.get("created", False)),
                )
            if result in ("link_required", "registration_required") and "handoff" in body:
                flow, handoff = body["flow"], body["handoff"]
                return HandOff(
                    flow_id=str(flow["id"]),
                    reason=result,
                    code=str(handoff["code"]),
                    url=str(handoff["url"]),
                    expires_at=str(handoff["expires_at"]),
                    qr_svg=str(handoff.get("qr_svg") or ""),
                    email=flow.get("email"),
                )
        if status == 429 and body.get("code") == "slow_down":
            return Waiting(int(body.get("interval") or interval * 2))
        if status == 410:
            return CodeExpired()
        if status == 403 and body.get("code") == "access_denied":
            return Denied()
        raise _error(response)

    async def _json(
        self, method: str, path: str, body: dict[str, Any] | None, *, token: str | None = None
    ) -> Any:
        response = await self._send(method, path, body, token=token)
        if not response.is_success:
            raise _error(response)
        return _body(response)

    async def _send(
        self, method: str, path: str, body: dict[str, Any] | None, *, token: str | None = None
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        try:
            return await self._http.request(method, API + path, json=body, headers=headers)
        except httpx.HTTPError as exc:
            raise DeviceApiError(
                "unreachable", f"The server could not be reached ({type(exc).__name__})."
            ) from exc


def _body(response: httpx.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _error(response: httpx.Response) -> DeviceApiError:
    body = _body(response)
    code = str(body.get("code") or body.get("error") or f"http_{response.status_code}")
    detail = str(body.get("detail") or body.get("error_description") or response.reason_phrase)
    retry_after = response.headers.get("Retry-After")
    kind = NotSignedIn if response.status_code == 401 else DeviceApiError
    return kind(
        code,
        detail,
        status=response.status_code,
        retry_after=float(retry_after) if retry_after and retry_after.isdigit() else None,
    )

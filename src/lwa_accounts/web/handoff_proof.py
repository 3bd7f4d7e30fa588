"""The phone's proof that it signed in with Amazon as a TV flow's own Amazon user
(security.md item 14b), kept for /activate in a short-lived signed cookie."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from lwa_accounts.flows.tv_handoff import AmazonProof
from lwa_accounts.web import amazon_cookies as cookies
from lwa_accounts.web.services import Services

PROOF_COOKIE = "lwa_handoff_proof"
PROOF_PATH = "/activate"
PROOF_MAX_AGE = 600
PROOF_COOKIE_MAX = 1000


def write_proof(
    response: Response, services: Services, proof: AmazonProof, code: str, *, max_age: int
) -> None:
    """The proof, for /activate only: HttpOnly, SameSite=Lax (it is set on the answer to
    Amazon's top-level redirect), signed, and no longer-lived than the hand-off."""
    data = {
        "grant": proof.grant_id,
        "flow": proof.flow_id_hash,
        "amazon": proof.amazon_digest,
        "code": code,
    }
    response.set_cookie(
        PROOF_COOKIE,
        cookies.sign(services.settings, PROOF_COOKIE, data, now=services.clock.now()),
        max_age=max(1, min(max_age, PROOF_MAX_AGE)),
        httponly=True,
        samesite="lax",
        secure=services.settings.secure_cookies,
        path=PROOF_PATH,
    )


def read_proof(request: Request, services: Services) -> tuple[AmazonProof, str] | None:
    """This browser's proof and the hand-off code it was made for, if intact and recent."""
    value = request.cookies.get(PROOF_COOKIE)
    if not value or len(value) > PROOF_COOKIE_MAX or not value.isascii():
        return None
    data = cookies.verify(
        services.settings, PROOF_COOKIE, value, now=services.clock.now(), max_age=PROOF_MAX_AGE
    )
    if data is None or not all(
        isinstance(data.get(key), str) for key in ("grant", "flow", "amazon", "code")
    ):
        return None
    proof = AmazonProof(
        grant_id=data["grant"], flow_id_hash=data["flow"], amazon_digest=data["amazon"]
    )
    return proof, data["code"]


def clear_proof(response: Response, services: Services) -> None:
    response.delete_cookie(
        PROOF_COOKIE,
        httponly=True,
        samesite="lax",
        secure=services.settings.secure_cookies,
        path=PROOF_PATH,
    )

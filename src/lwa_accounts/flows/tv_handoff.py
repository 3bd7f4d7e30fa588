"""Finish on your phone: hand a pending Amazon flow from a TV to a phone.

When a device's Amazon sign-in needs the local password (``LinkRequired``) or a
registration (``RegistrationRequired``), nobody should type on the TV. ``offer_handoff``
issues a short user code (same rules as device codes: security.md item 15) with a URL (the
web edge draws it as a QR code); the person opens /activate on a phone, types the code
(the QR's URL pre-fills it but still needs a confirm), gives the password (or a code sent
to the account's verified address) or fills in the registration there, and the flow is
completed for its originator (``OnAnotherDevice``). The TV, polling its flow, then
collects its own new device session (``flows.amazon.collect_completed_flow``).

A link is made only where one browser proved both sides (security.md item 14b). The TV
proved the Amazon identity, the phone would prove the password: that alone would let an
attacker whose Amazon account carries a victim's email send the victim a hand-off code
and collect a session on the victim's account ("remote phishing of a device flow"). So the
phone must first sign in with Amazon itself (the web redirect flow), and ``prove_amazon``
accepts it only as the same Amazon ``user_id`` the flow holds; the edge keeps the result
(``AmazonProof``, bound to this hand-off row, this flow and that user) in a short-lived
signed cookie, and ``begin_handoff_link`` refuses the password step without it, before any
password is checked and without using up the flow. A registration hand-off needs no such
proof: it links no existing account.

The hand-off row must lead from the typed code to the flow, whose id is stored elsewhere
only as a digest. We store the id *sealed* (``sealing.Sealer``: AES-GCM under a key derived
from the server's secret key), bound to the row's user-code digest, so neither the
database alone nor the code alone yields the flow id, and a sealed id moved to another
row does not open.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import NoReturn
from urllib.parse import urlencode

from lwa_accounts.compare import same_secret
from lwa_accounts.core import device_grant as dg
from lwa_accounts.core.models import AmazonProfile, PendingFlow
from lwa_accounts.errors import (
    AmazonProofRequired,
    AmazonUserMismatch,
    FlowExpired,
    InvalidUserCode,
    LwaAccountsError,
)
from lwa_accounts.flows.amazon import (
    Device,
    LinkAttempt,
    OnAnotherDevice,
    begin_link,
    get_flow,
    refuse,
)
from lwa_accounts.flows.amazon.link import Start
from lwa_accounts.flows.audit import Event
from lwa_accounts.flows.context import Tx
from lwa_accounts.flows.devices import FoundCode, new_grant_record
from lwa_accounts.sealing import Purpose, SealBroken, Sealer
from lwa_accounts.settings import Settings

FLOW_ID_MAX = 100

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class HandOffOffer:
    code: str  # canonical; shown as XXXX-XXXX
    url: str
    expires_at: datetime

    @property
    def display_code(self) -> str:
        return dg.display_user_code(self.code)


def activate_url(settings: Settings, code: str | None = None) -> str:
    base = settings.public_url.rstrip("/") + "/activate"
    return f"{base}?{urlencode({'code': code})}" if code else base


SEAL_PURPOSE: Purpose = "handoff-flow-id"


def seal_flow_id(sealer: Sealer, user_code: str, flow_id: str) -> str:
    """The flow id sealed for the hand-off row of ``user_code`` (bound to its digest)."""
    if len(flow_id.encode()) > FLOW_ID_MAX:
        raise ValueError("flow id too long to seal")
    return sealer.seal(SEAL_PURPOSE, flow_id, aad=dg.code_digest(user_code))


def unseal_flow_id(sealer: Sealer, user_code: str, sealed: str) -> str | None:
    """The flow id, or None when the sealed value is not intact for this code's row."""
    try:
        return sealer.open(SEAL_PURPOSE, sealed, aad=dg.code_digest(user_code))
    except SealBroken:
        # Possible tampering with the database: make it visible (never log the value).
        logger.warning(
            "sealed %s value did not open: altered, copied from another row, or sealed with "
            "another secret key",
            SEAL_PURPOSE,
            extra={"seal_purpose": SEAL_PURPOSE},
        )
        return None


async def offer_handoff(tx: Tx, *, flow_id: str, flow: PendingFlow) -> HandOffOffer:
    """A hand-off code for a pending device flow; it replaces any earlier one and lives
    no longer than the flow itself."""
    left = int((flow.expires_at - tx.now()).total_seconds())
    if flow.status != "pending" or left <= 0:
        raise FlowExpired()
    await tx.devices.delete_handoffs_for_flow(flow.id_hash)
    sealer = tx.deps.sealer
    code, _, record = await new_grant_record(
        tx,
        purpose="handoff",
        ttl_seconds=min(left, dg.MAX_TTL_SECONDS),
        interval=tx.settings.device_poll_interval_seconds,
        device_name=flow.device_name,
        flow_id_hash=flow.id_hash,
        with_device_code=False,
        seal=lambda user_code: seal_flow_id(sealer, user_code, flow_id),
    )
    url = activate_url(tx.settings, dg.display_user_code(code))
    return HandOffOffer(code=code, url=url, expires_at=record.grant.expires_at)


def handoff_flow_id(sealer: Sealer, found: FoundCode) -> str:
    """The flow behind a hand-off code typed on the phone."""
    record = found.record
    if record.purpose != "handoff" or record.sealed_flow_id is None:
        raise InvalidUserCode()
    flow_id = unseal_flow_id(sealer, found.code, record.sealed_flow_id)
    if flow_id is None or dg.code_digest(flow_id) != record.flow_id_hash:
        raise InvalidUserCode()
    return flow_id


async def handoff_flow(tx: Tx, found: FoundCode) -> tuple[str, PendingFlow]:
    """The flow id and the pending device flow behind a hand-off code (or a refusal)."""
    flow_id = handoff_flow_id(tx.deps.sealer, found)
    return flow_id, await get_flow(tx, flow_id, Device())


async def close_handoff(tx: Tx, found: FoundCode) -> None:
    """The flow was completed on the phone: the code is spent."""
    before = found.record.grant
    after = dg.DeviceGrant(
        status="consumed",
        created_at=before.created_at,
        expires_at=before.expires_at,
        interval=before.interval,
        last_poll_at=tx.now(),
        account_id=before.account_id,
    )
    await tx.devices.save_grant(found.record.id, before=before, after=after)


async def handoff_by_grant(tx: Tx, *, grant_id: str, code: str) -> FoundCode | None:
    """A live hand-off row found again from what this server signed earlier (a cookie
    naming the row and its code): no guess, so no lookup budget. ``handoff_flow_id`` still
    proves that the code belongs to the row (the sealed flow id is bound to its digest)."""
    record = await tx.devices.grant_by_id(grant_id)
    if record is None or record.purpose != "handoff" or not record.grant.is_open(tx.now()):
        return None
    if dg.parse_user_code(code) != code:
        return None
    return FoundCode(code=code, record=record)


# ---- the phone proves the TV's Amazon identity (security.md item 14b) ----


@dataclass(frozen=True, slots=True)
class AmazonProof:
    """This browser signed in with Amazon as the flow's own Amazon user, for this hand-off
    row and this flow. Holds a digest of the user id, never the id itself."""

    grant_id: str
    flow_id_hash: str
    amazon_digest: str


def amazon_digest(user_id: str) -> str:
    return hashlib.sha256(b"handoff-amazon:" + user_id.encode()).hexdigest()


def proof_matches(proof: AmazonProof | None, found: FoundCode, flow: PendingFlow) -> bool:
    """The proof was made for this very hand-off row, flow and Amazon user."""
    return (
        proof is not None
        and same_secret(proof.grant_id, found.record.id)
        and same_secret(proof.flow_id_hash, flow.id_hash)
        and same_secret(proof.amazon_digest, amazon_digest(flow.profile.user_id))
    )


def _refuse(
    tx: Tx,
    error: LwaAccountsError,
    flow: PendingFlow,
    profile: AmazonProfile | None,
    *,
    found: FoundCode,
) -> NoReturn:
    """The Amazon refusal, naming the hand-off row."""
    refuse(
        tx,
        error,
        account_id=flow.target_account_id,
        profile=profile,
        context=f"grant={found.record.id}",
    )


def prove_amazon(
    tx: Tx, found: FoundCode, flow: PendingFlow, profile: AmazonProfile
) -> AmazonProof:
    """The phone signed in with Amazon (token verified by the edge: ``aud``, profile) as
    ``profile``. Only the Amazon user the TV proved may go on to link; anyone else is
    refused (``AmazonUserMismatch``) and audited with *their* Amazon user id, and nothing
    about the flow changes."""
    if flow.kind != "link" or not same_secret(profile.user_id, flow.profile.user_id):
        _refuse(tx, AmazonUserMismatch(), flow, profile, found=found)
    tx.audit(
        Event.AMAZON_HANDOFF_PROVEN,
        account_id=flow.target_account_id,
        profile=profile,
        detail=f"grant={found.record.id}",
    )
    return AmazonProof(
        grant_id=found.record.id,
        flow_id_hash=flow.id_hash,
        amazon_digest=amazon_digest(profile.user_id),
    )


async def begin_handoff_link(
    tx: Tx, found: FoundCode, *, proof: AmazonProof | None, start: Start = begin_link
) -> LinkAttempt:
    """``start`` (``begin_link`` for the password, ``begin_code_link`` for a code by
    e-mail) for a flow handed to a phone, only with this browser's proof of the flow's
    Amazon identity. Without it: refused (``AmazonProofRequired``) and audited before the
    throttle, argon2, a mail or the flow's attempts are touched."""
    flow_id, flow = await handoff_flow(tx, found)
    if not proof_matches(proof, found, flow):
        _refuse(tx, AmazonProofRequired(), flow, None, found=found)
    return await start(tx, flow_id, OnAnotherDevice())

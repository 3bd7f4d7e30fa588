"""Pending link and registration steps: server-side records with one state machine.

A flow is a random id handed out once (stored as its SHA-256), the verified profile (the
client never chooses the Amazon ``user_id``), the target account, attempts left, an
expiry of ``settings.flow_ttl_seconds``, and the SHA-256 of the originating browser's
binding secret (None for devices, which hold the id alone). Its status goes
``pending -> spent`` when its originator finishes it, or ``pending -> completed -> spent``
when it is finished on another device (a phone after a TV's hand-off, which proved its
right to the flow some other way) and the originating device then collects its session
once by polling (``collect_completed_flow``).

Who is finishing is one explicit value, the ``Originator``: ``Browser(binding)`` (the
flow must carry that browser's binding), ``Device()`` (a flow started without a binding)
or ``OnAnotherDevice()`` (no binding check; the flow completes for its originator).
Anyone else's flow id is answered exactly like an unknown one.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Literal

from lwa_accounts.compare import same_secret
from lwa_accounts.core.models import Account, AmazonProfile, PendingFlow, SessionKind
from lwa_accounts.errors import FlowExpired, FlowNotFound
from lwa_accounts.flows.amazon.identity import start_amazon_session
from lwa_accounts.flows.amazon.outcomes import FlowCompleted, FlowFinished, SignedInWithAmazon
from lwa_accounts.flows.amazon.refusals import refuse
from lwa_accounts.flows.audit import Event
from lwa_accounts.flows.context import Tx

FLOW_ID_PREFIX = "flw_"
FLOW_ID_MAX = 100
EXPIRED_FLOW_RETENTION = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class Browser:
    """The browser that started the flow, proven by the binding secret of its cookie."""

    binding: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class Device:
    """A device that started the flow: it holds the flow id alone."""


@dataclass(frozen=True, slots=True)
class OnAnotherDevice:
    """A phone finishing a TV's flow (after its hand-off proof): the TV collects it."""


Originator = Browser | Device | OnAnotherDevice
Starter = Browser | Device


def hash_secret(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _binding_hash(starter: Starter) -> str | None:
    return hash_secret(starter.binding) if isinstance(starter, Browser) else None


async def new_flow(
    tx: Tx,
    flow_kind: Literal["link", "registration"],
    profile: AmazonProfile,
    *,
    target_account_id: str | None,
    can_register_instead: bool,
    missing: frozenset[str],
    kind: SessionKind,
    device_name: str | None,
    starter: Starter,
) -> tuple[str, PendingFlow]:
    now = tx.now()
    flow_id = FLOW_ID_PREFIX + secrets.token_urlsafe(32)
    flow = PendingFlow(
        id_hash=hash_secret(flow_id),
        kind=flow_kind,
        status="pending",
        profile=profile,
        target_account_id=target_account_id,
        completed_account_id=None,
        attempts_left=tx.settings.flow_max_password_attempts,
        can_register_instead=can_register_instead,
        missing=tuple(sorted(missing)),
        session_kind=kind,
        device_name=device_name,
        binding_hash=_binding_hash(starter),
        created_at=now,
        expires_at=now + timedelta(seconds=tx.settings.flow_ttl_seconds),
    )
    # Housekeeping: drop flows long past expiry (kept a day so late polls still get 410).
    await tx.pending_flows.delete_expired(now - EXPIRED_FLOW_RETENTION)
    await tx.pending_flows.create(flow)
    tx.audit(
        Event.AMAZON_FLOW_STARTED,
        account_id=target_account_id,
        profile=profile,
        detail=f"kind={flow_kind}",
    )
    return flow_id, flow


def _well_formed(flow_id: str) -> bool:
    return (
        flow_id.startswith(FLOW_ID_PREFIX)
        and len(flow_id) <= FLOW_ID_MAX
        and flow_id.isascii()
        and flow_id.replace("-", "").replace("_", "").isalnum()
    )


def _belongs_to(flow: PendingFlow, originator: Originator) -> bool:
    if isinstance(originator, OnAnotherDevice):
        return True  # the caller proved its right to the flow another way (hand-off)
    given = _binding_hash(originator) or ""
    return same_secret(flow.binding_hash or "", given)


async def load_flow(
    tx: Tx,
    flow_id: str,
    originator: Originator,
    *,
    status: Literal["pending", "completed", "any"] = "pending",
) -> PendingFlow:
    """The live flow (locked for this transaction), or an audited refusal: a bad flow id
    is a refused attempt."""
    flow = (
        await tx.pending_flows.get(hash_secret(flow_id), for_update=True)
        if _well_formed(flow_id)
        else None
    )
    if flow is None or not _belongs_to(flow, originator):
        refuse(tx, FlowNotFound())  # someone else's flow: as good as unknown
    live = flow.expires_at > tx.now() and (
        flow.status == status or (status == "any" and flow.status != "spent")
    )
    if not live:
        refuse(tx, FlowExpired(), profile=flow.profile)
    return flow


async def get_flow(tx: Tx, flow_id: str, originator: Originator) -> PendingFlow:
    """A pending flow of this browser/device (for rendering its page)."""
    return await load_flow(tx, flow_id, originator)


async def finish_flow(
    tx: Tx, flow: PendingFlow, account: Account, originator: Originator, *, created: bool
) -> FlowFinished:
    """Spend the flow and sign its originator in, or complete it for the device that
    started it (``OnAnotherDevice``). FlowExpired when used concurrently: single use."""
    elsewhere = isinstance(originator, OnAnotherDevice)
    to_status: Literal["spent", "completed"] = "completed" if elsewhere else "spent"
    if not await tx.pending_flows.transition(
        flow.id_hash, from_status="pending", to_status=to_status, completed_account_id=account.id
    ):
        raise FlowExpired()
    if elsewhere:
        return FlowCompleted(account)
    return await _signed_in(tx, flow, account, created=created, via=flow.kind)


async def _signed_in(
    tx: Tx, flow: PendingFlow, account: Account, *, created: bool, via: str
) -> SignedInWithAmazon:
    """The session the flow was started for (its kind and device name)."""
    signed_in = await start_amazon_session(
        tx, account, flow.profile, kind=flow.session_kind, device_name=flow.device_name, via=via
    )
    return SignedInWithAmazon(created=created, signed_in=signed_in)


async def collect_completed_flow(tx: Tx, flow_id: str) -> SignedInWithAmazon | PendingFlow:
    """The originating device's poll: its new session once (after completion elsewhere),
    the flow while still pending, FlowExpired afterwards.

    Only flows started without a browser binding (devices) can be collected this way.
    """
    flow = await load_flow(tx, flow_id, Device(), status="any")
    if flow.status == "pending":
        return flow
    account = await tx.accounts.get(flow.completed_account_id or "")
    if account is None or not await tx.pending_flows.transition(
        flow.id_hash, from_status="completed", to_status="spent"
    ):
        refuse(tx, FlowExpired(), profile=flow.profile)
    created = flow.kind == "registration"
    return await _signed_in(tx, flow, account, created=created, via=f"{flow.kind}_elsewhere")

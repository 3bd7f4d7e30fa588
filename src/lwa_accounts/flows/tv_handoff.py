"""Finish on your phone: hand a pending Amazon flow from a TV to a phone.

When a device's Amazon sign-in needs the local password (``LinkRequired``) or a
registration (``RegistrationRequired``), nobody should type on the TV. ``offer_handoff``
issues a short user code (same rules as device codes: security.md item 15) with a URL and
a QR code; the person opens /activate on a phone, types the code (the QR's URL pre-fills
it but still needs a confirm), gives the password or fills in the registration there, and
the flow is completed with ``deliver_to="originator"``. The TV, polling
``GET /api/v1/flows/{id}``, then collects its own new device session (flows/amazon.py).

The hand-off row must lead from the typed code to the flow, whose id is stored elsewhere
only as a digest. We store the id *sealed* (``sealing.Sealer``: AES-GCM under a key derived
from the server's secret key), bound to the row's user-code digest, so neither the
database alone nor the code alone yields the flow id, and a sealed id moved to another
row does not open.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import urlencode

import segno

from lwa_accounts.core import device_grant as dg
from lwa_accounts.core.models import PendingFlow
from lwa_accounts.errors import FlowExpired, InvalidUserCode
from lwa_accounts.flows.devices import FoundCode, new_grant_record
from lwa_accounts.flows.sessions import ClientInfo
from lwa_accounts.interfaces import Clock, DeviceStore
from lwa_accounts.sealing import Purpose, SealBroken, Sealer
from lwa_accounts.settings import Settings

FLOW_ID_MAX = 100

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class HandOffOffer:
    code: str  # canonical; shown as XXXX-XXXX
    url: str
    expires_at: datetime
    qr_svg: str = field(repr=False)

    @property
    def display_code(self) -> str:
        return dg.display_user_code(self.code)


def activate_url(settings: Settings, code: str | None = None) -> str:
    base = settings.public_url.rstrip("/") + "/activate"
    return f"{base}?{urlencode({'code': code})}" if code else base


def qr_svg(data: str) -> str:
    """A QR code as a standalone SVG element (with its namespace, for DOMParser)."""
    out = io.BytesIO()
    segno.make(data, error="m").save(
        out, kind="svg", xmldecl=False, svgns=True, omitsize=True, scale=4, nl=False
    )
    return out.getvalue().decode()


SEAL_PURPOSE: Purpose = "handoff-flow-id"


def seal_flow_id(settings: Settings, user_code: str, flow_id: str) -> str:
    """The flow id sealed for the hand-off row of ``user_code`` (bound to its digest)."""
    if len(flow_id.encode()) > FLOW_ID_MAX:
        raise ValueError("flow id too long to seal")
    return Sealer(settings).seal(SEAL_PURPOSE, flow_id, aad=dg.code_digest(user_code))


def unseal_flow_id(settings: Settings, user_code: str, sealed: str) -> str | None:
    """The flow id, or None when the sealed value is not intact for this code's row."""
    try:
        return Sealer(settings).open(SEAL_PURPOSE, sealed, aad=dg.code_digest(user_code))
    except SealBroken:
        # Possible tampering with the database: make it visible (never log the value).
        logger.warning(
            "sealed %s value did not open: altered, copied from another row, or sealed with "
            "another secret key",
            SEAL_PURPOSE,
            extra={"seal_purpose": SEAL_PURPOSE},
        )
        return None


async def offer_handoff(
    devices: DeviceStore,
    settings: Settings,
    clock: Clock,
    *,
    flow_id: str,
    flow: PendingFlow,
    client: ClientInfo,
) -> HandOffOffer:
    """A hand-off code for a pending device flow; it replaces any earlier one and lives
    no longer than the flow itself."""
    now = clock.now()
    left = int((flow.expires_at - now).total_seconds())
    if flow.status != "pending" or left <= 0:
        raise FlowExpired()
    await devices.delete_handoffs_for_flow(flow.id_hash)
    code, _, record = await new_grant_record(
        devices,
        clock,
        purpose="handoff",
        ttl_seconds=min(left, dg.MAX_TTL_SECONDS),
        interval=settings.device_poll_interval_seconds,
        device_name=flow.device_name,
        ip=client.ip,
        flow_id_hash=flow.id_hash,
        with_device_code=False,
        seal=lambda user_code: seal_flow_id(settings, user_code, flow_id),
    )
    url = activate_url(settings, dg.display_user_code(code))
    return HandOffOffer(code=code, url=url, expires_at=record.grant.expires_at, qr_svg=qr_svg(url))


def handoff_flow_id(settings: Settings, found: FoundCode) -> str:
    """The flow behind a hand-off code typed on the phone."""
    record = found.record
    if record.purpose != "handoff" or record.sealed_flow_id is None:
        raise InvalidUserCode()
    flow_id = unseal_flow_id(settings, found.code, record.sealed_flow_id)
    if flow_id is None or dg.code_digest(flow_id) != record.flow_id_hash:
        raise InvalidUserCode()
    return flow_id


async def close_handoff(devices: DeviceStore, clock: Clock, found: FoundCode) -> None:
    """The flow was completed on the phone: the code is spent."""
    before = found.record.grant
    after = dg.DeviceGrant(
        status="consumed",
        created_at=before.created_at,
        expires_at=before.expires_at,
        interval=before.interval,
        last_poll_at=clock.now(),
        account_id=before.account_id,
    )
    await devices.save_grant(found.record.id, before=before, after=after)

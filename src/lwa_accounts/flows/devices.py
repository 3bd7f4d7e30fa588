"""Our own device sign-in (RFC 8628 shaped) and the /activate step on the phone.

The device asks for a grant (``authorize_device``) and shows the user code; the person
types it at /activate (``find_code``: throttled per IP and per code), signs in there and
explicitly approves or denies the named device (``decide_device``); the device polls
``poll_device_token`` and receives a device session through ``start_session``, exactly
like any other sign-in. The same user codes also name hand-offs of pending Amazon flows
(``flows/tv_handoff.py``), so ``find_code`` answers with either kind.

Flows never commit: the edge owns the transaction. Poll outcomes are values (the
device's protocol answers); a refused code or decision is raised.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from lwa_accounts.core import device_grant as dg
from lwa_accounts.core.models import Account
from lwa_accounts.errors import DeviceCodeExpired, InvalidUserCode
from lwa_accounts.flows.audit import Event
from lwa_accounts.flows.context import Context, Tx
from lwa_accounts.flows.sessions import SignedIn, start_session

GRANT_ID_PREFIX = "dgr_"
CODE_TRIES = 5  # user-code collisions are ~1 in 1e10: a few tries always suffice
DEVICE_NAME_MAX = 100
# Grants stay findable a while after expiry so a late poll gets "expired", not "unknown".
PURGE_AFTER = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class IssuedGrant:
    device_code: str = field(repr=False)
    user_code: str  # canonical; display with dg.display_user_code
    expires_in: int
    interval: int


@dataclass(frozen=True, slots=True)
class TokenInvalid:
    """Unknown or already used device code (RFC 6749 ``invalid_grant``)."""


# The core's poll outcomes pass straight through, except that an approval becomes the
# session and a used code reads as unknown (RFC 8628 answers both with invalid_grant).
TokenOutcome = dg.AwaitingApproval | dg.SlowDown | dg.Expired | dg.Denied | TokenInvalid | SignedIn


def clean_device_name(name: str | None) -> str | None:
    """A device names itself; keep it printable and short (it is shown on /activate)."""
    if name is None:
        return None
    printable = "".join(char for char in name if char.isprintable()).strip()
    return printable[:DEVICE_NAME_MAX] or None


async def new_grant_record(
    tx: Tx,
    *,
    purpose: dg.GrantPurpose,
    ttl_seconds: int,
    interval: int,
    device_name: str | None,
    flow_id_hash: str | None = None,
    with_device_code: bool,
    seal: Callable[[str], str] | None = None,
) -> tuple[str, str | None, dg.DeviceGrantRecord]:
    """Store a new grant under fresh codes. Returns (user code, device code, record).

    ``seal(user_code)`` gives the sealed flow id of a hand-off (it depends on the code)."""
    now = tx.now()
    await tx.devices.delete_expired(now - PURGE_AFTER)
    for _ in range(CODE_TRIES):
        user_code = dg.new_user_code()
        device_code = dg.new_device_code() if with_device_code else None
        record = dg.DeviceGrantRecord(
            id=GRANT_ID_PREFIX + secrets.token_urlsafe(18),
            purpose=purpose,
            grant=dg.new_grant(now, ttl_seconds=ttl_seconds, interval=interval),
            device_name=device_name,
            flow_id_hash=flow_id_hash,
            sealed_flow_id=seal(user_code) if seal else None,
            ip=tx.client.ip,
        )
        stored = await tx.devices.create_grant(
            record,
            user_code_hash=dg.code_digest(user_code),
            device_code_hash=dg.code_digest(device_code) if device_code else None,
        )
        if stored:
            return user_code, device_code, record
    raise RuntimeError("could not allocate a unique user code")  # pragma: no cover


async def authorize_device(tx: Tx, *, device_name: str | None) -> IssuedGrant:
    """POST /device/authorize: a device code for the device, a user code for the person."""
    ttl = min(tx.settings.device_code_ttl_seconds, dg.MAX_TTL_SECONDS)
    interval = tx.settings.device_poll_interval_seconds
    user_code, device_code, record = await new_grant_record(
        tx,
        purpose="device",
        ttl_seconds=ttl,
        interval=interval,
        device_name=clean_device_name(device_name),
        with_device_code=True,
    )
    assert device_code is not None
    tx.audit(Event.DEVICE_AUTHORIZATION_STARTED, detail=f"grant={record.id}")
    return IssuedGrant(
        device_code=device_code, user_code=user_code, expires_in=ttl, interval=interval
    )


async def poll_device_token(tx: Tx, *, device_code: str) -> TokenOutcome:
    """POST /device/token: one poll of the device. A session comes out at most once."""
    if not device_code or len(device_code) > 256:
        return TokenInvalid()
    record = await tx.devices.grant_by_device_code(dg.code_digest(device_code))
    if record is None or record.purpose != "device":
        return TokenInvalid()
    outcome, after = dg.poll(record.grant, tx.now())
    if after != record.grant and not await tx.devices.save_grant(
        record.id, before=record.grant, after=after
    ):
        # Another poll of the same code got there first: that one is the answer.
        return dg.SlowDown(record.grant.interval + dg.SLOW_DOWN_STEP_SECONDS)
    if isinstance(outcome, dg.AlreadyUsed):
        return TokenInvalid()
    if not isinstance(outcome, dg.Approved):
        return outcome
    account = await tx.accounts.get(outcome.account_id)
    if account is None or account.disabled:
        return dg.Denied()
    return await start_session(
        tx, account, kind="device", device_name=record.device_name or "Device", method="device"
    )


# ---- the phone side: /activate ----------------------------------------------------------


async def guard_device_start(ctx: Context) -> None:
    """Starting a device sign-in is anonymous and (for Amazon) costs an upstream call:
    limit it per IP (TooManyAttempts, 429). The start is taken from the budget atomically
    before the work and counts whether or not it succeeds."""
    await ctx.deps.throttle.count_device_start(ctx.client.ip)


@dataclass(frozen=True, slots=True)
class FoundCode:
    """A live code typed on the phone, and what it is for."""

    code: str  # canonical
    record: dg.DeviceGrantRecord

    @property
    def display_code(self) -> str:
        return dg.display_user_code(self.code)

    @property
    def device_name(self) -> str:
        return self.record.device_name or "Unnamed device"


async def find_code(tx: Tx, text: str) -> FoundCode:
    """Look up what a person typed. Every lookup is taken from the IP's and the code's
    budget (both or neither, atomically) before the lookup and counts whether or not it
    finds a code, so guessing is bounded (TooManyAttempts, 429). A wrong code is refused
    with InvalidUserCode and audited (a kept event: it survives the rollback)."""
    code = dg.parse_user_code(text)
    await tx.deps.throttle.count_user_code(code, tx.client.ip)
    record = await tx.devices.grant_by_user_code(dg.code_digest(code)) if code else None
    if code is None or record is None or not record.grant.is_open(tx.now()):
        tx.audit(Event.DEVICE_USER_CODE_REFUSED, detail="unknown")
        raise InvalidUserCode()
    return FoundCode(code=code, record=record)


async def decide_device(tx: Tx, *, found: FoundCode, account: Account, approve: bool) -> None:
    """The person, signed in on the phone, approved or denied the named device."""
    if found.record.purpose != "device":
        raise InvalidUserCode()
    now = tx.now()
    before = found.record.grant
    after = dg.approve(before, account.id, now) if approve else dg.deny(before, now)
    if isinstance(after, dg.NotDecidable) or not await tx.devices.save_grant(
        found.record.id, before=before, after=after
    ):
        raise DeviceCodeExpired("This code was already used or has expired. Ask for a new one.")
    tx.audit(
        Event.DEVICE_APPROVED if approve else Event.DEVICE_DENIED,
        account_id=account.id,
        detail=f"grant={found.record.id}",
    )

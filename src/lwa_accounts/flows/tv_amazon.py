"""Server-assisted code-based linking: the server runs Amazon's device flow for a TV.

The TV asks us for a code (``register_authorization`` after the edge got a code pair from
Amazon with the device client id), shows Amazon's user code and address, and polls us.
Amazon's device code never leaves the server, and is stored sealed (store/devices.py); the
TV holds only a random id (stored as its digest). A poll goes through steps the edge runs
in separate transactions, so no database transaction is open while Amazon is being asked:

1. ``begin_poll`` (transaction): enforce the interval we gave the device (429
   ``slow_down``); decide whether Amazon may be asked now (at most once per Amazon
   interval, claimed by compare-and-set so several workers ask once); else the cached
   "pending" stands.
2. the edge polls Amazon (``AmazonDeviceClient.poll_device_token``), no transaction.
3. ``record_reply`` (transaction): pending / slow_down (our pace towards Amazon doubles) /
   expired -> 410 / denied -> 403 / tokens.

Refusals are raised; what they record (a slowed interval, a pair marked expired or
denied) is written with ``tx.keep`` so it survives the rollback of the raise.
4. the edge verifies the token (``verify_and_fetch``: tokeninfo ``aud`` + profile).
5. ``finish_sign_in`` (transaction): the code pair is spent, and the verified profile goes
   through ``flows.amazon.sign_in_with_profile`` as a device sign-in: the same outcomes as
   ``POST /api/v1/sessions/amazon``; a link or registration outcome comes with a hand-off
   to the phone (``flows/tv_handoff.py``).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import timedelta

from lwa_accounts.core import device_grant as dg
from lwa_accounts.core.models import AmazonProfile, CodePair, OAuthErrorReply, TokenSet
from lwa_accounts.errors import (
    AccessDenied,
    AmazonProtocolError,
    DeviceCodeExpired,
    NotFound,
    SlowDown,
)
from lwa_accounts.flows.amazon import (
    Device,
    LinkRequired,
    RegistrationRequired,
    SignedInWithAmazon,
    sign_in_with_profile,
)
from lwa_accounts.flows.audit import Event
from lwa_accounts.flows.context import Tx
from lwa_accounts.flows.devices import clean_device_name
from lwa_accounts.flows.tv_handoff import HandOffOffer, offer_handoff

ID_BYTES = 32
ID_MAX = 100
# Amazon's device codes are UUIDs (36 characters); this bound keeps the sealed form within
# its column (sealing.sealed_length(256) < 512).
DEVICE_CODE_MAX = 256
PURGE_AFTER = timedelta(hours=1)

# Amazon's answers that mean "this pair is over, get a new one" (lwa-protocol.md 1.4).
_EXPIRED_ERRORS = frozenset({"invalid_code_pair", "expired_token", "invalid_grant"})


@dataclass(frozen=True, slots=True)
class StartedAuthorization:
    id: str = field(repr=False)  # the device's secret handle; stored only as its digest
    authorization: dg.AmazonAuthorization


async def register_authorization(
    tx: Tx, pair: CodePair, *, device_name: str | None
) -> StartedAuthorization:
    """Keep Amazon's code pair server-side; the device gets a random id for it."""
    if len(pair.device_code.encode()) > DEVICE_CODE_MAX:
        raise AmazonProtocolError("Amazon's device code is longer than any it issues.")
    settings = tx.settings
    now = tx.now()
    await tx.devices.delete_expired(now - PURGE_AFTER)
    handle = secrets.token_urlsafe(ID_BYTES)
    ttl = max(1, min(pair.expires_in, dg.MAX_TTL_SECONDS))
    auth = dg.AmazonAuthorization(
        id_hash=dg.code_digest(handle),
        status="pending",
        user_code=pair.user_code,
        device_code=pair.device_code,
        verification_uri=pair.verification_uri,
        device_name=clean_device_name(device_name),
        interval=settings.device_poll_interval_seconds,
        amazon_interval=max(1, min(pair.interval, dg.MAX_INTERVAL_SECONDS)),
        created_at=now,
        expires_at=now + timedelta(seconds=ttl),
        ip=tx.client.ip,
    )
    await tx.devices.create_authorization(auth)
    tx.audit(Event.AMAZON_DEVICE_AUTHORIZATION_STARTED, client_id=settings.device_client_id)
    return StartedAuthorization(id=handle, authorization=auth)


@dataclass(frozen=True, slots=True)
class StillPending:
    interval: int


@dataclass(frozen=True, slots=True)
class AskAmazon:
    authorization: dg.AmazonAuthorization


async def _end(tx: Tx, auth: dg.AmazonAuthorization, status: dg.AmazonAuthorizationStatus) -> None:
    """Mark the pair over (kept: the refusal that follows must not undo it)."""
    await tx.keep(lambda stores: stores.devices.finish_authorization(auth.id_hash, status))


async def begin_poll(tx: Tx, authorization_id: str) -> StillPending | AskAmazon:
    """Step 1. Raises NotFound, DeviceCodeExpired (410), AccessDenied (403) or SlowDown
    (429); what a refusal recorded survives it."""
    if not authorization_id or len(authorization_id) > ID_MAX:
        raise NotFound("Unknown device authorization.")
    auth = await tx.devices.get_authorization(dg.code_digest(authorization_id))
    if auth is None:
        raise NotFound("Unknown device authorization.")
    now = tx.now()
    if auth.status == "denied":
        raise AccessDenied()
    if auth.status != "pending":
        raise DeviceCodeExpired()
    if now >= auth.expires_at or auth.device_code is None:
        # No device code: its sealed form did not open (altered, or stored before sealing);
        # Amazon cannot be asked, so the device needs a new code.
        await _end(tx, auth, "expired")
        raise DeviceCodeExpired()
    if dg.polled_too_soon(auth.last_poll_at, now, auth.interval):
        slower = min(auth.interval + dg.SLOW_DOWN_STEP_SECONDS, dg.MAX_INTERVAL_SECONDS)
        await tx.keep(
            lambda stores: stores.devices.record_device_poll(auth, now=now, interval=slower)
        )
        raise _slow_down(slower)
    if not await tx.devices.record_device_poll(auth, now=now, interval=auth.interval):
        # A concurrent poll of the same id won the race: this one is too fast by definition.
        raise _slow_down(auth.interval)
    if dg.amazon_poll_due(auth, now) and await tx.devices.claim_amazon_poll(auth, now=now):
        return AskAmazon(auth)
    return StillPending(auth.interval)


def _slow_down(interval: int) -> SlowDown:
    return SlowDown(
        f"Poll at most every {interval} seconds.", retry_after=interval, interval=interval
    )


@dataclass(frozen=True, slots=True)
class TokensReady:
    access_token: str = field(repr=False)


async def record_reply(
    tx: Tx, auth: dg.AmazonAuthorization, reply: TokenSet | OAuthErrorReply
) -> StillPending | TokensReady:
    """Step 3: what Amazon's answer means for this authorization."""
    if isinstance(reply, TokenSet):
        return TokensReady(reply.access_token)
    if reply.error == "authorization_pending":
        return StillPending(auth.interval)
    if reply.error == "slow_down":
        await tx.devices.set_amazon_interval(
            auth.id_hash, dg.amazon_slowed_interval(auth.amazon_interval)
        )
        return StillPending(auth.interval)
    if reply.error in _EXPIRED_ERRORS:
        await _end(tx, auth, "expired")
        raise DeviceCodeExpired()
    if reply.error == "access_denied":
        await _end(tx, auth, "denied")
        raise AccessDenied()
    # invalid_client, unauthorized_client...: our configuration is wrong; nothing to retry.
    await _end(tx, auth, "expired")
    raise AmazonProtocolError(oauth_error=reply.error)


async def abandon(tx: Tx, auth: dg.AmazonAuthorization) -> None:
    """Amazon's tokens could not be verified: the pair is spent, the device needs a new one."""
    await _end(tx, auth, "expired")


@dataclass(frozen=True, slots=True)
class NeedsPhone:
    """A link or registration outcome, with its hand-off to the phone."""

    outcome: LinkRequired | RegistrationRequired
    handoff: HandOffOffer


async def finish_sign_in(
    tx: Tx, auth: dg.AmazonAuthorization, profile: AmazonProfile
) -> SignedInWithAmazon | NeedsPhone:
    """Step 5: the verified profile signs the device in, exactly like a posted token."""
    # Spent whatever the sign-in answers (kept: a refused sign-in does not revive the pair).
    if not await tx.keep(lambda stores: stores.devices.finish_authorization(auth.id_hash, "done")):
        raise DeviceCodeExpired()  # another worker already finished it
    outcome = await sign_in_with_profile(
        tx,
        profile,
        kind="device",
        device_name=auth.device_name or "TV",
        starter=Device(),  # devices hold the flow id alone
    )
    if isinstance(outcome, LinkRequired | RegistrationRequired):
        handoff = await offer_handoff(tx, flow_id=outcome.flow_id, flow=outcome.flow)
        return NeedsPhone(outcome=outcome, handoff=handoff)
    return outcome

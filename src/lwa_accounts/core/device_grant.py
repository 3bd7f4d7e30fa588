"""Our device grant (RFC 8628 shaped) and the rules for the codes we show on TVs. Pure.

Two kinds of code (security.md items 15 and 16):

- the *user code* a person types on a phone: 8 characters from ``USER_CODE_ALPHABET`` (no
  vowels, so no words; no digits, so no 0/O or 1/I confusion), shown as ``XXXX-XXXX``;
  entry ignores case, spaces and dashes. 20^8 is about 2.6e10, which with the per-IP and
  per-code rate limits and a 15-minute life is far out of reach of guessing;
- the *device code* the device keeps secret and polls with: 256 random bits.

Both are stored only as SHA-256 digests (``code_digest``): they are high-entropy secrets,
so a fast hash is enough and lets the server find a row by the digest.

The grant itself is a small immutable value; ``poll``, ``approve`` and ``deny`` return the
next value and an outcome, and the caller persists it. ``poll`` enforces the interval: a
device that polls sooner than ``interval`` seconds after its previous poll gets
``SlowDown`` and, as RFC 8628 section 3.5 says, 5 more seconds on its interval.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Literal

USER_CODE_ALPHABET = "BCDFGHJKLMNPQRSTVWXZ"
USER_CODE_LENGTH = 8
DEVICE_CODE_BYTES = 32  # 256 bits; the checklist asks for at least 128
MAX_TTL_SECONDS = 15 * 60
SLOW_DOWN_STEP_SECONDS = 5
MAX_INTERVAL_SECONDS = 60

# What a person may type between the characters of a code: spaces, dashes and look-alikes
# of them that phone keyboards insert (non-breaking space, en/em dash, minus sign).
_SEPARATORS = frozenset(" \t-\u00a0\u2010\u2011\u2012\u2013\u2014\u2212")
_ALPHABET_SET = frozenset(USER_CODE_ALPHABET)


# ---- codes ---------------------------------------------------------------------------


def new_user_code(randbelow: Callable[[int], int] = secrets.randbelow) -> str:
    """A fresh user code in canonical form (8 upper-case letters, no dash)."""
    size = len(USER_CODE_ALPHABET)
    return "".join(USER_CODE_ALPHABET[randbelow(size)] for _ in range(USER_CODE_LENGTH))


def display_user_code(code: str) -> str:
    """``BCDFGHJK`` -> ``BCDF-GHJK``: two groups of four are easier to read off a TV."""
    half = len(code) // 2
    return f"{code[:half]}-{code[half:]}"


def parse_user_code(text: str) -> str | None:
    """What a person typed -> the canonical code, or None if it cannot be one of ours.

    Case, spaces and dashes are ignored. Anything else outside the alphabet (including
    non-ASCII letters whose upper-case looks like ours) makes the entry invalid.
    """
    if len(text) > 64:
        return None
    kept = [char for char in text if char not in _SEPARATORS]
    # Check before upper-casing: "ß".upper() is "SS", and non-ASCII must never pass.
    if not all(char.isascii() for char in kept):
        return None
    code = "".join(kept).upper()
    if len(code) != USER_CODE_LENGTH or not set(code) <= _ALPHABET_SET:
        return None
    return code


def new_device_code() -> str:
    """A fresh device code: 256 random bits, URL-safe text."""
    return secrets.token_urlsafe(DEVICE_CODE_BYTES)


def code_digest(code: str) -> str:
    """The stored form of a secret code (SHA-256, hex)."""
    # surrogatepass: any str a client manages to send hashes (to something never stored).
    return hashlib.sha256(code.encode("utf-8", "surrogatepass")).hexdigest()


# ---- the grant -------------------------------------------------------------------------

GrantStatus = Literal["pending", "approved", "denied", "consumed"]


@dataclass(frozen=True, slots=True)
class DeviceGrant:
    status: GrantStatus
    created_at: datetime
    expires_at: datetime
    interval: int
    last_poll_at: datetime | None = None
    account_id: str | None = None

    def is_expired(self, now: datetime) -> bool:
        return now >= self.expires_at

    def is_open(self, now: datetime) -> bool:
        """Still waiting for a person to approve or deny it."""
        return self.status == "pending" and not self.is_expired(now)


def new_grant(now: datetime, *, ttl_seconds: int, interval: int) -> DeviceGrant:
    if not 0 < ttl_seconds <= MAX_TTL_SECONDS:
        raise ValueError(f"ttl_seconds must be in 1..{MAX_TTL_SECONDS}")
    if not 0 < interval <= MAX_INTERVAL_SECONDS:
        raise ValueError(f"interval must be in 1..{MAX_INTERVAL_SECONDS}")
    return DeviceGrant(
        status="pending",
        created_at=now,
        expires_at=now + timedelta(seconds=ttl_seconds),
        interval=interval,
    )


@dataclass(frozen=True, slots=True)
class AwaitingApproval:
    """RFC 8628 ``authorization_pending``: the person has not decided yet."""


@dataclass(frozen=True, slots=True)
class SlowDown:
    interval: int


@dataclass(frozen=True, slots=True)
class Expired:
    pass


@dataclass(frozen=True, slots=True)
class Denied:
    pass


@dataclass(frozen=True, slots=True)
class Approved:
    account_id: str


@dataclass(frozen=True, slots=True)
class AlreadyUsed:
    pass


PollOutcome = AwaitingApproval | SlowDown | Expired | Denied | Approved | AlreadyUsed


def polled_too_soon(last_poll_at: datetime | None, now: datetime, interval: int) -> bool:
    return last_poll_at is not None and now - last_poll_at < timedelta(seconds=interval)


def poll(grant: DeviceGrant, now: datetime) -> tuple[PollOutcome, DeviceGrant]:
    """One poll by the device. Returns the outcome to answer and the grant to store."""
    if grant.status == "consumed":
        return AlreadyUsed(), grant
    if grant.is_expired(now):
        return Expired(), grant
    if polled_too_soon(grant.last_poll_at, now, grant.interval):
        slower = min(grant.interval + SLOW_DOWN_STEP_SECONDS, MAX_INTERVAL_SECONDS)
        return SlowDown(slower), replace(grant, interval=slower, last_poll_at=now)
    polled = replace(grant, last_poll_at=now)
    if grant.status == "denied":
        return Denied(), polled
    if grant.status == "approved":
        assert grant.account_id is not None  # approve() always sets it
        # Single use: the session is handed out once.
        return Approved(grant.account_id), replace(polled, status="consumed")
    return AwaitingApproval(), polled


@dataclass(frozen=True, slots=True)
class NotDecidable:
    """Why a person's approve/deny did not apply."""

    reason: Literal["expired", "already_decided"]


def approve(grant: DeviceGrant, account_id: str, now: datetime) -> DeviceGrant | NotDecidable:
    refusal = _decidable(grant, now)
    if refusal is not None:
        return refusal
    return replace(grant, status="approved", account_id=account_id)


def deny(grant: DeviceGrant, now: datetime) -> DeviceGrant | NotDecidable:
    refusal = _decidable(grant, now)
    if refusal is not None:
        return refusal
    return replace(grant, status="denied")


def _decidable(grant: DeviceGrant, now: datetime) -> NotDecidable | None:
    if grant.status != "pending":
        return NotDecidable("already_decided")
    if grant.is_expired(now):
        return NotDecidable("expired")
    return None


# ---- stored records ----------------------------------------------------------------------

GrantPurpose = Literal["device", "handoff"]


@dataclass(frozen=True, slots=True)
class DeviceGrantRecord:
    """A grant as stored: ``device`` grants are polled with a device code at /device/token;
    ``handoff`` grants carry a pending Amazon flow (by its id digest) to finish on a phone,
    and the device polls that flow instead."""

    id: str
    purpose: GrantPurpose
    grant: DeviceGrant
    device_name: str | None = None
    flow_id_hash: str | None = None
    sealed_flow_id: str | None = field(default=None, repr=False)
    ip: str | None = None


AmazonAuthorizationStatus = Literal["pending", "done", "expired", "denied"]


@dataclass(frozen=True, slots=True)
class AmazonAuthorization:
    """Server-assisted code-based linking: Amazon's code pair, held by the server.

    The device knows only a random id (stored as its digest) and Amazon's user code; the
    Amazon device code never leaves the server. Two clocks are kept: when the device last
    polled us (``last_poll_at``, enforced with ``interval``) and when we last asked Amazon
    (``amazon_polled_at``, at most once per ``amazon_interval``).
    """

    id_hash: str
    status: AmazonAuthorizationStatus
    user_code: str
    device_code: str | None = field(repr=False)
    verification_uri: str
    device_name: str | None
    interval: int
    amazon_interval: int
    created_at: datetime
    expires_at: datetime
    last_poll_at: datetime | None = None
    amazon_polled_at: datetime | None = None
    ip: str | None = None


def amazon_poll_due(auth: AmazonAuthorization, now: datetime) -> bool:
    """May the server ask Amazon again? Between polls, the cached "pending" stands."""
    return not polled_too_soon(auth.amazon_polled_at, now, auth.amazon_interval)


def amazon_slowed_interval(current: int) -> int:
    """Amazon said slow_down: double our pace towards it, capped like the AVS SDKs do."""
    return min(current * 2, MAX_INTERVAL_SECONDS)

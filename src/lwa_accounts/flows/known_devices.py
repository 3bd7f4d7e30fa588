"""Known devices: a browser or API client that signed in before keeps a budget of its own.

OWASP's "device cookies" against online guessing that would lock the owner out: after a
right password, the client gets a proof (``remember``), signed by ``signing.py`` under its
own purpose, naming the account, a random nonce and a tag of the account's password hash,
valid ``LWA_ACCOUNTS_KNOWN_DEVICE_MAX_AGE_SECONDS`` after its last sign-in. A password
attempt presenting a proof for *that* account (``recognise``) is throttled per device
nonce instead of per account and per IP, so guesses spread over many addresses, which
spend the account's budget, do not slow the owner's own browser or TV down; wrong
passwords from a known device spend only that device's budget.

A proof for another account, altered, signed with another key or for another purpose,
expired, or made before the password last changed (the tag no longer matches: a reset or
change retires every proof) counts as none: the attempt takes the ordinary budgets.
"""

from __future__ import annotations

import hashlib
import secrets

from lwa_accounts import signing
from lwa_accounts.compare import same_secret
from lwa_accounts.core.models import Account
from lwa_accounts.flows.context import Context

PURPOSE = "known_device"
_NONCE_BYTES = 16


def _password_tag(password_hash: str) -> str:
    """Changes whenever the password does (argon2 hashes carry a fresh salt). Says
    nothing about the password: the salt is not in the proof."""
    return hashlib.sha256(b"known-device:" + password_hash.encode()).hexdigest()[:32]


def _nonce_ok(value: object) -> bool:
    return (
        isinstance(value, str)
        and 16 <= len(value) <= 64
        and value.isascii()
        and value.replace("-", "").replace("_", "").isalnum()
    )


def recognise(ctx: Context, account: Account | None) -> str | None:
    """The nonce of the known-device proof the client presented, if it is intact, in
    time and for this account's current password; else None."""
    presented = ctx.client.device_proof
    if presented is None or account is None or account.password_hash is None:
        return None
    data = signing.loads(
        ctx.settings,
        PURPOSE,
        presented,
        now=ctx.now(),
        max_age=ctx.settings.known_device_max_age_seconds,
    )
    if data is None:
        return None
    account_id, nonce, tag = data.get("a"), data.get("n"), data.get("p")
    if account_id != account.id or not _nonce_ok(nonce) or not isinstance(tag, str):
        return None
    if not same_secret(tag, _password_tag(account.password_hash)):
        return None
    assert isinstance(nonce, str)
    return nonce


def remember(ctx: Context, account: Account) -> str | None:
    """After the right password: this client's proof, renewed (the same nonce, so the
    same budget, when it already had one for this account) or new. None for an account
    without a password (nothing to bind it to)."""
    if account.password_hash is None:
        return None
    nonce = recognise(ctx, account) or secrets.token_urlsafe(_NONCE_BYTES)
    data = {"a": account.id, "n": nonce, "p": _password_tag(account.password_hash)}
    return signing.dumps(ctx.settings, PURPOSE, data, now=ctx.now())

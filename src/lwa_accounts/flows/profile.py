"""Editing the profile: name, postal code, and the e-mail address through verification.

``PATCH /api/v1/me`` and ``/account``'s forms share these. Every field is checked before
anything is written (``ValidationFailed`` naming each bad field at once), and a request's
changes are one transaction: a refused e-mail change (no recent sign-in and no password,
a wrong password, an address another account confirmed) writes no name either.

A new e-mail address is only *asked for* here (``flows/email_verification.py``): the
account keeps its address until the new one is confirmed. Asking needs the owner: a
sign-in within ``recent_auth_seconds``, or the password now, as attaching Amazon does
(security.md item 13); an account without a password (made by Amazon) signs in again.

"Use this" copies one value Amazon last sent (the link's name or postal code) onto the
account, whatever the sync policy, because the person asked for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from lwa_accounts.core.models import Account, Session
from lwa_accounts.core.validation import Invalid, validate_name, validate_postal_code
from lwa_accounts.errors import (
    NotFound,
    NotSupported,
    ReauthenticationRequired,
    ValidationFailed,
)
from lwa_accounts.flows.audit import Event
from lwa_accounts.flows.context import Context, Tx
from lwa_accounts.flows.credentials import recently_authenticated
from lwa_accounts.flows.email_claims import holds
from lwa_accounts.flows.email_verification import Sent, checked_email, request_change
from lwa_accounts.flows.passwords import PasswordCheck, check_password, record_password_check

AmazonField = Literal["name", "postal_code"]
LABELS = {"name": "name", "postal_code": "postal code", "email": "e-mail address"}


@dataclass(frozen=True)
class ProfileChanges:
    """What a request asks to change; None leaves a field alone (``postal_code=""``
    removes it)."""

    name: str | None = None
    postal_code: str | None = None
    email: str | None = None

    @property
    def empty(self) -> bool:
        return self.name is None and self.postal_code is None and self.email is None


@dataclass(frozen=True)
class ProfileUpdate:
    account: Account  # as it is now (its e-mail unchanged until the new one is confirmed)
    email_change: Sent | None  # the verification mail sent to the asked-for address


def check_changes(changes: ProfileChanges) -> ProfileChanges:
    """The changes normalised, or ValidationFailed naming every bad field."""
    if changes.empty:
        raise ValidationFailed("Nothing to change: give name, postal_code or email.")
    errors: dict[str, str] = {}
    name = postal = email = None
    if changes.name is not None:
        checked = validate_name(changes.name)
        if isinstance(checked, Invalid):
            errors["name"] = checked.message
        else:
            name = checked.value
    if changes.postal_code is not None:
        checked = validate_postal_code(changes.postal_code)
        if isinstance(checked, Invalid):
            errors["postal_code"] = checked.message
        else:
            postal = checked.value
    if changes.email is not None:
        try:
            email = checked_email(changes.email)
        except ValidationFailed as failure:
            errors.update(failure.errors)
    if errors:
        raise ValidationFailed(errors=errors)
    return ProfileChanges(name=name, postal_code=postal, email=email)


def asks_new_email(account: Account, changes: ProfileChanges) -> bool:
    return changes.email is not None and not holds(account, changes.email)


async def update_profile(
    ctx: Context,
    *,
    session: Session,
    account: Account,
    changes: ProfileChanges,
    password: str | None,
) -> ProfileUpdate:
    """Check, then (for a new address given with the password) check the password
    outside any transaction, then apply everything in one (``apply_changes``)."""
    checked = check_changes(changes)
    proof: PasswordCheck | None = None
    if password and account.has_password and asks_new_email(account, checked):
        proof = await check_password(
            ctx, account=account, account_key=account.id, password=password
        )
    async with ctx.transaction() as tx:
        return await apply_changes(tx, checked, session=session, account=account, proof=proof)


async def apply_changes(
    tx: Tx,
    checked: ProfileChanges,
    *,
    session: Session,
    account: Account,
    proof: PasswordCheck | None = None,
) -> ProfileUpdate:
    """Apply checked changes (``check_changes``); ``proof``: the password given now, for
    a new address without a recent sign-in."""
    sent: Sent | None = None
    if checked.email is not None:
        if asks_new_email(account, checked):
            await confirm_owner(tx, session=session, account=account, proof=proof)
        sent = await request_change(tx, account, checked.email)
    values: dict[str, str] = {}
    if checked.name is not None and checked.name != account.name:
        values["name"] = checked.name
    if checked.postal_code is not None and checked.postal_code != (account.postal_code or ""):
        values["postal_code"] = checked.postal_code
    updated = await _write(tx, account, values, source="form") if values else account
    return ProfileUpdate(account=updated, email_change=sent)


async def confirm_owner(
    tx: Tx, *, session: Session, account: Account, proof: PasswordCheck | None
) -> None:
    """The password given now (checked outside the transaction: recorded here, the
    session counts as freshly authenticated), or a recent sign-in; else
    ReauthenticationRequired."""
    if proof is not None:
        await record_password_check(tx, proof)
        await tx.sessions.mark_authenticated(session.id)
        tx.audit(Event.REAUTHENTICATED, account_id=account.id, detail=f"session={session.id}")
    elif not recently_authenticated(session, tx.deps):
        if account.has_password:
            raise ReauthenticationRequired(
                "Changing your e-mail address needs your password or a sign-in within "
                "the last few minutes."
            )
        raise ReauthenticationRequired(
            "Changing your e-mail address needs a sign-in within the last few minutes: "
            "sign in with Amazon again, then try once more."
        )


async def use_amazon_value(tx: Tx, account: Account, field: AmazonField) -> Account:
    """Copy what Amazon last sent for ``field`` onto the account (one click on /account).
    NotFound when nothing is linked or Amazon sent no such value."""
    link = await tx.identities.get_for_account(account.id)
    value = getattr(link, field) if link is not None else None
    if not value:
        raise NotFound(f"Amazon did not send a {LABELS[field]}.")
    checked = check_changes(ProfileChanges(**{field: value}))
    new = getattr(checked, field)
    if new == (getattr(account, field) or ""):
        return account
    return await _write(tx, account, {field: new}, source="amazon")


async def _write(tx: Tx, account: Account, values: dict[str, str], *, source: str) -> Account:
    updated = await tx.accounts.update(
        account.id, name=values.get("name"), postal_code=values.get("postal_code")
    )
    for field, value in values.items():
        # A kit users table without the column keeps nothing: say so, write nothing.
        if (getattr(updated, field) or "") != value:
            raise NotSupported(f"This installation does not store a {LABELS[field]}.")
    fields = ",".join(sorted(values))
    tx.audit(Event.PROFILE_UPDATED, account_id=account.id, detail=f"fields={fields} via={source}")
    return updated

"""Registration steps: a new account for a verified Amazon identity when more fields are
needed (the guide's prefilled registration page), and "create a separate account instead"
of proving the password of the account that holds the Amazon email."""

from __future__ import annotations

from dataclasses import replace

from lwa_accounts.core.decide import Prefill, Register, separate_account
from lwa_accounts.core.models import PendingFlow
from lwa_accounts.core.validation import (
    Invalid,
    Valid,
    normalise_email,
    normalise_username,
    validate_name,
)
from lwa_accounts.errors import AmazonLinkedElsewhere, FlowExpired, SignupClosed, ValidationFailed
from lwa_accounts.flows.amazon.identity import create_linked_account
from lwa_accounts.flows.amazon.outcomes import FlowFinished, RegistrationForm
from lwa_accounts.flows.amazon.pending import Originator, finish_flow, load_flow
from lwa_accounts.flows.amazon.profile import (
    POSTAL_CODE_MAX,
    available_username,
    checked_prefill,
    username_base,
)
from lwa_accounts.flows.amazon.refusals import refuse
from lwa_accounts.flows.audit import Event
from lwa_accounts.flows.context import Deps, Tx


def registration_fields(flow: PendingFlow, deps: Deps) -> tuple[Prefill, frozenset[str]]:
    """What a registration form for this flow shows prefilled and requires."""
    prefill = checked_prefill(flow.profile)
    if flow.kind == "link":
        # "Create a separate account instead": the Amazon email is another account's.
        decision = separate_account(prefill, deps.policy)
        if isinstance(decision, Register):
            return decision.prefill, decision.missing
        return prefill.without_email(), frozenset()
    return prefill, frozenset(flow.missing)


async def switch_to_registration(tx: Tx, flow_id: str, originator: Originator) -> PendingFlow:
    """ "Create a separate account instead" of proving the password of the account that
    holds the Amazon email (which may be a squatter's: anyone can register any address).

    The pending link flow becomes a registration flow in place: same id, binding, expiry
    and single use; no target account and no password attempts left; its prefill no longer
    carries the taken email (and the account holding it is not touched). The registration
    step then creates a new account linked to this Amazon identity, whose email cannot be
    the taken one (emails are unique). Idempotent for a flow already switched. Refused
    with ``signup_closed`` when the policy allows no new accounts.
    """
    flow = await load_flow(tx, flow_id, originator)
    if flow.kind == "registration":
        return flow
    if not flow.can_register_instead or tx.settings.amazon_signup == "closed":
        refuse(tx, SignupClosed(), profile=flow.profile)
    _, missing = registration_fields(flow, tx.deps)
    if not await tx.pending_flows.become_registration(flow.id_hash, missing=tuple(sorted(missing))):
        refuse(tx, FlowExpired(), profile=flow.profile)
    tx.audit(
        Event.AMAZON_FLOW_SWITCHED,
        account_id=flow.target_account_id,  # whose email was declined; left unchanged
        profile=flow.profile,
        detail="kind=registration",
    )
    switched = await tx.pending_flows.get(flow.id_hash)
    assert switched is not None  # just updated in this transaction
    return switched


def _check_registration(form: RegistrationForm, required: frozenset[str]) -> RegistrationForm:
    errors: dict[str, str] = {}
    username = normalise_username(form.username)
    name = validate_name(form.name)
    email_text = (form.email or "").strip()
    postal_code = (form.postal_code or "").strip()
    if isinstance(username, Invalid) and form.username.strip():
        errors["username"] = username.message
    if isinstance(name, Invalid):
        errors["name"] = name.message
    email: str | None = None
    if email_text:
        checked = normalise_email(email_text)
        if isinstance(checked, Invalid):
            errors["email"] = checked.message
        else:
            email = checked.value
    elif "email" in required:
        errors["email"] = "Enter an email address."
    if len(postal_code) > POSTAL_CODE_MAX or not postal_code.isprintable():
        errors["postal_code"] = f"Use at most {POSTAL_CODE_MAX} letters and digits."
    elif not postal_code and "postal_code" in required:
        errors["postal_code"] = "Enter a postal code."
    if errors:
        raise ValidationFailed(errors=errors)
    assert not isinstance(name, Invalid)
    return RegistrationForm(
        username=username.value if isinstance(username, Valid) else "",
        name=name.value,
        email=email,
        postal_code=postal_code or None,
    )


async def complete_registration(
    tx: Tx, flow_id: str, form: RegistrationForm, originator: Originator
) -> FlowFinished:
    """Create the account from the (prefilled) registration form and link Amazon to it.

    Also "create a separate account instead" for a link flow, when the policy allows it.
    Raises ValidationFailed, UsernameTaken, EmailTaken or SignupClosed; a refused form
    undoes the switch with the rest.
    """
    flow = await load_flow(tx, flow_id, originator)
    if flow.kind == "link":
        # "Create a separate account instead", straight from the link step (devices): the
        # same switch as the pages' button.
        flow = await switch_to_registration(tx, flow_id, originator)
    if tx.settings.amazon_signup == "closed":
        refuse(tx, SignupClosed(), profile=flow.profile)
    _, required = registration_fields(flow, tx.deps)
    checked = _check_registration(form, required)
    if not checked.username:
        # Devices may leave the username to us, as a sign-up in ``auto`` mode would.
        base = username_base(checked.email, checked.name)
        checked = replace(checked, username=await available_username(tx, base))
    prefill = Prefill(name=checked.name, email=checked.email, postal_code=checked.postal_code)
    if await tx.identities.get_by_amazon_user_id(flow.profile.user_id) is not None:
        refuse(tx, AmazonLinkedElsewhere(), profile=flow.profile)
    account, _ = await create_linked_account(tx, flow.profile, prefill, username=checked.username)
    return await finish_flow(tx, flow, account, originator, created=True)

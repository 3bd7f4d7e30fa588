"""``switch_to_registration``: "create a separate account instead" of a link step.

The switch keeps the flow's binding and single-use rules, drops the taken email from the
prefill, leaves the account holding that email untouched, and is audited.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from lwa_accounts import errors
from lwa_accounts.core.models import PendingFlow
from lwa_accounts.flows import amazon
from lwa_accounts.flows.amazon import RegistrationForm
from lwa_accounts.flows.audit import Event
from lwa_accounts.flows.context import Deps, Tx
from lwa_accounts.store.db import Database
from tests.flows.conftest import PASSWORD, context_of, in_transaction
from tests.flows.test_amazon import (
    ADA,
    BROWSER,
    DEVICE,
    account_of,
    audit_kinds,
    confirm,
    signed_in,
    start_link,
)


async def _switch(
    db: Database, deps: Deps, flow_id: str, originator: amazon.Originator = BROWSER
) -> PendingFlow:
    async def step(tx: Tx) -> PendingFlow:
        return await amazon.switch_to_registration(tx, flow_id, originator)

    return await in_transaction(db, deps, step)


async def test_switch_drops_the_taken_email_and_ends_the_link_step(
    db: Database, deps: Deps
) -> None:
    link = await start_link(db, deps, BROWSER)
    holder_before = await account_of(db, link.flow.target_account_id or "")
    switched = await _switch(db, deps, link.flow_id)
    assert (switched.kind, switched.status) == ("registration", "pending")
    assert (switched.target_account_id, switched.attempts_left) == (None, 0)
    assert switched.binding_hash == link.flow.binding_hash
    assert switched.expires_at == link.flow.expires_at
    prefill, required = amazon.registration_fields(switched, deps)
    assert prefill.email is None
    assert prefill.name == ADA.name
    assert "email" in required  # the default policy requires one: it must be another
    assert Event.AMAZON_FLOW_SWITCHED in await audit_kinds(db)
    # The password no longer links this flow, even the right one.
    with pytest.raises(errors.FlowNotFound):
        await confirm(db, deps, link.flow_id, PASSWORD, BROWSER)
    again = await _switch(db, deps, link.flow_id)  # a second click: the same flow
    assert again.kind == "registration"
    async with context_of(db, deps).transaction() as tx:
        created = signed_in(
            await amazon.complete_registration(
                tx,
                link.flow_id,
                RegistrationForm(username="", name="Ada", email="ada@home.example"),
                BROWSER,
            )
        )
        assert await tx.identities.get_for_account(holder_before.id) is None
    assert created.created
    assert created.signed_in.account.id != holder_before.id
    assert await account_of(db, holder_before.id) == holder_before
    with pytest.raises(errors.FlowExpired):  # spent
        await _switch(db, deps, link.flow_id)


async def test_switch_keeps_the_binding(db: Database, deps: Deps) -> None:
    link = await start_link(db, deps, BROWSER)
    for thief in (amazon.Browser("another-browser"), DEVICE):
        with pytest.raises(errors.FlowNotFound):
            await _switch(db, deps, link.flow_id, thief)
    async with db.transaction() as stores:
        flow = await stores.pending_flows.get(link.flow.id_hash)
    assert flow is not None
    assert flow.kind == "link"


async def test_switch_refused_when_sign_up_is_closed(db: Database, deps: Deps) -> None:
    link = await start_link(db, deps, BROWSER)
    closed = replace(deps, settings=deps.settings.model_copy(update={"amazon_signup": "closed"}))
    with pytest.raises(errors.SignupClosed):
        await _switch(db, closed, link.flow_id)


async def test_register_step_on_a_link_flow_refuses_the_taken_email(
    db: Database, deps: Deps
) -> None:
    link = await start_link(db, deps)  # a device: no binding
    taken = RegistrationForm(username="", name="Ada", email="ada@example.com")
    with pytest.raises(errors.EmailTaken):
        async with context_of(db, deps).transaction() as tx:
            await amazon.complete_registration(tx, link.flow_id, taken, DEVICE)
    async with db.transaction() as stores:
        flow = await stores.pending_flows.get(link.flow.id_hash)
    assert flow is not None
    assert flow.kind == "link"  # the refused form undid the switch with the rest

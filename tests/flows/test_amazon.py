"""Sign in with Amazon flows on a real database (security.md items 6-14, 19, 21)."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import text

from lwa_accounts import errors
from lwa_accounts.clock import FixedClock
from lwa_accounts.core.models import Account, AmazonProfile, AuditEvent, PendingFlow
from lwa_accounts.flows import amazon
from lwa_accounts.flows.accounts import sign_in_with_password
from lwa_accounts.flows.amazon import (
    FlowCompleted,
    LinkRequired,
    RegistrationForm,
    RegistrationRequired,
    SignedInWithAmazon,
    SignInOutcome,
)
from lwa_accounts.flows.context import ClientInfo, Deps, Tx
from lwa_accounts.flows.sessions import SignedIn
from lwa_accounts.settings import Settings
from lwa_accounts.store.db import Database
from lwa_accounts.throttle import Throttle
from tests.flows.conftest import (
    CLIENT,
    PASSWORD,
    CountingHasher,
    context_of,
    fast_settings,
    in_transaction,
    make_user,
    verify_address,
)

ADA = AmazonProfile(
    user_id="amzn1.account.AF5ZQ2TTD6O4W4WMR7FZH5QGRX4A",
    client_id="amzn1.application-oa2-client.web",
    name="Ada Lovelace",
    email="ada@example.com",
    postal_code="98052",
)
BROWSER = amazon.Browser("browser-binding-secret")
DEVICE = amazon.Device()
PHONE = amazon.OnAnotherDevice()  # finishing a device's flow after a hand-off


async def amazon_sign_in(
    db: Database,
    deps: Deps,
    profile: AmazonProfile = ADA,
    *,
    starter: amazon.Browser | amazon.Device = DEVICE,
    client: ClientInfo = CLIENT,
) -> SignInOutcome:
    async def step(tx: Tx) -> SignInOutcome:
        return await amazon.sign_in_with_profile(
            tx, profile, kind="device", device_name="Living room TV", starter=starter
        )

    return await in_transaction(db, deps, step, client)


def signed_in(outcome: object) -> SignedInWithAmazon:
    assert isinstance(outcome, SignedInWithAmazon), outcome
    return outcome


async def audit_kinds(db: Database) -> list[str]:
    async with db.transaction() as stores:
        return [event.kind for event in reversed(await stores.audit.list(limit=1000))]


async def audit_events(db: Database) -> list[AuditEvent]:
    async with db.transaction() as stores:
        return list(await stores.audit.list(limit=500))


async def account_of(db: Database, account_id: str) -> Account:
    async with db.transaction() as stores:
        account = await stores.accounts.get(account_id)
    assert account is not None
    return account


# ---- new and returning users ----


async def test_new_user_gets_an_account_linked_to_the_amazon_id(db: Database, deps: Deps) -> None:
    outcome = signed_in(await amazon_sign_in(db, deps))
    account = outcome.signed_in.account
    assert outcome.created
    assert (account.username, account.email, account.name) == (
        "ada",
        "ada@example.com",
        "Ada Lovelace",
    )
    assert not account.has_password
    assert not account.email_verified  # Amazon's email is a hint, not proof
    assert outcome.signed_in.session.kind == "device"
    assert outcome.signed_in.session.device_name == "Living room TV"
    async with db.transaction() as stores:
        link = await stores.identities.get_for_account(account.id)
    assert link is not None
    assert (link.amazon_user_id, link.client_id, link.postal_code) == (
        ADA.user_id,
        ADA.client_id,
        "98052",  # what Amazon sent
    )
    assert account.postal_code == "98052"  # the new account's own, made from it
    assert "amazon.account_created" in await audit_kinds(db)


async def test_sec19_returning_user_signs_in_to_the_same_account_with_a_new_session(
    db: Database, deps: Deps
) -> None:
    first = signed_in(await amazon_sign_in(db, deps))
    second = signed_in(await amazon_sign_in(db, deps))
    assert not second.created
    assert second.signed_in.account.id == first.signed_in.account.id
    assert second.signed_in.token != first.signed_in.token
    assert second.signed_in.session.id != first.signed_in.session.id
    assert (await audit_kinds(db)).count("amazon.signed_in") == 2


async def test_usernames_are_derived_and_deduplicated(db: Database, deps: Deps) -> None:
    await make_user(db, deps, username="ada", email="someone@example.org")
    other = replace(ADA, user_id="amzn1.account.BBBBBBBBBBBBBBBBBBBBBBBBBBBB")
    outcome = signed_in(await amazon_sign_in(db, deps, other))
    assert outcome.signed_in.account.username == "ada2"


async def test_disabled_account_is_refused(db: Database, deps: Deps) -> None:
    account_id = signed_in(await amazon_sign_in(db, deps)).signed_in.account.id
    async with db.engine.begin() as conn:
        await conn.execute(
            text("UPDATE accounts SET disabled = true WHERE id = :id"), {"id": account_id}
        )
    with pytest.raises(errors.AccountDisabled):
        await amazon_sign_in(db, deps)


# ---- email collisions (items 6-9) ----


async def test_sec06_email_match_requires_local_password(db: Database, deps: Deps) -> None:
    local = await make_user(db, deps, verified=True)
    outcome = await amazon_sign_in(db, deps, replace(ADA, email="ADA@Example.com"))
    assert isinstance(outcome, LinkRequired)
    assert outcome.email == local.email
    assert outcome.flow.target_account_id == local.id
    async with db.transaction() as stores:
        assert await stores.sessions.list_for_account(local.id) == []
        assert await stores.identities.get_by_amazon_user_id(ADA.user_id) is None


async def start_link(
    db: Database, deps: Deps, starter: amazon.Browser | amazon.Device = DEVICE
) -> LinkRequired:
    await make_user(db, deps, verified=True)  # only a verified address is ever a target
    outcome = await amazon_sign_in(db, deps, starter=starter)
    assert isinstance(outcome, LinkRequired)
    return outcome


async def confirm(
    db: Database,
    deps: Deps,
    flow_id: str,
    password: str,
    originator: amazon.Originator = DEVICE,
) -> amazon.FlowFinished:
    async def step(tx: Tx) -> amazon.FlowFinished:
        return await amazon.confirm_link(tx, flow_id, password, originator)

    return await in_transaction(db, deps, step)


async def test_email_collision_wrong_then_right_password_links(db: Database, deps: Deps) -> None:
    link = await start_link(db, deps)
    with pytest.raises(errors.InvalidCredentials) as wrong:
        await confirm(db, deps, link.flow_id, "not the password")
    assert wrong.value.extra["attempts_left"] == 2  # the sign-in throttle: 3 per account
    done = signed_in(await confirm(db, deps, link.flow_id, PASSWORD))
    assert not done.created
    assert done.signed_in.account.id == link.flow.target_account_id
    async with db.transaction() as stores:
        identity = await stores.identities.get_by_amazon_user_id(ADA.user_id)
    assert identity is not None
    assert identity.account_id == done.signed_in.account.id
    kinds = await audit_kinds(db)
    assert "amazon.flow_started" in kinds
    assert "amazon.linked" in kinds
    # From now on Amazon alone signs in.
    again = signed_in(await amazon_sign_in(db, deps))
    assert again.signed_in.account.id == done.signed_in.account.id


async def test_sec07_flow_is_single_use(db: Database, deps: Deps) -> None:
    link = await start_link(db, deps)
    signed_in(await confirm(db, deps, link.flow_id, PASSWORD))
    with pytest.raises(errors.FlowExpired):
        await confirm(db, deps, link.flow_id, PASSWORD)


async def test_sec07_flow_expires_after_ttl(db: Database, deps: Deps, clock: FixedClock) -> None:
    link = await start_link(db, deps)
    assert (link.flow.expires_at - link.flow.created_at).total_seconds() == 600
    clock.advance(601)
    with pytest.raises(errors.FlowExpired):
        await confirm(db, deps, link.flow_id, PASSWORD)


async def test_flows_long_past_expiry_are_cleaned_up(
    db: Database, deps: Deps, clock: FixedClock
) -> None:
    link = await start_link(db, deps)
    clock.advance(2 * 24 * 3600)
    other = replace(ADA, user_id="amzn1.account.EEEEEEEEEEEEEEEEEEEEEEEEEEEE", email=None)
    assert isinstance(await amazon_sign_in(db, deps, other), RegistrationRequired)
    with pytest.raises(errors.FlowNotFound):
        await confirm(db, deps, link.flow_id, PASSWORD)


async def test_sec07_flow_is_bound_to_the_browser_and_id_stored_hashed(
    db: Database, deps: Deps
) -> None:
    link = await start_link(db, deps, BROWSER)
    for thief in (DEVICE, amazon.Browser("another-browser")):
        with pytest.raises(errors.FlowNotFound):
            await confirm(db, deps, link.flow_id, PASSWORD, thief)
    async with db.engine.connect() as conn:
        stored = (await conn.execute(text("SELECT id_hash FROM pending_flows"))).scalars().all()
    assert link.flow_id not in stored
    assert stored == [amazon.hash_secret(link.flow_id)]
    signed_in(await confirm(db, deps, link.flow_id, PASSWORD, BROWSER))


async def test_sec21_unknown_flow_ids_are_refused_and_audited(db: Database, deps: Deps) -> None:
    for flow_id in ("flw_" + "x" * 43, "nonsense\x00", "flw_" + "é" * 10, "flw_" + "a" * 500):
        with pytest.raises(errors.FlowNotFound):
            await confirm(db, deps, flow_id, PASSWORD)
    async with db.transaction() as stores:
        events = await stores.audit.list()
    assert [e.detail for e in events] == ["reason=flow_not_found"] * 4


async def test_sec08_link_password_attempts_share_the_sign_in_throttle(
    db: Database, deps: Deps
) -> None:
    link = await start_link(db, deps)
    for left in (2, 1, 0):
        with pytest.raises(errors.InvalidCredentials) as refused:
            await confirm(db, deps, link.flow_id, "wrong password")
        assert refused.value.extra["attempts_left"] == left
    with pytest.raises(errors.TooManyAttempts) as throttled:
        await confirm(db, deps, link.flow_id, PASSWORD)
    assert throttled.value.retry_after
    # ... and the normal sign-in of that account is locked too.
    with pytest.raises(errors.TooManyAttempts):
        await password_sign_in(db, deps)
    async with db.transaction() as stores:
        details = [
            e.detail for e in await stores.audit.list(limit=50) if e.kind == "amazon.refused"
        ]
    assert details.count("reason=invalid_credentials") == 3
    assert "reason=too_many_attempts" in details


async def test_flow_attempts_are_capped_by_the_flow_itself(
    tmp_path: Path, clock: FixedClock, hasher: CountingHasher
) -> None:
    settings = fast_settings(
        tmp_path, flow_max_password_attempts=2, password_limit_per_account="50/minute"
    )
    db = Database.from_settings(settings, clock=clock)
    await db.upgrade()
    throttle = Throttle(settings)
    deps = Deps(
        settings=settings,
        hasher=hasher,
        throttle=throttle,
        clock=clock,
        common_passwords=frozenset(),
    )
    try:
        link = await start_link(db, deps)
        for left in (1, 0):
            with pytest.raises(errors.InvalidCredentials) as refused:
                await confirm(db, deps, link.flow_id, "wrong password")
            assert refused.value.extra["attempts_left"] == left
        async with db.transaction() as stores:  # the refused guesses stayed spent
            flow = await stores.pending_flows.get(link.flow.id_hash)
        assert flow is not None
        assert flow.attempts_left == 0
        with pytest.raises(errors.FlowExpired):
            await confirm(db, deps, link.flow_id, PASSWORD)
    finally:
        await throttle.aclose()
        await db.dispose()


async def test_sec09_an_unverified_email_account_is_never_offered_for_linking(
    db: Database, deps: Deps
) -> None:
    """Issue 13: the squatter's unverified account is no target at all. The Amazon user
    gets an account of their own, without the address (it is the squatter's for now), and
    the verification mail goes to the address, so its real owner can claim it."""
    local = await make_user(db, deps)
    assert not local.email_verified
    squatter = await password_sign_in(db, deps)
    outcome = signed_in(await amazon_sign_in(db, deps))
    assert outcome.created
    assert outcome.signed_in.account.id != local.id
    assert outcome.signed_in.account.email is None
    async with db.transaction() as stores:
        assert await stores.sessions.resolve(squatter.token) is not None  # their own account
        assert await stores.identities.get_for_account(local.id) is None
        claim = await stores.email_codes.live(
            outcome.signed_in.account.id, "verify_email", now=deps.clock.now()
        )
    assert claim is not None
    assert claim.email == "ada@example.com"
    details = [e.detail for e in await audit_events(db) if e.kind == "email.verification_sent"]
    assert "reason=claim" in details


async def test_email_of_an_account_linked_to_another_amazon_user_offers_a_separate_one(
    db: Database, deps: Deps
) -> None:
    first = signed_in(await amazon_sign_in(db, deps))
    await verify_address(context_of(db, deps), first.signed_in.account)
    stranger = replace(ADA, user_id="amzn1.account.CCCCCCCCCCCCCCCCCCCCCCCCCCCC")
    outcome = await amazon_sign_in(db, deps, stranger)
    assert isinstance(outcome, RegistrationRequired)
    assert outcome.prefill.email is None
    assert "email" in outcome.required
    prefill, _ = amazon.registration_fields(outcome.flow, deps)
    assert prefill.email is None  # the other account's email is not offered again
    closed = replace(deps, settings=deps.settings.model_copy(update={"amazon_signup": "closed"}))
    with pytest.raises(errors.EmailAccountLinkedToOtherAmazon) as refused:
        await amazon_sign_in(db, closed, stranger)
    assert refused.value.code == "email_account_linked_to_other_amazon"
    assert refused.value.status == 409


# ---- registration ----


async def register_via(
    db: Database,
    deps: Deps,
    flow_id: str,
    form: RegistrationForm,
    originator: amazon.Originator = DEVICE,
) -> amazon.FlowFinished:
    async def step(tx: Tx) -> amazon.FlowFinished:
        return await amazon.complete_registration(tx, flow_id, form, originator)

    return await in_transaction(db, deps, step)


async def test_registration_with_missing_fields(db: Database, deps: Deps) -> None:
    outcome = await amazon_sign_in(db, deps, replace(ADA, email=None))
    assert isinstance(outcome, RegistrationRequired)
    assert outcome.required == frozenset({"email"})
    assert outcome.prefill.name == "Ada Lovelace"
    with pytest.raises(errors.ValidationFailed) as failed:
        await register_via(db, deps, outcome.flow_id, RegistrationForm(username="ada", name="Ada"))
    assert set(failed.value.errors) == {"email"}
    with pytest.raises(errors.ValidationFailed) as failed:
        await register_via(
            db, deps, outcome.flow_id, RegistrationForm(username="a\x00", name=" ", email="nope")
        )
    assert set(failed.value.errors) == {"username", "name", "email"}
    done = signed_in(
        await register_via(
            db,
            deps,
            outcome.flow_id,
            RegistrationForm(username="Ada.L", name="Ada L", email="ada@example.net"),
        )
    )
    assert done.created
    assert (done.signed_in.account.username, done.signed_in.account.email) == (
        "ada.l",
        "ada@example.net",
    )
    with pytest.raises(errors.FlowExpired):
        await register_via(
            db,
            deps,
            outcome.flow_id,
            RegistrationForm(username="ada2", name="A", email="b@example.net"),
        )


async def test_form_policy_always_shows_the_form(
    tmp_path: Path, clock: FixedClock, deps: Deps, db: Database
) -> None:
    form_deps = replace(deps, settings=deps.settings.model_copy(update={"amazon_signup": "form"}))
    outcome = await amazon_sign_in(db, form_deps)
    assert isinstance(outcome, RegistrationRequired)
    assert outcome.required == frozenset()


async def test_closed_policy_refuses_new_accounts(db: Database, deps: Deps) -> None:
    closed = replace(deps, settings=deps.settings.model_copy(update={"amazon_signup": "closed"}))
    with pytest.raises(errors.SignupClosed):
        await amazon_sign_in(db, closed)
    async with db.transaction() as stores:
        assert await stores.accounts.list() == []


async def test_separate_account_instead_of_linking(db: Database, deps: Deps) -> None:
    link = await start_link(db, deps)

    async def find(tx: Tx) -> PendingFlow:
        return await amazon.get_flow(tx, link.flow_id, DEVICE)

    flow = await in_transaction(db, deps, find)
    prefill, required = amazon.registration_fields(flow, deps)
    assert prefill.email is None
    assert required == frozenset({"email"})
    with pytest.raises(errors.EmailTaken):
        await register_via(
            db,
            deps,
            link.flow_id,
            RegistrationForm(username="ada-l", name="Ada", email="ada@example.com"),
        )
    done = signed_in(
        await register_via(
            db,
            deps,
            link.flow_id,
            RegistrationForm(username="ada-l", name="Ada", email="ada@work.example"),
        )
    )
    assert done.signed_in.account.id != link.flow.target_account_id


# ---- finishing on another device (issue 6 contract) ----


async def collect(db: Database, deps: Deps, flow_id: str) -> SignedInWithAmazon | PendingFlow:
    async def step(tx: Tx) -> SignedInWithAmazon | PendingFlow:
        return await amazon.collect_completed_flow(tx, flow_id)

    return await in_transaction(db, deps, step)


async def test_link_finished_elsewhere_is_collected_once_by_the_originator(
    db: Database, deps: Deps
) -> None:
    link = await start_link(db, deps)
    pending = await collect(db, deps, link.flow_id)
    assert isinstance(pending, PendingFlow)
    assert pending.status == "pending"
    done = await confirm(db, deps, link.flow_id, PASSWORD, PHONE)
    assert isinstance(done, FlowCompleted)
    collected = signed_in(await collect(db, deps, link.flow_id))
    assert collected.signed_in.session.kind == "device"
    assert collected.signed_in.session.device_name == "Living room TV"
    assert collected.signed_in.account.id == done.account.id
    with pytest.raises(errors.FlowExpired):
        await collect(db, deps, link.flow_id)


async def test_registration_finished_elsewhere_is_collected(db: Database, deps: Deps) -> None:
    outcome = await amazon_sign_in(db, deps, replace(ADA, email=None))
    assert isinstance(outcome, RegistrationRequired)
    done = await register_via(
        db,
        deps,
        outcome.flow_id,
        RegistrationForm(username="ada", name="Ada", email="ada@example.com"),
        PHONE,
    )
    assert isinstance(done, FlowCompleted)
    collected = signed_in(await collect(db, deps, outcome.flow_id))
    assert collected.created


async def test_browser_flows_cannot_be_collected_by_polling(db: Database, deps: Deps) -> None:
    link = await start_link(db, deps, BROWSER)
    with pytest.raises(errors.FlowNotFound):
        await collect(db, deps, link.flow_id)


# ---- profile sync (item 14) ----


def with_sync(deps: Deps, **policies: str) -> Deps:
    """``deps`` with other profile sync policies (``name=``, ``postal_code=``)."""
    update = {f"profile_sync_{field}": policy for field, policy in policies.items()}
    return replace(deps, settings=deps.settings.model_copy(update=update))


async def name_and_postal_code(db: Database, account_id: str) -> tuple[str, str | None]:
    """The account's own name and postal code (the link holds what Amazon last sent)."""
    async with db.transaction() as stores:
        account = await stores.accounts.get(account_id)
        link = await stores.identities.get_for_account(account_id)
    assert account is not None
    assert link is not None
    return account.name, account.postal_code


async def blank_name(db: Database, account_id: str) -> None:
    # Every form requires a name today; an empty one (imported data, say) is what
    # ``fill_empty`` is for.
    async with db.transaction() as stores:
        await stores.accounts.update(account_id, name="")


KING = replace(ADA, name="Ada King", postal_code="10115")


async def test_sec14_default_policy_keeps_the_name_and_refreshes_the_postal_code(
    db: Database, deps: Deps
) -> None:
    account_id = signed_in(await amazon_sign_in(db, deps)).signed_in.account.id
    signed_in(await amazon_sign_in(db, deps, KING))
    assert await name_and_postal_code(db, account_id) == ("Ada Lovelace", "10115")
    async with db.transaction() as stores:
        link = await stores.identities.get_for_account(account_id)
    assert link is not None
    assert link.name == "Ada King"  # the link still records what Amazon said
    # Amazon sharing no postal code (or no name) blanks nothing.
    signed_in(await amazon_sign_in(db, deps, replace(ADA, name=None, postal_code=None)))
    assert await name_and_postal_code(db, account_id) == ("Ada Lovelace", "10115")
    # fill_empty fills an empty name.
    await blank_name(db, account_id)
    signed_in(await amazon_sign_in(db, deps, KING))
    assert await name_and_postal_code(db, account_id) == ("Ada King", "10115")


async def test_sec14_name_policy_always_refreshes_the_name(db: Database, deps: Deps) -> None:
    always = with_sync(deps, name="always")
    account_id = signed_in(await amazon_sign_in(db, always)).signed_in.account.id
    signed_in(await amazon_sign_in(db, always, KING))
    assert await name_and_postal_code(db, account_id) == ("Ada King", "10115")
    signed_in(await amazon_sign_in(db, always, replace(KING, name=None)))
    assert await name_and_postal_code(db, account_id) == ("Ada King", "10115")


async def test_sec14_policy_never_changes_nothing_not_even_an_empty_value(
    db: Database, deps: Deps
) -> None:
    never = with_sync(deps, name="never", postal_code="never")
    # A new account is still made from Amazon's profile: nothing was typed yet.
    created = signed_in(await amazon_sign_in(db, never, replace(ADA, postal_code=None)))
    account_id = created.signed_in.account.id
    assert await name_and_postal_code(db, account_id) == ("Ada Lovelace", None)
    signed_in(await amazon_sign_in(db, never, KING))
    assert await name_and_postal_code(db, account_id) == ("Ada Lovelace", None)
    await blank_name(db, account_id)
    signed_in(await amazon_sign_in(db, never, KING))
    assert await name_and_postal_code(db, account_id) == ("", None)


async def test_sec14_postal_code_policy_fill_empty_fills_only_an_empty_one(
    db: Database, deps: Deps
) -> None:
    fill = with_sync(deps, postal_code="fill_empty")
    created = signed_in(await amazon_sign_in(db, fill, replace(ADA, postal_code=None)))
    account_id = created.signed_in.account.id
    signed_in(await amazon_sign_in(db, fill, KING))
    assert await name_and_postal_code(db, account_id) == ("Ada Lovelace", "10115")
    signed_in(await amazon_sign_in(db, fill, replace(KING, postal_code="75001")))
    assert await name_and_postal_code(db, account_id) == ("Ada Lovelace", "10115")


@pytest.mark.parametrize(
    ("policies", "expected"),
    [
        ({}, ("Ada Lovelace", "10115")),  # defaults: the typed name stays
        ({"name": "always"}, ("Ada King", "10115")),
        ({"postal_code": "never"}, ("Ada Lovelace", None)),
    ],
)
async def test_sec14_linking_by_password_follows_the_policy(
    db: Database, deps: Deps, policies: dict[str, str], expected: tuple[str, str | None]
) -> None:
    configured = with_sync(deps, **policies)
    await make_user(db, configured, verified=True)  # typed "Ada Lovelace"
    link = await amazon_sign_in(db, configured, KING)
    assert isinstance(link, LinkRequired)
    linked = signed_in(await confirm(db, configured, link.flow_id, PASSWORD))
    assert linked.signed_in.account.name == expected[0]
    assert await name_and_postal_code(db, linked.signed_in.account.id) == expected
    signed_in(await amazon_sign_in(db, configured, KING))
    assert await name_and_postal_code(db, linked.signed_in.account.id) == expected


async def test_sec14_changed_email_applies_to_an_amazon_only_account_when_free(
    db: Database, deps: Deps
) -> None:
    account_id = signed_in(await amazon_sign_in(db, deps)).signed_in.account.id
    signed_in(await amazon_sign_in(db, deps, replace(ADA, email="ada@new.example")))
    assert (await account_of(db, account_id)).email == "ada@new.example"
    # Taken by someone else: kept as pending, the account keeps its address.
    await make_user(db, deps, username="grace", email="grace@example.com")
    signed_in(await amazon_sign_in(db, deps, replace(ADA, email="grace@example.com")))
    assert (await account_of(db, account_id)).email == "ada@new.example"
    async with db.transaction() as stores:
        link = await stores.identities.get_for_account(account_id)
    assert link is not None
    assert link.pending_email == "grace@example.com"


async def test_sec14_changed_email_never_silently_changes_a_password_account(
    db: Database, deps: Deps
) -> None:
    link = await start_link(db, deps)
    account_id = signed_in(await confirm(db, deps, link.flow_id, PASSWORD)).signed_in.account.id
    signed_in(await amazon_sign_in(db, deps, replace(ADA, email="ada@new.example")))
    assert (await account_of(db, account_id)).email == "ada@example.com"
    async with db.transaction() as stores:
        identity = await stores.identities.get_for_account(account_id)
    assert identity is not None
    assert identity.pending_email == "ada@new.example"
    assert "amazon.email_pending" in await audit_kinds(db)


# ---- attach and detach (items 10, 12, 13) ----


async def password_session(db: Database, deps: Deps, username: str = "grace") -> SignedIn:
    await make_user(db, deps, username=username, email=f"{username}@example.com")
    return await password_sign_in(db, deps, username)


async def password_sign_in(
    db: Database, deps: Deps, login: str = "ada", password: str = PASSWORD
) -> SignedIn:
    async def step(tx: Tx) -> SignedIn:
        return await sign_in_with_password(
            tx, login=login, password=password, kind="browser", device_name=None
        )

    return await in_transaction(db, deps, step)


async def attach(
    db: Database,
    deps: Deps,
    me: SignedIn,
    profile: AmazonProfile = ADA,
    password: str | None = None,
) -> amazon.Attached:
    async def step(tx: Tx) -> amazon.Attached:
        return await amazon.attach_amazon(
            tx, profile, session=me.session, account=me.account, password=password
        )

    return await in_transaction(db, deps, step)


async def detach(db: Database, deps: Deps, me: SignedIn, password: str | None = None) -> None:
    async def step(tx: Tx) -> None:
        await amazon.detach_amazon(tx, session=me.session, account=me.account, password=password)

    await in_transaction(db, deps, step)


async def test_attach_and_detach(db: Database, deps: Deps) -> None:
    me = await password_session(db, deps)
    attached = await attach(db, deps, me)
    assert isinstance(attached, amazon.Attached)
    assert attached.link.amazon_user_id == ADA.user_id
    assert signed_in(await amazon_sign_in(db, deps)).signed_in.account.id == me.account.id
    await detach(db, deps, me)
    async with db.transaction() as stores:
        assert await stores.identities.get_for_account(me.account.id) is None
    kinds = await audit_kinds(db)
    assert "amazon.linked" in kinds
    assert "amazon.unlinked" in kinds


@pytest.mark.parametrize(
    ("policies", "expected"),
    [
        ({}, ("Ada Lovelace", "10115")),  # issue 13: the account's own name stays
        ({"name": "always"}, ("Ada King", "10115")),
        ({"postal_code": "never"}, ("Ada Lovelace", None)),
    ],
)
async def test_sec14_attaching_follows_the_policy(
    db: Database, deps: Deps, policies: dict[str, str], expected: tuple[str, str | None]
) -> None:
    configured = with_sync(deps, **policies)
    me = await password_session(db, configured)  # typed "Ada Lovelace"
    attached = await attach(db, configured, me, KING)
    assert isinstance(attached, amazon.Attached)
    assert (attached.account.name, attached.account.postal_code) == expected
    assert attached.link.postal_code == KING.postal_code  # what Amazon sent, whatever the policy
    assert await name_and_postal_code(db, me.account.id) == expected
    # Unlinking leaves the name as it was after the attach.
    await detach(db, configured, me)
    assert (await account_of(db, me.account.id)).name == expected[0]


async def test_sec13_attach_and_detach_need_a_recent_sign_in_or_the_password(
    db: Database, deps: Deps, clock: FixedClock
) -> None:
    me = await password_session(db, deps)
    clock.advance(301)
    with pytest.raises(errors.ReauthenticationRequired):
        await attach(db, deps, me)
    with pytest.raises(errors.InvalidCredentials):
        await attach(db, deps, me, password="wrong password")
    assert isinstance(await attach(db, deps, me, password=PASSWORD), amazon.Attached)
    clock.advance(301)
    with pytest.raises(errors.ReauthenticationRequired):
        await detach(db, deps, me)
    await detach(db, deps, me, password=PASSWORD)


async def test_sec10_identity_linked_elsewhere_is_refused_without_detail(
    db: Database, deps: Deps
) -> None:
    owner = signed_in(await amazon_sign_in(db, deps)).signed_in.account
    me = await password_session(db, deps)
    with pytest.raises(errors.AmazonLinkedElsewhere) as refused:
        await attach(db, deps, me)
    assert refused.value.status == 409
    shown = refused.value.detail + repr(refused.value.extra)
    assert owner.id not in shown
    assert owner.username not in shown
    async with db.transaction() as stores:
        assert await stores.identities.get_for_account(me.account.id) is None


async def test_sec10_an_account_holds_one_amazon_identity(db: Database, deps: Deps) -> None:
    me = await password_session(db, deps)
    assert isinstance(await attach(db, deps, me), amazon.Attached)
    other = replace(ADA, user_id="amzn1.account.DDDDDDDDDDDDDDDDDDDDDDDDDDDD", email=None)
    with pytest.raises(errors.AlreadyLinked):
        await attach(db, deps, me, other)


async def test_sec12_detach_refused_when_amazon_is_the_last_way_to_sign_in(
    db: Database, deps: Deps
) -> None:
    me = signed_in(await amazon_sign_in(db, deps)).signed_in
    with pytest.raises(errors.LastSignInMethod):
        await detach(db, deps, me)
    async with db.transaction() as stores:
        assert await stores.identities.get_for_account(me.account.id) is not None


async def test_detach_without_a_link_is_not_found(db: Database, deps: Deps) -> None:
    me = await password_session(db, deps)
    with pytest.raises(errors.NotFound):
        await detach(db, deps, me)


# ---- concurrency (item 11) ----


async def parallel_first_sign_ins(db: Database, deps: Deps, n: int = 20) -> None:
    outcomes = await asyncio.gather(*(amazon_sign_in(db, deps) for _ in range(n)))
    accounts = {signed_in(outcome).signed_in.account.id for outcome in outcomes}
    assert len(accounts) == 1
    assert sum(signed_in(outcome).created for outcome in outcomes) == 1
    async with db.engine.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM accounts"))).scalar() == 1
        assert (await conn.execute(text("SELECT count(*) FROM amazon_identities"))).scalar() == 1
        assert (await conn.execute(text("SELECT count(*) FROM sessions"))).scalar() == n


async def test_sec11_parallel_first_sign_ins_sqlite(db: Database, deps: Deps) -> None:
    await parallel_first_sign_ins(db, deps)


@pytest.mark.postgres
async def test_sec11_parallel_first_sign_ins_postgres(
    postgres_url: str, settings: Settings, clock: FixedClock, deps: Deps
) -> None:
    db = Database(postgres_url, settings=settings, clock=clock)
    await db.upgrade()
    try:
        await parallel_first_sign_ins(db, deps)
    finally:
        await db.dispose()

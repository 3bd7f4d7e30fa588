"""Account flows against a real SQLite database."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from lwa_accounts.clock import FixedClock
from lwa_accounts.core.models import NewAccount
from lwa_accounts.errors import (
    AccountDisabled,
    EmailTaken,
    InvalidCredentials,
    NotFound,
    ReauthenticationRequired,
    TooManyAttempts,
    UsernameTaken,
    ValidationFailed,
)
from lwa_accounts.flows.accounts import (
    Deps,
    Refused,
    change_password,
    check_password,
    find_login,
    finish_password_sign_in,
    list_sessions,
    login_key,
    reauthenticate,
    register,
    revoke_session,
    sign_in_with_password,
    sign_out,
    unwrap,
)
from lwa_accounts.flows.sessions import SignedIn, start_session
from lwa_accounts.passwords import Argon2Hasher
from lwa_accounts.store.db import Database
from lwa_accounts.store.schema import accounts as accounts_table
from lwa_accounts.throttle import Throttle
from tests.flows.conftest import CLIENT, PASSWORD, CountingHasher, fast_settings, make_user


async def sign_in(
    db: Database, deps: Deps, login: str = "ada", password: str = PASSWORD
) -> SignedIn | Refused:
    async with db.transaction() as stores:
        return await sign_in_with_password(
            stores,
            deps,
            login=login,
            password=password,
            kind="device",
            device_name="Living-room TV",
            client=CLIENT,
        )


async def audit_kinds(db: Database) -> list[str]:
    async with db.transaction() as stores:
        return [event.kind for event in await stores.audit.list(limit=1000)]


async def test_register_normalises_and_hashes(db: Database, deps: Deps) -> None:
    account = await make_user(db, deps, username="  Ada.L ", email="Ada@Example.COM")
    assert account.username == "ada.l"
    assert account.email == "Ada@Example.COM"
    assert account.password_hash is not None
    assert account.password_hash.startswith("$argon2id$")
    assert PASSWORD not in account.password_hash
    assert "account.registered" in await audit_kinds(db)


async def test_register_reports_every_bad_field_at_once(db: Database, deps: Deps) -> None:
    async with db.transaction() as stores:
        with pytest.raises(ValidationFailed) as caught:
            await register(
                stores,
                deps,
                username="аda",  # Cyrillic "а": a homoglyph
                email="not-an-email",
                name="\x00",
                password="password123",  # in the common list
                client=CLIENT,
            )
    assert set(caught.value.errors) == {"username", "email", "name", "password"}
    async with db.transaction() as stores:
        assert await stores.accounts.list() == []


async def test_register_conflicts(db: Database, deps: Deps) -> None:
    await make_user(db, deps)
    with pytest.raises(UsernameTaken):
        await make_user(db, deps, username="ADA", email="other@example.com")
    with pytest.raises(EmailTaken):
        await make_user(db, deps, username="other", email="ADA@example.com")


async def test_registrations_per_ip_are_limited(tmp_path: Path, clock: FixedClock) -> None:
    settings = fast_settings(tmp_path, registration_limit_per_ip="2/hour")
    database = Database.from_settings(settings, clock=clock)
    await database.upgrade()
    deps = Deps(
        settings=settings,
        hasher=Argon2Hasher(settings),
        throttle=Throttle(settings),
        clock=clock,
        common_passwords=frozenset(),
    )
    try:
        await make_user(database, deps, username="one", email=None)
        await make_user(database, deps, username="two", email=None)
        with pytest.raises(TooManyAttempts) as caught:
            await make_user(database, deps, username="three", email=None)
        assert caught.value.retry_after is not None
        assert caught.value.retry_after > 0
    finally:
        await database.dispose()


async def test_sign_in_by_username_or_email(db: Database, deps: Deps) -> None:
    account = await make_user(db, deps)
    for login in ("ada", "ADA", "ada@example.com", "Ada@Example.com"):
        outcome = unwrap(await sign_in(db, deps, login=login))
        assert outcome.account.id == account.id
        assert outcome.session.kind == "device"
        assert outcome.session.device_name == "Living-room TV"
        assert len(outcome.token) >= 43  # 32 random bytes, urlsafe base64
    assert (await audit_kinds(db)).count("session.started") == 4


async def test_every_sign_in_gets_a_new_token(db: Database, deps: Deps) -> None:
    await make_user(db, deps)
    first = unwrap(await sign_in(db, deps))
    second = unwrap(await sign_in(db, deps))
    assert first.token != second.token
    assert first.session.id != second.session.id


async def test_wrong_password_and_unknown_user_look_the_same(
    db: Database, deps: Deps, hasher: CountingHasher
) -> None:
    await make_user(db, deps)
    before = hasher.verifications
    wrong = await sign_in(db, deps, password="not-the-password")
    unknown = await sign_in(db, deps, login="nobody", password="not-the-password")
    assert isinstance(wrong, Refused)
    assert isinstance(unknown, Refused)
    assert type(wrong.error) is type(unknown.error) is InvalidCredentials
    assert wrong.error.detail == unknown.error.detail
    # The unknown login cost a real argon2 verification too (timing).
    assert hasher.verifications - before == 2
    assert (await audit_kinds(db)).count("signin.failed") == 2


async def test_nul_and_control_characters_in_login_never_reach_the_store(
    db: Database, deps: Deps
) -> None:
    await make_user(db, deps)
    for login in ("ada\x00", "\x00", "a" * 5000, "ada\u202e"):
        outcome = await sign_in(db, deps, login=login)
        assert isinstance(outcome, Refused)
        assert isinstance(outcome.error, InvalidCredentials)


async def test_throttle_per_account_then_429(db: Database, deps: Deps) -> None:
    await make_user(db, deps)
    lefts = []
    for _ in range(3):
        outcome = await sign_in(db, deps, password="wrong-password")
        assert isinstance(outcome, Refused)
        assert isinstance(outcome.error, InvalidCredentials)
        lefts.append(outcome.error.extra["attempts_left"])
    assert lefts == [2, 1, 0]
    # Even the right password is refused now: checked before verifying.
    blocked = await sign_in(db, deps)
    assert isinstance(blocked, Refused)
    assert isinstance(blocked.error, TooManyAttempts)
    assert blocked.error.retry_after is not None
    assert 0 < blocked.error.retry_after <= 15 * 60
    # Also through the email: the budget belongs to the account, not the spelling.
    by_email = await sign_in(db, deps, login="ada@example.com")
    assert isinstance(by_email, Refused)
    assert isinstance(by_email.error, TooManyAttempts)
    assert "signin.throttled" in await audit_kinds(db)


async def test_success_resets_the_account_budget(db: Database, deps: Deps) -> None:
    await make_user(db, deps)
    for _ in range(2):
        assert isinstance(await sign_in(db, deps, password="wrong-password"), Refused)
    unwrap(await sign_in(db, deps))
    for _ in range(2):
        assert isinstance(await sign_in(db, deps, password="wrong-password"), Refused)
    assert isinstance(await sign_in(db, deps), SignedIn)


async def test_unknown_logins_are_throttled_too(db: Database, deps: Deps) -> None:
    for _ in range(3):
        outcome = await sign_in(db, deps, login="ghost", password="whatever-it-is")
        assert isinstance(outcome, Refused)
        assert isinstance(outcome.error, InvalidCredentials)
    outcome = await sign_in(db, deps, login="GHOST", password="whatever-it-is")
    assert isinstance(outcome, Refused)
    assert isinstance(outcome.error, TooManyAttempts)


async def test_rehash_on_sign_in_when_parameters_change(
    db: Database, deps: Deps, tmp_path: Path
) -> None:
    account = await make_user(db, deps)
    stronger = Argon2Hasher(fast_settings(tmp_path, argon2_memory_kib=128, argon2_time_cost=2))
    upgraded = replace(deps, hasher=stronger)
    unwrap(await sign_in(db, upgraded))
    async with db.transaction() as stores:
        stored = await stores.accounts.get(account.id)
    assert stored is not None
    assert stored.password_hash is not None
    assert stored.password_hash != account.password_hash
    assert "m=128,t=2" in stored.password_hash
    assert not stronger.needs_rehash(stored.password_hash)
    unwrap(await sign_in(db, upgraded))


async def test_disabled_account_cannot_sign_in(db: Database, deps: Deps) -> None:
    account = await make_user(db, deps)
    async with db.engine.begin() as connection:
        await connection.execute(
            accounts_table.update().where(accounts_table.c.id == account.id).values(disabled=True)
        )
    outcome = await sign_in(db, deps)
    assert isinstance(outcome, Refused)
    assert isinstance(outcome.error, AccountDisabled)
    async with db.transaction() as stores:
        disabled = await stores.accounts.get(account.id)
        assert disabled is not None
        with pytest.raises(AccountDisabled):
            await start_session(stores, disabled, kind="browser")


async def test_sign_out_and_revoke(db: Database, deps: Deps) -> None:
    account = await make_user(db, deps)
    one = unwrap(await sign_in(db, deps))
    two = unwrap(await sign_in(db, deps))
    async with db.transaction() as stores:
        assert len(await list_sessions(stores, account)) == 2
        await sign_out(stores, deps, one.session, CLIENT)
        assert await stores.sessions.resolve(one.token) is None
        await revoke_session(
            stores, deps, account=account, session_id=two.session.id, client=CLIENT
        )
        assert await stores.sessions.resolve(two.token) is None
        with pytest.raises(NotFound):
            await revoke_session(
                stores, deps, account=account, session_id=two.session.id, client=CLIENT
            )
        with pytest.raises(NotFound):
            await revoke_session(stores, deps, account=account, session_id="x\x00y", client=CLIENT)


async def test_cannot_revoke_someone_elses_session(db: Database, deps: Deps) -> None:
    await make_user(db, deps)
    grace = await make_user(db, deps, username="grace", email="grace@example.com")
    ada_session = unwrap(await sign_in(db, deps))
    async with db.transaction() as stores:
        with pytest.raises(NotFound):
            await revoke_session(
                stores, deps, account=grace, session_id=ada_session.session.id, client=CLIENT
            )
        assert await stores.sessions.resolve(ada_session.token) is not None


async def test_change_password_ends_other_sessions(db: Database, deps: Deps) -> None:
    account = await make_user(db, deps)
    mine = unwrap(await sign_in(db, deps))
    other = unwrap(await sign_in(db, deps))
    async with db.transaction() as stores:
        outcome = await change_password(
            stores,
            deps,
            session=mine.session,
            account=account,
            current_password=PASSWORD,
            new_password="a-brand-new-passphrase",
            client=CLIENT,
        )
    assert outcome is None
    async with db.transaction() as stores:
        assert await stores.sessions.resolve(mine.token) is not None
        assert await stores.sessions.resolve(other.token) is None
    assert isinstance(await sign_in(db, deps), Refused)
    unwrap(await sign_in(db, deps, password="a-brand-new-passphrase"))


async def test_change_password_needs_the_current_one(db: Database, deps: Deps) -> None:
    account = await make_user(db, deps)
    mine = unwrap(await sign_in(db, deps))
    async with db.transaction() as stores:
        outcome = await change_password(
            stores,
            deps,
            session=mine.session,
            account=account,
            current_password="not-it-at-all",
            new_password="a-brand-new-passphrase",
            client=CLIENT,
        )
        assert isinstance(outcome, Refused)
        assert isinstance(outcome.error, InvalidCredentials)
        with pytest.raises(ValidationFailed) as caught:
            await change_password(
                stores,
                deps,
                session=mine.session,
                account=account,
                current_password=PASSWORD,
                new_password="short",
                client=CLIENT,
            )
        assert "new_password" in caught.value.errors
    unwrap(await sign_in(db, deps))


async def test_passwordless_account_sets_a_password_only_after_recent_sign_in(
    db: Database, deps: Deps, clock: FixedClock
) -> None:
    async with db.transaction() as stores:
        account = await stores.accounts.create(
            NewAccount(username="amzn", email=None, name="From Amazon", password_hash=None)
        )
        signed = await start_session(stores, account, kind="browser", method="amazon")
    clock.advance(deps.settings.recent_auth_seconds + 1)
    async with db.transaction() as stores:
        with pytest.raises(ReauthenticationRequired):
            await change_password(
                stores,
                deps,
                session=signed.session,
                account=account,
                current_password=None,
                new_password="a-brand-new-passphrase",
                client=CLIENT,
            )
        fresh = await start_session(stores, account, kind="browser", method="amazon")
        assert (
            await change_password(
                stores,
                deps,
                session=fresh.session,
                account=account,
                current_password=None,
                new_password="a-brand-new-passphrase",
                client=CLIENT,
            )
            is None
        )
    unwrap(await sign_in(db, deps, login="amzn", password="a-brand-new-passphrase"))


async def test_reauthenticate_marks_the_session(
    db: Database, deps: Deps, clock: FixedClock
) -> None:
    account = await make_user(db, deps)
    signed = unwrap(await sign_in(db, deps))
    clock.advance(3600)
    async with db.transaction() as stores:
        wrong = await reauthenticate(
            stores,
            deps,
            session=signed.session,
            account=account,
            password="wrong-password",
            client=CLIENT,
        )
        assert isinstance(wrong, Refused)
        assert (
            await reauthenticate(
                stores,
                deps,
                session=signed.session,
                account=account,
                password=PASSWORD,
                client=CLIENT,
            )
            is None
        )
        resolved = await stores.sessions.resolve(signed.token)
    assert resolved is not None
    assert resolved[0].authenticated_at == clock.now()


async def test_refusal_audit_survives_because_the_edge_commits_first(
    db: Database, deps: Deps
) -> None:
    await make_user(db, deps)
    outcome = await sign_in(db, deps, password="wrong-password")
    with pytest.raises(InvalidCredentials):
        unwrap(outcome)
    async with db.transaction() as stores:
        events = await stores.audit.list(limit=10)
    failed = [e for e in events if e.kind == "signin.failed"]
    assert len(failed) == 1
    assert failed[0].ip == CLIENT.ip
    assert failed[0].detail is not None
    assert "wrong-password" not in failed[0].detail


async def test_start_session_strips_unprintable_device_names(db: Database, deps: Deps) -> None:
    account = await make_user(db, deps)
    async with db.transaction() as stores:
        signed = await start_session(
            stores,
            account,
            kind="device",
            device_name="Living\x00room\u202e TV",
            user_agent="a\x01b",
        )
    assert signed.session.device_name == "Livingroom TV"
    assert signed.session.user_agent == "ab"


async def test_split_sign_in_refuses_if_the_password_changed_meanwhile(
    db: Database, deps: Deps
) -> None:
    """Handlers check argon2 between two transactions; a change in between must win."""
    account = await make_user(db, deps)
    async with db.transaction() as stores:
        found = await find_login(stores, "ada")
    check = await check_password(
        deps, account=found, account_key=login_key(found, "ada"), password=PASSWORD, client=CLIENT
    )
    assert check.ok
    async with db.transaction() as stores:  # e.g. a password change in another tab
        await stores.accounts.update(account.id, password_hash=await deps.hasher.hash("x" * 12))
    async with db.transaction() as stores:
        outcome = await finish_password_sign_in(
            stores, deps, check, kind="browser", device_name=None, client=CLIENT
        )
    assert isinstance(outcome, Refused)
    assert isinstance(outcome.error, InvalidCredentials)
    async with db.transaction() as stores:
        assert await stores.sessions.list_for_account(account.id) == []
        events = await stores.audit.list(limit=5)
    assert any(e.detail == "reason=password_changed" for e in events)


async def test_check_password_touches_no_database(deps: Deps) -> None:
    # No stores are passed at all: the argon2 step cannot hold a connection or a lock.
    check = await check_password(
        deps, account=None, account_key="login:ghost", password="whatever", client=CLIENT
    )
    assert not check.ok
    assert isinstance(check.error, InvalidCredentials)
    assert check.reason == "wrong_password"

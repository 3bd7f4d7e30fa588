"""Account flows against a real SQLite database."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import replace
from pathlib import Path
from typing import TypeVar

import pytest

from lwa_accounts.clock import FixedClock
from lwa_accounts.core.models import AuditEvent, NewAccount
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
    finish_password_sign_in,
    list_sessions,
    register,
    revoke_session,
    sign_in_with_password,
    sign_out,
)
from lwa_accounts.flows.context import ClientInfo, Context, Deps
from lwa_accounts.flows.credentials import change_password, reauthenticate
from lwa_accounts.flows.passwords import check_password, find_login, login_key
from lwa_accounts.flows.sessions import SignedIn, start_session
from lwa_accounts.interfaces import Stores
from lwa_accounts.passwords import Argon2Hasher
from lwa_accounts.store.db import Database
from lwa_accounts.store.schema import accounts as accounts_table
from lwa_accounts.throttle import Throttle
from tests.flows.conftest import (
    CLIENT,
    PASSWORD,
    CountingHasher,
    context_of,
    fast_settings,
    make_user,
)

T = TypeVar("T")


async def sign_in(ctx: Context, login: str = "ada", password: str = PASSWORD) -> SignedIn:
    """A password sign-in in one transaction, as an edge runs it: a refusal raises (after
    the rollback path wrote its kept audit events)."""
    async with ctx.transaction() as tx:
        return await sign_in_with_password(
            tx, login=login, password=password, kind="device", device_name="Living-room TV"
        )


async def audit_kinds(ctx: Context) -> list[str]:
    return [event.kind for event in await audit_events(ctx)]


async def audit_events(ctx: Context, limit: int = 1000) -> list[AuditEvent]:
    async with ctx.database.transaction() as stores:
        return list(await stores.audit.list(limit=limit))


async def test_register_normalises_and_hashes(ctx: Context) -> None:
    account = await make_user(ctx, username="  Ada.L ", email="Ada@Example.COM")
    assert account.username == "ada.l"
    assert account.email == "Ada@Example.COM"
    assert account.password_hash is not None
    assert account.password_hash.startswith("$argon2id$")
    assert PASSWORD not in account.password_hash
    assert "account.registered" in await audit_kinds(ctx)


async def test_register_reports_every_bad_field_at_once(ctx: Context) -> None:
    async with ctx.transaction() as tx:
        with pytest.raises(ValidationFailed) as caught:
            await register(
                tx,
                username="аda",  # Cyrillic "а": a homoglyph
                email="not-an-email",
                name="\x00",
                password="password123",  # in the common list
            )
    assert set(caught.value.errors) == {"username", "email", "name", "password"}
    async with ctx.transaction() as tx:
        assert await tx.accounts.list() == []


async def test_register_conflicts(ctx: Context) -> None:
    await make_user(ctx)
    with pytest.raises(UsernameTaken):
        await make_user(ctx, username="ADA", email="other@example.com")
    with pytest.raises(EmailTaken):
        await make_user(ctx, username="other", email="ADA@example.com")


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
        ctx = context_of(database, deps)
        await make_user(ctx, username="one", email=None)
        await make_user(ctx, username="two", email=None)
        with pytest.raises(TooManyAttempts) as caught:
            await make_user(ctx, username="three", email=None)
        assert caught.value.retry_after is not None
        assert caught.value.retry_after > 0
    finally:
        await database.dispose()


async def test_sign_in_by_username_or_email(ctx: Context) -> None:
    account = await make_user(ctx)
    for login in ("ada", "ADA", "ada@example.com", "Ada@Example.com"):
        outcome = await sign_in(ctx, login=login)
        assert outcome.account.id == account.id
        assert outcome.session.kind == "device"
        assert outcome.session.device_name == "Living-room TV"
        assert len(outcome.token) >= 43  # 32 random bytes, urlsafe base64
    assert (await audit_kinds(ctx)).count("session.started") == 4


async def test_every_sign_in_gets_a_new_token(ctx: Context) -> None:
    await make_user(ctx)
    first = await sign_in(ctx)
    second = await sign_in(ctx)
    assert first.token != second.token
    assert first.session.id != second.session.id


async def test_wrong_password_and_unknown_user_look_the_same(
    ctx: Context, hasher: CountingHasher
) -> None:
    await make_user(ctx)
    before = hasher.verifications
    with pytest.raises(InvalidCredentials) as wrong:
        await sign_in(ctx, password="not-the-password")
    with pytest.raises(InvalidCredentials) as unknown:
        await sign_in(ctx, login="nobody", password="not-the-password")
    assert type(wrong.value) is type(unknown.value) is InvalidCredentials
    assert wrong.value.detail == unknown.value.detail
    # The unknown login cost a real argon2 verification too (timing).
    assert hasher.verifications - before == 2
    assert (await audit_kinds(ctx)).count("signin.failed") == 2


async def test_nul_and_control_characters_in_login_never_reach_the_store(ctx: Context) -> None:
    await make_user(ctx)
    for login in ("ada\x00", "\x00", "a" * 5000, "ada\u202e"):
        with pytest.raises(InvalidCredentials):
            await sign_in(ctx, login=login)


async def test_throttle_per_account_then_429(ctx: Context) -> None:
    await make_user(ctx)
    lefts = []
    for _ in range(3):
        with pytest.raises(InvalidCredentials) as wrong:
            await sign_in(ctx, password="wrong-password")
        lefts.append(wrong.value.extra["attempts_left"])
    assert lefts == [2, 1, 0]
    # Even the right password is refused now: checked before verifying.
    with pytest.raises(TooManyAttempts) as blocked:
        await sign_in(ctx)
    assert blocked.value.retry_after is not None
    assert 0 < blocked.value.retry_after <= 15 * 60
    # Also through the email: the budget belongs to the account, not the spelling.
    with pytest.raises(TooManyAttempts):
        await sign_in(ctx, login="ada@example.com")
    assert "signin.throttled" in await audit_kinds(ctx)


async def test_success_resets_the_account_budget(ctx: Context) -> None:
    await make_user(ctx)
    for _ in range(2):
        with pytest.raises(InvalidCredentials):
            await sign_in(ctx, password="wrong-password")
    await sign_in(ctx)
    for _ in range(2):
        with pytest.raises(InvalidCredentials):
            await sign_in(ctx, password="wrong-password")
    await sign_in(ctx)  # 2 + 2 wrong of a budget of 3: the success in between reset it


async def test_unknown_logins_are_throttled_too(ctx: Context) -> None:
    for _ in range(3):
        with pytest.raises(InvalidCredentials):
            await sign_in(ctx, login="ghost", password="whatever-it-is")
    with pytest.raises(TooManyAttempts):
        await sign_in(ctx, login="GHOST", password="whatever-it-is")


async def test_rehash_on_sign_in_when_parameters_change(ctx: Context, tmp_path: Path) -> None:
    account = await make_user(ctx)
    stronger = Argon2Hasher(fast_settings(tmp_path, argon2_memory_kib=128, argon2_time_cost=2))
    upgraded = replace(ctx, deps=replace(ctx.deps, hasher=stronger))
    await sign_in(upgraded)
    async with ctx.transaction() as tx:
        stored = await tx.accounts.get(account.id)
    assert stored is not None
    assert stored.password_hash is not None
    assert stored.password_hash != account.password_hash
    assert "m=128,t=2" in stored.password_hash
    assert not stronger.needs_rehash(stored.password_hash)
    await sign_in(upgraded)


async def test_disabled_account_cannot_sign_in(ctx: Context, db: Database) -> None:
    account = await make_user(ctx)
    async with db.engine.begin() as connection:
        await connection.execute(
            accounts_table.update().where(accounts_table.c.id == account.id).values(disabled=True)
        )
    with pytest.raises(AccountDisabled):
        await sign_in(ctx)
    async with ctx.transaction() as tx:
        disabled = await tx.accounts.get(account.id)
        assert disabled is not None
        with pytest.raises(AccountDisabled):
            await start_session(tx, disabled, kind="browser")


async def test_sign_out_and_revoke(ctx: Context) -> None:
    account = await make_user(ctx)
    one = await sign_in(ctx)
    two = await sign_in(ctx)
    async with ctx.transaction() as tx:
        assert len(await list_sessions(tx, account)) == 2
        await sign_out(tx, one.session)
        assert await tx.sessions.resolve(one.token) is None
        await revoke_session(tx, account=account, session_id=two.session.id)
        assert await tx.sessions.resolve(two.token) is None
        with pytest.raises(NotFound):
            await revoke_session(tx, account=account, session_id=two.session.id)
        with pytest.raises(NotFound):
            await revoke_session(tx, account=account, session_id="x\x00y")


async def test_cannot_revoke_someone_elses_session(ctx: Context) -> None:
    await make_user(ctx)
    grace = await make_user(ctx, username="grace", email="grace@example.com")
    ada_session = await sign_in(ctx)
    async with ctx.transaction() as tx:
        with pytest.raises(NotFound):
            await revoke_session(tx, account=grace, session_id=ada_session.session.id)
        assert await tx.sessions.resolve(ada_session.token) is not None


async def test_change_password_ends_other_sessions(ctx: Context) -> None:
    account = await make_user(ctx)
    mine = await sign_in(ctx)
    other = await sign_in(ctx)
    async with ctx.transaction() as tx:
        await change_password(
            tx,
            session=mine.session,
            account=account,
            current_password=PASSWORD,
            new_password="a-brand-new-passphrase",
        )
    async with ctx.transaction() as tx:
        assert await tx.sessions.resolve(mine.token) is not None
        assert await tx.sessions.resolve(other.token) is None
    with pytest.raises(InvalidCredentials):  # the old password
        await sign_in(ctx)
    await sign_in(ctx, password="a-brand-new-passphrase")


async def test_change_password_needs_the_current_one(ctx: Context) -> None:
    account = await make_user(ctx)
    mine = await sign_in(ctx)
    with pytest.raises(InvalidCredentials):
        async with ctx.transaction() as tx:
            await change_password(
                tx,
                session=mine.session,
                account=account,
                current_password="not-it-at-all",
                new_password="a-brand-new-passphrase",
            )
    async with ctx.transaction() as tx:
        with pytest.raises(ValidationFailed) as caught:
            await change_password(
                tx,
                session=mine.session,
                account=account,
                current_password=PASSWORD,
                new_password="short",
            )
        assert "new_password" in caught.value.errors
    await sign_in(ctx)


async def test_passwordless_account_sets_a_password_only_after_recent_sign_in(
    ctx: Context, clock: FixedClock
) -> None:
    async with ctx.transaction() as tx:
        account = await tx.accounts.create(
            NewAccount(username="amzn", email=None, name="From Amazon", password_hash=None)
        )
        signed = await start_session(tx, account, kind="browser", method="amazon")
    clock.advance(ctx.settings.recent_auth_seconds + 1)
    async with ctx.transaction() as tx:
        with pytest.raises(ReauthenticationRequired):
            await change_password(
                tx,
                session=signed.session,
                account=account,
                current_password=None,
                new_password="a-brand-new-passphrase",
            )
        fresh = await start_session(tx, account, kind="browser", method="amazon")
        await change_password(
            tx,
            session=fresh.session,
            account=account,
            current_password=None,
            new_password="a-brand-new-passphrase",
        )
    await sign_in(ctx, login="amzn", password="a-brand-new-passphrase")


async def test_reauthenticate_marks_the_session(ctx: Context, clock: FixedClock) -> None:
    account = await make_user(ctx)
    signed = await sign_in(ctx)
    clock.advance(3600)
    with pytest.raises(InvalidCredentials):
        async with ctx.transaction() as tx:
            await reauthenticate(
                tx, session=signed.session, account=account, password="wrong-password"
            )
    assert "signin.failed" in await audit_kinds(ctx)  # kept through the rollback
    async with ctx.transaction() as tx:
        await reauthenticate(tx, session=signed.session, account=account, password=PASSWORD)
        resolved = await tx.sessions.resolve(signed.token)
    assert resolved is not None
    assert resolved[0].authenticated_at == clock.now()


async def test_refusal_audit_survives_the_rollback(ctx: Context) -> None:
    await make_user(ctx)
    with pytest.raises(InvalidCredentials):
        await sign_in(ctx, password="wrong-password")
    events = await audit_events(ctx, limit=10)
    failed = [e for e in events if e.kind == "signin.failed"]
    assert len(failed) == 1
    assert failed[0].ip == CLIENT.ip
    assert failed[0].detail is not None
    assert "wrong-password" not in failed[0].detail


async def test_start_session_strips_unprintable_device_names(ctx: Context) -> None:
    account = await make_user(ctx)
    odd_agent = replace(ctx, client=ClientInfo(ip=CLIENT.ip, user_agent="a\x01b"))
    async with odd_agent.transaction() as tx:
        signed = await start_session(
            tx, account, kind="device", device_name="Living\x00room\u202e TV"
        )
    assert signed.session.device_name == "Livingroom TV"
    assert signed.session.user_agent == "ab"


async def test_split_sign_in_refuses_if_the_password_changed_meanwhile(ctx: Context) -> None:
    """Handlers check argon2 between two transactions; a change in between must win."""
    account = await make_user(ctx)
    async with ctx.transaction() as tx:
        found = await find_login(tx, "ada")
    check = await check_password(
        ctx, account=found, account_key=login_key(found, "ada"), password=PASSWORD
    )
    assert check.ok
    async with ctx.transaction() as tx:  # e.g. a password change in another tab
        await tx.accounts.update(account.id, password_hash=await ctx.deps.hasher.hash("x" * 12))
    with pytest.raises(InvalidCredentials):
        async with ctx.transaction() as tx:
            await finish_password_sign_in(tx, check, kind="browser", device_name=None)
    async with ctx.transaction() as tx:
        assert await tx.sessions.list_for_account(account.id) == []
    events = await audit_events(ctx, limit=5)
    assert any(e.detail == "reason=password_changed" for e in events)


async def test_check_password_touches_no_database(deps: Deps) -> None:
    # No database at all: the argon2 step cannot hold a connection or a lock.
    ctx = Context(deps, _NoDatabase(), CLIENT)
    check = await check_password(ctx, account=None, account_key="login:ghost", password="whatever")
    assert not check.ok
    assert isinstance(check.error, InvalidCredentials)
    assert check.reason == "wrong_password"


class _NoDatabase:
    def transaction(self) -> AbstractAsyncContextManager[Stores]:
        raise AssertionError("check_password opened a transaction")

    def read(self) -> AbstractAsyncContextManager[Stores]:
        raise AssertionError("check_password opened a transaction")

    async def run_read(self, work: Callable[[Stores], Awaitable[T]]) -> T:
        raise AssertionError("check_password opened a transaction")

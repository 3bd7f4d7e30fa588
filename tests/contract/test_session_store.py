"""SessionStore contract (SQL and kit, SQLite and PostgreSQL), on a FixedClock."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from sqlalchemy import select, text, update

from lwa_accounts.clock import FixedClock
from lwa_accounts.core.models import Account, Session, SessionKind
from lwa_accounts.settings import Settings
from lwa_accounts.store.db import Database
from lwa_accounts.store.schema import accounts, sessions
from tests.store.conftest import START, make_account

IDLE = timedelta(seconds=12 * 3600)
ABSOLUTE = timedelta(seconds=14 * 24 * 3600)


@pytest.fixture
async def alice(db: Database) -> Account:
    return await make_account(db)


async def new_session(db: Database, account: Account, kind: SessionKind = "browser") -> str:
    async with db.transaction() as stores:
        token, _ = await stores.sessions.create(
            account.id, kind, device_name="TV", user_agent="UA", ip="127.0.0.1"
        )
    return token


async def resolve(db: Database, token: str) -> tuple[Session, Account] | None:
    async with db.transaction() as stores:
        return await stores.sessions.resolve(token)


async def test_create_returns_a_256_bit_token_and_the_session(db: Database, alice: Account) -> None:
    async with db.transaction() as stores:
        token, session = await stores.sessions.create(
            alice.id, "browser", device_name=None, user_agent="Firefox", ip="10.0.0.1"
        )
    assert len(token) >= 43  # 32 bytes, URL-safe base64
    assert session.id.startswith("ses_")
    assert session.id not in token
    assert session.created_at == session.last_seen_at == session.authenticated_at == START
    assert session.idle_expires_at == START + IDLE
    assert session.absolute_expires_at == START + ABSOLUTE
    assert (session.user_agent, session.ip, session.revoked_at) == ("Firefox", "10.0.0.1", None)


async def test_resolve_returns_session_and_account(db: Database, alice: Account) -> None:
    token = await new_session(db, alice)
    async with db.transaction() as stores:
        resolved = await stores.sessions.resolve(token)
    assert resolved is not None
    session, account = resolved
    assert account == alice
    assert session.account_id == alice.id


async def test_token_is_stored_only_as_sha256(db: Database, alice: Account) -> None:
    token = await new_session(db, alice)
    async with db.engine.connect() as conn:
        rows = (await conn.execute(select(sessions))).all()
    assert len(rows) == 1
    assert rows[0].token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert all(token not in str(value) for value in rows[0])


@pytest.mark.parametrize("token", ["", "nope", "x" * 5000, "\x00", "ü" * 40])
async def test_unknown_or_odd_tokens_resolve_to_none(
    db: Database, alice: Account, token: str
) -> None:
    await new_session(db, alice)
    assert await resolve(db, token) is None


async def test_idle_timeout(db: Database, alice: Account, clock: FixedClock) -> None:
    token = await new_session(db, alice)
    clock.advance(IDLE.total_seconds() - 1)
    assert await resolve(db, token) is not None
    clock.advance(IDLE.total_seconds())
    assert await resolve(db, token) is None


async def test_use_slides_the_idle_expiry(db: Database, alice: Account, clock: FixedClock) -> None:
    token = await new_session(db, alice)
    for _ in range(3):
        clock.advance(IDLE.total_seconds() - 60)
        resolved = await resolve(db, token)
        assert resolved is not None
    # Three idle periods minus a little have passed: only the sliding kept it alive.
    assert clock.now() - START > 2 * IDLE


async def test_sliding_never_passes_the_absolute_expiry(
    db: Database, alice: Account, clock: FixedClock
) -> None:
    token = await new_session(db, alice)
    while clock.now() < START + ABSOLUTE - IDLE / 2:
        clock.advance(IDLE.total_seconds() / 2)
        resolved = await resolve(db, token)
        assert resolved is not None
        session = resolved[0]
        assert session.idle_expires_at <= session.absolute_expires_at
    clock.advance(IDLE.total_seconds() / 2)
    assert await resolve(db, token) is None


async def test_last_seen_is_written_at_most_once_a_minute(
    db: Database, alice: Account, clock: FixedClock
) -> None:
    token = await new_session(db, alice)
    clock.advance(30)
    async with db.transaction() as stores:
        resolved = await stores.sessions.resolve(token)
    assert resolved is not None
    assert resolved[0].last_seen_at == START
    clock.advance(31)
    async with db.transaction() as stores:
        resolved = await stores.sessions.resolve(token)
        assert resolved is not None
        assert resolved[0].last_seen_at == clock.now()
        stored = await stores.sessions.get(resolved[0].id)
    assert stored is not None
    assert stored.last_seen_at == clock.now()
    assert stored.idle_expires_at == clock.now() + IDLE


async def test_device_sessions_use_device_lifetimes(
    db: Database, alice: Account, settings: Settings
) -> None:
    async with db.transaction() as stores:
        _, session = await stores.sessions.create(
            alice.id, "device", device_name="Living room TV", user_agent=None, ip=None
        )
    assert session.kind == "device"
    assert session.device_name == "Living room TV"
    assert session.idle_expires_at == START + timedelta(
        seconds=settings.device_session_idle_seconds
    )
    assert session.absolute_expires_at == START + timedelta(
        seconds=settings.device_session_absolute_seconds
    )


async def test_unknown_kind_is_refused(db: Database, alice: Account) -> None:
    async with db.transaction() as stores:
        with pytest.raises(ValueError, match="kind"):
            await stores.sessions.create(
                alice.id,
                "robot",  # type: ignore[arg-type]
                device_name=None,
                user_agent=None,
                ip=None,
            )


async def test_overlong_client_values_are_clipped(db: Database, alice: Account) -> None:
    async with db.transaction() as stores:
        token, session = await stores.sessions.create(
            alice.id, "device", device_name="n" * 500, user_agent="u" * 5000, ip="i" * 500
        )
    assert len(session.device_name or "") == 100
    assert len(session.user_agent or "") == 512
    resolved = await resolve(db, token)
    assert resolved is not None


async def test_revoke_one_session(db: Database, alice: Account) -> None:
    token = await new_session(db, alice)
    bob = await make_account(db, "bob", "bob@example.com")
    resolved = await resolve(db, token)
    assert resolved is not None
    session_id = resolved[0].id
    async with db.transaction() as stores:
        # Someone else's session id changes nothing.
        assert await stores.sessions.revoke(bob.id, session_id) is False
        assert await stores.sessions.revoke(alice.id, session_id) is True
        assert await stores.sessions.revoke(alice.id, session_id) is False
    assert await resolve(db, token) is None


async def test_revoke_all_except_current(db: Database, alice: Account) -> None:
    tokens = [await new_session(db, alice) for _ in range(3)]
    bob = await make_account(db, "bob", "bob@example.com")
    bob_token = await new_session(db, bob)
    current = await resolve(db, tokens[0])
    assert current is not None
    async with db.transaction() as stores:
        revoked = await stores.sessions.revoke_all(
            alice.id,
            except_session_id=current[0].id,
        )
    assert revoked == 2
    assert await resolve(db, tokens[0]) is not None
    assert [await resolve(db, t) for t in tokens[1:]] == [None, None]
    assert await resolve(db, bob_token) is not None
    async with db.transaction() as stores:
        assert await stores.sessions.revoke_all(alice.id) == 1
    assert await resolve(db, tokens[0]) is None


async def test_list_for_account_shows_only_live_sessions(
    db: Database, alice: Account, clock: FixedClock
) -> None:
    old = await new_session(db, alice)
    clock.advance(IDLE.total_seconds() + 1)  # `old` is now idle-expired
    live = await new_session(db, alice)
    revoked = await new_session(db, alice)
    await make_account(db, "bob", "bob@example.com")
    async with db.transaction() as stores:
        revoked_session = await stores.sessions.resolve(revoked)
        assert revoked_session is not None
        await stores.sessions.revoke(alice.id, revoked_session[0].id)
        live_session = await stores.sessions.resolve(live)
        listed = await stores.sessions.list_for_account(alice.id)
    assert live_session is not None
    assert [s.id for s in listed] == [live_session[0].id]
    assert await resolve(db, old) is None


async def test_mark_authenticated(db: Database, alice: Account, clock: FixedClock) -> None:
    token = await new_session(db, alice)
    clock.advance(600)
    async with db.transaction() as stores:
        resolved = await stores.sessions.resolve(token)
        assert resolved is not None
        assert await stores.sessions.mark_authenticated(resolved[0].id) is True
        assert await stores.sessions.mark_authenticated("ses_missing") is False
    resolved = await resolve(db, token)
    assert resolved is not None
    assert resolved[0].authenticated_at == clock.now()


@pytest.mark.sql_only
async def test_sessions_of_a_disabled_account_do_not_resolve(db: Database, alice: Account) -> None:
    token = await new_session(db, alice)
    async with db.engine.begin() as conn:
        await conn.execute(update(accounts).where(accounts.c.id == alice.id).values(disabled=True))
    assert await resolve(db, token) is None


@pytest.mark.sql_only
async def test_session_for_unknown_account_violates_the_foreign_key(db: Database) -> None:
    from sqlalchemy.exc import IntegrityError

    with pytest.raises(IntegrityError):
        async with db.transaction() as stores:
            await stores.sessions.create(
                "acc_missing", "browser", device_name=None, user_agent=None, ip=None
            )
    async with db.engine.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM sessions"))).scalar() == 0


async def test_a_read_only_check_never_writes_and_a_due_touch_slides_the_expiry(
    db: Database, alice: Account, clock: FixedClock
) -> None:
    token = await new_session(db, alice)
    clock.advance(120)  # a touch is due, but a read-only check must not write it
    async with db.read() as stores:
        resolved = await stores.sessions.resolve(token, touch=False)
    assert resolved is not None
    session = resolved[0]
    assert session.touch_due(clock.now())
    async with db.transaction() as stores:
        stored = await stores.sessions.get(session.id)
        assert stored is not None
        assert stored.last_seen_at == START
        assert await stores.sessions.touch(session)
        stored = await stores.sessions.get(session.id)
    assert stored is not None
    assert stored.last_seen_at == clock.now()
    assert stored.idle_expires_at == clock.now() + IDLE


async def test_a_late_touch_never_revives_an_expired_or_revoked_session(
    db: Database, alice: Account, clock: FixedClock
) -> None:
    # The session was read live, then idled out (or was revoked) before the touch ran.
    token = await new_session(db, alice)
    resolved = await resolve(db, token)
    assert resolved is not None
    clock.advance(IDLE.total_seconds())
    async with db.transaction() as stores:
        assert not await stores.sessions.touch(resolved[0])
    assert await resolve(db, token) is None

    token = await new_session(db, alice)
    resolved = await resolve(db, token)
    assert resolved is not None
    async with db.transaction() as stores:
        assert await stores.sessions.revoke(alice.id, resolved[0].id)
    clock.advance(120)
    async with db.transaction() as stores:
        assert not await stores.sessions.touch(resolved[0])
        stored = await stores.sessions.get(resolved[0].id)
    assert stored is not None
    assert stored.last_seen_at == resolved[0].last_seen_at

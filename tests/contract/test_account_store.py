"""AccountStore contract: the SQL store and the kit's, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import UTC

import pytest

from lwa_accounts import errors
from lwa_accounts.clock import FixedClock
from lwa_accounts.core.models import NewAccount
from lwa_accounts.store.db import Database
from tests.store.conftest import START, make_account


@pytest.mark.sql_only
async def test_create_assigns_random_id_and_timestamps(db: Database) -> None:
    first = await make_account(db, "alice", "alice@example.com")
    second = await make_account(db, "bob", "bob@example.com")
    assert first.id.startswith("acc_")
    assert len(first.id) == 26
    assert first.id != second.id
    assert first.created_at == first.updated_at == START
    assert first.disabled is False
    assert first.email_verified is False


@pytest.mark.sql_only
async def test_username_is_stored_lower_case_and_found_case_insensitively(db: Database) -> None:
    created = await make_account(db, "Alice.Smith")
    assert created.username == "alice.smith"
    async with db.transaction() as stores:
        for login in ("alice.smith", "ALICE.SMITH", " Alice.Smith "):
            found = await stores.accounts.get_by_username(login)
            assert found is not None
            assert found.id == created.id
        assert await stores.accounts.get_by_username("bob") is None


async def test_round_trip_keeps_every_field(db: Database) -> None:
    created = await make_account(db)
    async with db.transaction() as stores:
        loaded = await stores.accounts.get(created.id)
    assert loaded == created
    assert loaded.password_hash == "$argon2id$x"
    assert loaded.created_at.tzinfo is not None
    assert loaded.created_at.utcoffset() == UTC.utcoffset(None)


async def test_homoglyph_username_does_not_match(db: Database) -> None:
    await make_account(db, "kate")
    async with db.transaction() as stores:
        # KELVIN SIGN lower-cases to an ASCII "k" in Python; it must not find "kate".
        assert await stores.accounts.get_by_username("\u212aate") is None
        assert await stores.accounts.get_by_username("k\u0430te") is None  # Cyrillic a


async def test_email_is_kept_as_given_and_found_by_normalised_form(db: Database) -> None:
    created = await make_account(db, email="Alice@Example.COM")
    assert created.email == "Alice@Example.COM"
    async with db.transaction() as stores:
        for email in ("alice@example.com", " ALICE@EXAMPLE.COM ", "Alice@Example.COM"):
            found = await stores.accounts.get_by_email(email)
            assert found is not None
            assert found.id == created.id
        # NFKC: a fullwidth "@" and letters normalise to the same key.
        found = await stores.accounts.get_by_email("alice＠example.com")
        assert found is not None
        assert found.id == created.id
        assert await stores.accounts.get_by_email("other@example.com") is None


async def test_get_by_login_accepts_username_or_email(db: Database) -> None:
    created = await make_account(db)
    async with db.transaction() as stores:
        by_name = await stores.accounts.get_by_login("ALICE")
        by_email = await stores.accounts.get_by_login("alice@example.com")
        assert await stores.accounts.get_by_login("nobody@example.com") is None
    assert by_name is not None
    assert by_email is not None
    assert by_name.id == by_email.id == created.id


async def test_duplicate_username_in_other_case_is_refused(db: Database) -> None:
    await make_account(db, "alice", "a@example.com")
    with pytest.raises(errors.UsernameTaken):
        await make_account(db, "ALICE", "b@example.com")


async def test_duplicate_normalised_email_is_refused(db: Database) -> None:
    await make_account(db, "alice", "alice@example.com")
    with pytest.raises(errors.EmailTaken):
        await make_account(db, "bob", "ALICE@example.com ")


async def test_accounts_without_email_do_not_collide(db: Database) -> None:
    await make_account(db, "alice", None)
    second = await make_account(db, "bob", None)
    assert second.email is None


async def test_transaction_stays_usable_after_a_conflict(db: Database) -> None:
    await make_account(db, "alice")
    async with db.transaction() as stores:
        with pytest.raises(errors.UsernameTaken):
            await stores.accounts.create(NewAccount("alice", None, "Again", None))
        # The savepoint rolled back only the failed insert.
        bob = await stores.accounts.create(NewAccount("bob", None, "Bob", None))
    async with db.transaction() as stores:
        assert await stores.accounts.get(bob.id) is not None


async def test_rollback_on_exception_leaves_nothing(db: Database) -> None:
    created = None
    try:
        async with db.transaction() as stores:
            created = await stores.accounts.create(NewAccount("carol", None, "Carol", None))
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert created is not None
    async with db.transaction() as stores:
        assert await stores.accounts.get(created.id) is None
        assert await stores.accounts.get_by_username("carol") is None


@pytest.mark.sql_only
async def test_update_changes_only_given_fields(db: Database, clock: FixedClock) -> None:
    created = await make_account(db)
    clock.advance(60)
    async with db.transaction() as stores:
        updated = await stores.accounts.update(created.id, name="Alice Smith")
    assert updated.name == "Alice Smith"
    assert updated.email == created.email
    assert updated.password_hash == created.password_hash
    assert updated.updated_at == clock.now() != created.updated_at
    async with db.transaction() as stores:
        updated = await stores.accounts.update(
            created.id, email="New@Example.com", email_verified=True, password_hash="$new"
        )
        assert (await stores.accounts.get_by_email("new@example.com")) == updated
        assert await stores.accounts.get_by_email("alice@example.com") is None
    assert (updated.email, updated.email_verified, updated.password_hash) == (
        "New@Example.com",
        True,
        "$new",
    )


async def test_postal_code_is_stored_changed_and_removed(db: Database) -> None:
    async with db.transaction() as stores:
        created = await stores.accounts.create(
            NewAccount(
                username="zoe", email=None, name="Zoe", password_hash=None, postal_code="10115"
            )
        )
        assert created.postal_code == "10115"
        assert (await stores.accounts.get(created.id)) == created
        changed = await stores.accounts.update(created.id, postal_code="SW1A 1AA")
        assert changed.postal_code == "SW1A 1AA"
        untouched = await stores.accounts.update(created.id, name="Zoe Z.")
        assert untouched.postal_code == "SW1A 1AA"
        removed = await stores.accounts.update(created.id, postal_code="")
        assert removed.postal_code is None
    async with db.transaction() as stores:
        loaded = await stores.accounts.get(created.id)
        assert loaded is not None
        assert (loaded.name, loaded.postal_code) == ("Zoe Z.", None)


async def test_update_to_taken_email_is_refused_and_changes_nothing(db: Database) -> None:
    await make_account(db, "alice", "alice@example.com")
    bob = await make_account(db, "bob", "bob@example.com")
    async with db.transaction() as stores:
        with pytest.raises(errors.EmailTaken):
            await stores.accounts.update(bob.id, email="ALICE@example.com", name="Changed")
        assert await stores.accounts.get(bob.id) == bob


async def test_update_unknown_account_is_not_found(db: Database) -> None:
    async with db.transaction() as stores:
        with pytest.raises(errors.NotFound):
            await stores.accounts.update("acc_missing", name="x")


async def test_lock_reads_the_account(db: Database) -> None:
    created = await make_account(db)
    async with db.transaction() as stores:
        assert await stores.accounts.lock(created.id) == created
        assert await stores.accounts.lock("acc_missing") is None


async def test_list_pages_oldest_first(db: Database, clock: FixedClock) -> None:
    names = ["u1", "u2", "u3", "u4"]
    for name in names:
        await make_account(db, name, None)
        clock.advance(1)
    async with db.transaction() as stores:
        assert [a.username for a in await stores.accounts.list()] == names
        assert [a.username for a in await stores.accounts.list(limit=2, offset=1)] == ["u2", "u3"]
        assert list(await stores.accounts.list(limit=10, offset=10)) == []


async def test_concurrent_creates_of_one_username_have_one_winner(db: Database) -> None:
    async def attempt(i: int) -> str:
        try:
            async with db.transaction() as stores:
                await stores.accounts.create(
                    NewAccount("Racer" if i % 2 else "racer", f"r{i}@example.com", "R", None)
                )
        except errors.UsernameTaken:
            return "taken"
        return "created"

    results = await asyncio.gather(*(attempt(i) for i in range(20)))
    assert sorted(results) == ["created"] + ["taken"] * 19
    async with db.transaction() as stores:
        assert len(await stores.accounts.list()) == 1


async def test_blank_email_means_no_email(db: Database) -> None:
    first = await make_account(db, "alice", "  ")
    second = await make_account(db, "bob", "bob@example.com")
    assert first.email is None
    async with db.transaction() as stores:
        cleared = await stores.accounts.update(second.id, email="")
        assert cleared.email is None
        assert await stores.accounts.get_by_email("bob@example.com") is None
        # Both accounts are now without email: no collision on an empty key.
        assert (await stores.accounts.update(first.id, name="A")).email is None


async def test_lock_holds_other_writers_until_commit(db: Database) -> None:
    created = await make_account(db)
    locked = asyncio.Event()
    release = asyncio.Event()
    order: list[str] = []

    async def holder() -> None:
        async with db.transaction() as stores:
            assert await stores.accounts.lock(created.id) is not None
            locked.set()
            await release.wait()
            await stores.accounts.update(created.id, name="First")
            order.append("holder committed")

    async def waiter() -> None:
        await locked.wait()
        async with db.transaction() as stores:
            account = await stores.accounts.lock(created.id)
            order.append("waiter locked")
            assert account is not None
            assert account.name == "First"  # sees the holder's committed change

    tasks = [asyncio.create_task(holder()), asyncio.create_task(waiter())]
    await locked.wait()
    await asyncio.sleep(0.3)
    assert order == []  # the waiter is blocked behind the lock
    release.set()
    await asyncio.gather(*tasks)
    assert order == ["holder committed", "waiter locked"]


async def test_conflict_is_told_apart_by_constraint_not_by_value(db: Database) -> None:
    # A username that spells the other constraint's column must still be "username taken".
    await make_account(db, "email_normalized", "a@example.com")
    with pytest.raises(errors.UsernameTaken):
        await make_account(db, "email_normalized", "b@example.com")
    await make_account(db, "carol", "username@example.com")
    with pytest.raises(errors.EmailTaken):
        await make_account(db, "dave", "username@example.com")

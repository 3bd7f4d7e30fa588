"""security.md item 11, deterministically: a first sign-in that loses the create-and-link
race to a parallel one of the same Amazon user looks again and signs in to what it made.

Two interleavings on PostgreSQL (READ COMMITTED: each statement sees the latest commit),
forced by running the winner's whole sign-in at a chosen point inside the loser's reads:

- between the loser's look-up by user_id (no link yet) and by email (the winner's new
  account, linked to this same Amazon user): the facts straddle the commit. This used to
  answer 409 ``email_account_linked_to_other_amazon`` for the winner's own link.
- after both look-ups found nothing: the loser decides to create, hits the unique
  constraints (the savepoint undoes its half) and looks again.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from sqlalchemy import text

from lwa_accounts.clock import FixedClock
from lwa_accounts.core.models import Account
from lwa_accounts.flows.audit import Event
from lwa_accounts.flows.context import Deps
from lwa_accounts.settings import Settings
from lwa_accounts.store.accounts import SqlAccountStore
from lwa_accounts.store.db import Database
from tests.flows.test_amazon import amazon_sign_in, audit_kinds, signed_in

pytestmark = pytest.mark.postgres


@pytest.fixture
async def pg(postgres_url: str, settings: Settings, clock: FixedClock) -> AsyncIterator[Database]:
    database = Database(postgres_url, settings=settings, clock=clock)
    await database.upgrade()
    try:
        yield database
    finally:
        await database.dispose()


def _winner_inside_email_lookup(
    monkeypatch: pytest.MonkeyPatch, winner: Callable[[], Awaitable[object]], *, before: bool
) -> list[object]:
    """Run ``winner`` (once) just before or just after the next look-up by email."""
    real = SqlAccountStore.get_by_email
    armed = [True]
    ran: list[object] = []

    async def get_by_email(self: SqlAccountStore, email: str) -> Account | None:
        if armed[0] and before:
            armed[0] = False
            ran.append(await winner())
        found = await real(self, email)
        if armed[0] and not before:
            armed[0] = False
            ran.append(await winner())
        return found

    monkeypatch.setattr(SqlAccountStore, "get_by_email", get_by_email)
    return ran


async def _one_account_one_link(db: Database) -> None:
    async with db.engine.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM accounts"))).scalar() == 1
        assert (await conn.execute(text("SELECT count(*) FROM amazon_identities"))).scalar() == 1


async def test_sec11_facts_straddling_the_winners_commit_sign_in(
    pg: Database, deps: Deps, monkeypatch: pytest.MonkeyPatch
) -> None:
    ran = _winner_inside_email_lookup(monkeypatch, lambda: amazon_sign_in(pg, deps), before=True)
    loser = await amazon_sign_in(pg, deps)
    assert len(ran) == 1
    winner = signed_in(ran[0])
    assert winner.created
    outcome = signed_in(loser)  # was Refused(email_account_linked_to_other_amazon)
    assert not outcome.created
    assert outcome.signed_in.account.id == winner.signed_in.account.id
    await _one_account_one_link(pg)
    assert Event.AMAZON_SIGNIN_CONFLICT in await audit_kinds(pg)


async def test_sec11_create_conflict_looks_again_and_signs_in(
    pg: Database, deps: Deps, monkeypatch: pytest.MonkeyPatch
) -> None:
    ran = _winner_inside_email_lookup(monkeypatch, lambda: amazon_sign_in(pg, deps), before=False)
    loser = await amazon_sign_in(pg, deps)
    winner = signed_in(ran[0])
    outcome = signed_in(loser)
    assert (winner.created, outcome.created) == (True, False)
    assert outcome.signed_in.account.id == winner.signed_in.account.id
    await _one_account_one_link(pg)
    async with pg.transaction() as stores:
        reasons = [
            event.detail
            for event in await stores.audit.list(limit=100)
            if event.kind == Event.AMAZON_SIGNIN_CONFLICT
        ]
    assert reasons
    assert set(reasons) <= {"reason=email_taken", "reason=username_taken"}

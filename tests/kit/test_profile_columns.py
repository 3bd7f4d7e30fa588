"""The profile over a company's table whose mapping leaves a column out: a postal code or
a name it cannot store is refused (501 ``not_supported``), and nothing is written."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from lwa_accounts import errors
from lwa_accounts.clock import FixedClock
from lwa_accounts.flows.accounts import register, sign_in_with_password
from lwa_accounts.flows.context import ClientInfo, Context, Deps
from lwa_accounts.flows.profile import ProfileChanges, update_profile
from lwa_accounts.kit.database import KitDatabase
from lwa_accounts.kit.mapping import UsersTableMapping
from lwa_accounts.passwords import Argon2Hasher
from lwa_accounts.throttle import Throttle
from tests.flows.conftest import PASSWORD, START, fast_settings
from tests.kit.conftest import MAPPING, create_legacy_table


@pytest.mark.parametrize(
    ("mapping", "changes"),
    [
        (replace(MAPPING, postal_code_column=None), {"name": "Zoe Z.", "postal_code": "10115"}),
        (replace(MAPPING, name_column=None), {"name": "Zoe Z."}),
    ],
)
async def test_a_field_the_table_cannot_store_is_refused_and_nothing_written(
    tmp_path: Path, database_url: str, mapping: UsersTableMapping, changes: dict[str, str]
) -> None:
    await create_legacy_table(database_url, users=())
    settings = fast_settings(tmp_path)
    database = KitDatabase(
        database_url,
        settings=settings,
        mapping=mapping,
        clock=FixedClock(START),
    )
    await database.upgrade()
    throttle = Throttle(settings)
    deps = Deps(
        settings=settings,
        hasher=Argon2Hasher(settings),
        throttle=throttle,
        clock=FixedClock(START),
        common_passwords=frozenset(),
    )
    ctx = Context(deps, database, ClientInfo(ip="198.51.100.9"))
    try:
        async with ctx.transaction() as tx:
            await register(tx, username="zoe", email=None, name="Zoe", password=PASSWORD)
        async with ctx.transaction() as tx:
            me = await sign_in_with_password(
                tx, login="zoe", password=PASSWORD, kind="device", device_name=None
            )
        with pytest.raises(errors.NotSupported):
            await update_profile(
                ctx,
                session=me.session,
                account=me.account,
                changes=ProfileChanges(**changes),
                password=None,
            )
        async with ctx.transaction() as tx:
            after = await tx.accounts.get(me.account.id)
        assert after == me.account
    finally:
        await throttle.aclose()
        await database.dispose()

"""Amazon's device code sealed at rest: an altered one reads back as None and is logged
(the purpose, never the value), on SQLite and PostgreSQL."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from lwa_accounts.core.device_grant import AmazonAuthorization
from lwa_accounts.store.db import Database
from lwa_accounts.store.devices import DEVICE_CODE_SEAL
from lwa_accounts.store.schema import amazon_device_authorizations
from tests.store.conftest import START

DEVICE_CODE = "amazon-device-code-never-logged"


async def test_an_altered_device_code_is_dropped_and_logged(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    auth = AmazonAuthorization(
        id_hash="a" * 64,
        status="pending",
        user_code="ABCDEF",
        device_code=DEVICE_CODE,
        verification_uri="https://amazon.com/us/code",
        device_name=None,
        interval=5,
        amazon_interval=5,
        created_at=START,
        expires_at=START + timedelta(minutes=10),
    )
    async with db.transaction() as stores:
        await stores.devices.create_authorization(auth)
    with caplog.at_level(logging.WARNING, logger="lwa_accounts.store.devices"):
        async with db.transaction() as stores:
            got = await stores.devices.get_authorization(auth.id_hash)
        assert got is not None
        assert got.device_code == DEVICE_CODE
        assert caplog.records == []

        # Someone with write access to the database copies another row's seal in.
        async with db.transaction() as stores:
            await stores.devices.create_authorization(replace(auth, id_hash="b" * 64))
        async with db.engine.begin() as conn:
            c = amazon_device_authorizations.c
            other = (
                await conn.execute(select(c.device_code).where(c.id_hash == "b" * 64))
            ).scalar_one()
            await conn.execute(
                update(amazon_device_authorizations)
                .where(c.id_hash == "a" * 64)
                .values(device_code=other)
            )
        async with db.transaction() as stores:
            got = await stores.devices.get_authorization(auth.id_hash)
    assert got is not None
    assert got.device_code is None
    [record] = caplog.records
    assert record.levelno == logging.WARNING
    assert DEVICE_CODE_SEAL in record.getMessage()
    assert record.__dict__["seal_purpose"] == DEVICE_CODE_SEAL
    assert DEVICE_CODE not in caplog.text
    assert other not in caplog.text

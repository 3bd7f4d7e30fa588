"""create_app's plug-in points: a replacement password hasher and a start-up check."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager

from lwa_accounts.passwords import Argon2Hasher
from lwa_accounts.store.db import Database
from lwa_accounts.web.app import create_app
from lwa_accounts.web.services import Services
from tests.web.conftest import BASE_URL, PASSWORD, make_settings


class CountingHasher(Argon2Hasher):
    """Argon2id that counts its calls, to prove every flow uses the hasher it is given."""

    calls: list[str]

    async def hash(self, password: str) -> str:
        self.calls.append("hash")
        return await super().hash(password)

    async def verify(self, password_hash: str, password: str) -> bool:
        self.calls.append("verify")
        return await super().verify(password_hash, password)


async def test_the_given_hasher_serves_registration_and_sign_in(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    hasher = CountingHasher(settings)
    hasher.calls = []
    app = create_app(settings, hasher=hasher)
    async with LifespanManager(app) as manager:
        services: Services = app.state.services
        assert services.hasher is hasher
        assert services.deps.hasher is hasher
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
            account = {"username": "ada", "name": "Ada", "password": PASSWORD}
            assert (await client.post("/api/v1/accounts", json=account)).status_code == 201
            login = {"username": "ada", "password": PASSWORD}
            assert (await client.post("/api/v1/sessions", json=login)).status_code == 201
    assert hasher.calls == ["hash", "verify"]


class Refusal(RuntimeError):
    pass


async def test_a_failing_start_up_check_stops_the_app_and_closes_its_database(
    tmp_path: Path,
) -> None:
    settings = make_settings(tmp_path)
    database = Database.from_settings(settings)
    disposed: list[bool] = []
    dispose = database.dispose

    async def recording_dispose() -> None:
        disposed.append(True)
        await dispose()

    database.dispose = recording_dispose  # type: ignore[method-assign]

    async def check() -> None:
        raise Refusal("the database does not fit")

    app = create_app(settings, database=database, check_database=check, dispose_database=True)
    with pytest.raises(Refusal):
        async with LifespanManager(app):
            pass  # pragma: no cover - start-up must fail
    assert disposed == [True]
    assert not hasattr(app.state, "services")


async def test_a_database_passed_in_stays_open_by_default(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    database = Database.from_settings(settings)
    checked: list[bool] = []

    async def check() -> None:
        checked.append(True)

    try:
        async with LifespanManager(create_app(settings, database=database, check_database=check)):
            pass
        assert checked == [True]
        async with database.transaction() as stores:  # still usable after the app stopped
            assert await stores.accounts.get("acc_missing") is None
    finally:
        await database.dispose()

"""docs/operations.md "Back up and restore", run exactly as written, on SQLite and PostgreSQL.

A real server gets accounts, an Amazon link made by the password step, an Amazon-only
account and sessions (one revoked before the backup). The page's backup block runs while
the server serves; then the server keeps going (an account registered, a session issued,
one revoked). The page's restore block puts the backup into a fresh data directory or a
fresh database, and a new server on it must show what the page says a restore keeps,
loses and brings back. Amazon is the embedded emulator: its demo customers have the same
Amazon user ids in every process, as real customers keep theirs.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.conftest import (
    POSTGRES_HOST,
    POSTGRES_PORT,
    _database_url,
    _in_thread,
    _new_database_name,
    require_service,
)
from tests.ops.docs import block_under, run_block, sections
from tests.ops.harness import (
    PASSWORD,
    bearer,
    confirm_email,
    me,
    password_sign_in,
    register,
    server_env,
    serving,
    session_token,
)

pytestmark = pytest.mark.slow

SECTION = "Back up and restore"
SECRET_KEY = "backup-restore-test-secret-key-0123456789"
ADA = "amzn1.account.ADALOVELACE0000000000000DEMO"
GRACE = "amzn1.account.GRACEHOPPER0000000000000DEMO"


@dataclass(frozen=True)
class Before:
    """What the service held when the backup was taken."""

    ada_id: str
    grace_id: str
    kept: str  # a session live at the backup
    revoked_before: str  # revoked before the backup
    revoked_after: str  # live at the backup, revoked after it


@dataclass(frozen=True)
class After:
    """What happened after the backup, and so is not in it."""

    late_token: str
    flow_id: str  # a link step started after the backup


def amazon_sign_in(base: str, user_id: str) -> httpx.Response:
    amazon = base + "/_amazon/_emulator"
    minted = httpx.post(amazon + "/tokens", json={"user_id": user_id}, timeout=30)
    assert minted.status_code == 201, minted.text
    return httpx.post(
        base + "/api/v1/sessions/amazon",
        json={"access_token": minted.json()["access_token"]},
        timeout=30,
    )


def sign_out(base: str, token: str) -> None:
    response = httpx.delete(base + "/api/v1/sessions/current", headers=bearer(token), timeout=30)
    assert response.status_code == 204, response.text


def before_backup(base: str, env: dict[str, str]) -> Before:
    ada = register(base, "ada")  # ada@example.com: Amazon's Ada must prove this password
    register(base, "hal")  # hal@example.com: an Amazon customer of that e-mail comes later
    for address in ("ada@example.com", "hal@example.com"):  # confirmed: link steps' targets
        confirm_email(base, env, address)
    started = amazon_sign_in(base, ADA)
    assert started.json().get("result") == "link_required", started.text
    linked = httpx.post(
        base + "/api/v1/flows/link",
        json={"flow_id": started.json()["flow"]["id"], "password": PASSWORD},
        timeout=30,
    )
    assert linked.status_code == 201, linked.text
    grace = amazon_sign_in(base, GRACE)  # no local account: made from Amazon's profile
    assert grace.status_code == 201, grace.text
    assert grace.json()["created"] is True
    revoked_before = session_token(base, "ada")
    sign_out(base, revoked_before)
    return Before(
        ada_id=ada["id"],
        grace_id=grace.json()["account"]["id"],
        kept=session_token(base, "ada"),
        revoked_before=revoked_before,
        revoked_after=session_token(base, "ada"),
    )


def after_backup(base: str, before: Before) -> After:
    register(base, "late")
    sign_out(base, before.revoked_after)
    assert me(base, before.revoked_after).status_code == 401
    hal = httpx.post(
        base + "/_amazon/_emulator/customers",
        json={"name": "Hal", "email": "hal@example.com", "password": "customer-password"},
        timeout=30,
    )
    assert hal.status_code == 201, hal.text
    started = amazon_sign_in(base, hal.json()["user_id"])
    assert started.json().get("result") == "link_required", started.text
    return After(late_token=session_token(base, "ada"), flow_id=started.json()["flow"]["id"])


def check_restored(base: str, env: dict[str, str], before: Before, after: After) -> None:
    # Ready for the balancer: the restored schema is this release's.
    ready = httpx.get(base + "/ready", timeout=30)
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"] == {"database": "ok", "migrations": "ok"}
    # Kept: passwords, links, the Amazon-only account, sessions live at the backup.
    assert password_sign_in(base, "ada").status_code == 201
    for user_id, account_id in ((ADA, before.ada_id), (GRACE, before.grace_id)):
        again = amazon_sign_in(base, user_id)
        assert again.status_code == 201, again.text
        assert (again.json()["created"], again.json()["account"]["id"]) == (False, account_id)
    assert me(base, before.kept).json()["account"]["id"] == before.ada_id
    assert me(base, before.revoked_before).status_code == 401
    # Lost: what came after.
    lost = me(base, after.late_token)
    assert (lost.status_code, lost.json()["code"]) == (401, "not_authenticated")
    assert password_sign_in(base, "late").status_code == 401
    flow = httpx.post(
        base + "/api/v1/flows/link",
        json={"flow_id": after.flow_id, "password": PASSWORD},
        timeout=30,
    )
    assert (flow.status_code, flow.json()["code"]) == (404, "flow_not_found"), flow.text
    registered = "SELECT count(*) FROM audit_events WHERE kind = 'account.registered'"
    assert scalar(env, registered) == 2  # ada's and hal's, not late's
    register(base, "late")  # the name is free again
    # Brought back: the revocation made after the backup is undone.
    assert me(base, before.revoked_after).status_code == 200


def scalar(env: dict[str, str], sql: str) -> object:
    """One value from the database a server with ``env`` uses (read beside the server)."""
    url = env.get("LWA_ACCOUNTS_DATABASE_URL") or (
        f"sqlite+aiosqlite:///{env['LWA_ACCOUNTS_DATA_DIR']}/lwa-accounts.db"
    )

    async def read() -> object:
        engine = create_async_engine(url)
        try:
            async with engine.connect() as connection:
                return (await connection.execute(text(sql))).scalar()
        finally:
            await engine.dispose()

    with ThreadPoolExecutor(max_workers=1) as pool:  # the caller may run an event loop
        return pool.submit(asyncio.run, read()).result()


def run(section: str, heading: str, *, cwd: Path, env: dict[str, str]) -> str:
    done = run_block(block_under(section, heading), cwd=cwd, env=env)
    assert done.returncode == 0, f"{heading}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def accounts_in(path: Path) -> list[str]:
    with sqlite3.connect(path) as db:
        return [row[0] for row in db.execute("SELECT username FROM accounts ORDER BY 1")]


def test_sqlite_backup_while_serving_and_restore_into_a_fresh_data_dir(tmp_path: Path) -> None:
    section = sections()[SECTION]
    live, fresh, work = tmp_path / "live", tmp_path / "fresh", tmp_path / "work"
    work.mkdir()
    live_env = server_env(live, secret_key=SECRET_KEY)
    with serving(tmp_path, "live", live_env) as base:
        before = before_backup(base, live_env)
        checked = run(section, "SQLite: back up", cwd=work, env=server_env(live))
        assert checked.strip() == "ok"  # PRAGMA integrity_check
        # Where the sqlite3 command is missing: the page's Python backup, the same snapshot.
        (work / "python").mkdir()
        run(section, "SQLite: back up with Python", cwd=work / "python", env=server_env(live))
        after = after_backup(base, before)
    assert accounts_in(work / "backup" / "lwa-accounts.db") == ["ada", "grace", "hal"]
    assert accounts_in(work / "python" / "backup" / "lwa-accounts.db") == ["ada", "grace", "hal"]

    run(section, "SQLite: restore", cwd=work, env=server_env(fresh, secret_key=SECRET_KEY))

    restored_env = server_env(fresh, secret_key=SECRET_KEY)
    with serving(tmp_path, "restored", restored_env) as base:
        check_restored(base, restored_env, before, after)


@contextmanager
def postgres_databases() -> Iterator[tuple[str, str]]:
    """(a fresh database for the live server, the name the restore will create)."""
    require_service("PostgreSQL", POSTGRES_HOST, POSTGRES_PORT)
    live, restored = _new_database_name(), _new_database_name()
    _in_thread(f'CREATE DATABASE "{live}"')
    try:
        yield live, restored
    finally:
        for name in (live, restored):
            _in_thread(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.mark.postgres
def test_postgres_dump_while_serving_and_restore_into_a_fresh_database(tmp_path: Path) -> None:
    section = sections()[SECTION]
    work = tmp_path / "work"
    work.mkdir()
    with postgres_databases() as (live, restored):
        libpq = {
            "PGHOST": POSTGRES_HOST,
            "PGPORT": str(POSTGRES_PORT),
            "PGUSER": "postgres",
            "DB": live,
            "RESTORED_DB": restored,
        }
        live_env = server_env(
            tmp_path / "live", database_url=_database_url(live), secret_key=SECRET_KEY
        )
        with serving(tmp_path, "live", live_env) as base:
            before = before_backup(base, live_env)
            run(section, "PostgreSQL: back up", cwd=work, env={**server_env(tmp_path), **libpq})
            after = after_backup(base, before)
        assert (work / "backup" / "lwa-accounts.dump").stat().st_size > 0

        restore_env = {**server_env(tmp_path / "fresh", secret_key=SECRET_KEY), **libpq}
        migrated = run(section, "PostgreSQL: restore", cwd=work, env=restore_env)
        assert "Database upgraded to" in migrated

        restored_env = server_env(
            tmp_path / "fresh", database_url=_database_url(restored), secret_key=SECRET_KEY
        )
        with serving(tmp_path, "restored", restored_env) as base:
            check_restored(base, restored_env, before, after)

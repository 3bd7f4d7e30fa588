"""`lwa-accounts audit`: prints Amazon sign-ins, links and refusals, filtered."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import pytest

from lwa_accounts import errors
from lwa_accounts.cli import main
from lwa_accounts.core.models import AmazonProfile
from lwa_accounts.flows import amazon
from lwa_accounts.flows.amazon import SignedInWithAmazon
from lwa_accounts.flows.context import Deps
from lwa_accounts.store.db import Database
from tests.flows.conftest import CLIENT, context_of

ADA = AmazonProfile(
    user_id="amzn1.account.AF5ZQ2TTD6O4W4WMR7FZH5QGRX4A",
    client_id="amzn1.application-oa2-client.web",
    name="Ada Lovelace",
    email="ada@example.com",
)
SECRET_TOKEN = "Atza|secret-token-never-printed"


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LWA_ACCOUNTS_ENV", "test")
    monkeypatch.setenv("LWA_ACCOUNTS_DATA_DIR", str(tmp_path))


async def seed(db: Database, deps: Deps) -> str:
    ctx = context_of(db, deps)
    async with ctx.transaction() as tx:
        outcome = await amazon.sign_in_with_profile(tx, ADA, kind="device", starter=amazon.Device())
    with pytest.raises(errors.FlowNotFound):  # a guessed flow id: refused, and audited
        async with ctx.transaction() as tx:
            await amazon.confirm_link(tx, "flw_" + "x" * 43, SECRET_TOKEN, amazon.Device())
    assert isinstance(outcome, SignedInWithAmazon)
    return outcome.signed_in.account.id


async def test_audit_prints_amazon_events(
    env: None, db: Database, deps: Deps, capsys: pytest.CaptureFixture[str]
) -> None:
    account_id = await seed(db, deps)
    async with context_of(db, deps).transaction() as tx:
        other = replace(ADA, user_id="amzn1.account.BBBBBBBBBBBBBBBBBBBBBBBBBBBB", email="b@x.org")
        await amazon.sign_in_with_profile(tx, other, kind="device", starter=amazon.Device())

    assert await _run(["audit"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split("\t") == [
        "at",
        "kind",
        "account",
        "amazon_user",
        "client_id",
        "ip",
        "detail",
    ]
    kinds = [line.split("\t")[1] for line in lines[1:]]
    assert kinds.count("amazon.account_created") == 2
    assert "amazon.refused" in kinds
    refused = next(line for line in lines if "\tamazon.refused\t" in line).split("\t")
    assert refused[5] == CLIENT.ip
    assert refused[6] == "reason=flow_not_found"
    created = next(line for line in lines if "\tamazon.account_created\t" in line).split("\t")
    assert created[2:5] == [account_id, ADA.user_id, ADA.client_id]
    assert SECRET_TOKEN not in "\n".join(lines)

    assert await _run(["audit", "--account", account_id, "--kind", "amazon."]) == 0
    filtered = capsys.readouterr().out.splitlines()[1:]
    assert filtered
    assert all(line.split("\t")[2] == account_id for line in filtered)
    assert all(line.split("\t")[1].startswith("amazon.") for line in filtered)

    assert await _run(["audit", "--since", "2999-01-01T00:00:00"]) == 0
    assert capsys.readouterr().out.splitlines()[1:] == []
    assert await _run(["audit", "--limit", "1"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 2


@pytest.mark.parametrize("args", [["--since", "yesterday"], ["--limit", "0"], ["--limit", "x"]])
def test_audit_refuses_bad_arguments(env: None, args: list[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["audit", *args])
    assert exited.value.code == 2


async def _run(argv: list[str]) -> int:
    # main() runs its own event loop (asyncio.run): call it from a worker thread.
    return await asyncio.to_thread(main, argv)

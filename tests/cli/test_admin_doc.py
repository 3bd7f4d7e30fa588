"""docs/operations.md "Operator's command line": every ``lwa-accounts admin`` block the page
shows, run as written (bash, this interpreter's ``lwa-accounts`` first on PATH) in page
order against a seeded database. The page's example account and session ids are replaced
by the seeded ones (ids are random); its Amazon user id is the seeded one as it stands."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

from lwa_accounts.core.models import AmazonProfile
from lwa_accounts.flows import amazon
from lwa_accounts.flows.accounts import register
from lwa_accounts.flows.amazon import SignedInWithAmazon
from lwa_accounts.flows.context import ClientInfo, Context, Deps
from lwa_accounts.passwords import Argon2Hasher, common_passwords
from lwa_accounts.store.db import Database
from lwa_accounts.testing import make_link
from lwa_accounts.throttle import Throttle
from tests.ops.docs import Block, blocks, sections
from tests.ops.docs import run_block as run_doc_block
from tests.web.conftest import PASSWORD, make_settings

SECTION = "Operator's command line"
PAGE_ACCOUNT = "acc_8pExPsuQYKymTu_SH2qTQw"
PAGE_SESSION = "ses_2kq0Y7n1c3N4Xx2b8s9QwA"
ADA = AmazonProfile(
    user_id="amzn1.account.AF5ZQ2TTD6O4W4WMR7FZH5QGRX4A",  # the page's, as written
    client_id="amzn1.application-oa2-client.web",
    name="Ada Lovelace",
    email="ada@example.com",
)


async def seed(ctx: Context) -> tuple[str, str]:
    """Ada: a password, the page's Amazon identity linked, one device session."""
    async with ctx.transaction() as tx:
        account = await register(
            tx, username="ada", email="ada@example.com", name="Ada", password=PASSWORD
        )
    async with ctx.database.transaction() as stores:
        await make_link(stores.identities, account, ADA)
    async with ctx.transaction() as tx:
        outcome = await amazon.sign_in_with_profile(
            tx, ADA, kind="device", starter=amazon.Device(), device_name="Living room TV"
        )
    assert isinstance(outcome, SignedInWithAmazon)
    assert outcome.signed_in.account.id == account.id
    return account.id, outcome.signed_in.session.id


async def test_every_admin_block_runs_as_written(tmp_path: Path) -> None:
    data = tmp_path / "var"
    settings = make_settings(data)
    database = Database.from_settings(settings)
    await database.upgrade()
    throttle = Throttle(settings)
    deps = Deps(settings, Argon2Hasher(settings), throttle, database.clock, common_passwords())
    try:
        account_id, session_id = await seed(
            Context(deps, database, ClientInfo(ip="198.51.100.7", user_agent="pytest"))
        )
    finally:
        await throttle.aclose()
        await database.dispose()

    page = blocks(sections()[SECTION])
    assert len(page) == 3, [b.heading for b in page]  # find; the actions; the export
    env = {k: v for k, v in os.environ.items() if not k.startswith("LWA_ACCOUNTS_")}
    env.update({"LWA_ACCOUNTS_ENV": "test", "LWA_ACCOUNTS_DATA_DIR": str(data)})
    # The database the seed went to (PostgreSQL under LWA_TEST_DATABASE=postgres).
    env["LWA_ACCOUNTS_DATABASE_URL"] = settings.effective_database_url
    work = tmp_path / "work"
    work.mkdir()
    outputs = []
    for block in page:
        assert block.commands
        assert all(c.startswith("lwa-accounts admin ") for c in block.commands)
        text = block.text.replace(PAGE_ACCOUNT, account_id).replace(PAGE_SESSION, session_id)
        done = run_doc_block(Block(block.heading, "sh", text), cwd=work, env=env)
        assert done.returncode == 0, (block.text, done.stdout, done.stderr)
        assert done.stderr == "", done.stderr
        outputs.append(done.stdout)

    found, acted, _ = outputs
    assert found.count(account_id) >= 4  # each of the four finds shows Ada
    assert ADA.user_id in found
    assert session_id in found
    lines = acted.splitlines()  # `disable --json` prints one indented document among lines
    start = lines.index("{")
    disabled = json.loads("\n".join(lines[start : lines.index("}", start) + 1]))
    assert disabled["disabled"] is True, disabled

    # The export of Ada's events (the page's `> ada.jsonl`) holds every action, by jane.
    events = [json.loads(line) for line in (work / "ada.jsonl").read_text().splitlines()]
    assert {e["account_id"] for e in events} == {account_id}
    admin_events = [(e["kind"], e["detail"]) for e in events if e["kind"].startswith("admin.")]
    assert [kind for kind, _ in admin_events] == [
        "admin.unlinked_amazon",
        "admin.session_revoked",
        "admin.sessions_revoked",
        "admin.account_disabled",
        "admin.account_enabled",
    ]
    assert all("operator=jane" in (detail or "") for _, detail in admin_events)
    # The November export: a CSV with its header (this run's events are not in November).
    with (work / "audit-november.csv").open(newline="") as exported:
        rows = list(csv.reader(exported))
    assert rows[0] == ["at", "kind", "account_id", "amazon_user_id", "client_id", "ip", "detail"]

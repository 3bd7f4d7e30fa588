"""`lwa-accounts admin ...` against a real database (SQLite, and PostgreSQL when reachable),
the real app in-process where a session or a sign-in must be seen failing, and one run as
a separate process."""

from __future__ import annotations

import asyncio
import csv
import json
import os
import shlex
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from lwa_accounts import errors
from lwa_accounts.cli import build_parser, main
from lwa_accounts.core.models import Account, AmazonProfile, AuditEvent
from lwa_accounts.flows import amazon
from lwa_accounts.flows.accounts import register
from lwa_accounts.flows.amazon import LinkRequired, SignedInWithAmazon
from lwa_accounts.flows.context import ClientInfo, Context, Deps
from lwa_accounts.passwords import Argon2Hasher, common_passwords
from lwa_accounts.settings import Settings
from lwa_accounts.store.db import Database
from lwa_accounts.testing import make_account, make_link
from lwa_accounts.throttle import Throttle
from tests.flows.conftest import verify_address
from tests.processes import run_cli
from tests.web.conftest import PASSWORD, api_register, bearer, make_settings, serve_app

ADA = AmazonProfile(
    user_id="amzn1.account.AF5ZQ2TTD6O4W4WMR7FZH5QGRX4A",
    client_id="amzn1.application-oa2-client.web",
    name="Ada Lovelace",
    email="ada@example.com",
)
CLIENT = ClientInfo(ip="198.51.100.7", user_agent="pytest")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def settings(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Settings:
    """The tests' settings; the command reads the same database from the environment."""
    monkeypatch.setenv("LWA_ACCOUNTS_ENV", "test")
    monkeypatch.setenv("LWA_ACCOUNTS_DATA_DIR", str(tmp_path))
    if request.param == "postgres":
        monkeypatch.setenv("LWA_ACCOUNTS_DATABASE_URL", request.getfixturevalue("postgres_url"))
    return make_settings(tmp_path)


@pytest.fixture
async def ctx(settings: Settings) -> AsyncIterator[Context]:
    """A context on the system clock, like the command's (sessions must be live for it)."""
    db = Database.from_settings(settings)
    await db.upgrade()
    throttle = Throttle(settings)
    deps = Deps(settings, Argon2Hasher(settings), throttle, db.clock, common_passwords())
    try:
        yield Context(deps, db, CLIENT)
    finally:
        await throttle.aclose()
        await db.dispose()


async def admin(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """``lwa-accounts admin *argv`` in this process: (exit code, stdout, stderr)."""
    capsys.readouterr()
    try:
        # main() runs its own event loop (asyncio.run): call it from a worker thread.
        code: object = await asyncio.to_thread(main, ["admin", *argv])
    except SystemExit as exited:  # argparse refusing the arguments
        code = exited.code
    out, err = capsys.readouterr()
    assert isinstance(code, int)
    return code, out, err


async def amazon_account(ctx: Context) -> SignedInWithAmazon:
    """An account made by an Amazon sign-in on a TV: linked, no password, one session."""
    async with ctx.transaction() as tx:
        outcome = await amazon.sign_in_with_profile(
            tx, ADA, kind="device", starter=amazon.Device(), device_name="Living room TV"
        )
    assert isinstance(outcome, SignedInWithAmazon)
    return outcome


async def password_account(ctx: Context, username: str = "ada") -> Account:
    async with ctx.transaction() as tx:
        return await register(
            tx, username=username, email=f"{username}@example.com", name="Ada", password=PASSWORD
        )


async def events_of(ctx: Context, kind_prefix: str = "admin.") -> list[AuditEvent]:
    async with ctx.database.transaction() as stores:
        events = await stores.audit.list(limit=1000)
    return [e for e in reversed(events) if e.kind.startswith(kind_prefix)]


# ---- find ----------------------------------------------------------------------------------


async def test_find_by_each_key(ctx: Context, capsys: pytest.CaptureFixture[str]) -> None:
    outcome = await amazon_account(ctx)
    account, session = outcome.signed_in.account, outcome.signed_in.session
    keys = [
        ["--id", account.id],
        ["--username", account.username.upper()],
        ["--email", "ADA@Example.com"],
        ["--amazon-user-id", ADA.user_id],
    ]
    for key in keys:
        code, out, err = await admin(capsys, "find", *key, "--json")
        assert (code, err) == (0, ""), key
        assert outcome.signed_in.token not in out
        found = json.loads(out)
        assert found["account"] == {
            "id": account.id,
            "username": account.username,
            "email": "ada@example.com",
            "name": "Ada Lovelace",
            "created_at": account.created_at.isoformat(),
            "disabled": False,
            "has_password": False,
        }
        (link,) = found["amazon_links"]
        assert link["amazon_user_id"] == ADA.user_id
        assert link["email"] == "ada@example.com"
        async with ctx.database.transaction() as stores:
            stored = await stores.identities.get_for_account(account.id)
        assert stored is not None
        assert link["linked_at"] == stored.linked_at.isoformat()
        assert found["sessions"] == [
            {
                "id": session.id,
                "kind": "device",
                "device_name": "Living room TV",
                "created_at": session.created_at.isoformat(),
                "last_seen_at": session.last_seen_at.isoformat(),
                "expires_at": session.expires_at.isoformat(),
            }
        ]
        kinds = [event["kind"] for event in found["events"]]
        assert {"amazon.account_created", "amazon.signed_in"} <= set(kinds)
        assert all(event["account_id"] == account.id for event in found["events"])

    code, out, _ = await admin(capsys, "find", "--id", account.id)
    assert code == 0
    for shown in (account.id, ADA.user_id, session.id, "Living room TV", "password:  no"):
        assert shown in out
    assert outcome.signed_in.token not in out
    code, out, _ = await admin(capsys, "find", "--id", account.id, "--events", "1", "--json")
    assert len(json.loads(out)["events"]) == 1
    code, out, _ = await admin(capsys, "find", "--id", account.id, "--events", "0", "--json")
    assert json.loads(out)["events"] == []


async def test_find_shows_no_terminal_escape(
    ctx: Context, capsys: pytest.CaptureFixture[str]
) -> None:
    # Names reach the store from elsewhere too (a kit table, an old import): a name that
    # carries an escape sequence must not drive the operator's terminal.
    async with ctx.database.transaction() as stores:
        eve = await make_account(stores.accounts, username="eve", name="Eve\x1b]0;pwned\x07\x9b2J")
    code, out, _ = await admin(capsys, "find", "--id", eve.id)
    assert code == 0
    assert "\x1b" not in out
    assert "\x9b" not in out
    assert "Eve\\x1b]0;pwned\\x07\\x9b2J" in out
    code, out, _ = await admin(capsys, "find", "--id", eve.id, "--json")
    assert "\x1b" not in out
    assert json.loads(out)["account"]["name"] == "Eve\x1b]0;pwned\x07\x9b2J"


@pytest.mark.parametrize(
    "key",
    [
        ["--id", "acc_nobody"],
        ["--username", "nobody"],
        ["--email", "nobody@example.com"],
        ["--amazon-user-id", "amzn1.account.NOBODY"],
        ["--id", "x" * 10_000],
    ],
)
async def test_find_nothing_is_exit_1(
    ctx: Context, capsys: pytest.CaptureFixture[str], key: list[str]
) -> None:
    await password_account(ctx)
    assert await admin(capsys, "find", *key) == (1, "", "error: No account matches.\n")


@pytest.mark.parametrize(
    "argv",
    [
        ["find"],
        ["find", "--id", "a", "--username", "b"],
        ["find", "--id", "a", "--events", "1001"],
        ["find", "--id", "a", "--events", "-1"],
        ["disable"],
        ["revoke-session", "acc_x"],
        ["export-audit", "--since", "yesterday"],
        ["export-audit", "--format", "xml"],
        ["frobnicate"],
    ],
)
async def test_bad_arguments_are_exit_2(
    capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:  # refused while parsing, before any database is opened
    code, out, err = await admin(capsys, *argv)
    assert code == 2
    assert out == ""
    assert "usage:" in err


# ---- unlink-amazon -------------------------------------------------------------------------


async def test_unlink_then_amazon_sign_in_asks_for_the_password_again(
    ctx: Context, capsys: pytest.CaptureFixture[str]
) -> None:
    ada = await verify_address(ctx, await password_account(ctx))  # a link step's target
    async with ctx.database.transaction() as stores:
        await make_link(stores.identities, ada, ADA)
    async with ctx.transaction() as tx:
        before = await amazon.sign_in_with_profile(tx, ADA, kind="device", starter=amazon.Device())
    assert isinstance(before, SignedInWithAmazon)
    assert before.signed_in.account.id == ada.id

    other = "amzn1.account.SOMEONEELSE0000000000000000"
    code, _, err = await admin(capsys, "unlink-amazon", ada.id, "--amazon-user-id", other)
    assert code == 1
    assert "not the one linked" in err
    code, out, err = await admin(
        capsys,
        "unlink-amazon",
        ada.id,
        "--amazon-user-id",
        ADA.user_id,
        "--operator",
        "ops-jane",
        "--json",
    )
    assert (code, err) == (0, "")
    done = json.loads(out)
    assert (done["action"], done["account_id"], done["operator"]) == (
        "unlink-amazon",
        ada.id,
        "ops-jane",
    )
    assert done["amazon_link"]["amazon_user_id"] == ADA.user_id

    async with ctx.transaction() as tx:
        assert await tx.identities.get_for_account(ada.id) is None
        after = await amazon.sign_in_with_profile(tx, ADA, kind="device", starter=amazon.Device())
    assert isinstance(after, LinkRequired)  # the account holds the email: prove the password
    assert after.flow.target_account_id == ada.id

    (event,) = await events_of(ctx)
    assert (event.kind, event.account_id, event.amazon_user_id) == (
        "admin.unlinked_amazon",
        ada.id,
        ADA.user_id,
    )
    assert event.detail == "operator=ops-jane"
    code, _, err = await admin(capsys, "unlink-amazon", ada.id)
    assert (code, err) == (1, "error: No Amazon account is linked to this account.\n")


async def test_unlinking_the_only_way_in_needs_force(
    ctx: Context, capsys: pytest.CaptureFixture[str]
) -> None:
    account = (await amazon_account(ctx)).signed_in.account
    code, _, err = await admin(capsys, "unlink-amazon", account.id, "--operator", "ops")
    assert code == 1
    assert "no password" in err
    assert await events_of(ctx) == []
    async with ctx.database.transaction() as stores:
        assert await stores.identities.get_for_account(account.id) is not None

    code, _, _ = await admin(capsys, "unlink-amazon", account.id, "--operator", "ops", "--force")
    assert code == 0
    async with ctx.transaction() as tx:
        again = await amazon.sign_in_with_profile(tx, ADA, kind="device", starter=amazon.Device())
    # Never the old account again without its owner's say: a new one, or a registration step.
    assert not (isinstance(again, SignedInWithAmazon) and again.signed_in.account.id == account.id)
    (event,) = await events_of(ctx)
    assert event.detail == "operator=ops forced=yes"


# ---- sessions, on the real app ---------------------------------------------------------------


async def _sign_in(client: httpx.AsyncClient, device: str) -> str:
    response = await client.post(
        "/api/v1/sessions", json={"username": "ada", "password": PASSWORD, "device_name": device}
    )
    assert response.status_code == 201, response.text
    token: str = response.json()["session"]["token"]
    return token


async def _me(client: httpx.AsyncClient, token: str) -> int:
    return (await client.get("/api/v1/me", headers=bearer(token))).status_code


async def test_revoke_session_and_sessions_end_bearer_tokens_on_the_app(
    settings: Settings, ctx: Context, capsys: pytest.CaptureFixture[str]
) -> None:
    async with serve_app(settings) as client:
        account_id = (await api_register(client))["id"]
        kitchen, bedroom, phone = [
            await _sign_in(client, d) for d in ("Kitchen", "Bedroom", "Phone")
        ]
        other = await password_account(ctx, "bob")
        async with ctx.transaction() as tx:
            _, bobs = await tx.sessions.create(
                other.id, "device", device_name="Bob TV", user_agent=None, ip=None
            )
        _, out, _ = await admin(capsys, "find", "--id", account_id, "--json")
        by_device = {s["device_name"]: s["id"] for s in json.loads(out)["sessions"]}
        assert set(by_device) == {"Kitchen", "Bedroom", "Phone"}
        assert [await _me(client, t) for t in (kitchen, bedroom, phone)] == [200, 200, 200]

        code, out, err = await admin(
            capsys, "revoke-session", account_id, by_device["Kitchen"], "--operator", "ops-ann"
        )
        assert (code, err) == (0, "")
        assert by_device["Kitchen"] in out
        assert [await _me(client, t) for t in (kitchen, bedroom, phone)] == [401, 200, 200]
        # Refused, nothing changed: the same session again, another account's, a made-up one.
        for session_id in (by_device["Kitchen"], bobs.id, "ses_madeup", "x" * 5000):
            code, _, err = await admin(
                capsys, "revoke-session", account_id, session_id, "--operator", "ops-ann"
            )
            assert code == 1, session_id
            assert err.startswith("error: ")
        code, _, err = await admin(capsys, "revoke-session", "acc_nobody", bobs.id)
        assert (code, err) == (1, "error: No such account.\n")

        code, out, _ = await admin(
            capsys, "revoke-sessions", account_id, "--operator", "ops-ann", "--json"
        )
        assert code == 0
        assert json.loads(out) == {
            "action": "revoke-sessions",
            "account_id": account_id,
            "operator": "ops-ann",
            "ended_sessions": 2,
        }
        assert [await _me(client, t) for t in (kitchen, bedroom, phone)] == [401, 401, 401]
        async with ctx.database.transaction() as stores:
            assert (await stores.sessions.get(bobs.id)).revoked_at is None  # type: ignore[union-attr]

    events = await events_of(ctx)
    assert [(e.kind, e.account_id, e.detail) for e in events] == [
        ("admin.session_revoked", account_id, f"operator=ops-ann session={by_device['Kitchen']}"),
        ("admin.sessions_revoked", account_id, "operator=ops-ann ended_sessions=2"),
    ]


async def test_disable_blocks_every_sign_in_and_enable_allows_it_again(
    settings: Settings, ctx: Context, capsys: pytest.CaptureFixture[str]
) -> None:
    async with serve_app(settings) as client:
        account_id = (await api_register(client))["id"]
        token = await _sign_in(client, "TV")
        async with ctx.database.transaction() as stores:
            ada = await stores.accounts.get(account_id)
            assert ada is not None
            await make_link(stores.identities, ada, ADA)

        code, out, err = await admin(
            capsys, "disable", account_id, "--operator", "ops-kim", "--json"
        )
        assert (code, err) == (0, "")
        assert json.loads(out) == {
            "action": "disable",
            "account_id": account_id,
            "operator": "ops-kim",
            "changed": True,
            "disabled": True,
            "ended_sessions": 1,
        }
        assert await _me(client, token) == 401
        refused = await client.post(
            "/api/v1/sessions", json={"username": "ada", "password": PASSWORD, "device_name": "x"}
        )
        assert (refused.status_code, refused.json()["code"]) == (403, "account_disabled")
        with pytest.raises(errors.AccountDisabled):
            async with ctx.transaction() as tx:
                await amazon.sign_in_with_profile(tx, ADA, kind="device", starter=amazon.Device())
        code, out, _ = await admin(capsys, "disable", account_id, "--operator", "ops-kim")
        assert (code, out) == (0, f"{account_id} was already disabled; ended 0 session(s).\n")

        code, out, _ = await admin(capsys, "enable", account_id, "--operator", "ops-kim")
        assert (code, out) == (0, f"Enabled {account_id}.\n")
        assert await _me(client, await _sign_in(client, "TV")) == 200
        assert await _me(client, token) == 401  # what disable ended stays ended
        code, out, _ = await admin(capsys, "enable", account_id, "--operator", "ops-kim")
        assert (code, out) == (0, f"{account_id} was not disabled.\n")

    events = await events_of(ctx)
    assert [(e.kind, e.detail) for e in events] == [
        ("admin.account_disabled", "operator=ops-kim ended_sessions=1"),
        ("admin.account_enabled", "operator=ops-kim"),
    ]


@pytest.mark.parametrize(
    "action", [["unlink-amazon"], ["revoke-sessions"], ["disable"], ["enable"]]
)
async def test_an_unknown_account_changes_nothing(
    ctx: Context, capsys: pytest.CaptureFixture[str], action: list[str]
) -> None:
    await password_account(ctx)
    code, out, err = await admin(capsys, *action, "acc_nobody", "--operator", "ops")
    assert (code, out, err) == (1, "", "error: No such account.\n")
    assert await events_of(ctx) == []


# ---- the operator --------------------------------------------------------------------------


async def test_the_operator_defaults_to_the_os_user(
    ctx: Context, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    ada = await password_account(ctx)
    monkeypatch.setattr("getpass.getuser", lambda: "ops-bob")
    code, out, _ = await admin(capsys, "revoke-sessions", ada.id, "--json")
    assert code == 0
    assert json.loads(out)["operator"] == "ops-bob"
    (event,) = await events_of(ctx)
    assert event.detail == "operator=ops-bob ended_sessions=0"


@pytest.mark.parametrize(
    "name", ["", "two words", "x" * 65, "tab\there", "esc\x1b[31m", "nul\x00", "rtl\u202eevil"]
)
async def test_a_bad_operator_name_is_refused(
    ctx: Context, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    ada = await password_account(ctx)
    code, out, err = await admin(capsys, "disable", ada.id, "--operator", name)
    assert (code, out) == (2, "")
    assert "--operator" in err
    async with ctx.database.transaction() as stores:
        assert not (await stores.accounts.get(ada.id)).disabled  # type: ignore[union-attr]
    assert await events_of(ctx) == []


async def test_an_unusable_os_user_asks_for_operator(
    ctx: Context, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    ada = await password_account(ctx)

    def no_user() -> str:
        raise OSError("No username set in the environment")

    for getuser in (lambda: "has space", no_user):
        monkeypatch.setattr("getpass.getuser", getuser)
        code, _, err = await admin(capsys, "disable", ada.id)
        assert (code, err) == (2, "error: name the operator with --operator NAME\n")
    assert await events_of(ctx) == []


# ---- export-audit --------------------------------------------------------------------------

T0 = datetime(2026, 1, 1, tzinfo=UTC)
AWKWARD = 'comma, "quotes"\nnew line; café ✓'


async def _seed_audit(ctx: Context, count: int) -> list[AuditEvent]:
    events = [
        AuditEvent(
            kind=f"test.e{i}",
            at=T0 + timedelta(seconds=i // 2),  # pairs share an instant: ties across pages
            account_id=f"acc_{i % 3}",
            amazon_user_id="amzn1.account.X" if i % 5 == 0 else None,
            ip="2001:db8::1" if i % 7 == 0 else None,
            detail=AWKWARD if i % 11 == 0 else f"n={i}",
        )
        for i in range(count)
    ]
    async with ctx.database.transaction() as stores:
        for event in events:
            await stores.audit.record(event)
    return events


def _row(event: AuditEvent) -> list[str]:
    values = (
        event.at.isoformat(),
        event.kind,
        event.account_id,
        event.amazon_user_id,
        event.client_id,
        event.ip,
        event.detail,
    )
    return [value or "" for value in values]


async def test_export_a_time_range_over_several_pages_as_jsonl_and_csv(
    ctx: Context, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    events = await _seed_audit(ctx, 1300)
    # [T0+50 s, T0+600 s): events 100..1199, 1100 of them: three pages of 500.
    since, until = (T0 + timedelta(seconds=50)).isoformat(), "2026-01-01T00:10:00"
    wanted = events[100:1200]

    code, out, err = await admin(capsys, "export-audit", "--since", since, "--until", until)
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert len(lines) == 1100
    first = json.loads(lines[0])
    assert list(first) == sorted(
        ["at", "kind", "account_id", "amazon_user_id", "client_id", "ip", "detail"]
    )
    assert [json.loads(line)["kind"] for line in lines] == [e.kind for e in wanted]
    assert json.loads(lines[10])["detail"] == AWKWARD  # events[110]

    target = tmp_path / "audit.csv"
    code, out, _ = await admin(
        capsys,
        "export-audit",
        "--since",
        since,
        "--until",
        until,
        "--format",
        "csv",
        "--output",
        str(target),
    )
    assert (code, out) == (0, f"1100 event(s) written to {target}.\n")
    with target.open(newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["at", "kind", "account_id", "amazon_user_id", "client_id", "ip", "detail"]
    assert rows[1:] == [_row(e) for e in wanted]
    assert oct(target.stat().st_mode & 0o777) == "0o600"  # the log names people and addresses

    code, out, _ = await admin(capsys, "export-audit", "--account", "acc_1", "--format", "csv")
    assert code == 0
    rows = list(csv.reader(out.splitlines(keepends=True)))
    assert rows[1:] == [_row(e) for e in events if e.account_id == "acc_1"]


async def test_export_refusals(
    ctx: Context, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    await _seed_audit(ctx, 3)
    code, _, err = await admin(
        capsys, "export-audit", "--since", "2026-01-02", "--until", "2026-01-01"
    )
    assert (code, err) == (2, "error: --until must be later than --since\n")
    missing = tmp_path / "no-such-dir" / "audit.jsonl"
    code, _, err = await admin(capsys, "export-audit", "--output", str(missing))
    assert code == 1
    assert err.startswith(f"error: cannot write {missing}")
    assert [n for n in os.listdir(tmp_path) if n.startswith(".audit-export-")] == []
    code, out, _ = await admin(capsys, "export-audit", "--since", "2999-01-01")
    assert (code, out) == (0, "")


# ---- as a separate process -----------------------------------------------------------------


async def test_end_to_end_as_a_process(ctx: Context, tmp_path: Path) -> None:
    ada = await password_account(ctx)
    env = dict(os.environ)  # the fixtures' LWA_ACCOUNTS_* point it at the same database
    found = await asyncio.to_thread(
        run_cli, "admin", "find", "--email", "ada@example.com", "--json", env=env
    )
    assert found.returncode == 0, found.stderr
    assert json.loads(found.stdout)["account"]["id"] == ada.id
    disabled = await asyncio.to_thread(
        run_cli, "admin", "disable", ada.id, "--operator", "ops-proc", env=env
    )
    assert disabled.returncode == 0, disabled.stderr
    assert disabled.stdout == f"Disabled {ada.id}; ended 0 session(s).\n"
    exported = await asyncio.to_thread(
        run_cli, "admin", "export-audit", "--account", ada.id, "--format", "csv", env=env
    )
    assert exported.returncode == 0, exported.stderr
    rows = list(csv.DictReader(exported.stdout.splitlines(keepends=True)))
    assert [(r["kind"], r["detail"]) for r in rows][-1] == (
        "admin.account_disabled",
        "operator=ops-proc ended_sessions=0",
    )
    refused = await asyncio.to_thread(run_cli, "admin", "enable", "acc_nobody", env=env)
    assert (refused.returncode, refused.stderr) == (1, "error: No such account.\n")


def test_every_admin_command_in_operations_md_parses() -> None:
    """The commands docs/operations.md shows are the commands this suite runs: each one
    parses as written (exit 2 would be a drifted doc)."""
    text = (Path(__file__).parents[2] / "docs" / "operations.md").read_text()
    section = text.split("## Operator's command line", 1)[1].split("\n## ", 1)[0]
    commands = [
        line.split(" > ")[0]
        for line in section.splitlines()
        if line.startswith("lwa-accounts admin ")
    ]
    shown = {shlex.split(c)[2] for c in commands}
    assert shown == {
        "find",
        "unlink-amazon",
        "revoke-session",
        "revoke-sessions",
        "disable",
        "enable",
        "export-audit",
    }
    parser = build_parser()
    for command in commands:
        parser.parse_args(shlex.split(command)[1:])

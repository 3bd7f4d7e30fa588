"""``lwa-accounts admin ...``: the operator's command line (support staff, incidents).

    admin find (--id ID | --username U | --email E | --amazon-user-id ID) [--events N]
    admin unlink-amazon ACCOUNT [--amazon-user-id ID] [--force]
    admin revoke-session ACCOUNT SESSION_ID
    admin revoke-sessions ACCOUNT
    admin disable ACCOUNT
    admin enable ACCOUNT
    admin export-audit [--since T] [--until T] [--account ID] [--format jsonl|csv] [--output F]

``ACCOUNT`` is an account id, as ``find`` shows it. Output is for people by default and one
JSON document with ``--json``; the export writes JSON lines or CSV. The logic is in
``flows/admin.py``; this module parses, opens the database and prints. Each action is one
transaction, audited with the operator's name (``--operator`` or the OS user). A refusal
prints ``error: ...`` on stderr and exits 1 with nothing changed; bad arguments exit 2.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import getpass
import json
import os
import sys
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from lwa_accounts.cli.audit import COLUMNS, iso_time
from lwa_accounts.core.models import Account, AmazonLink, AuditEvent, Session
from lwa_accounts.errors import LwaAccountsError, ValidationFailed
from lwa_accounts.flows import admin
from lwa_accounts.flows.context import ClientInfo, Context, Deps
from lwa_accounts.passwords import Argon2Hasher, common_passwords
from lwa_accounts.settings import Settings, load_settings
from lwa_accounts.store.db import Database
from lwa_accounts.throttle import Throttle

EXPORT_COLUMNS = ("at", "kind", "account_id", "amazon_user_id", "client_id", "ip", "detail")
CLIENT = ClientInfo(ip=None, user_agent="lwa-accounts admin")


@dataclass
class Result:
    """What a command shows: ``document`` with ``--json``, ``lines`` otherwise."""

    document: dict[str, Any]
    lines: list[str] = field(default_factory=list)


Action = Callable[[Context, argparse.Namespace], Awaitable[Result]]


# ---- arguments -----------------------------------------------------------------------------


def _operator(value: str) -> str:
    try:
        return admin.check_operator(value)
    except ValidationFailed as error:
        raise argparse.ArgumentTypeError(error.detail) from None


def _events(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {value!r}") from None
    if not 0 <= number <= admin.EVENTS_MAX:
        raise argparse.ArgumentTypeError(f"use 0 to {admin.EVENTS_MAX}")
    return number


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser(
        "admin", help="Operator actions: find an account, unlink, revoke, disable, export."
    )
    commands = parser.add_subparsers(dest="admin_command", required=True, metavar="ACTION")
    output = argparse.ArgumentParser(add_help=False)
    output.add_argument("--json", action="store_true", help="One JSON document on stdout.")
    acting = argparse.ArgumentParser(add_help=False, parents=[output])
    acting.add_argument(
        "--operator",
        type=_operator,
        metavar="NAME",
        help="Who does this, for the audit log (default: the OS user).",
    )
    acting.add_argument("account", metavar="ACCOUNT", help="The account's id (see `admin find`).")

    find = commands.add_parser(
        "find", parents=[output], help="An account, its Amazon link, sessions and events."
    )
    key = find.add_mutually_exclusive_group(required=True)
    key.add_argument("--id", metavar="ID")
    key.add_argument("--username", metavar="USERNAME")
    key.add_argument("--email", metavar="EMAIL")
    key.add_argument("--amazon-user-id", metavar="AMAZON_USER_ID", help="amzn1.account....")
    find.add_argument(
        "--events",
        type=_events,
        default=20,
        metavar="N",
        help=f"The newest N audit events (default 20, at most {admin.EVENTS_MAX}).",
    )
    find.set_defaults(handler=_command(_find))

    unlink = commands.add_parser(
        "unlink-amazon", parents=[acting], help="Detach the account's Amazon identity."
    )
    unlink.add_argument(
        "--amazon-user-id",
        metavar="AMAZON_USER_ID",
        help="Only if this is the Amazon account linked (a check against typos).",
    )
    unlink.add_argument(
        "--force",
        action="store_true",
        help="Unlink even when the account has no password (it can no longer sign in).",
    )
    unlink.set_defaults(handler=_command(_unlink))

    one = commands.add_parser("revoke-session", parents=[acting], help="End one session.")
    one.add_argument("session_id", metavar="SESSION_ID", help="ses_... (see `admin find`).")
    one.set_defaults(handler=_command(_revoke_one))
    every = commands.add_parser(
        "revoke-sessions", parents=[acting], help="End every session of the account."
    )
    every.set_defaults(handler=_command(_revoke_all))
    disable = commands.add_parser(
        "disable", parents=[acting], help="Block every sign-in and end every session."
    )
    disable.set_defaults(handler=_command(_disable))
    enable = commands.add_parser("enable", parents=[acting], help="Allow sign-in again.")
    enable.set_defaults(handler=_command(_enable))

    export = commands.add_parser(
        "export-audit", help="Stream the audit log as JSON lines or CSV, oldest first."
    )
    export.add_argument(
        "--since", type=iso_time, metavar="TIME", help="At or after this time (ISO 8601, UTC)."
    )
    export.add_argument(
        "--until", type=iso_time, metavar="TIME", help="Before this time (ISO 8601, UTC)."
    )
    export.add_argument("--account", metavar="ID", help="Only this account's events.")
    export.add_argument("--format", choices=("jsonl", "csv"), default="jsonl")
    export.add_argument(
        "--output", type=Path, metavar="FILE", help="Write FILE (whole or not at all)."
    )
    export.set_defaults(handler=_export)


# ---- running -------------------------------------------------------------------------------


@asynccontextmanager
async def _context(settings: Settings) -> AsyncIterator[Context]:
    """The command's context, as ``web/app.py`` builds one per process."""
    database = Database.from_settings(settings)
    throttle = Throttle(settings)
    try:
        if settings.is_development:
            await database.upgrade()
        deps = Deps(
            settings=settings,
            hasher=Argon2Hasher(settings),
            throttle=throttle,
            clock=database.clock,
            common_passwords=common_passwords(),
        )
        yield Context(deps, database, CLIENT)
    finally:
        await throttle.aclose()
        await database.dispose()


def _refused(error: LwaAccountsError) -> int:
    if isinstance(error, ValidationFailed):
        for name, message in error.errors.items() or {"": error.detail}.items():
            print(f"error: {name + ': ' if name else ''}{message}", file=sys.stderr)
        return 2
    print(f"error: {error.detail}", file=sys.stderr)
    return 1


def _resolve_operator(args: argparse.Namespace) -> int | None:
    """Fill in ``args.operator`` from the OS user; an exit code if that cannot be."""
    if "operator" not in args or args.operator is not None:
        return None
    try:
        args.operator = admin.check_operator(getpass.getuser())
    except (OSError, KeyError, ValidationFailed):
        print("error: name the operator with --operator NAME", file=sys.stderr)
        return 2
    return None


def _command(action: Action) -> Callable[[argparse.Namespace], int]:
    def handle(args: argparse.Namespace) -> int:
        if (code := _resolve_operator(args)) is not None:
            return code

        async def run() -> Result:
            async with _context(load_settings()) as ctx:
                return await action(ctx, args)

        try:
            result = asyncio.run(run())
        except LwaAccountsError as error:
            return _refused(error)
        if args.json:
            print(json.dumps(result.document, indent=2, sort_keys=True))
        else:
            print("\n".join(result.lines))
        return 0

    return handle


# ---- the commands ------------------------------------------------------------------------


async def _find(ctx: Context, args: argparse.Namespace) -> Result:
    by: admin.Lookup
    for by in ("id", "username", "email", "amazon_user_id"):
        if (value := getattr(args, by)) is not None:
            break
    report = await admin.find_account(ctx, by, value, events=args.events)
    document = {
        "account": _account_json(report.account),
        "amazon_links": [_link_json(report.link)] if report.link else [],
        "sessions": [_session_json(s) for s in report.sessions],
        "events": [_event_json(e) for e in report.events],
    }
    return Result(document, _find_lines(report))


async def _unlink(ctx: Context, args: argparse.Namespace) -> Result:
    async with ctx.transaction() as tx:
        link = await admin.unlink_amazon(
            tx,
            args.account,
            operator=args.operator,
            amazon_user_id=args.amazon_user_id,
            force=args.force,
        )
    document = _action("unlink-amazon", args) | {"amazon_link": _link_json(link)}
    return Result(document, [f"Unlinked Amazon account {link.amazon_user_id} from {args.account}."])


async def _revoke_one(ctx: Context, args: argparse.Namespace) -> Result:
    async with ctx.transaction() as tx:
        session = await admin.revoke_session(
            tx, args.account, args.session_id, operator=args.operator
        )
    document = _action("revoke-session", args) | {"session": _session_json(session)}
    return Result(document, [f"Revoked session {session.id} of {args.account}."])


async def _revoke_all(ctx: Context, args: argparse.Namespace) -> Result:
    async with ctx.transaction() as tx:
        ended = await admin.revoke_sessions(tx, args.account, operator=args.operator)
    document = _action("revoke-sessions", args) | {"ended_sessions": ended}
    return Result(document, [f"Revoked {ended} session(s) of {args.account}."])


async def _disable(ctx: Context, args: argparse.Namespace) -> Result:
    async with ctx.transaction() as tx:
        change = await admin.disable_account(tx, args.account, operator=args.operator)
    line = (
        f"Disabled {args.account}" if change.changed else f"{args.account} was already disabled"
    ) + f"; ended {change.ended_sessions} session(s)."
    return Result(_change_json("disable", args, change), [line])


async def _enable(ctx: Context, args: argparse.Namespace) -> Result:
    async with ctx.transaction() as tx:
        change = await admin.enable_account(tx, args.account, operator=args.operator)
    line = f"Enabled {args.account}." if change.changed else f"{args.account} was not disabled."
    return Result(_change_json("enable", args, change), [line])


def _export(args: argparse.Namespace) -> int:
    if args.since is not None and args.until is not None and args.since >= args.until:
        print("error: --until must be later than --since", file=sys.stderr)
        return 2
    settings = load_settings()
    try:
        if args.output is None:
            asyncio.run(_export_async(settings, args, sys.stdout))
            return 0
        count = _export_to_file(settings, args)
    except LwaAccountsError as error:
        return _refused(error)
    except OSError as error:
        print(f"error: cannot write {args.output}: {error.strerror}", file=sys.stderr)
        return 1
    print(f"{count} event(s) written to {args.output}.")
    return 0


def _export_to_file(settings: Settings, args: argparse.Namespace) -> int:
    # A temporary file beside the target, renamed at the end: a failed export leaves no
    # half file, and mkstemp makes it readable by its owner only.
    target: Path = args.output
    fd, temporary = tempfile.mkstemp(dir=target.resolve().parent, prefix=".audit-export-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as out:
            count = asyncio.run(_export_async(settings, args, out))
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return count


async def _export_async(settings: Settings, args: argparse.Namespace, out: IO[str]) -> int:
    async with _context(settings) as ctx:
        events = admin.export_audit(
            ctx, since=args.since, until=args.until, account_id=args.account
        )
        return await write_export(events, out, args.format)


async def write_export(events: AsyncIterator[AuditEvent], out: IO[str], fmt: str) -> int:
    """Write each event as it arrives (JSON lines, or CSV with a header); the count."""
    count = 0
    writer = csv.writer(out, lineterminator="\r\n") if fmt == "csv" else None
    if writer is not None:
        writer.writerow(EXPORT_COLUMNS)
    async for event in events:
        row = _event_json(event)
        if writer is not None:
            writer.writerow(["" if row[c] is None else row[c] for c in EXPORT_COLUMNS])
        else:
            out.write(json.dumps(row, sort_keys=True) + "\n")
        count += 1
    out.flush()
    return count


# ---- JSON and text shapes ----------------------------------------------------------------


def _time(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _account_json(account: Account) -> dict[str, Any]:
    return {
        "id": account.id,
        "username": account.username,
        "email": account.email,
        "name": account.name,
        "created_at": _time(account.created_at),
        "disabled": account.disabled,
        "has_password": account.has_password,
    }


def _link_json(link: AmazonLink) -> dict[str, Any]:
    return {
        "amazon_user_id": link.amazon_user_id,
        "linked_at": _time(link.linked_at),
        "email": link.email,
        "last_sign_in_at": _time(link.last_sign_in_at),
    }


def _session_json(session: Session) -> dict[str, Any]:
    # The public id only: the token exists nowhere but on the client (stored hashed).
    return {
        "id": session.id,
        "kind": session.kind,
        "device_name": session.device_name,
        "created_at": _time(session.created_at),
        "last_seen_at": _time(session.last_seen_at),
        "expires_at": _time(session.expires_at),
    }


def _event_json(event: AuditEvent) -> dict[str, Any]:
    return {
        "at": _time(event.at),
        "kind": event.kind,
        "account_id": event.account_id,
        "amazon_user_id": event.amazon_user_id,
        "client_id": event.client_id,
        "ip": event.ip,
        "detail": event.detail,
    }


def _action(name: str, args: argparse.Namespace) -> dict[str, Any]:
    return {"action": name, "account_id": args.account, "operator": args.operator}


def _change_json(
    name: str, args: argparse.Namespace, change: admin.AccountChange
) -> dict[str, Any]:
    return _action(name, args) | {
        "changed": change.changed,
        "disabled": change.account.disabled,
        "ended_sessions": change.ended_sessions,
    }


def shown(value: object) -> str:
    """A value for a terminal: '-' for nothing, and no control character (an account's
    name or a device's could otherwise carry escape sequences)."""
    if value is None:
        return "-"
    text = value.isoformat(timespec="seconds") if isinstance(value, datetime) else str(value)
    return "".join(ch if ch.isprintable() else f"\\x{ord(ch):02x}" for ch in text)


def _find_lines(report: admin.AccountReport) -> list[str]:
    a = report.account
    lines = [
        f"account:   {shown(a.id)}",
        f"username:  {shown(a.username)}",
        f"email:     {shown(a.email)}",
        f"name:      {shown(a.name)}",
        f"created:   {shown(a.created_at)}",
        f"disabled:  {'yes' if a.disabled else 'no'}",
        f"password:  {'yes' if a.has_password else 'no'}",
        "",
    ]
    if report.link is None:
        lines.append("Amazon: not linked")
    else:
        link = report.link
        lines += [
            "Amazon:",
            f"  user id:   {shown(link.amazon_user_id)}",
            f"  linked at: {shown(link.linked_at)}",
            f"  e-mail:    {shown(link.email)}",
            f"  last seen: {shown(link.last_sign_in_at)}",
        ]
    lines += ["", f"Sessions ({len(report.sessions)} live):"]
    if report.sessions:
        lines.append("  id\tkind\tdevice\tcreated\tlast seen\texpires")
    for s in report.sessions:
        values = (s.id, s.kind, s.device_name, s.created_at, s.last_seen_at, s.expires_at)
        lines.append("  " + "\t".join(shown(v) for v in values))
    lines += ["", f"Events ({len(report.events)} newest):"]
    if report.events:
        lines.append("  " + "\t".join(COLUMNS))  # as `lwa-accounts audit` prints them
    for e in report.events:
        fields = (e.at, e.kind, e.account_id, e.amazon_user_id, e.client_id, e.ip, e.detail)
        lines.append("  " + "\t".join(shown(v) for v in fields))
    return lines

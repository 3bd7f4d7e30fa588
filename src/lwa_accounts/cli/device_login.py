"""``lwa-accounts device-login``: the device journeys in a terminal.

Shows the code, the address and a terminal QR code, waits while the person approves on
another device, and keeps the device session token in a file with mode 0600.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

import segno

from lwa_accounts.tv.client import (
    AmazonCode,
    CodeExpired,
    DeviceApiError,
    DeviceClient,
    HandOff,
    PhoneCode,
    SignedIn,
)
from lwa_accounts.tv.journeys import (
    JourneyEvent,
    Sleep,
    sign_in_with_amazon,
    sign_in_with_phone,
)
from lwa_accounts.tv.token_file import default_token_file, save_session


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser(
        "device-login",
        help="sign a device in from the terminal (code + QR code, approve on another device)",
        description="Sign this device in without typing a password on it.",
    )
    parser.add_argument("--server", required=True, help="the lwa-accounts base URL")
    how = parser.add_mutually_exclusive_group()
    how.add_argument(
        "--amazon",
        dest="method",
        action="store_const",
        const="amazon",
        help="sign in with Amazon: approve Amazon's code at Amazon (default)",
    )
    how.add_argument(
        "--phone",
        dest="method",
        action="store_const",
        const="phone",
        help="sign in with your phone: confirm our code at /activate",
    )
    parser.set_defaults(method="amazon", handler=run_device_login)
    parser.add_argument("--device-name", default="Terminal", help="shown on the account page")
    parser.add_argument(
        "--token-file",
        type=Path,
        default=None,
        help=f"where to keep the session token (default {default_token_file()})",
    )


class TerminalScreen:
    """Renders journey events as text and a QR code."""

    def __init__(self, out: TextIO) -> None:
        self.out = out

    def __call__(self, event: JourneyEvent) -> None:
        if isinstance(event, AmazonCode):
            self._code(
                "Sign in with Amazon",
                f"On your phone or computer, open {event.verification_uri}",
                event.user_code,
                event.verification_uri,
            )
        elif isinstance(event, PhoneCode):
            self._code(
                "Sign in with your phone",
                f"Open {event.verification_uri} (or scan the code)",
                event.user_code,
                event.verification_uri_complete,
            )
        elif isinstance(event, HandOff):
            why = (
                "Your email already has an account here: on your phone, sign in with Amazon,"
                " then confirm its password."
                if event.reason == "link_required"
                else "A few details are needed to create your account: finish on your phone."
            )
            self._code("Finish on your phone", f"{why}\nOpen {event.url}", event.code, event.url)
        else:
            assert isinstance(event, CodeExpired)
            self.out.write("\nThe code expired. Here is a new one.\n")
        self.out.flush()

    def _code(self, title: str, where: str, code: str, qr_url: str) -> None:
        self.out.write(f"\n== {title} ==\n{where}\nand enter the code:  {code}\n\n")
        segno.make(qr_url, error="m").terminal(out=self.out, compact=True)
        self.out.write("\nWaiting... (Ctrl+C to stop)\n")


async def device_login(
    server: str,
    method: str,
    *,
    device_name: str | None,
    token_file: Path,
    out: TextIO,
    on_event: Callable[[JourneyEvent], None] | None = None,
    sleep: Sleep = asyncio.sleep,
) -> SignedIn:
    """The whole command minus argument parsing (tests drive it with a fake ``sleep``)."""
    screen = TerminalScreen(out)

    def show(event: JourneyEvent) -> None:
        screen(event)
        if on_event is not None:
            on_event(event)

    async with DeviceClient(server, device_name=device_name) as client:
        journey = sign_in_with_amazon if method == "amazon" else sign_in_with_phone
        signed_in = await journey(client, on_event=show, sleep=sleep)
    save_session(token_file, server, signed_in)
    return signed_in


def run_device_login(args: argparse.Namespace) -> int:
    token_file: Path = args.token_file or default_token_file()
    try:
        signed_in = asyncio.run(
            device_login(
                args.server,
                args.method,
                device_name=args.device_name,
                token_file=token_file,
                out=sys.stdout,
            )
        )
    except DeviceApiError as exc:
        print(f"Sign-in failed: {exc.detail}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nStopped.", file=sys.stderr)
        return 130
    account = signed_in.account
    print(f"\nWelcome, {account.name or account.username}! Session saved in {token_file}.")
    return 0

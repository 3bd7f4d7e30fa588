"""Password sign-in as request handlers run it: argon2 outside any transaction.

One short transaction finds the account, the password is checked (throttle + argon2)
holding no connection and no SQLite write lock, and a second short transaction records
the outcome and starts the session.
"""

from __future__ import annotations

from lwa_accounts.core.models import SessionKind
from lwa_accounts.flows.accounts import (
    Refused,
    check_password,
    find_login,
    finish_password_sign_in,
    login_key,
)
from lwa_accounts.flows.sessions import ClientInfo, SignedIn
from lwa_accounts.web.services import Services


async def password_sign_in(
    services: Services,
    *,
    login: str,
    password: str,
    kind: SessionKind,
    device_name: str | None,
    client: ClientInfo,
) -> SignedIn | Refused:
    async with services.database.transaction() as stores:
        account = await find_login(stores, login)
    check = await check_password(
        services.accounts,
        account=account,
        account_key=login_key(account, login),
        password=password,
        client=client,
    )
    async with services.database.transaction() as stores:
        return await finish_password_sign_in(
            stores, services.accounts, check, kind=kind, device_name=device_name, client=client
        )

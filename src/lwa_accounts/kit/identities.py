"""Amazon identities whose accounts live in the company's table.

``SqlIdentityStore.get_linked`` joins our ``accounts`` table; here the link is read alone
and its account comes from the account store (the foreign table): two reads, not one.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from lwa_accounts.core.models import Account, AmazonLink
from lwa_accounts.interfaces import AccountStore
from lwa_accounts.store.identities import SqlIdentityStore


class ForeignAccountIdentityStore(SqlIdentityStore):
    def __init__(self, connection: AsyncConnection, accounts: AccountStore) -> None:
        super().__init__(connection)
        self._accounts = accounts

    async def get_linked(self, amazon_user_id: str) -> tuple[AmazonLink, Account] | None:
        link = await self.get_by_amazon_user_id(amazon_user_id)
        account = await self._accounts.get(link.account_id) if link is not None else None
        return (link, account) if link is not None and account is not None else None

"""The bulk loader writes rows our own stores read back (so a schema change that breaks it
fails here, not in the middle of a million-row run)."""

from __future__ import annotations

from pathlib import Path

from benchmarks.seed import seed_sqlite
from lwa_accounts.store.db import Database
from lwa_accounts.testing import offline_settings


async def test_seeded_accounts_links_and_sessions_are_found_by_our_stores(
    tmp_path: Path, on_sqlite: None
) -> None:
    settings = offline_settings(tmp_path)
    database = Database.from_settings(settings)
    try:
        await database.upgrade()
        path = Path(settings.effective_database_url.split("///", 1)[1])
        seed_sqlite(path, 0, 50)
        seed_sqlite(path, 50, 120)  # grows from where it stopped: no duplicate keys
        async with database.transaction() as stores:
            resolved = await stores.sessions.resolve("seed-session-77")
            assert resolved is not None
            session, account = resolved
            assert (account.username, session.kind) == ("seed77", "device")
            link = await stores.identities.get_by_amazon_user_id("amzn1.account.SEED000000000119")
            assert link is not None
            assert link.account_id == "seed000000000119"
            assert (
                await stores.identities.get_by_amazon_user_id("amzn1.account.SEED000000000120")
                is None
            )
            assert await stores.accounts.get_by_email("seed3@seed.example.com") is not None
    finally:
        await database.dispose()

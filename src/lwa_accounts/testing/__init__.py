"""What tests need, ours and integrators': one settings builder and store factories.

``offline_settings(tmp_path, **overrides)`` is the fast, offline configuration every suite
starts from; ``factories`` makes accounts, links and Amazon profiles through the store
Protocols (``interfaces.py``), so the same helpers work over the SQL stores and over an
integrator's own users table (the kit). Nothing here is imported by the service itself.
"""

from lwa_accounts.testing.factories import amazon_profile, make_account, make_link, unique
from lwa_accounts.testing.settings import TEST_SECRET_KEY, offline_settings

__all__ = [
    "TEST_SECRET_KEY",
    "amazon_profile",
    "make_account",
    "make_link",
    "offline_settings",
    "unique",
]

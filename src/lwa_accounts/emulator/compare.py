"""Secret comparison for the emulator: passwords, client secrets, PKCE and CSRF tokens.

The emulator has its own copy (not `lwa_accounts.compare`) so the oracle shares no code with
what it tests.
"""

from __future__ import annotations

import hmac


def same_secret(given: str, expected: str) -> bool:
    """Constant-time equality of two strings, compared as bytes."""
    return hmac.compare_digest(_utf8(given), _utf8(expected))


def _utf8(value: str) -> bytes:
    # Compare secrets as bytes: compare_digest raises on non-ASCII str (even a lone
    # surrogate, possible in JSON, encodes with surrogatepass).
    return value.encode("utf-8", "surrogatepass")

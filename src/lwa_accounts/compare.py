"""Constant-time comparison of secrets, always as bytes.

``hmac.compare_digest`` raises ``TypeError`` on a ``str`` holding non-ASCII characters,
so comparing an attacker's input as text turns "é" into a 500 (security.md item 20).
Every secret comparison of the service goes through ``same_secret``, which encodes text
as UTF-8 first; ``surrogatepass`` makes even a lone surrogate (possible in JSON) encodable,
so no input can make the comparison raise.
"""

from __future__ import annotations

import hmac


def as_bytes(value: str | bytes) -> bytes:
    return value if isinstance(value, bytes) else value.encode("utf-8", "surrogatepass")


def same_secret(expected: str | bytes, given: str | bytes) -> bool:
    """True when both are equal, in time independent of where they differ."""
    return hmac.compare_digest(as_bytes(expected), as_bytes(given))

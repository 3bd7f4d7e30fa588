"""``next=`` handling: only local paths, so a sign-in link can never bounce elsewhere."""

from __future__ import annotations

import unicodedata
from urllib.parse import urlsplit

DEFAULT_NEXT = "/account"
NEXT_MAX = 2000


def safe_next(value: object, default: str = DEFAULT_NEXT) -> str:
    """``value`` if it is a local path like ``/x?y``, else ``default``.

    Refused: absolute URLs (``http:``), scheme-relative ``//host``, ``/\\host`` (browsers
    read a backslash as a slash), and anything with control characters or whitespace.
    """
    if not isinstance(value, str) or not value or len(value) > NEXT_MAX:
        return default
    if not value.startswith("/") or value.startswith(("//", "/\\")):
        return default
    if "\\" in value or any(
        ch.isspace() or unicodedata.category(ch).startswith("C") for ch in value
    ):
        return default
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return default
    return value

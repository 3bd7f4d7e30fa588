"""``next=`` handling: where a sign-in may send the browser afterwards.

Two rules (security.md items 5 and 20):

- Only local paths, so a sign-in link can never bounce elsewhere.
- Only pages that merely *show* something. A redirect after sign-in is a GET the person
  did not choose, so ``next=`` must never lead into a step that changes state (starting an
  Amazon attach, signing out, approving a device, ...). This is an allow rule, not a
  denylist: a new route is unreachable through ``next=`` until someone decides here that
  opening it changes nothing. Query strings and fragments are kept (``/activate?code=``
  only pre-fills the form; ``/account?amazon=linked`` only picks a notice).
"""

from __future__ import annotations

import unicodedata
from urllib.parse import urlsplit

DEFAULT_NEXT = "/account"
NEXT_MAX = 2000
# Pages a GET only renders. Nothing under /auth/amazon, /account/..., /activate/...,
# /signout, /api or the emulator: those are steps or actions, not destinations.
NEXT_PAGES = frozenset({"/", "/account", "/activate", "/tv"})


def safe_next(value: object, default: str = DEFAULT_NEXT) -> str:
    """``value`` if it is a local path to one of ``NEXT_PAGES`` (with any query or
    fragment), else ``default``.

    Refused: absolute URLs (``http:``), scheme-relative ``//host``, ``/\\host`` (browsers
    read a backslash as a slash), anything with control characters or whitespace, and any
    path not in ``NEXT_PAGES`` (compared exactly: ``/account/x``, ``/account/`` and
    percent-encoded spellings fall back too).
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
    if parts.path not in NEXT_PAGES:
        return default
    return value

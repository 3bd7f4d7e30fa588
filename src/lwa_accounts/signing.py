"""Signed, timestamped values for the browser: itsdangerous over ``Settings.signing_keys``.

Everything the server hands a browser to get back unchanged (the Amazon flow cookies, the
phone's hand-off proof, CSRF form tokens) is signed here, never by hand-written HMAC code:

- HMAC-SHA256, keyed per purpose (itsdangerous' ``hmac`` key derivation with a salt naming
  the purpose), so a value signed for one purpose never verifies for another;
- a timestamp inside the signature, checked against ``max_age`` with the caller's clock (a
  value older than ``max_age``, or from the future, is refused);
- key rotation: the first of ``signing_keys`` signs, every one verifies.

``loads`` and ``unsign`` answer None for anything that is not intact, in time and ours:
missing, truncated, non-ASCII, re-signed with another key or for another purpose, expired.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any, Final

from itsdangerous import BadData, TimestampSigner, URLSafeTimedSerializer

from lwa_accounts.settings import Settings

MAX_LENGTH: Final = 4096  # nothing we sign is longer; longer input is refused unread
_SALT_PREFIX: Final = "lwa-accounts signed "


class _ClockedSigner(TimestampSigner):
    """A timestamp signer whose "now" is the service's clock, not ``time.time()``."""

    def __init__(self, *args: Any, now: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._now = now

    def get_timestamp(self) -> int:
        return self._now


def _options(now: datetime) -> dict[str, Any]:
    return {"now": int(now.timestamp()), "key_derivation": "hmac", "digest_method": hashlib.sha256}


def _keys(settings: Settings) -> list[bytes]:
    # itsdangerous signs with the *last* key; ours signs with the first.
    return list(reversed(settings.signing_keys))


def _serializer(settings: Settings, purpose: str, now: datetime) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(
        _keys(settings),
        salt=_SALT_PREFIX + purpose,
        signer=_ClockedSigner,
        signer_kwargs=_options(now),
    )


def _signer(settings: Settings, purpose: str, now: datetime) -> _ClockedSigner:
    return _ClockedSigner(_keys(settings), salt=_SALT_PREFIX + purpose, **_options(now))


def _acceptable(value: object) -> str | None:
    if isinstance(value, str) and value and len(value) <= MAX_LENGTH and value.isascii():
        return value
    return None


def dumps(settings: Settings, purpose: str, data: dict[str, Any], *, now: datetime) -> str:
    """``data`` (JSON-able) signed for ``purpose`` at ``now``."""
    return _serializer(settings, purpose, now).dumps(data)


def loads(
    settings: Settings, purpose: str, value: object, *, now: datetime, max_age: int
) -> dict[str, Any] | None:
    """The data signed for ``purpose`` no more than ``max_age`` seconds before ``now``, or
    None."""
    text = _acceptable(value)
    if text is None:
        return None
    try:
        data = _serializer(settings, purpose, now).loads(text, max_age=max_age)
    except BadData:
        return None
    return data if isinstance(data, dict) else None


def sign(settings: Settings, purpose: str, message: str, *, now: datetime) -> str:
    """``message`` (ASCII, no ``.``) with a timestamp and signature for ``purpose``."""
    return _signer(settings, purpose, now).sign(message).decode("ascii")


def unsign(
    settings: Settings, purpose: str, value: object, *, now: datetime, max_age: int
) -> str | None:
    """The message ``value`` carries, if signed for ``purpose`` within ``max_age``; else
    None."""
    text = _acceptable(value)
    if text is None:
        return None
    try:
        return _signer(settings, purpose, now).unsign(text, max_age=max_age).decode("ascii")
    except (BadData, UnicodeDecodeError):
        return None

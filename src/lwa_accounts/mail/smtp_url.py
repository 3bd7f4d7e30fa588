"""``LWA_ACCOUNTS_SMTP_URL``: where mail leaves, as one URL (standard library only).

``smtp://user:password@host:587?starttls=1`` (STARTTLS required: the connection fails
rather than going on in clear), ``smtps://user:password@host:465`` (TLS from the first
byte), ``smtp://host:25`` (plain: only for a relay on this host or a private network).
``cafile=/path/ca.pem`` trusts that CA bundle instead of the system's (a relay with a
private CA). User and password are percent-decoded (``%40`` for ``@``). Anything else in
the query is refused, so a typo cannot silently turn TLS off.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import parse_qsl, unquote, urlsplit

TlsMode = Literal["implicit", "starttls", "none"]

_DEFAULT_PORTS: dict[TlsMode, int] = {"implicit": 465, "starttls": 587, "none": 25}
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


class SmtpUrlInvalid(ValueError):
    """The URL cannot be used; the message never repeats the password."""


@dataclass(frozen=True)
class SmtpTarget:
    host: str
    port: int
    tls: TlsMode
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    cafile: str | None = None

    @property
    def where(self) -> str:
        """``host:port (tls)``: safe to print and log (no credentials)."""
        return f"{self.host}:{self.port} ({self.tls})"


def parse_smtp_url(url: str) -> SmtpTarget:
    """The target ``url`` names; ``SmtpUrlInvalid`` saying what is wrong."""
    name = "LWA_ACCOUNTS_SMTP_URL"
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        raise SmtpUrlInvalid(f"{name} is not a URL with a valid port") from None
    if parts.scheme not in ("smtp", "smtps"):
        raise SmtpUrlInvalid(f"{name} must start with smtp:// or smtps://")
    if not parts.hostname:
        raise SmtpUrlInvalid(f"{name} names no host")
    if parts.path not in ("", "/") or parts.fragment:
        raise SmtpUrlInvalid(f"{name} takes no path or fragment")
    query: dict[str, str] = {}
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key not in ("starttls", "cafile") or key in query:
            raise SmtpUrlInvalid(f"{name}: unknown or repeated option {key!r} (starttls, cafile)")
        query[key] = value
    tls: TlsMode = "implicit" if parts.scheme == "smtps" else "none"
    starttls = query.get("starttls", "0").lower()
    if starttls not in _TRUE + _FALSE:
        raise SmtpUrlInvalid(f"{name}: starttls must be 1 or 0")
    if starttls in _TRUE:
        if tls == "implicit":
            raise SmtpUrlInvalid(f"{name}: smtps:// is TLS already; starttls=1 is for smtp://")
        tls = "starttls"
    username = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password is not None else None
    if password is not None and username is None:
        raise SmtpUrlInvalid(f"{name} has a password but no user")
    return SmtpTarget(
        host=parts.hostname,
        port=port or _DEFAULT_PORTS[tls],
        tls=tls,
        username=username,
        password=password,
        cafile=query.get("cafile") or None,
    )

"""Input rules for usernames, emails, names and passwords. Pure: stdlib only, no I/O.

Each check returns ``Valid(value)`` (the normalised value to store) or ``Invalid(message)``;
callers collect messages per field and raise ``errors.ValidationFailed`` themselves, because
core/ may not import the error tree.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection
from dataclasses import dataclass, field

USERNAME_MIN = 3
USERNAME_MAX = 32
EMAIL_MAX = 254
EMAIL_LOCAL_MAX = 64
NAME_MAX = 100
POSTAL_CODE_MAX = 32
PASSWORD_MIN = 8
PASSWORD_MAX = 1024

# ASCII only (re.ASCII): a Kelvin sign or a Cyrillic "а" must not pass as a Latin letter.
_USERNAME_RE = re.compile(r"[a-z0-9._-]+", re.ASCII)
# Deliberately simple: one "@", no whitespace or quoting in the local part, a dotted domain.
_EMAIL_LOCAL_RE = re.compile(r"[^\s@\"(),:;<>\[\]\\]+")
_EMAIL_LABEL_RE = re.compile(r"[^\W_](?:[\w-]*[^\W_])?")
# Bidirectional overrides and isolates can disguise a name on screen.
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


@dataclass(frozen=True, slots=True)
class Valid:
    value: str


@dataclass(frozen=True, slots=True)
class Invalid:
    message: str


Checked = Valid | Invalid


def normalise_username(raw: str) -> Checked:
    """3–32 of ``[a-z0-9._-]``; upper-case ASCII letters are folded to lower case."""
    text = raw.strip()
    # Lower-case only after the ASCII check: str.lower() maps some non-ASCII letters
    # (e.g. KELVIN SIGN) onto ASCII ones.
    if not text.isascii():
        return Invalid("Use only the letters a-z, digits, '.', '_' and '-'.")
    text = text.lower()
    if not _USERNAME_RE.fullmatch(text):
        return Invalid("Use only the letters a-z, digits, '.', '_' and '-'.")
    if not USERNAME_MIN <= len(text) <= USERNAME_MAX:
        return Invalid(f"Use {USERNAME_MIN} to {USERNAME_MAX} characters.")
    return Valid(text)


def username_key(raw: str) -> str | None:
    """The stored (lower-case) form of a username, or None if it cannot be one."""
    checked = normalise_username(raw)
    return checked.value if isinstance(checked, Valid) else None


def email_key(email: str) -> str:
    """The uniqueness key of an email address: stripped, NFKC-normalised, lower-case."""
    return unicodedata.normalize("NFKC", email.strip()).lower()


def normalise_email(raw: str) -> Checked:
    """An address that looks like ``local@domain.tld``; the value keeps the case as typed.

    Use ``email_key`` on the value for lookups and uniqueness.
    """
    text = unicodedata.normalize("NFKC", raw.strip())
    if not text:
        return Invalid("Enter an email address.")
    if len(text) > EMAIL_MAX:
        return Invalid(f"Use at most {EMAIL_MAX} characters.")
    local, at, domain = text.rpartition("@")
    labels = domain.split(".")
    if (
        not at
        or len(local) > EMAIL_LOCAL_MAX
        or not _EMAIL_LOCAL_RE.fullmatch(local)
        or len(labels) < 2
        or not all(_EMAIL_LABEL_RE.fullmatch(label) for label in labels)
        or labels[-1].isdigit()  # an IP-like domain; punycode TLDs (xn--...) are fine
        or any(unicodedata.category(ch).startswith("C") for ch in text)
    ):
        return Invalid("Enter a valid email address, like name@example.com.")
    return Valid(text)


def validate_name(raw: str) -> Checked:
    """1–100 characters after trimming, without control or bidi-override characters."""
    text = unicodedata.normalize("NFC", raw.strip())
    if not text:
        return Invalid("Enter your name.")
    if len(text) > NAME_MAX:
        return Invalid(f"Use at most {NAME_MAX} characters.")
    if any(_is_control(ch) or ch in _BIDI_CONTROLS for ch in text):
        return Invalid("The name contains characters that are not allowed.")
    return Valid(text)


def validate_postal_code(raw: str) -> Checked:
    """At most 32 printable characters after trimming; empty means "none" (``Valid("")``)."""
    text = unicodedata.normalize("NFC", raw.strip())
    if len(text) > POSTAL_CODE_MAX:
        return Invalid(f"Use at most {POSTAL_CODE_MAX} characters.")
    if not text.isprintable():  # no controls, bidi overrides, surrogates or odd spaces
        return Invalid("The postal code contains characters that are not allowed.")
    return Valid(text)


def validate_password(password: str, common: Collection[str]) -> Checked:
    """8–1024 characters and not one of ``common`` (lower-case entries). Never trimmed."""
    if len(password) < PASSWORD_MIN:
        return Invalid(f"Use at least {PASSWORD_MIN} characters.")
    if len(password) > PASSWORD_MAX:
        return Invalid(f"Use at most {PASSWORD_MAX} characters.")
    if password.lower() in common:
        return Invalid("This password is too common. Choose another one.")
    return Valid(password)


@dataclass(frozen=True, slots=True)
class Registration:
    """The outcome of checking a registration form: values when ``ok``, else ``errors``."""

    username: str = ""
    email: str | None = None
    name: str = ""
    password: str = field(default="", repr=False)
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.errors


def validate_registration(
    *,
    username: str,
    email: str | None,
    name: str,
    password: str,
    common: Collection[str],
) -> Registration:
    """Check every field at once, so a form can show all its messages together.

    ``email`` may be None or blank (an account without email); otherwise it must be valid.
    """
    errors: dict[str, str] = {}
    values: dict[str, str | None] = {"email": None}
    checks: dict[str, Checked] = {
        "username": normalise_username(username),
        "name": validate_name(name),
        "password": validate_password(password, common),
    }
    if email is not None and email.strip():
        checks["email"] = normalise_email(email)
    for key, checked in checks.items():
        if isinstance(checked, Invalid):
            errors[key] = checked.message
        else:
            values[key] = checked.value
    if errors:
        return Registration(errors=errors)
    return Registration(
        username=values["username"] or "",
        email=values["email"],
        name=values["name"] or "",
        password=values["password"] or "",
    )


def _is_control(ch: str) -> bool:
    # Cc control (incl. NUL), Cs surrogates, Co private use, Cn unassigned.
    return unicodedata.category(ch) in ("Cc", "Cs", "Co", "Cn")

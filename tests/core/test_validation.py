"""The pure input rules: usernames, emails, names, passwords."""

from __future__ import annotations

import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lwa_accounts.core.validation import (
    Invalid,
    Valid,
    email_key,
    normalise_email,
    normalise_username,
    username_key,
    validate_name,
    validate_password,
    validate_registration,
)

COMMON = frozenset({"password", "qwertyuiop", "12345678"})


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("alice", "alice"),
        ("Alice", "alice"),
        ("  BOB_99  ", "bob_99"),
        ("a.b-c_d", "a.b-c_d"),
        ("abc", "abc"),
        ("x" * 32, "x" * 32),
    ],
)
def test_valid_usernames_are_lower_cased(raw: str, expected: str) -> None:
    assert normalise_username(raw) == Valid(expected)
    assert username_key(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "ab",
        "x" * 33,
        "al ice",
        "alice@example.com",
        "al\x00ice",
        "ali\nce",
        "\u212aate",  # KELVIN SIGN, lower-cases to ASCII "k"
        "k\u0430te",  # Cyrillic small a
        "ａｌｉｃｅ",  # fullwidth
        "alıce",  # dotless i
        "alice!",
        "al/ice",
        "ß" * 4,
    ],
)
def test_invalid_usernames_are_refused(raw: str) -> None:
    assert isinstance(normalise_username(raw), Invalid)
    assert username_key(raw) is None


@given(st.text(max_size=40))
def test_normalise_username_is_idempotent(raw: str) -> None:
    checked = normalise_username(raw)
    if isinstance(checked, Valid):
        assert normalise_username(checked.value) == checked
        assert checked.value == checked.value.lower()
        assert set(checked.value) <= set(string.ascii_lowercase + string.digits + "._-")
        assert 3 <= len(checked.value) <= 32


@given(st.text(alphabet=string.ascii_letters + string.digits + "._-", min_size=3, max_size=32))
def test_every_allowed_username_is_accepted(raw: str) -> None:
    assert normalise_username(raw) == Valid(raw.lower())


@pytest.mark.parametrize(
    ("raw", "value", "key"),
    [
        ("alice@example.com", "alice@example.com", "alice@example.com"),
        ("  Alice@Example.COM ", "Alice@Example.COM", "alice@example.com"),
        ("first.last+tag@sub.example.co.uk", "first.last+tag@sub.example.co.uk", None),
        ("alice＠example.com", "alice@example.com", "alice@example.com"),  # NFKC
        ("jörg@bücher.de", "jörg@bücher.de", "jörg@bücher.de"),
        ("ivan@example.xn--p1ai", "ivan@example.xn--p1ai", None),
    ],
)
def test_valid_emails(raw: str, value: str, key: str | None) -> None:
    assert normalise_email(raw) == Valid(value)
    assert email_key(value) == (key or value.lower())


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "alice",
        "alice@",
        "@example.com",
        "alice@example",
        "alice@@example.com",
        "al ice@example.com",
        "alice@exa mple.com",
        "alice@example..com",
        "alice@-example.com",
        "alice@example.123",
        "al\x00ice@example.com",
        "alice@example.com\x00",
        "al\u200bice@example.com",  # zero-width space
        'a"b@example.com',
        "a" * 65 + "@example.com",
        "a@" + "b" * 250 + ".com",
    ],
)
def test_invalid_emails(raw: str) -> None:
    assert isinstance(normalise_email(raw), Invalid)


def test_email_key_matches_for_case_and_width_variants() -> None:
    assert (
        email_key(" Alice@Example.COM")
        == email_key("ａｌｉｃｅ@example.com")
        == "alice@example.com"
    )


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Alice", "Alice"),
        ("  Zoë Smith ", "Zoë Smith"),
        ("李小龍", "李小龍"),
        ("x" * 100, "x" * 100),
    ],
)
def test_valid_names(raw: str, expected: str) -> None:
    assert validate_name(raw) == Valid(expected)


def test_names_are_nfc_normalised() -> None:
    assert validate_name("Zoe\u0308") == Valid("Zo\u00eb")


@pytest.mark.parametrize(
    "raw",
    ["", "   ", "x" * 101, "Al\x00ice", "Al\x07ice", "Line\nbreak", "evil\u202etxt.exe", "\ue000"],
)
def test_invalid_names(raw: str) -> None:
    assert isinstance(validate_name(raw), Invalid)


@pytest.mark.parametrize("password", ["correct horse", "x" * 8, "y" * 1024, "  spaced  ", "é" * 8])
def test_valid_passwords_are_kept_exactly(password: str) -> None:
    assert validate_password(password, COMMON) == Valid(password)


@pytest.mark.parametrize(
    ("password", "fragment"),
    [
        ("short", "at least 8"),
        ("", "at least 8"),
        ("x" * 1025, "at most 1024"),
        ("password", "too common"),
        ("PassWord", "too common"),
        ("QWERTYUIOP", "too common"),
    ],
)
def test_invalid_passwords(password: str, fragment: str) -> None:
    checked = validate_password(password, COMMON)
    assert isinstance(checked, Invalid)
    assert fragment in checked.message


def test_registration_collects_every_error() -> None:
    result = validate_registration(
        username="a", email="nope", name="", password="password", common=COMMON
    )
    assert not result.ok
    assert set(result.errors) == {"username", "email", "name", "password"}


def test_registration_returns_normalised_values() -> None:
    result = validate_registration(
        username=" Alice ",
        email=" Alice@Example.com ",
        name=" Alice Smith ",
        password=" a good passphrase ",
        common=COMMON,
    )
    assert result.ok
    assert (result.username, result.email, result.name, result.password) == (
        "alice",
        "Alice@Example.com",
        "Alice Smith",
        " a good passphrase ",
    )


@pytest.mark.parametrize("email", [None, "", "   "])
def test_registration_without_email(email: str | None) -> None:
    result = validate_registration(
        username="bob", email=email, name="Bob", password="a good passphrase", common=COMMON
    )
    assert result.ok
    assert result.email is None


def test_registration_repr_hides_the_password() -> None:
    result = validate_registration(
        username="bob", email=None, name="Bob", password="hunter2hunter2", common=COMMON
    )
    assert "hunter2" not in repr(result)


@given(st.text(max_size=60))
def test_normalise_email_is_idempotent_and_keys_are_stable(raw: str) -> None:
    checked = normalise_email(raw)
    if isinstance(checked, Valid):
        assert normalise_email(checked.value) == checked
        assert email_key(email_key(checked.value)) == email_key(checked.value)
        assert "\x00" not in checked.value
        assert len(checked.value) <= 254


@given(st.emails())
def test_ordinary_addresses_are_accepted(raw: str) -> None:
    local = raw.rpartition("@")[0]
    if len(raw) <= 254 and len(local) <= 64 and '"' not in local:
        assert normalise_email(raw) == Valid(raw)

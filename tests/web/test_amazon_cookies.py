"""The signed cookies of the Amazon web flow (state + PKCE verifier, pending flow)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from starlette.responses import Response

from lwa_accounts.settings import Settings
from lwa_accounts.web import amazon_cookies as cookies

NOW = datetime(2026, 11, 24, 18, 0, tzinfo=UTC)


def settings(tmp_path: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {"env": "test", "data_dir": tmp_path, "secret_key": "k" * 32}
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


def test_round_trip_and_expiry(tmp_path: Path) -> None:
    s = settings(tmp_path)
    value = cookies.sign(s, cookies.OAUTH_COOKIE, {"state": "abc"}, now=NOW)
    assert cookies.verify(s, cookies.OAUTH_COOKIE, value, now=NOW, max_age=600) == {"state": "abc"}
    edge = NOW + timedelta(seconds=600)  # exactly max_age old: still good
    assert cookies.verify(s, cookies.OAUTH_COOKIE, value, now=edge, max_age=600) is not None
    later = NOW + timedelta(seconds=601)
    assert cookies.verify(s, cookies.OAUTH_COOKIE, value, now=later, max_age=600) is None
    earlier = NOW - timedelta(seconds=5)  # issued "in the future": refused too
    assert cookies.verify(s, cookies.OAUTH_COOKIE, value, now=earlier, max_age=600) is None


def test_tampering_other_purposes_and_other_keys_are_refused(tmp_path: Path) -> None:
    s = settings(tmp_path)
    value = cookies.sign(s, cookies.OAUTH_COOKIE, {"state": "abc"}, now=NOW)
    body, _, mac = value.rpartition(".")
    forged = cookies.sign(s, cookies.FLOW_COOKIE, {"state": "evil"}, now=NOW)
    for candidate in (
        None,
        "",
        "nodot",
        body + "." + "0" * len(mac),
        body[:-2] + "." + mac,
        forged,  # signed for the other cookie
        "x" * 5000,
        "%%%." + mac,
    ):
        assert cookies.verify(s, cookies.OAUTH_COOKIE, candidate, now=NOW, max_age=600) is None
    other_key = settings(tmp_path, secret_key="z" * 32)
    assert cookies.verify(other_key, cookies.OAUTH_COOKIE, value, now=NOW, max_age=600) is None


def test_cookie_flags(tmp_path: Path) -> None:
    for secure in (False, True):
        response = Response()
        s = settings(tmp_path, cookie_secure=secure)
        cookies.write(response, s, cookies.FLOW_COOKIE, {"flow": "f"}, now=NOW, max_age=600)
        header = response.headers["set-cookie"]
        assert "HttpOnly" in header
        assert "SameSite=lax" in header
        assert "Path=/auth/amazon" in header
        assert "Max-Age=600" in header
        assert ("Secure" in header) is secure

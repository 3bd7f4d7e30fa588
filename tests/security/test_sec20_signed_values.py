"""security.md items 4, 14b and 20: signed values (Amazon flow cookies, the hand-off proof,
CSRF tokens) are refused, never a 500, when non-ASCII, truncated, re-signed with another
key, expired, from the future, or minted for another purpose (each purpose has its own salt,
so a value signed for one never verifies for another)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from lwa_accounts import signing
from lwa_accounts.clock import FixedClock
from lwa_accounts.settings import Settings
from lwa_accounts.web import amazon_cookies, csrf, handoff_proof
from tests.web.conftest import START, csrf_from, make_settings, serve_app

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
KEY = "the-service-key-" + "k" * 32
ATTACKER_KEY = "an-attacker-key-" + "a" * 32
PURPOSES = [
    "amazon-cookie " + amazon_cookies.OAUTH_COOKIE,
    "amazon-cookie " + amazon_cookies.FLOW_COOKIE,
    "amazon-cookie " + handoff_proof.PROOF_COOKIE,
    "csrf",
]
DATA: dict[str, Any] = {"flow": "flw_x", "binding": "b", "state": "s", "next": "/"}


def keyed(tmp_path: Path, key: str = KEY) -> Settings:
    return Settings(env="test", data_dir=tmp_path, secret_key=key)


def forgeries(settings: Settings, attacker: Settings, purpose: str) -> dict[str, str]:
    """What an attacker can send instead of a value signed for ``purpose`` now."""
    good = signing.dumps(settings, purpose, DATA, now=NOW)
    other = next(p for p in PURPOSES if p != purpose)
    body, _, mac = good.rpartition(".")
    return {
        "other_key": signing.dumps(attacker, purpose, DATA, now=NOW),
        "other_purpose": signing.dumps(settings, other, DATA, now=NOW),
        "expired": signing.dumps(settings, purpose, DATA, now=NOW - timedelta(seconds=601)),
        "from_the_future": signing.dumps(settings, purpose, DATA, now=NOW + timedelta(seconds=5)),
        "truncated": good[:-1],
        "truncated_more": good[: len(good) // 2],
        "no_signature": body,
        "mac_zeroed": body + "." + "A" * len(mac),
        "non_ascii": good[:-2] + "é",
        "non_ascii_only": "é.é.é",
        "nul": good + "\x00",
        "lone_surrogate": good[:-1] + "\ud800",
        "huge": good + "A" * 5000,
        "empty": "",
    }


@pytest.mark.parametrize("purpose", PURPOSES)
def test_every_forgery_is_refused_for_every_purpose(tmp_path: Path, purpose: str) -> None:
    settings, attacker = keyed(tmp_path), keyed(tmp_path, ATTACKER_KEY)
    good = signing.dumps(settings, purpose, DATA, now=NOW)
    assert signing.loads(settings, purpose, good, now=NOW, max_age=600) == DATA
    for name, value in forgeries(settings, attacker, purpose).items():
        assert signing.loads(settings, purpose, value, now=NOW, max_age=600) is None, name


@pytest.mark.parametrize("purpose", PURPOSES)
def test_signed_messages_have_the_same_refusals(tmp_path: Path, purpose: str) -> None:
    settings, attacker = keyed(tmp_path), keyed(tmp_path, ATTACKER_KEY)
    good = signing.sign(settings, purpose, "message", now=NOW)
    assert signing.unsign(settings, purpose, good, now=NOW, max_age=600) == "message"
    other = next(p for p in PURPOSES if p != purpose)
    for name, value in {
        "other_key": signing.sign(attacker, purpose, "message", now=NOW),
        "other_purpose": signing.sign(settings, other, "message", now=NOW),
        "expired": signing.sign(settings, purpose, "message", now=NOW - timedelta(seconds=601)),
        "truncated": good[:-3],
        "non_ascii": good + "é",
        "not_text": b"bytes",
        "missing": None,
    }.items():
        assert signing.unsign(settings, purpose, value, now=NOW, max_age=600) is None, name


def test_a_non_dict_payload_is_refused(tmp_path: Path) -> None:
    settings = keyed(tmp_path)
    purpose = PURPOSES[0]
    listed = signing._serializer(settings, purpose, NOW).dumps(["flow"])
    assert signing.loads(settings, purpose, listed, now=NOW, max_age=600) is None


# ---- through the app ----------------------------------------------------------------------


def _flow_cookie_forgeries(settings: Settings, now: datetime) -> dict[str, str]:
    attacker = settings.model_copy(update={"secret_key": None, "secret_keys": None})
    attacker = Settings(**{**attacker.model_dump(), "secret_key": ATTACKER_KEY})
    data = {"flow": "flw_" + "x" * 40, "binding": "b" * 43, "next": "/account"}
    name = amazon_cookies.FLOW_COOKIE
    return {
        "other_key": amazon_cookies.sign(attacker, name, data, now=now),
        "oauth_cookie_as_flow_cookie": amazon_cookies.sign(
            settings, amazon_cookies.OAUTH_COOKIE, data, now=now
        ),
        "proof_cookie_as_flow_cookie": amazon_cookies.sign(
            settings, handoff_proof.PROOF_COOKIE, data, now=now
        ),
        "expired": amazon_cookies.sign(
            settings, name, data, now=now - timedelta(seconds=settings.flow_ttl_seconds + 1)
        ),
        "truncated": amazon_cookies.sign(settings, name, data, now=now)[:-4],
    }


@pytest.mark.parametrize("path", ["/auth/amazon/link", "/auth/amazon/register"])
async def test_a_forged_flow_cookie_is_as_good_as_none(tmp_path: Path, path: str) -> None:
    settings = make_settings(tmp_path)
    clock = FixedClock(START)
    async with serve_app(settings, clock=clock) as http:
        without = await http.get(path)
        assert without.status_code < 500
        for name, value in _flow_cookie_forgeries(settings, clock.now()).items():
            http.cookies.set(amazon_cookies.FLOW_COOKIE, value, path="/auth/amazon")
            answer = await http.get(path)
            http.cookies.clear()
            assert answer.status_code == without.status_code, (name, answer.status_code)
            assert answer.text == without.text, name


async def _signin_form(http: httpx.AsyncClient) -> str:
    return csrf_from((await http.get("/signin")).text)


async def _post_signin(http: httpx.AsyncClient, token: str) -> int:
    answer = await http.post(
        "/signin", data={"csrf_token": token, "username": "nobody", "password": "x"}
    )
    return answer.status_code


async def test_csrf_tokens_expire_and_are_bound_to_their_purpose(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    clock = FixedClock(START)
    async with serve_app(settings, clock=clock) as http:
        token = await _signin_form(http)
        accepted = await _post_signin(http, token)
        assert accepted != 403
        assert accepted < 500
        # Same binding, signed for another purpose (as a flow cookie would be): refused.
        vouched = signing.unsign(settings, "csrf", token, now=clock.now(), max_age=60)
        assert vouched is not None
        for other in PURPOSES[:3]:
            swapped = signing.sign(settings, other, vouched, now=clock.now())
            assert await _post_signin(http, swapped) == 403, other
        attacker = make_settings(tmp_path, secret_key=ATTACKER_KEY)
        assert (
            await _post_signin(http, signing.sign(attacker, "csrf", vouched, now=clock.now()))
            == 403
        )
        assert await _post_signin(http, token[:-1]) == 403
        assert await _post_signin(http, token + "é") == 403
        clock.advance(csrf.TOKEN_MAX_AGE)
        assert await _post_signin(http, token) != 403  # exactly the maximum age: still good
        clock.advance(1)
        assert await _post_signin(http, token) == 403  # older: "Form expired"
        assert await _post_signin(http, await _signin_form(http)) != 403  # a fresh form works

"""Secret-key rotation: the first key signs and seals, every key verifies and opens.

For each thing made from the key (the Amazon flow cookies, the hand-off proof cookie, CSRF
tokens, sealed values): made under the old key it still works after rotating to [new, old],
is refused once the old key is dropped, and what is made after the rotation is the new key's.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import ValidationError
from starlette.requests import Request

from lwa_accounts.errors import CsrfFailed
from lwa_accounts.sealing import SealBroken, Sealer
from lwa_accounts.settings import Settings
from lwa_accounts.web import amazon_cookies, csrf, handoff_proof
from tests.web.conftest import csrf_from, make_settings, serve_app

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
OLD = "old-key-" + "o" * 40
NEW = "new-key-" + "n" * 40


def keyed(tmp_path: Path, keys: str | None = None, *, key: str | None = None) -> Settings:
    return Settings(env="test", data_dir=tmp_path, secret_keys=keys, secret_key=key)


def phases(tmp_path: Path) -> dict[str, Settings]:
    return {
        "old": keyed(tmp_path, key=OLD),  # a single-key configuration, as before rotation
        "rotated": keyed(tmp_path, f"{NEW}, {OLD}"),
        "new": keyed(tmp_path, NEW),
        "old_only": keyed(tmp_path, OLD),
    }


# ---- the settings -------------------------------------------------------------------


def test_secret_keys_split_on_commas_and_spaces_first_one_signing(tmp_path: Path) -> None:
    for raw in (f"{NEW},{OLD}", f"{NEW} {OLD}", f" {NEW} ,\n {OLD}, "):
        assert keyed(tmp_path, raw).signing_keys == (NEW.encode(), OLD.encode())


def test_a_single_secret_key_is_kept_verbatim(tmp_path: Path) -> None:
    # An existing key with a space or comma in it is one key, not a list.
    settings = keyed(tmp_path, key="one key, with a comma and spaces 0123456789")
    assert settings.signing_keys == (b"one key, with a comma and spaces 0123456789",)


def test_secret_key_and_secret_keys_together_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="SECRET_KEYS or LWA_ACCOUNTS_SECRET_KEY, not both"):
        keyed(tmp_path, NEW, key=OLD)
    with pytest.raises(ValidationError, match="SECRET_KEYS holds no key"):
        keyed(tmp_path, " , ")


def test_development_still_generates_and_keeps_one_key(tmp_path: Path) -> None:
    first = Settings(env="development", data_dir=tmp_path).signing_keys
    assert len(first) == 1
    assert len(first[0]) >= 48
    assert Settings(env="development", data_dir=tmp_path).signing_keys == first
    assert (tmp_path / "secret_key").stat().st_mode & 0o777 == 0o600


def test_production_never_generates_a_key(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="LWA_ACCOUNTS_SECRET_KEY is required in production"):
        _ = Settings(env="production", data_dir=tmp_path).signing_keys
    assert not (tmp_path / "secret_key").exists()


# ---- every signed or sealed value ---------------------------------------------------------

Make = Callable[[Settings], str]
Check = Callable[[Settings, str], bool]


def _request(cookies: dict[str, str]) -> Request:
    header = "; ".join(f"{name}={value}" for name, value in cookies.items())
    return Request({"type": "http", "headers": [(b"cookie", header.encode())]})


NONCE = "N" * 43
CSRF_REQUEST = _request({"lwa_csrf": NONCE, "lwa_session": "s" * 43})


def _csrf_ok(settings: Settings, token: str) -> bool:
    try:
        csrf.verify(CSRF_REQUEST, token, settings, now=NOW)
    except CsrfFailed:
        return False
    return True


def _opens(settings: Settings, sealed: str) -> bool:
    try:
        return Sealer(settings).open("handoff-flow-id", sealed, aad="row") == "flow-id"
    except SealBroken:
        return False


def _cookie(name: str) -> tuple[Make, Check]:
    data: dict[str, Any] = {"state": "st", "verifier": "v"}
    return (
        lambda s: amazon_cookies.sign(s, name, data, now=NOW),
        lambda s, v: amazon_cookies.verify(s, name, v, now=NOW, max_age=600) == data,
    )


KINDS: dict[str, tuple[Make, Check]] = {
    "oauth_cookie": _cookie(amazon_cookies.OAUTH_COOKIE),
    "flow_cookie": _cookie(amazon_cookies.FLOW_COOKIE),
    "handoff_proof_cookie": _cookie(handoff_proof.PROOF_COOKIE),
    "csrf_token": (lambda s: csrf.token_for(CSRF_REQUEST, NONCE, s, now=NOW), _csrf_ok),
    "sealed_value": (lambda s: Sealer(s).seal("handoff-flow-id", "flow-id", aad="row"), _opens),
}


@pytest.mark.parametrize("kind", KINDS)
def test_made_under_the_old_key_works_after_rotation_until_the_old_key_goes(
    tmp_path: Path, kind: str
) -> None:
    make, works = KINDS[kind]
    by = phases(tmp_path)
    before = make(by["old"])
    assert works(by["old"], before)
    assert works(by["rotated"], before)  # [new, old]: the old key still verifies / opens
    assert not works(by["new"], before)  # old key dropped: refused


@pytest.mark.parametrize("kind", KINDS)
def test_made_after_rotation_is_the_new_keys(tmp_path: Path, kind: str) -> None:
    make, works = KINDS[kind]
    by = phases(tmp_path)
    after = make(by["rotated"])
    assert works(by["rotated"], after)
    assert works(by["new"], after)  # the new key alone: signed by it
    assert not works(by["old_only"], after)  # not by the old one


def test_a_single_key_and_the_same_key_as_a_list_are_the_same_key(tmp_path: Path) -> None:
    # Moving from SECRET_KEY=K to SECRET_KEYS=K changes nothing that was signed or sealed.
    for make, works in KINDS.values():
        assert works(keyed(tmp_path, OLD), make(keyed(tmp_path, key=OLD)))


# ---- through the app: a form rendered before the rotation posts after it -------------------


async def test_a_form_from_before_the_rotation_posts_after_it(tmp_path: Path) -> None:
    async def post_with(settings: Settings, cookies: httpx.Cookies, token: str) -> int:
        async with serve_app(settings) as http:
            http.cookies = cookies
            answer = await http.post(
                "/signin", data={"csrf_token": token, "username": "nobody", "password": "x"}
            )
            return answer.status_code

    async with serve_app(make_settings(tmp_path, secret_key=OLD)) as before:
        token = csrf_from((await before.get("/signin")).text)
        cookies = before.cookies
    rotated = await post_with(
        make_settings(tmp_path, secret_key=None, secret_keys=f"{NEW} {OLD}"), cookies, token
    )
    dropped = await post_with(
        make_settings(tmp_path, secret_key=None, secret_keys=NEW), cookies, token
    )
    assert rotated != 403
    assert rotated < 500
    assert dropped == 403


def test_expiry_still_applies_under_every_key(tmp_path: Path) -> None:
    by = phases(tmp_path)
    value = amazon_cookies.sign(by["old"], amazon_cookies.OAUTH_COOKIE, {"x": 1}, now=NOW)
    late = NOW + timedelta(seconds=601)
    assert (
        amazon_cookies.verify(
            by["rotated"], amazon_cookies.OAUTH_COOKIE, value, now=late, max_age=600
        )
        is None
    )


@pytest.mark.parametrize("kind", KINDS)
def test_during_each_rolling_restart_every_host_accepts_what_the_others_make(
    tmp_path: Path, kind: str
) -> None:
    # The documented steps: [old] -> [old, new] -> [new, old] -> [new]. During each restart
    # hosts run one of two neighbouring steps; each must accept the other's values.
    make, works = KINDS[kind]
    steps = [
        keyed(tmp_path, key=OLD),
        keyed(tmp_path, f"{OLD} {NEW}"),
        keyed(tmp_path, f"{NEW} {OLD}"),
        keyed(tmp_path, NEW),
    ]
    for before, after in pairwise(steps):
        assert works(after, make(before))
        assert works(before, make(after))
    # Skipping a step is what breaks: [old] cannot read what [new, old] signs.
    assert not works(steps[0], make(steps[2]))

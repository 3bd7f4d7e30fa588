"""next= accepts only local paths to pages that merely show something: properties over
arbitrary input, and the state-changing steps it must never lead into (security.md
items 5 and 20)."""

from __future__ import annotations

from urllib.parse import urljoin, urlsplit

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from lwa_accounts.web.redirects import DEFAULT_NEXT, safe_next

SITE = "https://accounts.example"


@given(st.one_of(st.text(), st.text(alphabet="/\\:.@%?#ab \t\r\n\x00").map(lambda s: "/" + s)))
@example("//evil.example")
@example("/\\evil.example")
@example("/\t/evil.example")
@example("https://evil.example")
def test_result_always_stays_on_this_site(value: str) -> None:
    result = safe_next(value)
    assert result in (value, DEFAULT_NEXT)
    # Resolved the way a browser resolves a Location header, it stays on our host.
    assert urlsplit(urljoin(SITE + "/signin", result)).netloc == "accounts.example"
    assert result.startswith("/")
    assert not result.startswith(("//", "/\\"))
    assert not any(ch.isspace() or ord(ch) < 32 for ch in result)


@pytest.mark.parametrize(
    "value",
    ["/account", "/account?tab=sessions", "/tv#start", "/", "/activate?code=BCDF-GHJK"],
)
def test_local_pages_pass(value: str) -> None:
    assert safe_next(value) == value


@pytest.mark.parametrize(
    "value",
    [
        "/auth/amazon/start?intent=attach",
        "/auth/amazon/start",
        "/auth/amazon/callback?code=x&state=y",
        "/auth/amazon/link",
        "/signout",
        "/activate/decide",
        "/activate/link",
        "/activate/amazon",
        "/account/amazon/link",
        "/account/amazon/unlink",
        "/account/sessions/x/signout",
        "/account/",
        "/%61uth/amazon/start?intent=attach",
        "/api/v1/me",
        "/_amazon/ap/oa",
        "/a/b/c",
    ],
)
def test_sec20_next_never_leads_into_a_step(value: str) -> None:
    assert safe_next(value) == DEFAULT_NEXT


@pytest.mark.parametrize("value", [None, 42, "", "account", "x" * 3000, "/" + "x" * 3000])
def test_non_paths_fall_back(value: object) -> None:
    assert safe_next(value) == DEFAULT_NEXT

"""next= accepts only local paths: properties over arbitrary input."""

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


@pytest.mark.parametrize("value", ["/account", "/account?tab=sessions", "/tv#start", "/a/b/c"])
def test_local_paths_pass(value: str) -> None:
    assert safe_next(value) == value


@pytest.mark.parametrize("value", [None, 42, "", "account", "x" * 3000, "/" + "x" * 3000])
def test_non_paths_fall_back(value: object) -> None:
    assert safe_next(value) == DEFAULT_NEXT

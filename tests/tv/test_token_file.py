"""The device's token file: mode 0600 from the first byte, atomic, tolerant on read."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from lwa_accounts.tv.client import Account, SignedIn
from lwa_accounts.tv.token_file import forget_session, load_session, save_session

SIGNED_IN = SignedIn(
    token="secret-token",
    expires_at="2027-01-01T00:00:00Z",
    account=Account(id="acc_1", username="ada", email=None, name="Ada", amazon_user_id=None),
)


def test_file_is_0600_even_with_a_permissive_umask(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "token.json"
    old = os.umask(0)
    try:
        save_session(path, "http://server", SIGNED_IN)
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    stored = load_session(path)
    assert stored is not None
    assert (stored.token, stored.username, stored.server) == (
        "secret-token",
        "ada",
        "http://server",
    )
    assert "secret-token" not in repr(stored)


def test_overwriting_a_wider_file_narrows_it(tmp_path: Path) -> None:
    path = tmp_path / "token.json"
    path.write_text("{}")
    path.chmod(0o644)
    save_session(path, "http://server", SIGNED_IN)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert not path.with_name("token.json.tmp").exists()


def test_unreadable_or_missing_files_load_as_none(tmp_path: Path) -> None:
    path = tmp_path / "token.json"
    assert load_session(path) is None
    path.write_text("not json")
    assert load_session(path) is None
    path.write_text('{"server": "x"}')
    assert load_session(path) is None
    assert forget_session(path) is True
    assert forget_session(path) is False

"""``lwa-accounts db upgrade`` / ``db current`` against a fresh data directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from lwa_accounts.cli import main
from lwa_accounts.store import migrate


def test_db_current_then_upgrade(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LWA_ACCOUNTS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("LWA_ACCOUNTS_DATABASE_URL", raising=False)
    head = migrate.head()

    assert main(["db", "current"]) == 0
    out = capsys.readouterr().out
    assert "current: (empty database)" in out
    assert f"head:    {head}" in out

    assert main(["db", "upgrade"]) == 0
    assert f"upgraded to {head}" in capsys.readouterr().out
    assert (tmp_path / "data" / "lwa-accounts.db").is_file()

    assert main(["db", "current"]) == 0
    out = capsys.readouterr().out
    assert f"current: {head}" in out
    assert "db upgrade" not in out


def test_db_needs_a_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["db"])
    assert exit_info.value.code == 2

"""The settings reference in docs/operations.md is what ``settings_doc`` generates from
``Settings``; the regeneration command rewrites only the block between the markers."""

from __future__ import annotations

from pathlib import Path

import pytest

from lwa_accounts import settings_doc
from lwa_accounts.settings import Settings
from tests.config.production_env import clean_env
from tests.processes import run_cli

OPERATIONS = Path(__file__).parents[2] / "docs" / "operations.md"


def test_the_reference_in_operations_md_is_up_to_date() -> None:
    block = settings_doc.block_of(OPERATIONS.read_text(encoding="utf-8"))
    assert block == settings_doc.reference(), (
        f"docs/operations.md's settings reference is stale: run `{settings_doc.REGENERATE}`"
    )


def test_every_setting_has_a_description_and_a_row() -> None:
    assert settings_doc.undocumented() == []
    table = settings_doc.reference()
    for name in Settings.model_fields:
        assert f"| `LWA_ACCOUNTS_{name.upper()}` (`{name}`) |" in table


def test_rows_show_type_bounds_and_default() -> None:
    rows = {line.split(" | ")[0]: line for line in settings_doc.reference().splitlines()}
    assert rows["| `LWA_ACCOUNTS_FLOW_TTL_SECONDS` (`flow_ttl_seconds`)"].split(" | ")[1:3] == [
        "integer > 0, ≤ 600",
        "`600`",
    ]
    env = rows["| `LWA_ACCOUNTS_ENV` (`env`)"].split(" | ")
    assert env[1:3] == ["one of `development`, `test`, `production`", "`development`"]
    keys = rows["| `LWA_ACCOUNTS_SECRET_KEYS` (`secret_keys`)"].split(" | ")
    assert keys[1:3] == ["secret text", "unset"]
    proxies = rows["| `LWA_ACCOUNTS_TRUSTED_PROXIES` (`trusted_proxies`)"].split(" | ")
    assert proxies[1:3] == ["comma-separated list", "empty"]


def test_a_stale_block_is_caught_and_the_command_rewrites_only_the_block(tmp_path: Path) -> None:
    current = OPERATIONS.read_text(encoding="utf-8")
    assert f"```sh\n{settings_doc.REGENERATE}\n```" in current  # the command the docs give
    stale = current.replace("| `LWA_ACCOUNTS_LOG_LEVEL` (`log_level`) |", "| `OLD` |")
    assert stale != current
    assert settings_doc.block_of(stale) != settings_doc.reference()  # the check can fail
    copy = tmp_path / "operations.md"
    copy.write_text(stale, encoding="utf-8")
    # The command the docs give, on a copy.
    command = settings_doc.REGENERATE.removeprefix("lwa-accounts ").split()
    command[-1] = str(copy)
    result = run_cli(*command, env=clean_env(tmp_path / "var"))
    assert result.returncode == 0, result.stderr
    assert copy.read_text(encoding="utf-8") == current
    assert not (tmp_path / "var").exists()


def test_printing_and_missing_markers(tmp_path: Path) -> None:
    printed = run_cli("check-config", "--settings-reference", env=clean_env(tmp_path))
    assert printed.returncode == 0
    assert printed.stdout == settings_doc.reference()
    no_markers = tmp_path / "plain.md"
    no_markers.write_text("# nothing here\n", encoding="utf-8")
    result = run_cli(
        "check-config", "--settings-reference", "--write", str(no_markers), env=clean_env(tmp_path)
    )
    assert result.returncode == 1
    assert "needs the lines" in result.stderr
    assert no_markers.read_text(encoding="utf-8") == "# nothing here\n"
    with pytest.raises(settings_doc.MarkersMissing):
        settings_doc.replace_block(f"{settings_doc.END}\n{settings_doc.START}\n", "x")

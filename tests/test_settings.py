"""Settings validation: the profile sync policies (security.md item 14)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from lwa_accounts.settings import Settings
from tests.processes import free_port, run_cli


def test_profile_sync_defaults_keep_what_a_person_typed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LWA_ACCOUNTS_PROFILE_SYNC_NAME", raising=False)
    monkeypatch.delenv("LWA_ACCOUNTS_PROFILE_SYNC_POSTAL_CODE", raising=False)
    settings = Settings()
    assert (settings.profile_sync_name, settings.profile_sync_postal_code) == (
        "fill_empty",
        "always",
    )


@pytest.mark.parametrize("policy", ["never", "fill_empty", "always"])
def test_profile_sync_policies_are_read_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, policy: str
) -> None:
    monkeypatch.setenv("LWA_ACCOUNTS_PROFILE_SYNC_NAME", policy)
    monkeypatch.setenv("LWA_ACCOUNTS_PROFILE_SYNC_POSTAL_CODE", policy)
    settings = Settings()
    assert (settings.profile_sync_name, settings.profile_sync_postal_code) == (policy, policy)


@pytest.mark.parametrize("value", ["sometimes", "Always", "", "fill-empty", " never"])
@pytest.mark.parametrize("variable", ["PROFILE_SYNC_NAME", "PROFILE_SYNC_POSTAL_CODE"])
def test_an_unknown_profile_sync_policy_is_refused_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(f"LWA_ACCOUNTS_{variable}", value)
    with pytest.raises(ValidationError) as refused:
        Settings()
    assert f"LWA_ACCOUNTS_{variable} must be one of never, fill_empty, always" in str(refused.value)


def test_serve_refuses_to_start_with_an_unknown_policy(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LWA_ACCOUNTS_")}
    env |= {"LWA_ACCOUNTS_DATA_DIR": str(tmp_path), "LWA_ACCOUNTS_PROFILE_SYNC_NAME": "overwrite"}
    result = run_cli("serve", "--host", "127.0.0.1", "--port", str(free_port()), env=env)
    assert result.returncode != 0
    assert "LWA_ACCOUNTS_PROFILE_SYNC_NAME must be one of never, fill_empty, always" in (
        result.stderr
    )
    assert not (tmp_path / "lwa-accounts.db").exists()  # refused before touching anything

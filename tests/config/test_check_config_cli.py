"""``lwa-accounts check-config`` in a fresh process: verdicts, exit codes, ``--json``; it
starts nothing and opens no database."""

from __future__ import annotations

import json
from pathlib import Path

from tests.config.production_env import KEY, clean_env, fit_production
from tests.processes import run_cli


def test_development_passes_and_says_the_rules_are_for_production(tmp_path: Path) -> None:
    result = run_cli("check-config", env=clean_env(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "LWA_ACCOUNTS_ENV=development" in result.stdout
    assert "production rules apply only with LWA_ACCOUNTS_ENV=production" in result.stdout
    assert list(tmp_path.iterdir()) == []  # no key file, no database


def test_unfit_production_lists_every_refusal_and_exits_1(tmp_path: Path) -> None:
    result = run_cli("check-config", env=clean_env(tmp_path, ENV="production", COOKIE_SECURE="0"))
    assert result.returncode == 1
    refused = [line for line in result.stdout.splitlines() if line.startswith("refused: ")]
    for variable in (
        "LWA_ACCOUNTS_SECRET_KEY",
        "LWA_ACCOUNTS_LWA_CLIENT_ID",
        "LWA_ACCOUNTS_LWA_CLIENT_SECRET",
        "LWA_ACCOUNTS_PUBLIC_URL",
        "LWA_ACCOUNTS_COOKIE_SECURE",
        "LWA_ACCOUNTS_ALLOW_SQLITE_IN_PRODUCTION",
        "LWA_ACCOUNTS_SMTP_URL",
        "LWA_ACCOUNTS_MAIL_FROM",
    ):
        assert sum(variable in line for line in refused) == 1, (variable, result.stdout)
    assert len(refused) == 8
    assert "warning: LWA_ACCOUNTS_TRUSTED_PROXIES is empty" in result.stdout
    assert "result: refused, 8 problems to fix" in result.stdout
    assert list(tmp_path.iterdir()) == []


def test_fit_production_passes_with_its_warnings(tmp_path: Path) -> None:
    result = run_cli("check-config", "--workers", "3", env=fit_production(tmp_path))
    assert result.returncode == 0, result.stdout
    assert "refused" not in result.stdout
    assert "warning: The database is SQLite (allowed by" in result.stdout
    assert "but 3 processes will serve" in result.stdout
    assert "result: ok, fit for production" in result.stdout
    assert list(tmp_path.iterdir()) == []


def test_json_output(tmp_path: Path) -> None:
    env = fit_production(tmp_path, PUBLIC_URL="http://accounts.example.com")
    result = run_cli("check-config", "--json", env=env)
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert report["env"] == "production"
    assert report["ok"] is False
    assert [r["code"] for r in report["refusals"]] == ["public_url_not_https"]
    assert report["refusals"][0]["sentence"].startswith("LWA_ACCOUNTS_PUBLIC_URL is ")
    assert {w["code"] for w in report["warnings"]} >= {"sqlite_allowed", "redis_missing"}
    assert len(report["secret_keys"]) == 1  # a fingerprint, never the key
    assert KEY not in result.stdout
    ok = json.loads(run_cli("check-config", "--json", env=fit_production(tmp_path)).stdout)
    assert ok["ok"] is True
    assert ok["refusals"] == []


def test_settings_that_do_not_parse_are_refusals(tmp_path: Path) -> None:
    env = clean_env(tmp_path, PROFILE_SYNC_NAME="sometimes", FLOW_TTL_SECONDS="0")
    result = run_cli("check-config", env=env)
    assert result.returncode == 1
    assert "refused: LWA_ACCOUNTS_PROFILE_SYNC_NAME must be one of never" in result.stdout
    assert "refused: LWA_ACCOUNTS_FLOW_TTL_SECONDS: " in result.stdout
    assert "Traceback" not in result.stdout + result.stderr
    as_json = json.loads(run_cli("check-config", "--json", env=env).stdout)
    assert {r["code"] for r in as_json["refusals"]} == {"invalid_setting"}
    assert len(as_json["refusals"]) == 2
    both = run_cli("check-config", env=clean_env(tmp_path, SECRET_KEY=KEY, SECRET_KEYS=KEY))
    assert both.returncode == 1
    assert "refused: Set LWA_ACCOUNTS_SECRET_KEYS or LWA_ACCOUNTS_SECRET_KEY, not both" in (
        both.stdout
    )
    assert KEY not in both.stdout


def test_fingerprints_tell_the_keys_apart_in_order(tmp_path: Path) -> None:
    old, new = "o" * 43, "n" * 43
    one = run_cli("check-config", "--json", env=clean_env(tmp_path, SECRET_KEY=old))
    two = run_cli("check-config", "--json", env=clean_env(tmp_path, SECRET_KEYS=f"{new} {old}"))
    (old_print,) = json.loads(one.stdout)["secret_keys"]
    assert json.loads(two.stdout)["secret_keys"][1] == old_print
    assert json.loads(two.stdout)["secret_keys"][0] != old_print


def test_bad_arguments_are_a_usage_error(tmp_path: Path) -> None:
    for args in (["--workers", "0"], ["--write", "x.md"], ["--workers", "many"]):
        result = run_cli("check-config", *args, env=clean_env(tmp_path))
        assert result.returncode == 2, args
        assert "Traceback" not in result.stderr

"""config_check.py: every production refusal on its own and all at once, the warnings, and
create_app refusing before it builds anything."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from lwa_accounts import config_check
from lwa_accounts.config_check import Verdict
from lwa_accounts.errors import ConfigurationRefused
from lwa_accounts.settings import (
    EMULATED_DEVICE_CLIENT_ID,
    EMULATED_WEB_CLIENT_ID,
    EMULATED_WEB_CLIENT_SECRET,
    TEST_SECRET_KEY,
    Settings,
)
from lwa_accounts.web.app import create_app

KEY = "k" * 43
OTHER_KEY = "o" * 43
CLIENT_ID = "amzn1.application-oa2-client.0123456789abcdef0123456789abcdef"
SMTP_URL = "smtp://mailer:smtp-password-value@mail.example.com:587?starttls=1"


def fit(tmp_path: Path, **overrides: Any) -> Settings:
    """Production settings with nothing to refuse and nothing to warn about."""
    values: dict[str, Any] = {
        "env": "production",
        "data_dir": tmp_path,
        "secret_key": KEY,
        "lwa_client_id": CLIENT_ID,
        "lwa_client_secret": "a-real-looking-client-secret",
        "public_url": "https://accounts.example.com",
        "database_url": "postgresql+asyncpg://lwa@db.example.com/lwa",
        "redis_url": "redis://redis.example.com:6379/0",
        "trusted_proxies": "10.0.0.0/8",
        "smtp_url": SMTP_URL,
        "mail_from": "Accounts <no-reply@example.com>",
    }
    return Settings(**{**values, **overrides})


def codes(verdicts: list[Verdict], level: str = "refusal") -> set[str]:
    return {verdict.code for verdict in verdicts if verdict.level == level}


def test_fit_production_settings_have_no_verdicts(tmp_path: Path) -> None:
    assert config_check.check(fit(tmp_path)) == []
    assert config_check.enforce(fit(tmp_path)) == []


# One problem at a time, each from the fit settings: (overrides, the one refusal, the
# setting its sentence must name).
REFUSALS: dict[str, tuple[dict[str, Any], str]] = {
    "secret_key_missing": ({"secret_key": None}, "LWA_ACCOUNTS_SECRET_KEY"),
    "secret_key_short": ({"secret_key": "x" * 31}, "LWA_ACCOUNTS_SECRET_KEY"),
    "secret_key_published": ({"secret_key": TEST_SECRET_KEY}, "LWA_ACCOUNTS_SECRET_KEY"),
    "emulator_mounted": ({"lwa_client_id": None}, "LWA_ACCOUNTS_LWA_CLIENT_ID"),
    "lwa_client_id_emulated": (
        {"lwa_client_id": EMULATED_WEB_CLIENT_ID},
        "LWA_ACCOUNTS_LWA_CLIENT_ID",
    ),
    "lwa_client_secret_missing": ({"lwa_client_secret": None}, "LWA_ACCOUNTS_LWA_CLIENT_SECRET"),
    "lwa_client_secret_emulated": (
        {"lwa_client_secret": EMULATED_WEB_CLIENT_SECRET},
        "LWA_ACCOUNTS_LWA_CLIENT_SECRET",
    ),
    "lwa_device_client_id_emulated": (
        {"lwa_device_client_id": EMULATED_DEVICE_CLIENT_ID},
        "LWA_ACCOUNTS_LWA_DEVICE_CLIENT_ID",
    ),
    "amazon_url_not_https": (
        {"lwa_api_url": "http://api.amazon.com"},
        "LWA_ACCOUNTS_LWA_API_URL",
    ),
    "public_url_not_https": (
        {"public_url": "http://accounts.example.com"},
        "LWA_ACCOUNTS_PUBLIC_URL",
    ),
    "cookies_not_secure": ({"cookie_secure": False}, "LWA_ACCOUNTS_COOKIE_SECURE"),
    "sqlite_in_production": ({"database_url": None}, "LWA_ACCOUNTS_ALLOW_SQLITE_IN_PRODUCTION"),
    "smtp_url_missing": ({"smtp_url": None}, "LWA_ACCOUNTS_SMTP_URL"),
    "mail_from_missing": ({"mail_from": None}, "LWA_ACCOUNTS_MAIL_FROM"),
}


@pytest.mark.parametrize("code", REFUSALS)
def test_each_refusal_on_its_own(tmp_path: Path, code: str) -> None:
    overrides, variable = REFUSALS[code]
    verdicts = config_check.check(fit(tmp_path, **overrides))
    assert codes(verdicts) == {code}
    (refusal,) = config_check.refusals(verdicts)
    assert variable in refusal.sentence
    # One plain sentence: capitalised, one full stop at the end, no line breaks.
    assert refusal.sentence[0].isupper()
    assert refusal.sentence.endswith(".")
    assert "\n" not in refusal.sentence
    with pytest.raises(ConfigurationRefused) as refused:
        config_check.enforce(fit(tmp_path, **overrides))
    assert refused.value.sentences == [refusal.sentence]


def test_a_short_old_key_in_the_list_is_refused_too(tmp_path: Path) -> None:
    settings = fit(tmp_path, secret_key=None, secret_keys=f"{KEY} short-old-key")
    (refusal,) = config_check.refusals(config_check.check(settings))
    assert refusal.code == "secret_key_short"
    assert refusal.sentence.startswith("Key 2 of LWA_ACCOUNTS_SECRET_KEYS is 13 characters")


def test_other_ways_to_fail_the_rules(tmp_path: Path) -> None:
    for overrides, code in [
        ({"public_url": "https://"}, "public_url_not_https"),  # no host
        ({"public_url": "accounts.example.com"}, "public_url_not_https"),
        ({"database_url": "sqlite+aiosqlite:////srv/lwa.db"}, "sqlite_in_production"),
        ({"lwa_authorize_url": "http://www.amazon.com/ap/oa"}, "amazon_url_not_https"),
        ({"lwa_client_secret": "   "}, "lwa_client_secret_missing"),
        ({"smtp_url": ""}, "smtp_url_missing"),  # an empty variable is unset
        ({"mail_from": "  "}, "mail_from_missing"),
    ]:
        assert codes(config_check.check(fit(tmp_path, **overrides))) == {code}, overrides


def test_every_refusal_at_once(tmp_path: Path, on_sqlite: None) -> None:
    settings = Settings(
        env="production",
        data_dir=tmp_path,
        secret_key="short",
        public_url="http://127.0.0.1:8000",
        cookie_secure=False,
        lwa_device_client_id=EMULATED_DEVICE_CLIENT_ID,
        lwa_api_url="http://127.0.0.1:9/_amazon",
    )
    verdicts = config_check.check(settings)
    assert codes(verdicts) == {
        "secret_key_short",
        "emulator_mounted",
        "lwa_client_secret_missing",
        "lwa_device_client_id_emulated",
        "amazon_url_not_https",
        "public_url_not_https",
        "cookies_not_secure",
        "sqlite_in_production",
        "smtp_url_missing",
        "mail_from_missing",
    }
    # Refusals come first, then the warnings.
    levels = [verdict.level for verdict in verdicts]
    assert levels == sorted(levels, key=lambda level: level != "refusal")
    with pytest.raises(ConfigurationRefused) as refused:
        config_check.enforce(settings)
    assert len(refused.value.sentences) == 10
    assert "LWA_ACCOUNTS_COOKIE_SECURE" in refused.value.detail


def test_no_secret_appears_in_a_verdict(tmp_path: Path) -> None:
    settings = fit(
        tmp_path,
        secret_key="short-secret-value",
        lwa_client_secret=EMULATED_WEB_CLIENT_SECRET,
        public_url="http://x",
    )
    text = " ".join(verdict.sentence for verdict in config_check.check(settings))
    plain = fit(tmp_path, smtp_url="smtp://mailer:smtp-password-value@mail.example.com:25")
    text += " ".join(verdict.sentence for verdict in config_check.check(plain))
    assert "smtp_plaintext" in codes(config_check.check(plain), "warning")  # the check ran
    assert "smtp-password-value" not in text
    assert "short-secret-value" not in text
    assert EMULATED_WEB_CLIENT_SECRET not in text


@pytest.mark.parametrize("env", ["development", "test"])
def test_outside_production_nothing_is_refused(tmp_path: Path, env: str) -> None:
    settings = Settings(env=env, data_dir=tmp_path, cookie_secure=False, secret_key="short")
    assert config_check.check(settings) == []


def test_warnings(tmp_path: Path) -> None:
    assert codes(config_check.check(fit(tmp_path, redis_url=None)), "warning") == {"redis_missing"}
    several = config_check.check(fit(tmp_path, redis_url=None), processes=4)
    assert codes(several, "warning") == {"redis_missing_several_processes"}
    assert "4 processes" in several[0].sentence
    assert config_check.check(fit(tmp_path), processes=4) == []  # Redis shares the counters
    cases: list[tuple[dict[str, Any], str]] = [
        ({"trusted_proxies": ""}, "trusted_proxies_unset"),
        ({"log_level": "debug"}, "log_level_debug"),
        ({"database_url": None, "allow_sqlite_in_production": True}, "sqlite_allowed"),
        ({"lwa_client_id": "my-client"}, "lwa_client_id_unusual"),
        ({"secret_key": None, "secret_keys": f"{KEY},{KEY}"}, "secret_key_repeated"),
        ({"smtp_url": "smtp://mail.example.com:25"}, "smtp_plaintext"),
    ]
    for overrides, code in cases:
        verdicts = config_check.check(fit(tmp_path, **overrides))
        assert codes(verdicts, "warning") == {code}, overrides
        assert codes(verdicts) == set(), overrides  # a warning never refuses
        assert config_check.enforce(fit(tmp_path, **overrides)) == verdicts


def test_check_reads_and_writes_no_file(tmp_path: Path) -> None:
    # No key configured: the development fallback would write DATA_DIR/secret_key.
    config_check.check(fit(tmp_path, secret_key=None, database_url=None))
    assert list(tmp_path.iterdir()) == []


def test_create_app_refuses_production_before_building_anything(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationRefused) as refused:
        create_app(fit(tmp_path, lwa_client_id=None, public_url="http://x"))
    assert {"LWA_ACCOUNTS_LWA_CLIENT_ID", "LWA_ACCOUNTS_PUBLIC_URL"} <= {
        word.rstrip(",:") for sentence in refused.value.sentences for word in sentence.split()
    }
    assert list(tmp_path.iterdir()) == []
    create_app(fit(tmp_path))  # fit: builds (the database opens only in the lifespan)


def test_plain_smtp_to_a_local_relay_is_no_warning(tmp_path: Path) -> None:
    for url in ("smtp://127.0.0.1:25", "smtp://localhost", "smtps://mail.example.com"):
        assert config_check.check(fit(tmp_path, smtp_url=url)) == [], url


def test_a_bad_smtp_url_refuses_without_echoing_its_password() -> None:
    for url, complaint in [
        ("http://user:hunter2-secret@mail.example.com", "smtp:// or smtps://"),
        ("smtp://user:hunter2-secret@mail.example.com/x", "no path"),
        ("smtp://user:hunter2-secret@mail.example.com?tls=1", "unknown or repeated option"),
        ("smtp://user:hunter2-secret@mail.example.com?starttls=maybe", "starttls must be"),
        ("smtps://user:hunter2-secret@mail.example.com?starttls=1", "TLS already"),
        ("smtp://user:hunter2-secret@:25", "names no host"),
    ]:
        with pytest.raises(ValidationError) as bad:
            Settings(smtp_url=url)
        (verdict,) = config_check.from_validation_error(bad.value)
        assert verdict.sentence.startswith("LWA_ACCOUNTS_SMTP_URL"), url
        assert complaint in verdict.sentence, url
        assert "hunter2-secret" not in str(bad.value) + verdict.sentence, url


def test_mail_from_must_be_an_address() -> None:
    for value in ("no-reply", "a@b", "x@example.com\r\nBcc: y@example.com", "a b@example.com"):
        with pytest.raises(ValidationError) as bad:
            Settings(mail_from=value)
        assert "LWA_ACCOUNTS_MAIL_FROM must be an address" in str(bad.value), value
    assert Settings(mail_from=" Accounts <a@example.com> ").mail_from == "Accounts <a@example.com>"


def test_settings_that_do_not_parse_become_refusals_naming_the_variable() -> None:
    with pytest.raises(ValidationError) as bad:
        Settings(profile_sync_name="sometimes", flow_ttl_seconds=0)
    verdicts = config_check.from_validation_error(bad.value)
    assert [verdict.level for verdict in verdicts] == ["refusal", "refusal"]
    sentences = sorted(verdict.sentence for verdict in verdicts)
    assert sentences[0].startswith("LWA_ACCOUNTS_FLOW_TTL_SECONDS: ")
    assert sentences[1].startswith("LWA_ACCOUNTS_PROFILE_SYNC_NAME must be one of never")

"""Is this configuration fit for ``LWA_ACCOUNTS_ENV=production``? Pure: settings in, verdicts out.

``check(settings)`` lists every problem at once, each as one plain sentence naming the
setting to change: a *refusal* stops the service from starting (``create_app`` raises
``ConfigurationRefused``; ``lwa-accounts serve`` prints them and exits before it listens), a
*warning* is printed and logged but starts anyway. ``lwa-accounts check-config`` prints the
same verdicts without starting anything. Nothing here opens a database, a socket or a file:
the SQLite rule reads the URL, the key rules read the environment's keys, never the
development key file.

Outside production there are no refusals: development is meant to run on SQLite, plain
HTTP and the emulated Amazon.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import ValidationError

from lwa_accounts.errors import ConfigurationRefused
from lwa_accounts.settings import (
    EMULATED_DEVICE_CLIENT_ID,
    EMULATED_WEB_CLIENT_ID,
    EMULATED_WEB_CLIENT_SECRET,
    EMULATOR_MOUNT,
    TEST_SECRET_KEY,
    Settings,
)

Level = Literal["refusal", "warning"]

MIN_SECRET_KEY_LENGTH = 32
# Keys anyone can read in this repository: as good as none.
PUBLISHED_KEYS = frozenset({TEST_SECRET_KEY, EMULATED_WEB_CLIENT_SECRET})
AMAZON_CLIENT_ID_PREFIX = "amzn1.application-oa2-client."


@dataclass(frozen=True)
class Verdict:
    level: Level
    code: str  # stable, for scripts (``check-config --json``) and tests
    sentence: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _refuse(code: str, sentence: str) -> Verdict:
    return Verdict("refusal", code, sentence)


def _warn(code: str, sentence: str) -> Verdict:
    return Verdict("warning", code, sentence)


def refusals(verdicts: Sequence[Verdict]) -> list[Verdict]:
    return [verdict for verdict in verdicts if verdict.level == "refusal"]


def enforce(settings: Settings, *, processes: int | None = None) -> list[Verdict]:
    """The warnings on ``settings``; ``ConfigurationRefused`` when there is any refusal."""
    verdicts = check(settings, processes=processes)
    refused = refusals(verdicts)
    if refused:
        raise ConfigurationRefused([verdict.sentence for verdict in refused])
    return verdicts


def check(settings: Settings, *, processes: int | None = None) -> list[Verdict]:
    """Every verdict on ``settings``, refusals first. ``processes``: how many server
    processes will share this configuration on this host, when known."""
    if settings.env != "production":
        return []
    verdicts = [
        *_secret_keys(settings),
        *_amazon(settings),
        *_transport(settings),
        *_database(settings),
        *_mail(settings),
        *_scale(settings, processes),
    ]
    return sorted(verdicts, key=lambda verdict: verdict.level != "refusal")


def _secret_keys(settings: Settings) -> list[Verdict]:
    keys = settings.configured_secret_keys
    if not keys:
        return [
            _refuse(
                "secret_key_missing",
                "LWA_ACCOUNTS_SECRET_KEY is not set: production needs a secret key of at least "
                f"{MIN_SECRET_KEY_LENGTH} random characters, the same on every host.",
            )
        ]
    verdicts: list[Verdict] = []
    variable = "LWA_ACCOUNTS_SECRET_KEYS" if settings.secret_keys else "LWA_ACCOUNTS_SECRET_KEY"
    for position, key in enumerate(keys, start=1):
        which = f"Key {position} of {variable}" if len(keys) > 1 else variable
        if len(key) < MIN_SECRET_KEY_LENGTH:
            verdicts.append(
                _refuse(
                    "secret_key_short",
                    f"{which} is {len(key)} characters long: production needs at least "
                    f"{MIN_SECRET_KEY_LENGTH} random characters.",
                )
            )
        elif key in PUBLISHED_KEYS:
            verdicts.append(
                _refuse(
                    "secret_key_published",
                    f"{which} is a key published in lwa-accounts' own source: make a new one.",
                )
            )
    if len(set(keys)) < len(keys):
        verdicts.append(
            _warn(
                "secret_key_repeated",
                f"{variable} lists the same key more than once: list each key once.",
            )
        )
    return verdicts


def _amazon(settings: Settings) -> list[Verdict]:
    verdicts: list[Verdict] = []
    if settings.amazon_emulated:
        verdicts.append(
            _refuse(
                "emulator_mounted",
                "LWA_ACCOUNTS_LWA_CLIENT_ID is not set, so the emulated Amazon would be mounted "
                f"at {EMULATOR_MOUNT}: set the client id of your Login with Amazon web "
                "security profile.",
            )
        )
    elif settings.lwa_client_id == EMULATED_WEB_CLIENT_ID:
        verdicts.append(
            _refuse(
                "lwa_client_id_emulated",
                "LWA_ACCOUNTS_LWA_CLIENT_ID is the emulated Amazon's development client: set "
                "the client id of your Login with Amazon web security profile.",
            )
        )
    elif not (settings.lwa_client_id or "").startswith(AMAZON_CLIENT_ID_PREFIX):
        verdicts.append(
            _warn(
                "lwa_client_id_unusual",
                f"LWA_ACCOUNTS_LWA_CLIENT_ID does not start with {AMAZON_CLIENT_ID_PREFIX} as "
                "Amazon's client ids do: check it was copied whole.",
            )
        )
    secret = settings.lwa_client_secret.get_secret_value() if settings.lwa_client_secret else ""
    if not secret.strip():
        verdicts.append(
            _refuse(
                "lwa_client_secret_missing",
                "LWA_ACCOUNTS_LWA_CLIENT_SECRET is not set: the browser sign-in needs the "
                "client secret of your Login with Amazon web security profile.",
            )
        )
    elif secret == EMULATED_WEB_CLIENT_SECRET:
        verdicts.append(
            _refuse(
                "lwa_client_secret_emulated",
                "LWA_ACCOUNTS_LWA_CLIENT_SECRET is the emulated Amazon's development secret: "
                "set the client secret of your Login with Amazon web security profile.",
            )
        )
    if settings.lwa_device_client_id == EMULATED_DEVICE_CLIENT_ID:
        verdicts.append(
            _refuse(
                "lwa_device_client_id_emulated",
                "LWA_ACCOUNTS_LWA_DEVICE_CLIENT_ID is the emulated Amazon's development "
                "client: set the client id of your device security profile, or unset it.",
            )
        )
    for name, url in (
        ("LWA_ACCOUNTS_LWA_API_URL", settings.lwa_api_url),
        ("LWA_ACCOUNTS_LWA_AUTHORIZE_URL", settings.lwa_authorize_url),
    ):
        if url is not None and urlsplit(url).scheme != "https":
            verdicts.append(
                _refuse(
                    "amazon_url_not_https",
                    f"{name} is not an https URL: tokens and codes would cross the network in "
                    "clear.",
                )
            )
    return verdicts


def _transport(settings: Settings) -> list[Verdict]:
    verdicts: list[Verdict] = []
    public = urlsplit(settings.public_url)
    if public.scheme != "https" or not public.hostname:
        verdicts.append(
            _refuse(
                "public_url_not_https",
                f"LWA_ACCOUNTS_PUBLIC_URL is {settings.public_url!r}: production needs the "
                "https URL people reach, e.g. https://accounts.example.com.",
            )
        )
    if not settings.secure_cookies:
        verdicts.append(
            _refuse(
                "cookies_not_secure",
                "LWA_ACCOUNTS_COOKIE_SECURE is off: session and sign-in cookies would travel "
                "over plain HTTP; unset it.",
            )
        )
    if not settings.trusted_proxies:
        verdicts.append(
            _warn(
                "trusted_proxies_unset",
                "LWA_ACCOUNTS_TRUSTED_PROXIES is empty: behind a reverse proxy every client "
                "shares the proxy's address in rate limits and the audit log; list the "
                "proxy's addresses.",
            )
        )
    if settings.log_level.upper() == "DEBUG":
        verdicts.append(
            _warn(
                "log_level_debug",
                "LWA_ACCOUNTS_LOG_LEVEL is DEBUG: verbose logs in production; INFO is enough.",
            )
        )
    return verdicts


def _database(settings: Settings) -> list[Verdict]:
    if not settings.effective_database_url.startswith("sqlite"):
        return []
    if not settings.allow_sqlite_in_production:
        return [
            _refuse(
                "sqlite_in_production",
                "The database is SQLite (LWA_ACCOUNTS_DATABASE_URL is "
                f"{'unset' if settings.database_url is None else 'a sqlite URL'}): set a "
                "PostgreSQL URL, or LWA_ACCOUNTS_ALLOW_SQLITE_IN_PRODUCTION=1 for one process "
                "on one host.",
            )
        ]
    return [
        _warn(
            "sqlite_allowed",
            "The database is SQLite (allowed by LWA_ACCOUNTS_ALLOW_SQLITE_IN_PRODUCTION): run "
            "one process on one host, and back up the file.",
        )
    ]


def _mail(settings: Settings) -> list[Verdict]:
    # Production must really send: verification and recovery links go nowhere otherwise,
    # and the development mailbox (/_dev/mail) never exists there.
    verdicts: list[Verdict] = []
    smtp = settings.smtp
    if smtp is None:
        verdicts.append(
            _refuse(
                "smtp_url_missing",
                "LWA_ACCOUNTS_SMTP_URL is not set: verification, recovery and notice mails "
                "would never leave; set your SMTP server, e.g. "
                "smtp://user:password@mail.example.com:587?starttls=1.",
            )
        )
    elif smtp.tls == "none" and not _is_loopback(smtp.host):
        verdicts.append(
            _warn(
                "smtp_plaintext",
                f"LWA_ACCOUNTS_SMTP_URL reaches {smtp.host} without TLS: one-time links and "
                "the SMTP password cross the network in clear; use ?starttls=1 or smtps://.",
            )
        )
    if settings.mail_from is None:
        verdicts.append(
            _refuse(
                "mail_from_missing",
                "LWA_ACCOUNTS_MAIL_FROM is not set: set the address mail comes from, e.g. "
                "no-reply@example.com (one your SMTP server may send as).",
            )
        )
    return verdicts


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _scale(settings: Settings, processes: int | None) -> list[Verdict]:
    if settings.redis_url:
        return []
    if processes is not None and processes > 1:
        return [
            _warn(
                "redis_missing_several_processes",
                f"LWA_ACCOUNTS_REDIS_URL is not set but {processes} processes will serve: each "
                "keeps its own rate-limit counters, so a guesser gets that many times the "
                "budget; set a Redis URL.",
            )
        ]
    return [
        _warn(
            "redis_missing",
            "LWA_ACCOUNTS_REDIS_URL is not set: rate-limit counters live in one process's "
            "memory, which is right only for a single process on a single host.",
        )
    ]


def from_validation_error(error: ValidationError) -> list[Verdict]:
    """Settings the environment could not even parse, as refusals (one per field)."""
    verdicts: list[Verdict] = []
    for problem in error.errors(include_url=False):
        location = problem.get("loc") or ()
        message = str(problem.get("msg", "invalid")).removeprefix("Value error, ")
        if location:
            variable = "LWA_ACCOUNTS_" + str(location[0]).upper()
            if not message.startswith(variable):
                message = f"{variable}: {message}"
        verdicts.append(_refuse("invalid_setting", message.rstrip(".") + "."))
    return verdicts

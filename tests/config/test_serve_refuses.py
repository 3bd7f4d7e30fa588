"""A real ``lwa-accounts serve`` in production mode: an unfit configuration is refused
before anything listens (every problem on stderr, exit 1, no database); a fit one serves."""

from __future__ import annotations

import socket
from pathlib import Path

import httpx

from tests.config.production_env import clean_env, fit_production
from tests.processes import CLI, free_port, run_cli, running_server


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_serve_refuses_an_unfit_production_with_every_problem(tmp_path: Path) -> None:
    port = free_port()
    env = clean_env(tmp_path, ENV="production", COOKIE_SECURE="false", SECRET_KEY="short")
    result = run_cli("serve", "--host", "127.0.0.1", "--port", str(port), env=env, timeout=60)
    assert result.returncode == 1
    assert result.stderr.startswith("lwa-accounts serve: refusing to start:")
    for sentence in (
        "LWA_ACCOUNTS_SECRET_KEY is 5 characters long",
        "LWA_ACCOUNTS_LWA_CLIENT_ID is not set, so the emulated Amazon would be mounted",
        "LWA_ACCOUNTS_LWA_CLIENT_SECRET is not set",
        f"LWA_ACCOUNTS_PUBLIC_URL is 'http://127.0.0.1:{port}'",
        "LWA_ACCOUNTS_COOKIE_SECURE is off",
        "The database is SQLite",
    ):
        assert sentence in result.stderr, (sentence, result.stderr)
    assert "Traceback" not in result.stderr
    assert "serving on" not in result.stdout
    assert not _listening(port)
    assert list(tmp_path.iterdir()) == []  # no database, no key file


def test_serve_refuses_a_single_problem_too(tmp_path: Path) -> None:
    env = fit_production(tmp_path, PUBLIC_URL="http://accounts.example.com")
    result = run_cli("serve", "--host", "127.0.0.1", "--port", str(free_port()), env=env)
    assert result.returncode == 1
    refusals = result.stderr.splitlines()[1:]
    assert len(refusals) == 1
    assert "LWA_ACCOUNTS_PUBLIC_URL is 'http://accounts.example.com'" in refusals[0]


def test_fit_production_serves_without_the_emulator(tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    data = tmp_path / "var"
    migrated = run_cli("db", "upgrade", env=fit_production(data))  # production never migrates
    assert migrated.returncode == 0, migrated.stderr
    with running_server(
        [*CLI, "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=fit_production(data),
        ready_url=base + "/health",
        log=log,
    ):
        assert httpx.get(base + "/_amazon/ap/oa", timeout=5).status_code == 404
        page = httpx.get(base + "/signin", timeout=5)
        assert page.status_code == 200
        assert "__Host-lwa_csrf" in page.headers["set-cookie"]  # Secure cookies
    output = log.read_text()
    assert "configuration: The database is SQLite (allowed by" in output  # warnings logged

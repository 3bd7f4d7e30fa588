"""Through a real `lwa-accounts serve` process on a random free loopback port, with a
fresh DATA_DIR (so the development lifespan must create the database itself)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from subprocess import CompletedProcess

import httpx
import pytest

from tests.processes import CLI, free_port, run_cli, running_server

PASSWORD = "tangerine-elephant-42"


def environment(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LWA_ACCOUNTS_")}
    env.update(
        {
            "LWA_ACCOUNTS_DATA_DIR": str(data_dir),
            "LWA_ACCOUNTS_ENV": "development",
            "LWA_ACCOUNTS_ARGON2_MEMORY_KIB": "64",
            "LWA_ACCOUNTS_ARGON2_TIME_COST": "1",
            "LWA_ACCOUNTS_LOG_LEVEL": "WARNING",
        }
    )
    return env


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    data_dir = tmp_path / "var"  # does not exist yet
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with running_server(
        [*CLI, "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=environment(data_dir),
        ready_url=base + "/health",
        log=tmp_path / "serve.log",
    ):
        yield base, data_dir


def test_register_sign_in_and_me_over_real_http(server: tuple[str, Path]) -> None:
    base, data_dir = server
    assert (data_dir / "lwa-accounts.db").exists()  # migrated on start
    with httpx.Client(base_url=base, timeout=10) as client:
        created = client.post(
            "/api/v1/accounts",
            json={
                "username": "ada",
                "email": "ada@example.com",
                "name": "Ada",
                "password": PASSWORD,
            },
        )
        assert created.status_code == 201, created.text
        signed_in = client.post("/api/v1/sessions", json={"username": "ada", "password": PASSWORD})
        assert signed_in.status_code == 201, signed_in.text
        token = signed_in.json()["session"]["token"]
        me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
        assert me.status_code == 200
        assert me.json()["account"]["username"] == "ada"
        page = client.get("/signin")
        assert page.status_code == 200
        assert "Sign in" in page.text
        assert "server" not in {k.lower() for k in page.headers}


def test_accounts_cli_create_and_list(tmp_path: Path) -> None:
    env = environment(tmp_path / "var")

    def create(username: str, name: str, password: str, *extra: str) -> CompletedProcess[str]:
        return run_cli(
            *("accounts", "create", username, "--name", name, "--password-stdin", *extra),
            env=env,
            input=password + "\n",
        )

    created = create("Grace", "Grace H", PASSWORD, "--email", "grace@example.com")
    assert created.returncode == 0, created.stderr
    assert created.stdout.strip().startswith("acc_")
    duplicate = create("grace", "G", PASSWORD)
    assert duplicate.returncode == 1
    assert "taken" in duplicate.stderr
    weak = create("weakling", "W", "short")
    assert weak.returncode == 1
    assert "password" in weak.stderr
    listing = run_cli("accounts", "list", env=env)
    assert listing.returncode == 0, listing.stderr
    lines = listing.stdout.strip().splitlines()
    assert lines[0].split("\t")[:2] == ["id", "username"]
    assert len(lines) == 2
    assert "\tgrace\tgrace@example.com\tGrace H\t" in lines[1]

"""`lwa-accounts emulator serve` as a real process on a free loopback port, and its refusals."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from lwa_accounts.cli import main
from lwa_accounts.cli.emulator import SeedFileError, load_customers
from lwa_accounts.emulator.app import create_app
from lwa_accounts.emulator.config import EmulatorConfig, refuse_in_production
from lwa_accounts.errors import EmulatorRefused
from tests.processes import free_port, run_cli, running_server

COMMAND = str(Path(sys.executable).parent / "lwa-accounts")
SEED_YAML = """\
- name: Alan Turing
  email: alan@example.com
  password: enigma
  postal_code: "SW1A 1AA"
- name: Katherine Johnson
  email: katherine@example.com
"""


def environment(tmp_path: Path, env: str) -> dict[str, str]:
    return {**os.environ, "LWA_ACCOUNTS_ENV": env, "LWA_ACCOUNTS_DATA_DIR": str(tmp_path)}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    seed = tmp_path / "customers.yaml"
    seed.write_text(SEED_YAML)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "emulator.log"
    with running_server(
        [COMMAND, "emulator", "serve", "--port", str(port), "--customers", str(seed)],
        env=environment(tmp_path, "test"),
        ready_url=base + "/_emulator/clock",
        log=log,
        timeout=15,
    ):
        yield base
        assert "Emulated Amazon (not the real amazon.com)" in log.read_text()


def test_standalone_server_over_real_http(server: str) -> None:
    with httpx.Client(base_url=server, timeout=5) as client:
        customers = client.get("/_emulator/customers").json()
        assert [c["name"] for c in customers] == ["Alan Turing", "Katherine Johnson"]
        pair = client.post(
            "/auth/o2/create/codepair",
            data={
                "response_type": "device_code",
                "client_id": "amzn1.application-oa2-client.devdeviceclient00000000000000",
                "scope": "profile",
            },
        ).json()
        assert pair["verification_uri"] == server + "/code"
        login = client.get("/code")
        assert "Continue as Alan Turing" not in login.text  # sign-in comes after the code
        assert "Emulated Amazon" in login.text
        fault = client.post(
            "/_emulator/faults", json={"path": "/auth/o2/token", "drop": True, "times": 1}
        )
        assert fault.status_code == 201
        poll = {
            "grant_type": "device_code",
            "device_code": pair["device_code"],
            "user_code": pair["user_code"],
        }
        # Under uvicorn a dropped connection is a transport error at the client: an early
        # end of the body, or a reset when the close races the read.
        with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
            client.post("/auth/o2/token", data=poll)
        pending = client.post("/auth/o2/token", data=poll)
        assert pending.status_code == 400
        assert pending.json()["error"] == "authorization_pending"


def test_refuses_to_start_in_production(tmp_path: Path) -> None:
    result = run_cli(
        "emulator", "serve", "--port", str(free_port()), env=environment(tmp_path, "production")
    )
    assert result.returncode == 2
    assert "LWA_ACCOUNTS_ENV=production" in result.stderr


def test_create_app_refuses_production() -> None:
    with pytest.raises(EmulatorRefused):
        create_app(EmulatorConfig(environment="production"))
    with pytest.raises(EmulatorRefused):
        refuse_in_production("production")
    refuse_in_production("development")


def test_bad_seed_file_is_exit_code_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    seed = tmp_path / "customers.json"
    seed.write_text('[{"name": "No Email"}]')
    monkeypatch.setenv("LWA_ACCOUNTS_ENV", "test")
    assert main(["emulator", "serve", "--customers", str(seed)]) == 2
    assert "not a list of customers" in capsys.readouterr().err


def test_seed_files_in_json_and_yaml(tmp_path: Path) -> None:
    as_json = tmp_path / "c.json"
    as_json.write_text('[{"name": "A", "email": "a@example.com", "password": "p"}]')
    assert [c.email for c in load_customers(as_json)] == ["a@example.com"]
    as_yaml = tmp_path / "c.yml"
    as_yaml.write_text(SEED_YAML)
    loaded = load_customers(as_yaml)
    assert [c.password for c in loaded] == ["enigma", "password"]
    with pytest.raises(SeedFileError):
        load_customers(tmp_path / "missing.yaml")

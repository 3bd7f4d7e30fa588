"""`lwa-accounts accounts create` prompts twice; `serve` is wired to the parser."""

from __future__ import annotations

import getpass
from pathlib import Path

import pytest

from lwa_accounts import cli

PASSWORD = "tangerine-elephant-42"


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LWA_ACCOUNTS_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("LWA_ACCOUNTS_ENV", "development")
    monkeypatch.setenv("LWA_ACCOUNTS_ARGON2_MEMORY_KIB", "64")
    monkeypatch.setenv("LWA_ACCOUNTS_ARGON2_TIME_COST", "1")
    monkeypatch.delenv("LWA_ACCOUNTS_DATABASE_URL", raising=False)
    monkeypatch.delenv("LWA_ACCOUNTS_REDIS_URL", raising=False)
    return tmp_path


def answers(monkeypatch: pytest.MonkeyPatch, *values: str) -> list[str]:
    prompts: list[str] = []
    queue = list(values)

    def fake_getpass(prompt: str = "") -> str:
        prompts.append(prompt)
        return queue.pop(0)

    monkeypatch.setattr(getpass, "getpass", fake_getpass)
    return prompts


def test_create_prompts_twice_and_refuses_a_mismatch(
    env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    answers(monkeypatch, PASSWORD, PASSWORD + "x")
    assert cli.main(["accounts", "create", "ada", "--name", "Ada"]) == 1
    assert "do not match" in capsys.readouterr().err
    assert not (env / "lwa-accounts.db").exists()  # nothing was even opened

    prompts = answers(monkeypatch, PASSWORD, PASSWORD)
    code = cli.main(["accounts", "create", "Ada", "--email", "ada@example.com", "--name", "Ada"])
    assert code == 0
    assert len(prompts) == 2
    assert capsys.readouterr().out.strip().startswith("acc_")

    assert cli.main(["accounts", "list"]) == 0
    listed = capsys.readouterr().out
    assert "\tada\tada@example.com\tAda\t" in listed
    assert PASSWORD not in listed


def test_serve_and_accounts_are_registered() -> None:
    parser = cli.build_parser()
    args = parser.parse_args(["serve", "--port", "9123"])
    assert (args.host, args.port) == ("127.0.0.1", 9123)
    with pytest.raises(SystemExit):
        parser.parse_args(["serve", "--port", "not-a-number"])
    with pytest.raises(SystemExit):
        parser.parse_args(["accounts", "create", "ada"])  # --name is required


def test_serve_public_url_follows_the_port_unless_set() -> None:
    from lwa_accounts.cli.serve import with_listen_address
    from lwa_accounts.settings import Settings

    derived = with_listen_address(Settings(), "127.0.0.1", 9000)
    assert derived.public_url == "http://127.0.0.1:9000"
    assert derived.amazon_authorize_url == "http://127.0.0.1:9000/_amazon/ap/oa"
    assert with_listen_address(Settings(), "0.0.0.0", 9001).public_url == "http://127.0.0.1:9001"
    explicit = Settings(public_url="https://tv.example.com")
    assert with_listen_address(explicit, "127.0.0.1", 9000).public_url == "https://tv.example.com"

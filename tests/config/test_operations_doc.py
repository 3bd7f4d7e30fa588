"""The commands of docs/operations.md's production and rotation sections, run as written."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from lwa_accounts.cli.check_config import fingerprint
from tests.config.production_env import fit_production
from tests.config.test_config_check import REFUSALS

OPERATIONS = Path(__file__).parents[2] / "docs" / "operations.md"
OLD_KEY = "the-key-in-use-today-" + "t" * 30


def section(title: str) -> str:
    text = OPERATIONS.read_text(encoding="utf-8")
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end > 0 else None]


def shell_blocks(text: str) -> list[str]:
    return [
        "\n".join(line.strip() for line in block.splitlines())
        for block in re.findall(r"```sh\n(.*?)```", text, flags=re.DOTALL)
    ]


def bash(script: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    # `lwa-accounts` and `python3` as the docs say them: this interpreter's.
    env = {**env, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"}
    return subprocess.run(
        ["bash", "-c", script], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def test_every_refusal_is_documented() -> None:
    text = section("Production mode and configuration")
    for code in [*REFUSALS, "invalid_setting"]:
        assert f"`{code}`" in text, code


def test_the_check_config_commands_run(tmp_path: Path) -> None:
    commands = shell_blocks(section("Production mode and configuration"))[0]
    for line in commands.splitlines():
        command = line.split("#")[0].strip()
        result = bash(command, fit_production(tmp_path))
        assert result.returncode == 0, (command, result.stdout, result.stderr)
        assert "fit for production" in result.stdout or '"ok": true' in result.stdout


def test_the_minimal_production_environment_is_fit(tmp_path: Path) -> None:
    assignments = shell_blocks(section("Production mode and configuration"))[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("LWA_ACCOUNTS_")}
    for line in assignments.splitlines():
        name, _, value = line.partition("=")
        value = re.sub(r"<48 random characters[^>]*>", "r" * 48, value)
        env[name] = re.sub(r"<[^>]+>", "x" * 32, value)
    env["LWA_ACCOUNTS_DATA_DIR"] = str(tmp_path)
    result = bash("lwa-accounts check-config", env)
    assert result.returncode == 0, result.stdout
    assert "warning" not in result.stdout  # nothing left to improve
    assert "result: ok, fit for production" in result.stdout


def test_the_rotation_steps_run_in_order(tmp_path: Path) -> None:
    steps = shell_blocks(section("Rotate the secret key"))
    assert len(steps) == 4
    script = "set -e\n" + "\necho '--- next step'\n".join(steps)
    env = fit_production(tmp_path, SECRET_KEY=OLD_KEY)
    env["OLD_KEY"] = OLD_KEY
    result = bash(script, env)
    assert result.returncode == 0, (result.stdout, result.stderr)
    outputs = result.stdout.split("--- next step\n")
    assert outputs[0] == ""  # making the key prints nothing
    keys = [re.search(r"secret keys \(the first signs\): (.*)", output) for output in outputs[1:]]
    lists = [match.group(1).split(", ") for match in keys if match]
    old = fingerprint(OLD_KEY)
    assert len(lists) == 3
    new = lists[0][1]
    assert new != old
    assert lists == [[old, new], [new, old], [new]]
    assert all("result: ok, fit for production" in output for output in outputs[1:])

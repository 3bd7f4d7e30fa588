"""Real server processes for tests: a free loopback port, start, wait until ready, stop."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def running_server(
    command: Sequence[str],
    *,
    env: Mapping[str, str],
    ready_url: str,
    log: Path,
    timeout: float = 30,
) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``command`` until the block ends; fail the test unless ``ready_url`` answers 200
    within ``timeout`` seconds. Output goes to ``log`` (a file, not a pipe: a full pipe
    would stall the server)."""
    with log.open("w") as out:  # the child keeps its own copy of the descriptor
        process = subprocess.Popen(command, env=dict(env), stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                pytest.fail(f"server exited early ({process.returncode}):\n{log.read_text()}")
            try:
                if httpx.get(ready_url, timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"server not ready within {timeout} s:\n{log.read_text()}")
            time.sleep(0.1)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# The `lwa-accounts` command, run by the interpreter running the tests.
CLI = [sys.executable, "-m", "lwa_accounts.cli"]


def run_cli(
    *args: str, env: Mapping[str, str], input: str | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """``lwa-accounts *args`` in a fresh process; the caller checks the return code."""
    return subprocess.run(
        [*CLI, *args],
        input=input,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )

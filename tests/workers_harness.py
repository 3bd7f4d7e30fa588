"""Real ``serve --workers N`` deployments for tests: a standalone emulated Amazon (several
workers cannot share the embedded one), Redis for the throttle, and which worker process
holds a given TCP connection (read from /proc, so the app needs no "who am I" header)."""

from __future__ import annotations

import http.client
import os
import subprocess
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from lwa_accounts.settings import (
    EMULATED_DEVICE_CLIENT_ID,
    EMULATED_WEB_CLIENT_ID,
    EMULATED_WEB_CLIENT_SECRET,
)
from tests.conftest import REDIS_URL, require_service
from tests.processes import CLI, free_port, running_server

GRACE_USER_ID = "amzn1.account.GRACEHOPPER0000000000000DEMO"


def base_environment(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LWA_ACCOUNTS_")}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    env.update(
        {
            "LWA_ACCOUNTS_ENV": "development",
            "LWA_ACCOUNTS_DATA_DIR": str(data_dir),
            "LWA_ACCOUNTS_LOG_LEVEL": "WARNING",
            "LWA_ACCOUNTS_ARGON2_MEMORY_KIB": "64",
            "LWA_ACCOUNTS_ARGON2_TIME_COST": "1",
            **extra,
        }
    )
    return env


def amazon_client_environment(amazon: str) -> dict[str, str]:
    """A configured Login with Amazon client (the emulator's own ids) at ``amazon``."""
    return {
        "LWA_ACCOUNTS_LWA_CLIENT_ID": EMULATED_WEB_CLIENT_ID,
        "LWA_ACCOUNTS_LWA_CLIENT_SECRET": EMULATED_WEB_CLIENT_SECRET,
        "LWA_ACCOUNTS_LWA_DEVICE_CLIENT_ID": EMULATED_DEVICE_CLIENT_ID,
        "LWA_ACCOUNTS_LWA_API_URL": amazon,
        "LWA_ACCOUNTS_LWA_AUTHORIZE_URL": amazon + "/ap/oa",
    }


@dataclass
class Deployment:
    base: str
    port: int
    amazon: str
    data_dir: Path
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def database(self) -> Path:
        return self.data_dir / "lwa-accounts.db"

    def worker_pids(self) -> list[int]:
        """The serving workers (children of the parent that are not multiprocessing's
        resource tracker)."""
        return [pid for pid in children(self.process.pid) if _is_worker(pid)]


@contextmanager
def workers_deployment(
    tmp_path: Path, *, workers: int = 2, serve_args: tuple[str, ...] = (), **extra: str
) -> Iterator[Deployment]:
    """An emulated Amazon and ``serve --workers N`` on SQLite + Redis, both on free ports."""
    require_service("Redis", "127.0.0.1", 6379)
    amazon_port, port = free_port(), free_port()
    amazon, base = f"http://127.0.0.1:{amazon_port}", f"http://127.0.0.1:{port}"
    data_dir = tmp_path / "var"
    env = base_environment(
        data_dir,
        LWA_ACCOUNTS_REDIS_URL=REDIS_URL,
        LWA_ACCOUNTS_REDIS_KEY_PREFIX=f"workers-{uuid.uuid4().hex[:8]}",
        **amazon_client_environment(amazon),
        **extra,
    )
    with ExitStack() as stack:
        stack.enter_context(
            running_server(
                [*CLI, "emulator", "serve", "--host", "127.0.0.1", "--port", str(amazon_port)],
                env=base_environment(tmp_path / "amazon", LWA_ACCOUNTS_PUBLIC_URL=base),
                ready_url=amazon + "/_emulator/clock",
                log=tmp_path / "amazon.log",
            )
        )
        command = [*CLI, "serve", "--host", "127.0.0.1", "--port", str(port)]
        command += ["--workers", str(workers), *serve_args]
        log = tmp_path / "serve.log"
        process = stack.enter_context(
            running_server(command, env=env, ready_url=base + "/health", log=log, timeout=90)
        )
        deployment = Deployment(base, port, amazon, data_dir, process, log)
        wait_for_workers(deployment, workers)
        yield deployment


def wait_for_workers(deployment: Deployment, count: int, timeout: float = 90) -> None:
    """Until ``count`` workers run and hold the listening socket (whether each accepts yet
    is for ``connections_per_worker`` to find out)."""
    deadline = time.monotonic() + timeout
    while len(deployment.worker_pids()) < count or not all(
        _listening(pid) for pid in deployment.worker_pids()
    ):
        if time.monotonic() > deadline:
            pytest.fail(f"{count} workers not up within {timeout} s:\n{deployment.log.read_text()}")
        time.sleep(0.2)


def children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except FileNotFoundError:
        return []
    return [int(part) for part in text.split()]


def alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie, dead but not yet reaped, counts as gone)."""
    try:
        status = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return status.rsplit(")", 1)[1].split()[0] != "Z"


def _is_worker(pid: int) -> bool:
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return False
    return b"resource_tracker" not in command


def _socket_inodes(pid: int) -> set[int]:
    inodes: set[int] = set()
    try:
        descriptors = list(Path(f"/proc/{pid}/fd").iterdir())
    except FileNotFoundError:
        return inodes
    for fd in descriptors:
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(int(target[8:-1]))
    return inodes


def _tcp_table() -> list[tuple[str, str, int, int]]:
    """(local, remote, state, inode) of every IPv4 TCP socket, addresses as "hexip:hexport"."""
    rows = []
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        rows.append((fields[1], fields[2], int(fields[3], 16), int(fields[9])))
    return rows


def _hex_address(host: str, port: int) -> str:
    packed = bytes(int(part) for part in host.split("."))
    return f"{int.from_bytes(packed, 'little'):08X}:{port:04X}"


LISTEN = 0x0A


def _listening(pid: int) -> bool:
    listening = {inode for _, _, state, inode in _tcp_table() if state == LISTEN}
    return bool(listening & _socket_inodes(pid))


def owner(connection: http.client.HTTPConnection, pids: list[int]) -> int | None:
    """The worker process holding the server end of ``connection`` (after a response on it,
    so it has been accepted)."""
    assert connection.sock is not None
    client_host, client_port = connection.sock.getsockname()[:2]
    server_host, server_port = connection.sock.getpeername()[:2]
    wanted = (_hex_address(server_host, server_port), _hex_address(client_host, client_port))
    inodes = {inode for local, remote, _, inode in _tcp_table() if (local, remote) == wanted}
    for pid in pids:
        if inodes & _socket_inodes(pid):
            return pid
    return None


def connections_per_worker(
    deployment: Deployment, *, source: str = "127.0.0.1", timeout: float = 60
) -> dict[int, http.client.HTTPConnection]:
    """One open keep-alive connection held by each worker (fresh connections until every
    worker took one; the kernel hands each to whichever worker accepts first, and a worker
    still starting accepts none)."""
    pids = deployment.worker_pids()
    found: dict[int, http.client.HTTPConnection] = {}
    spare = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        connection = http.client.HTTPConnection(
            "127.0.0.1", deployment.port, timeout=30, source_address=(source, 0)
        )
        connection.request("GET", "/health")
        response = connection.getresponse()
        response.read()
        assert response.status == 200
        pid = owner(connection, pids)
        if pid is not None and pid not in found:
            found[pid] = connection
        else:
            spare.append(connection)
        if len(found) == len(pids):
            break
        if len(spare) > 20:  # keep few open; give the other worker time to start
            spare.pop(0).close()
            time.sleep(0.05)
    for connection in spare:
        connection.close()
    return found


def request(
    connection: http.client.HTTPConnection,
    method: str,
    path: str,
    *,
    body: bytes | None = None,
    headers: Mapping[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    connection.request(method, path, body=body, headers=dict(headers or {}))
    response = connection.getresponse()
    return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()


def mint_amazon_token(amazon: str, user_id: str = GRACE_USER_ID) -> str:
    answer = httpx.post(
        amazon + "/_emulator/tokens",
        json={"user_id": user_id, "client_id": EMULATED_DEVICE_CLIENT_ID},
        timeout=10,
    )
    assert answer.status_code in (200, 201), answer.text
    token: str = answer.json()["access_token"]
    return token

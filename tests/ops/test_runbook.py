"""docs/operations.md "Incident runbook": what users and operators see in each incident,
against real servers, where the fault and reliability suites do not already show it.

- Amazon failing: Amazon sign-ins are 503 `amazon_unavailable`, but password sign-in and
  `/health` carry on, and the log names the outage once.
- Redis down: the password sign-in, the Amazon link step, a new TV code and TV code entry
  are 503 while `/health` stays 200 (the database is fine) and a session token still
  works; the log shows when the outage started and when it ended.
- A credential-stuffing wave from one address: 401s up to the address's budget, then 429
  with Retry-After for every account, each refusal in the audit log with the address, and
  the 429s in the access log.
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from tests.ops.harness import (
    PASSWORD,
    amazon_settings,
    browser_sign_in,
    csrf_token,
    me,
    mint,
    password_sign_in,
    register,
    server_env,
    serving,
    session_token,
    standalone_amazon,
)
from tests.processes import run_cli
from tests.reliability.harness import problem_of_503, tracebacks
from tests.reliability.throwaway import private_redis

pytestmark = pytest.mark.slow

ADA = "amzn1.account.ADALOVELACE0000000000000DEMO"
RECOVERY_TIMEOUT = 15.0


def test_amazon_down_refuses_amazon_sign_ins_only(tmp_path: Path) -> None:
    with standalone_amazon(tmp_path) as amazon:
        env = server_env(tmp_path / "var", **amazon_settings(amazon))
        with serving(tmp_path, "serve", env) as base:
            register(base, "ada")
            token = session_token(base, "ada")
            fault = httpx.post(
                amazon + "/_emulator/faults",
                json={"path": "/auth/o2/tokeninfo", "status": 503},
                timeout=30,
            )
            assert fault.status_code == 201, fault.text

            refused = httpx.post(
                base + "/api/v1/sessions/amazon",
                json={"access_token": mint(amazon, ADA)},
                timeout=30,
            )
            assert problem_of_503(refused, "amazon_unavailable") is None, refused.text
            assert password_sign_in(base, "ada").status_code == 201
            assert me(base, token).status_code == 200
            health = httpx.get(base + "/health", timeout=30)
            assert (health.status_code, health.json()) == (200, {"status": "ok"})

            assert httpx.delete(amazon + "/_emulator/faults", timeout=30).is_success
            back = httpx.post(
                base + "/api/v1/sessions/amazon",
                json={"access_token": mint(amazon, ADA)},
                timeout=30,
            )
            assert back.status_code == 200, back.text  # ada@example.com: the link step
            assert back.json()["result"] == "link_required"
    log = (tmp_path / "serve.log").read_text()
    assert log.count("lwa_accounts.web.problems: Amazon (Login with Amazon) unavailable (") == 1
    assert "answering 503 until it is back" in log
    assert tracebacks(tmp_path / "serve.log") == 0, log[-3000:]


def test_redis_down_keeps_health_up_and_logs_the_outage_start_and_end(tmp_path: Path) -> None:
    with private_redis() as redis:
        env = server_env(tmp_path / "var", redis_url=redis.url, log_level="INFO")
        with serving(tmp_path, "serve", env) as base:
            register(base, "ada")
            token = session_token(base, "ada")
            grant = httpx.post(base + "/api/v1/device/authorize", json={}, timeout=30).json()
            amazon = base + "/_amazon/_emulator"  # the embedded emulator: Ada's e-mail
            minted = httpx.post(amazon + "/tokens", json={"user_id": ADA}, timeout=30)
            started = httpx.post(
                base + "/api/v1/sessions/amazon",
                json={"access_token": minted.json()["access_token"]},
                timeout=30,
            )
            assert started.json()["result"] == "link_required", started.text
            phone = httpx.Client(timeout=30)
            assert browser_sign_in(phone, base, "ada").status_code == 303
            csrf = csrf_token(phone, base)

            redis.kill()
            refused = [
                password_sign_in(base, "ada"),
                httpx.post(
                    base + "/api/v1/flows/link",
                    json={"flow_id": started.json()["flow"]["id"], "password": PASSWORD},
                    timeout=30,
                ),
                httpx.post(base + "/api/v1/device/authorize", json={}, timeout=30),
                phone.post(
                    base + "/activate", data={"code": grant["user_code"], "csrf_token": csrf}
                ),
            ]
            phone.close()
            assert [problem_of_503(r) for r in refused] == [None] * len(refused), [
                (r.request.url.path, r.status_code, r.text[:200]) for r in refused
            ]
            health = httpx.get(base + "/health", timeout=30)
            assert (health.status_code, health.json()) == (200, {"status": "ok"})
            assert me(base, token).status_code == 200

            redis.start()
            deadline = time.monotonic() + RECOVERY_TIMEOUT
            while password_sign_in(base, "ada").status_code != 201:
                assert time.monotonic() < deadline, "still refused after Redis came back"
                time.sleep(0.2)
    log = (tmp_path / "serve.log").read_text()
    outage = "WARNING:  lwa_accounts.throttle.stores: Redis (rate limits) unavailable ("
    assert log.count(outage) == 1, log[-3000:]
    assert (
        "INFO:     lwa_accounts.throttle.stores: Redis (rate limits) available again after" in log
    )
    assert tracebacks(tmp_path / "serve.log") == 0, log[-3000:]


def test_credential_stuffing_from_one_address_is_throttled_and_audited(tmp_path: Path) -> None:
    per_ip = 10
    env = server_env(
        tmp_path / "var", password_limit_per_ip=f"{per_ip}/15minutes", log_level="INFO"
    )
    with serving(tmp_path, "serve", env) as base:
        victims = [f"victim{n}" for n in range(per_ip // 2 + 1)]
        accounts = [register(base, name) for name in victims]
        # One pair in the leaked list is right: a sign-in like any other.
        assert password_sign_in(base, victims[0]).status_code == 201
        # Two guesses per account (each under its own budget of 5), from one address.
        guesses = [
            password_sign_in(base, name, f"leaked-password-{n}")
            for name in victims[:-1]
            for n in range(2)
        ]
        assert [g.status_code for g in guesses] == [401] * per_ip
        assert {g.json()["code"] for g in guesses} == {"invalid_credentials"}

        untouched = password_sign_in(base, victims[-1], "leaked-password-0")
        right = password_sign_in(base, victims[-1], PASSWORD)

        for blocked in (untouched, right):
            assert blocked.status_code == 429, blocked.text
            assert blocked.json()["code"] == "too_many_attempts"
            assert int(blocked.headers["retry-after"]) > 0

    audit = run_cli("audit", "--kind", "signin.", "--limit", "1000", env=env)
    assert audit.returncode == 0, audit.stderr
    rows = [line.split("\t") for line in audit.stdout.splitlines()[1:]]
    kinds = [row[1] for row in rows]
    assert kinds.count("signin.failed") == per_ip
    assert kinds.count("signin.throttled") == 2
    assert {row[5] for row in rows} == {"127.0.0.1"}
    assert PASSWORD not in audit.stdout
    assert "leaked-password" not in audit.stdout
    sessions = run_cli("audit", "--kind", "session.", "--limit", "1000", env=env)
    assert sessions.returncode == 0, sessions.stderr
    started = [line.split("\t") for line in sessions.stdout.splitlines()[1:]]
    assert [(row[1], row[2], row[5]) for row in started] == [
        ("session.started", accounts[0]["id"], "127.0.0.1")
    ]
    log = (tmp_path / "serve.log").read_text()
    assert log.count('"POST /api/v1/sessions HTTP/1.1" 401') == per_ip, log[-3000:]
    assert log.count('"POST /api/v1/sessions HTTP/1.1" 429') == 2, log[-3000:]

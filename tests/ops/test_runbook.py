"""docs/operations.md "Incident runbook": what users and operators see in each incident,
against real servers, where the fault and reliability suites do not already show it. The
servers log JSON (``LWA_ACCOUNTS_LOG_FORMAT=json``) at INFO, so each line is read by its
fields (``event``, ``logger``, ``level``, ...), and ``/metrics`` is read as Prometheus would.

- Amazon failing: Amazon sign-ins are 503 `amazon_unavailable`, but password sign-in,
  `/health` and `/ready` carry on; the log names the outage once and has an `amazon_call`
  line per failed attempt; the Amazon call counters show the failures and retries.
- Database down: sign-ins are 503, `/ready` is 503 naming `database` while `/health` stays
  200 and `/metrics` answers; the log shows when the outage started and when it ended.
- Redis down: the password sign-in, the Amazon link step, a new TV code and TV code entry
  are 503, `/ready` is 503 naming `redis`, `/health` stays 200 and a session token still
  works; the log shows when the outage started and when it ended; no throttle refusal is
  counted (the counters cannot be read), the 503s are.
- A credential-stuffing wave from one address: 401s up to the address's budget, then 429
  with Retry-After for every account, each refusal in the audit log with the address, the
  `request` lines and the sign-in and throttle counters.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.ops.harness import (
    PASSWORD,
    amazon_settings,
    browser_sign_in,
    confirm_email,
    csrf_token,
    log_events,
    me,
    mint,
    outage_lines,
    password_sign_in,
    register,
    scrape,
    server_env,
    serving,
    session_token,
    standalone_amazon,
)
from tests.processes import run_cli
from tests.reliability.harness import problem_of_503, tracebacks
from tests.reliability.throwaway import private_redis, throwaway_postgres
from tests.web.metrics_helpers import value

pytestmark = pytest.mark.slow

ADA = "amzn1.account.ADALOVELACE0000000000000DEMO"
RECOVERY_TIMEOUT = 15.0
LOGGED = {"log_format": "json", "log_level": "INFO"}


def not_ready(response: httpx.Response) -> dict[str, Any]:
    """The body of ``/ready``'s 503, checked for its shape."""
    assert response.status_code == 503, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert int(response.headers["retry-after"]) > 0
    body: dict[str, Any] = response.json()
    assert body["code"] == "not_ready", body
    return body


def requests_of(events: list[dict[str, Any]], route: str) -> list[dict[str, Any]]:
    return [e for e in events if e["event"] == "request" and e["route"] == route]


def test_amazon_down_refuses_amazon_sign_ins_only(tmp_path: Path) -> None:
    with standalone_amazon(tmp_path) as amazon:
        env = server_env(tmp_path / "var", **amazon_settings(amazon), **LOGGED)
        with serving(tmp_path, "serve", env) as base:
            register(base, "ada")
            confirm_email(base, env, "ada@example.com")  # Ada's e-mail: the link step's
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
            ready = httpx.get(base + "/ready", timeout=30)  # Amazon is not one of its checks
            assert ready.status_code == 200, ready.text
            during = scrape(base)

            assert httpx.delete(amazon + "/_emulator/faults", timeout=30).is_success
            back = httpx.post(
                base + "/api/v1/sessions/amazon",
                json={"access_token": mint(amazon, ADA)},
                timeout=30,
            )
            assert back.status_code == 200, back.text  # ada@example.com: the link step
            assert back.json()["result"] == "link_required"
            after = scrape(base)

    failures = value(
        during, "lwa_accounts_amazon_calls_total", endpoint="tokeninfo", outcome="server_error"
    )
    retries = value(during, "lwa_accounts_amazon_retries_total", endpoint="tokeninfo")
    assert failures >= 2, failures  # a token check is retried within the deadline
    assert retries == failures - 1, (failures, retries)
    assert value(after, "lwa_accounts_amazon_calls_total", endpoint="tokeninfo", outcome="ok") == 1
    refused_503 = value(
        during,
        "lwa_accounts_http_requests_total",
        method="POST",
        route="/api/v1/sessions/amazon",
        status="503",
    )
    assert refused_503 == 1

    events = log_events(tmp_path / "serve.log")
    outage = outage_lines(
        events, "lwa_accounts.web.problems", "Amazon (Login with Amazon) unavailable ("
    )
    assert len(outage) == 1, events[-20:]
    assert outage[0]["level"] == "warning"
    assert outage[0]["event"].endswith("): answering 503 until it is back")
    calls = [
        e for e in events if e["event"] == "amazon_call" and e["logger"] == "lwa_accounts.amazon"
    ]
    failed = [c for c in calls if c["outcome"] == "server_error"]
    assert len(failed) == failures
    assert {(c["endpoint"], c["status"], c["level"]) for c in failed} == {
        ("tokeninfo", 503, "warning")
    }
    assert [c["retries"] for c in failed] == list(range(len(failed)))
    assert any(c["endpoint"] == "tokeninfo" and c["outcome"] == "ok" for c in calls)
    amazon_requests = requests_of(events, "/api/v1/sessions/amazon")
    assert [(r["status"], r["level"]) for r in amazon_requests] == [(503, "info"), (200, "info")]
    assert tracebacks(tmp_path / "serve.log") == 0, events[-20:]


def test_database_down_is_503_and_unready_while_health_stays_up(tmp_path: Path) -> None:
    with throwaway_postgres() as cluster:
        env = server_env(tmp_path / "var", database_url=cluster.url, **LOGGED)
        with serving(tmp_path, "serve", env) as base:
            register(base, "ada")
            assert httpx.get(base + "/ready", timeout=30).status_code == 200

            cluster.stop()
            refused = password_sign_in(base, "ada")
            assert problem_of_503(refused) is None, refused.text
            body = not_ready(httpx.get(base + "/ready", timeout=30))
            assert body["failing"] == ["database"]
            assert body["checks"] == {"database": "unavailable", "migrations": "skipped"}
            health = httpx.get(base + "/health", timeout=30)
            assert (health.status_code, health.json()) == (200, {"status": "ok"})
            during = scrape(base)  # /metrics answers while the database is down

            cluster.start()
            deadline = time.monotonic() + RECOVERY_TIMEOUT
            while password_sign_in(base, "ada").status_code != 201:
                assert time.monotonic() < deadline, "still refused after PostgreSQL came back"
                time.sleep(0.2)
            assert httpx.get(base + "/ready", timeout=30).status_code == 200

    assert (
        value(
            during,
            "lwa_accounts_http_requests_total",
            method="POST",
            route="/api/v1/sessions",
            status="503",
        )
        == 1
    )
    assert (
        value(
            during, "lwa_accounts_http_requests_total", method="GET", route="/ready", status="503"
        )
        == 1
    )
    events = log_events(tmp_path / "serve.log")
    down = outage_lines(events, "lwa_accounts.store.db", "database unavailable (")
    assert [e["level"] for e in down] == ["warning"], events[-20:]
    assert down[0]["event"].endswith("): answering 503 until it is back")
    again = outage_lines(events, "lwa_accounts.store.db", "database available again after ")
    assert [e["level"] for e in again] == ["info"], events[-20:]
    signing_in = requests_of(events, "/api/v1/sessions")
    assert [(r["status"], r["level"]) for r in signing_in][:1] == [(503, "info")]
    assert tracebacks(tmp_path / "serve.log") == 0, events[-20:]


def test_redis_down_keeps_health_up_and_logs_the_outage_start_and_end(tmp_path: Path) -> None:
    with private_redis() as redis:
        env = server_env(tmp_path / "var", redis_url=redis.url, **LOGGED)
        with serving(tmp_path, "serve", env) as base:
            register(base, "ada")
            confirm_email(base, env, "ada@example.com")  # Ada's e-mail: the link step's
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
            body = not_ready(httpx.get(base + "/ready", timeout=30))
            assert body["failing"] == ["redis"]
            assert body["checks"] == {"database": "ok", "migrations": "ok", "redis": "unavailable"}
            assert me(base, token).status_code == 200
            during = scrape(base)

            redis.start()
            deadline = time.monotonic() + RECOVERY_TIMEOUT
            while password_sign_in(base, "ada").status_code != 201:
                assert time.monotonic() < deadline, "still refused after Redis came back"
                time.sleep(0.2)
            assert httpx.get(base + "/ready", timeout=30).status_code == 200

    assert (
        value(
            during,
            "lwa_accounts_http_requests_total",
            method="POST",
            route="/api/v1/sessions",
            status="503",
        )
        == 1
    )
    for kind in ("password", "user_code", "device_start"):  # not refused by a limit: unknown
        assert value(during, "lwa_accounts_throttle_refusals_total", kind=kind) == 0, kind
    events = log_events(tmp_path / "serve.log")
    stores = "lwa_accounts.throttle.stores"
    down = outage_lines(events, stores, "Redis (rate limits) unavailable (")
    assert [e["level"] for e in down] == ["warning"], events[-20:]
    again = outage_lines(events, stores, "Redis (rate limits) available again after ")
    assert [e["level"] for e in again] == ["info"], events[-20:]
    # /ready's own PING has an outage log of its own: one more warning, and its end.
    probe = "lwa_accounts.web.pages.health"
    assert [e["level"] for e in outage_lines(events, probe, "redis (readiness) unavailable (")] == [
        "warning"
    ]
    assert [
        e["level"] for e in outage_lines(events, probe, "redis (readiness) available again")
    ] == ["info"]
    assert tracebacks(tmp_path / "serve.log") == 0, events[-20:]


def test_credential_stuffing_from_one_address_is_throttled_and_audited(tmp_path: Path) -> None:
    per_ip = 10
    env = server_env(tmp_path / "var", password_limit_per_ip=f"{per_ip}/15minutes", **LOGGED)
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
        counted = scrape(base)

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
    sign_ins = "lwa_accounts_sign_ins_total"
    assert value(counted, sign_ins, method="password", outcome="signed_in") == 1
    refusals = {
        outcome: value(counted, sign_ins, method="password", outcome=f"refused:{outcome}")
        for outcome in ("invalid_credentials", "too_many_attempts")
    }
    assert refusals == {"invalid_credentials": per_ip, "too_many_attempts": 2}
    assert value(counted, "lwa_accounts_throttle_refusals_total", kind="password") == 2
    lines = requests_of(log_events(tmp_path / "serve.log"), "/api/v1/sessions")
    assert [line["status"] for line in lines] == [201] + [401] * per_ip + [429] * 2
    by_name = {a["username"]: a["id"] for a in accounts}
    guessed = [by_name[name] for name in victims[:-1] for _ in range(2)]
    assert [line["account_id"] for line in lines[1 : per_ip + 1]] == guessed
    assert {line["level"] for line in lines} == {"info"}

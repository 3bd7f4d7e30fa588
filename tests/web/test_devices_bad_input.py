"""Any shape of bad input to the device endpoints gets a 4xx, never a 500 (security.md 22)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.tv.harness import DeviceEnv, device_env, device_settings

ENDPOINTS = [
    "/api/v1/amazon/device-authorizations",
    "/api/v1/amazon/device-authorizations/poll",
    "/api/v1/amazon/device-authorizations/abc/poll",  # retired: 410 moved
    "/api/v1/device/authorize",
    "/api/v1/device/token",
    "/api/v1/flows/handoff",
    "/api/v1/flows/flw_abc/handoff",  # retired: 410 moved
]
BODIES: list[bytes] = [
    b"",
    b"null",
    b"[]",
    b"42",
    b'"text"',
    b"{",
    b'{"device_name": null}',
    b'{"device_name": {"a": 1}}',
    b'{"device_name": "\\u0000\\u202e"}',
    b'{"device_code": null}',
    b'{"device_code": "\\ud800"}',
    b'{"flow_id": 12}',
    b'{"flow_id": "\\ud800"}',
    b'{"authorization_id": ["x"]}',
    b'{"authorization_id": "' + b"x" * 5000 + b'"}',
    b"\xff\xfe\x00garbage",
    b'{"device_name": "' + b"x" * 70_000 + b'"}',
]


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[DeviceEnv]:
    async with device_env(device_settings(tmp_path)) as running:
        yield running


@pytest.mark.parametrize("path", ENDPOINTS)
async def test_hostile_bodies_get_4xx(env: DeviceEnv, path: str) -> None:
    for body in BODIES:
        for content_type in ("application/json", "application/x-www-form-urlencoded", "text/plain"):
            response = await env.tv.post(path, content=body, headers={"content-type": content_type})
            assert 200 <= response.status_code < 500, (body[:40], content_type, response.text)
            assert "Traceback" not in response.text


@pytest.mark.parametrize("code", ["", "%00", "\u212a" * 8, "A" * 5000, "BCDF-GHJK\x00"])
async def test_hostile_codes_on_activate_get_4xx(env: DeviceEnv, code: str) -> None:
    page = await env.phone.get("/activate", params={"code": code})
    assert page.status_code == 200
    paths = ("/activate", "/activate/decide", "/activate/amazon", "/activate/link")
    for path in (*paths, "/activate/register"):
        response = await env.phone_form(path, {"code": code, "decision": "approve"})
        assert 400 <= response.status_code < 500, (path, response.text[:200])
    # A proof cookie that is garbage, forged or not ASCII is no proof: a 4xx page.
    for cookie in ("x", "e30.00", "\u00e9" * 10, "A" * 5000):
        header = ("lwa_handoff_proof=" + cookie).encode()  # raw bytes: UTF-8 too
        response = await env.phone.get("/activate/link", headers={b"cookie": header})
        assert 400 <= response.status_code < 500, (cookie[:20], response.text[:200])

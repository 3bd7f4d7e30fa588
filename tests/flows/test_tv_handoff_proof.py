"""A phone's Amazon proof opens exactly one hand-off: its row, its flow, its Amazon user
(security.md item 14b). Pure values; the HTTP journeys are in
tests/security/test_sec14b_handoff_phishing.py."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from lwa_accounts.core import device_grant as dg
from lwa_accounts.core.models import AmazonProfile, PendingFlow
from lwa_accounts.flows.devices import FoundCode
from lwa_accounts.flows.tv_handoff import AmazonProof, amazon_digest, proof_matches

NOW = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
TV_USER = "amzn1.account.TVUSER000000000000000000000000"


def _found(grant_id: str = "grant-1") -> FoundCode:
    grant = dg.DeviceGrant(
        status="pending", created_at=NOW, expires_at=NOW + timedelta(minutes=10), interval=5
    )
    record = dg.DeviceGrantRecord(id=grant_id, purpose="handoff", grant=grant, ip="192.0.2.7")
    return FoundCode(code="BCDFGHJK", record=record)


def _flow(id_hash: str = "f" * 64, user_id: str = TV_USER) -> PendingFlow:
    return PendingFlow(
        id_hash=id_hash,
        kind="link",
        status="pending",
        profile=AmazonProfile(user_id=user_id, client_id="amzn1.application-oa2-client.x"),
        target_account_id="acc-1",
        completed_account_id=None,
        attempts_left=5,
        can_register_instead=True,
        missing=(),
        session_kind="device",
        device_name="Living-room TV",
        binding_hash=None,
        created_at=NOW,
        expires_at=NOW + timedelta(minutes=10),
    )


GOOD = AmazonProof(grant_id="grant-1", flow_id_hash="f" * 64, amazon_digest=amazon_digest(TV_USER))


def test_the_proof_for_this_handoff_matches() -> None:
    assert proof_matches(GOOD, _found(), _flow())


@pytest.mark.parametrize(
    "proof",
    [
        None,
        replace(GOOD, grant_id="grant-2"),  # another hand-off row (a newer code)
        replace(GOOD, flow_id_hash="0" * 64),  # another flow
        replace(GOOD, amazon_digest=amazon_digest("amzn1.account.SOMEONEELSE0000000000000000")),
        replace(GOOD, amazon_digest=TV_USER),  # the id itself is not its digest
        replace(GOOD, grant_id="gr\u00e4nt-1"),  # non-ASCII compares as bytes, no error
    ],
)
def test_any_other_proof_does_not(proof: AmazonProof | None) -> None:
    assert not proof_matches(proof, _found(), _flow())


def test_digests_differ_per_user_and_do_not_contain_the_id() -> None:
    assert amazon_digest(TV_USER) != amazon_digest(TV_USER + "X")
    assert TV_USER not in amazon_digest(TV_USER)

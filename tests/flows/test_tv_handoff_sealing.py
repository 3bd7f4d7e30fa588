"""A hand-off's sealed flow id that does not open is refused and logged (never its value)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from lwa_accounts.flows.tv_handoff import SEAL_PURPOSE, seal_flow_id, unseal_flow_id
from lwa_accounts.sealing import Sealer
from lwa_accounts.settings import Settings

FLOW_ID = "flow-id-that-must-never-be-logged"


def test_a_seal_moved_to_another_code_is_refused_and_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings(env="test", data_dir=tmp_path)
    sealed = seal_flow_id(Sealer(settings), "ABCD-EFGH", FLOW_ID)
    with caplog.at_level(logging.WARNING, logger="lwa_accounts.flows.tv_handoff"):
        assert unseal_flow_id(Sealer(settings), "ABCD-EFGH", sealed) == FLOW_ID
        assert caplog.records == []  # an intact seal is not news
        assert unseal_flow_id(Sealer(settings), "WXYZ-EFGH", sealed) is None
    [record] = caplog.records
    assert record.levelno == logging.WARNING
    assert SEAL_PURPOSE in record.getMessage()
    assert record.__dict__["seal_purpose"] == SEAL_PURPOSE
    assert FLOW_ID not in caplog.text
    assert sealed not in caplog.text

"""EmulatorState directly: housekeeping that HTTP tests cannot see."""

from __future__ import annotations

from lwa_accounts.emulator.state import BROWSER_SESSION_LIFETIME, PRUNE_EVERY, EmulatorState
from tests.emulator.conftest import DEVICE_ID, ada_id


def test_expired_records_are_pruned_but_late_polls_still_see_the_pair(
    state: EmulatorState,
) -> None:
    stale = [state.new_session() for _ in range(10)]
    client = state.get_client(DEVICE_ID)
    assert client is not None
    pair = state.create_code_pair(client, ("profile",), None)
    state.advance_clock(BROWSER_SESSION_LIFETIME + 1)
    for _ in range(PRUNE_EVERY):
        state.new_session()
    assert all(state.session(s.session_id) is None for s in stale)
    assert all(s.session_id not in state.sessions for s in stale)
    assert len(state.sessions) <= PRUNE_EVERY
    # Gone from memory only an hour after expiry.
    assert pair.device_code not in state.code_pairs


def test_live_tokens_survive_pruning(state: EmulatorState) -> None:
    tokens = state.mint_tokens(ada_id(state), DEVICE_ID, ("profile",))
    for _ in range(PRUNE_EVERY * 2):
        state.new_session()
    assert state.access_token(tokens["access_token"]) is not None

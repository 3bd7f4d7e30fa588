"""Code-based linking (the device flow): code pairs, the customer's decision, and polls.

A device asks for a code pair (a device_code it keeps and a short user_code it shows); the
customer types the user_code at /code (any case, spaces and dashes ignored) and approves or
denies; the device polls with its device_code (and user_code) until tokens come, once:
the pair is then spent. Live user codes are unique. Pairs are kept an hour past expiry so
late polls still get the configured expiry error (`expired_code_pair_error`). Nothing here
locks: the callers hold the state's one lock.
"""

from __future__ import annotations

import uuid
from typing import Any

from lwa_accounts.emulator.clock import EmulatorClock, Pruner
from lwa_accounts.emulator.config import EmulatorConfig
from lwa_accounts.emulator.directory import Directory
from lwa_accounts.emulator.records import Client, CodePair, new_user_code, normalise_user_code
from lwa_accounts.emulator.tokens import Tokens
from lwa_accounts.emulator.wire import ControlError, WireError

EXPIRED_PAIR_KEPT = 3600


class CodePairs:
    """The code pairs, by device_code."""

    def __init__(
        self,
        config: EmulatorConfig,
        clock: EmulatorClock,
        pruner: Pruner,
        directory: Directory,
        tokens: Tokens,
    ) -> None:
        self._config = config
        self._clock = clock
        self._pruner = pruner
        self._directory = directory
        self._tokens = tokens
        self.code_pairs: dict[str, CodePair] = {}
        pruner.watch(self.code_pairs, grace=EXPIRED_PAIR_KEPT)

    def clear(self) -> None:
        self.code_pairs.clear()

    def create(self, client: Client, scopes: tuple[str, ...], scope_data: str | None) -> CodePair:
        self._directory.check_scopes(client, scopes)
        live = {pair.user_code for pair in self.code_pairs.values()}
        user_code = new_user_code()
        while user_code in live:
            user_code = new_user_code()
        pair = CodePair(
            device_code=str(uuid.uuid4()),
            user_code=user_code,
            client_id=client.client_id,
            scopes=scopes,
            scope_data=scope_data,
            expires_at=self._clock.now() + self._config.code_pair_expires_in,
        )
        self._pruner.created()
        self.code_pairs[pair.device_code] = pair
        return pair

    def pending(self, user_code: str) -> CodePair | None:
        """The live, undecided code pair for a typed code (any case), or None."""
        wanted = normalise_user_code(user_code)
        now = self._clock.now()
        for pair in self.code_pairs.values():
            if pair.user_code == wanted and pair.status == "pending" and pair.expires_at > now:
                return pair
        return None

    def decide(self, user_code: str, user_id: str | None) -> CodePair:
        """Approve (user_id given) or deny a pending code pair."""
        if user_id is not None:
            self._directory.customer(user_id)
        pair = self.pending(user_code)
        if pair is None:
            raise ControlError("not_found", "No pending code pair with that user_code", 404)
        if user_id is None:
            pair.status = "denied"
        else:
            pair.status = "approved"
            pair.user_id = user_id
        return pair

    def poll(self, device_code: str, user_code: str | None) -> dict[str, Any]:
        now = self._clock.now()
        pair = self.code_pairs.get(device_code)
        if pair is None or (
            user_code is not None and normalise_user_code(user_code) != pair.user_code
        ):
            raise WireError("invalid_code_pair", "The code pair is invalid")
        if pair.status == "spent":
            raise WireError("invalid_code_pair", "The code pair was already used")
        if pair.expires_at <= now:
            raise WireError(self._config.expired_code_pair_error, "The code pair has expired")
        previous, pair.last_poll_at = pair.last_poll_at, now
        if (
            self._config.enforce_poll_interval
            and previous is not None
            and now - previous < self._config.effective_min_poll_interval
        ):
            raise WireError("slow_down", "Polling too fast; wait for the interval")
        if pair.status == "pending":
            raise WireError("authorization_pending", "Authorization is pending")
        if pair.status == "denied":
            raise WireError("access_denied", "The customer denied the request")
        assert pair.user_id is not None
        if pair.user_id not in self._directory.customers:
            raise WireError("invalid_code_pair", "The code pair is invalid")
        pair.status = "spent"
        return self._tokens.issue(pair.client_id, pair.user_id, pair.scopes, via_device=True)

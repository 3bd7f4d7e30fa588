"""Browser sessions at the emulated Amazon: who is signed in, in one browser.

The session id (the cookie) and its CSRF token are 32 random bytes each; the CSRF token
changes at every change of identity, like a new session id would. A session lives 12 hours.
Nothing here locks: the callers hold the state's one lock.
"""

from __future__ import annotations

import secrets

from lwa_accounts.emulator.clock import EmulatorClock, Pruner, unexpired
from lwa_accounts.emulator.records import BrowserSession

BROWSER_SESSION_LIFETIME = 12 * 3600


class BrowserSessions:
    """The browser sessions, by session id."""

    def __init__(self, clock: EmulatorClock, pruner: Pruner) -> None:
        self._clock = clock
        self._pruner = pruner
        self.sessions: dict[str, BrowserSession] = {}
        pruner.watch(self.sessions)

    def clear(self) -> None:
        self.sessions.clear()

    def get(self, session_id: str | None) -> BrowserSession | None:
        return unexpired(self.sessions.get(session_id or ""), self._clock.now())

    def new(self) -> BrowserSession:
        session = BrowserSession(
            session_id=secrets.token_urlsafe(32),
            csrf_token=secrets.token_urlsafe(32),
            expires_at=self._clock.now() + BROWSER_SESSION_LIFETIME,
        )
        self._pruner.created()
        self.sessions[session.session_id] = session
        return session

    def sign_in(self, session: BrowserSession, user_id: str | None) -> None:
        session.user_id = user_id
        # A new CSRF token at each change of identity, like a new session id.
        session.csrf_token = secrets.token_urlsafe(32)

    def forget(self, user_id: str) -> None:
        """The customer is gone: their browsers are signed out (the CSRF token stays)."""
        for session in self.sessions.values():
            if session.user_id == user_id:
                session.user_id = None

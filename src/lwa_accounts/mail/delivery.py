"""One delivery pass: claim due mail, send it over one SMTP connection, record each outcome.

``Delivery.deliver_due()`` leases a batch of due rows (``store/outbox_queue.py``: two
workers never hold one row), opens one SMTP session for it and, message by message:

- accepted: ``sent_at`` set and the sealed body emptied (no reset link kept at rest);
- refused for good (a 5xx for the recipient or the message, an address that cannot be
  sent, a body that no longer opens): failed at once, body emptied;
- refused for now (a 4xx), or the session broke (no connection, TLS or login refused,
  dropped, timed out): ``attempts + 1``, ``last_error`` (short, redacted) and the next try
  after an exponential backoff (``mail/retry.py``); after the last attempt: failed. A
  broken session counts one attempt for every message of the batch it stopped.

Each outcome is its own short transaction, so no database lock is held while the SMTP
server answers. Rows not attempted (the batch's time is up, or the worker is stopping) are
released for the next pass. Nothing here logs an address or a body.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal
from urllib.parse import urlsplit

from lwa_accounts import metrics
from lwa_accounts.interfaces import Clock
from lwa_accounts.logs import get_logger
from lwa_accounts.mail.message import build_message
from lwa_accounts.mail.retry import RetryPolicy
from lwa_accounts.mail.smtp import SendFailed, SmtpSession, smtp_session
from lwa_accounts.mail.smtp_url import SmtpTarget
from lwa_accounts.settings import Settings
from lwa_accounts.store import outbox_queue
from lwa_accounts.store.db import Database
from lwa_accounts.store.outbox import open_body
from lwa_accounts.store.outbox_queue import ClaimedMail

BATCH_SIZE = 20
logger = get_logger("lwa_accounts.mail")

Reason = Literal["refused", "exhausted", "unreadable"]


@dataclass(frozen=True)
class Sent:
    answer: str


@dataclass(frozen=True)
class Refused:
    """This message failed; ``permanent``: never try it again."""

    error: str
    permanent: bool
    reason: Reason = "refused"


def lease_for(settings: Settings) -> timedelta:
    """How long a claim holds: a batch's time budget (a third of it) plus one slow message,
    connect and login included, each SMTP command bounded by the timeout."""
    return timedelta(seconds=max(300.0, 12 * settings.mail_smtp_timeout_seconds))


class Delivery:
    def __init__(
        self,
        database: Database,
        settings: Settings,
        *,
        clock: Clock,
        policy: RetryPolicy | None = None,
        batch_size: int = BATCH_SIZE,
    ) -> None:
        if settings.smtp is None:
            raise ValueError("no LWA_ACCOUNTS_SMTP_URL: nothing is delivered")
        self._db = database
        self._settings = settings
        self._target: SmtpTarget = settings.smtp
        self._clock = clock
        self._policy = policy or RetryPolicy.from_settings(settings)
        self.batch_size = batch_size
        self._lease = lease_for(settings)
        self._local_hostname = urlsplit(settings.public_url).hostname or "localhost"
        self._counted_at = float("-inf")

    async def deliver_due(self, *, stopping: Callable[[], bool] = lambda: False) -> int:
        """One batch; returns how many due rows it claimed (0: nothing was due)."""
        now = self._clock.now()
        async with self._db.write() as conn:
            batch = await outbox_queue.claim_due(
                conn,
                now=now,
                until=outbox_queue.lease_until(now, self._lease),
                limit=self.batch_size,
            )
        if batch:
            pending = list(batch)
            try:
                await self._send_all(pending, stopping)
            finally:
                for mail in pending:  # not attempted: due again at the next pass
                    async with self._db.write() as conn:
                        await outbox_queue.release(conn, mail)
        await self._count_unsettled()
        return len(batch)

    async def _send_all(self, pending: list[ClaimedMail], stopping: Callable[[], bool]) -> None:
        budget_ends = time.monotonic() + self._lease.total_seconds() / 3
        try:
            async with smtp_session(
                self._target,
                command_timeout=self._settings.mail_smtp_timeout_seconds,
                local_hostname=self._local_hostname,
            ) as session:
                while pending and not stopping() and time.monotonic() < budget_ends:
                    await self._deliver(session, pending[0])
                    pending.pop(0)
        except SendFailed as broken:  # the session is unusable: every message left waits
            while pending:
                await self._record(pending.pop(0), Refused(broken.reason, permanent=False), 0.0)

    async def _deliver(self, session: SmtpSession, mail: ClaimedMail) -> None:
        """Send one message and record what happened; ``SendFailed`` when the session broke."""
        body = self._open(mail)
        if body is None:
            # A key that sealed it was retired, or the row was altered: it cannot be sent.
            error = "the sealed body does not open (was its secret key removed?)"
            await self._record(mail, Refused(error, permanent=True, reason="unreadable"), 0.0)
            return
        text, html = body
        started = time.perf_counter()
        try:
            envelope = build_message(
                mail_from=self._settings.effective_mail_from,
                to=mail.to,
                subject=mail.subject,
                text=text,
                html=html,
                kind=mail.kind,
                now=self._clock.now(),
            )
            outcome: Sent | Refused = Sent(await session.send(envelope))
        except ValueError as error:
            outcome = Refused(f"cannot be sent: {type(error).__name__}", permanent=True)
        except SendFailed as failed:
            if failed.connection:
                raise
            outcome = Refused(failed.reason, permanent=failed.permanent)
        await self._record(mail, outcome, time.perf_counter() - started)

    def _open(self, mail: ClaimedMail) -> tuple[str, str] | None:
        if not mail.sealed_body:
            return None
        try:
            return open_body(self._db.sealer, mail.kind, mail.to, mail.sealed_body)
        except (ValueError, KeyError):  # SealBroken is a ValueError, and so is bad JSON
            return None

    async def _record(self, mail: ClaimedMail, outcome: Sent | Refused, seconds: float) -> None:
        now = self._clock.now()
        attempt = mail.attempts + 1
        fields = {"outbox_id": mail.id, "kind": mail.kind, "attempt": attempt}
        if isinstance(outcome, Sent):
            async with self._db.write() as conn:
                kept = await outbox_queue.mark_sent(conn, mail, now=now)
            metrics.mail_sent.labels(mail.kind).inc()
            metrics.mail_send_duration.labels("sent").observe(seconds)
            logger.info("mail_sent", **fields, lease_kept=kept, duration_ms=round(seconds * 1e3))
            return
        next_at = None if outcome.permanent else self._policy.next_attempt(attempt, now)
        async with self._db.write() as conn:
            if next_at is None:
                await outbox_queue.give_up(conn, mail, now=now, error=outcome.error)
            else:
                await outbox_queue.retry_later(conn, mail, at=next_at, error=outcome.error)
        if next_at is None:
            reason: Reason = outcome.reason if outcome.permanent else "exhausted"
            metrics.mail_failed.labels(mail.kind, reason).inc()
            metrics.mail_send_duration.labels("failed").observe(seconds)
            logger.error("mail_failed", **fields, reason=reason, error=outcome.error)
        else:
            metrics.mail_retried.labels(mail.kind).inc()
            metrics.mail_send_duration.labels("retry").observe(seconds)
            wait = round((next_at - now).total_seconds())
            logger.warning("mail_retry", **fields, retry_in_s=wait, error=outcome.error)

    async def _count_unsettled(self) -> None:
        # The gauge's COUNT runs at most every 30 s, not on every poll.
        if time.monotonic() - self._counted_at < 30:
            return
        self._counted_at = time.monotonic()
        async with self._db.engine.connect() as conn:
            metrics.mail_unsettled.set(await outbox_queue.count_unsettled(conn))

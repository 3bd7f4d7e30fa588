"""The delivery worker: a background task of each serving process (``web/app.py``'s lifespan).

It runs ``Delivery.deliver_due`` in a loop: right away while batches come back full, else
it sleeps until ``MAIL_POLL_SECONDS`` pass or ``wake()`` is called (``Database`` calls it
after every commit that queued mail, so mail queued by this process leaves at once;
other processes' mail within one poll). A request never waits on it: it only queues a
row. ``stop()`` lets the message being sent finish (each SMTP command is bounded by the
timeout), releases the rest of the batch and ends the task; a worker still busy after
the grace is cancelled and releases its batch on the way out (a message cancelled in the
middle of its SMTP exchange may then be sent twice: delivery is at least once).

With several processes (``serve --workers N``) every process runs one; the lease on
each row keeps them from sending anything twice. A database or SMTP outage never ends the
loop: the error is logged (the database's by its outage log) and the next poll tries again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from lwa_accounts.errors import DatabaseUnavailable
from lwa_accounts.mail.delivery import Delivery

logger = logging.getLogger("lwa_accounts.mail")
FAILURE_LOG_SECONDS = 60.0


class DeliveryWorker:
    def __init__(self, delivery: Delivery, *, poll_seconds: float) -> None:
        self._delivery = delivery
        self._poll = poll_seconds
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._logged_at = float("-inf")

    def wake(self) -> None:
        """Mail was committed: look now rather than at the next poll (never blocks)."""
        self._wake.set()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="lwa-accounts mail delivery")

    async def stop(self, grace_seconds: float = 10.0) -> None:
        """Finish the message in flight, release the rest, end the task."""
        task, self._task = self._task, None
        if task is None:
            return
        self._stopping.set()
        self._wake.set()
        done, _ = await asyncio.wait({task}, timeout=grace_seconds)
        if not done:
            logger.warning("mail delivery still busy after %.1f s: cancelled", grace_seconds)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _log_failure(self) -> None:
        # With its traceback, but once a minute (a schema not migrated yet would log
        # one every poll otherwise).
        now = time.monotonic()
        if now - self._logged_at >= FAILURE_LOG_SECONDS:
            self._logged_at = now
            logger.exception("mail delivery pass failed; trying again at each poll")

    async def _run(self) -> None:
        while not self._stopping.is_set():
            self._wake.clear()
            claimed = 0
            try:
                claimed = await self._delivery.deliver_due(stopping=self._stopping.is_set)
            except DatabaseUnavailable:
                pass  # the database's outage log has said it; try at the next poll
            except Exception:
                self._log_failure()
            if claimed >= self._delivery.batch_size:
                continue  # a full batch: more may be due
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._poll):
                    await self._wake.wait()

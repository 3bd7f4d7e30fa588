"""The context every flow runs in: built once per request at the edge, never by hand.

``Deps`` holds the per-process objects (settings, hasher, throttle, clock, the sign-up and
profile-sync policies), built once at the composition root (``web/app.py``, the CLI).
``Context`` adds who is asking (``ClientInfo``) and the database; the edge builds it once
per request (``web/services.py: request_context``). ``Context.transaction()`` is the unit
of work: a ``Tx`` with the transaction's stores, ``audit()`` and ``keep()``.

Flows raise (one error tree, ``errors.py``); they never return refusals as values. A
raised error rolls the transaction's business writes back, so nothing is half-written,
but what the *attempt* must leave behind survives by construction: audit events of a
``kept`` kind (``flows/audit.py``: refusals, wrong passwords, wrong codes) and the writes a
flow made with ``tx.keep(...)`` (a link flow's spent password attempt, a poll's slowed
interval) are written again, in the same order, in a short transaction of their own after
the rollback; then the error goes on to the edge. Audit events are buffered and written
just before the commit, in the order they were recorded.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import TypeVar

from lwa_accounts.core.decide import Policy
from lwa_accounts.core.models import AmazonProfile, AuditEvent, OutgoingMail
from lwa_accounts.core.profile_sync import SyncPolicy
from lwa_accounts.errors import DatabaseUnavailable
from lwa_accounts.flows.audit import Event
from lwa_accounts.interfaces import (
    AccountStore,
    Clock,
    DeviceStore,
    EmailCodeStore,
    IdentityStore,
    Outbox,
    PasswordHasher,
    PendingFlowStore,
    SessionStore,
    Stores,
    Throttle,
    Transactions,
)
from lwa_accounts.sealing import Sealer
from lwa_accounts.settings import Settings

T = TypeVar("T")

logger = logging.getLogger(__name__)

KeptWrite = Callable[[Stores], Awaitable[object]]
# Sees the audit events of each committed unit of work, and the kept ones after a rollback
# (the web edge counts sign-ins from them: flows/sign_in_counts.py). Must not block.
Observer = Callable[[Sequence[AuditEvent]], None]


@dataclass(frozen=True, slots=True)
class ClientInfo:
    """Who is asking: recorded by flows (audit, sessions), never trusted for decisions.
    ``device_proof`` is what the client presented as its known-device proof (cookie,
    header or field), unverified: ``flows/known_devices.py`` checks it. ``known_browser``
    is the browser's signed memory of the accounts signed in there
    (``flows/new_devices.py``), as sent; only the new-device notice reads it."""

    ip: str | None = None
    user_agent: str | None = None
    device_proof: str | None = field(default=None, repr=False)
    known_browser: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Deps:
    """What flows need besides a transaction; one per process."""

    settings: Settings
    hasher: PasswordHasher
    throttle: Throttle
    clock: Clock
    common_passwords: Collection[str]
    observe: Observer | None = None

    @cached_property
    def policy(self) -> Policy:
        """The Amazon sign-up policy (``LWA_ACCOUNTS_AMAZON_SIGNUP`` and required fields)."""
        return Policy(
            signup=self.settings.amazon_signup,
            required_fields=frozenset(self.settings.amazon_required_fields),
        )

    @cached_property
    def sealer(self) -> Sealer:
        """AES-GCM for small secrets at rest; derives its keys once."""
        return Sealer(self.settings)

    @cached_property
    def sync_policy(self) -> SyncPolicy:
        """Which local fields a verified Amazon profile updates (security.md item 14)."""
        return SyncPolicy(
            name=self.settings.profile_sync_name,
            postal_code=self.settings.profile_sync_postal_code,
        )


@dataclass(frozen=True)
class Context:
    """One request's context: the process's ``deps``, its ``database`` and its ``client``."""

    deps: Deps
    database: Transactions
    client: ClientInfo = field(default_factory=ClientInfo)

    @property
    def settings(self) -> Settings:
        return self.deps.settings

    def now(self) -> datetime:
        return self.deps.clock.now()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Tx]:
        """One unit of work: commits when the block ends, rolls back when it raises, and
        then writes what the attempt must leave behind (``Tx.keep``, kept audit events).

        Do not open a second transaction inside one (on SQLite it would wait for itself).
        """
        tx: Tx | None = None
        committed: list[AuditEvent] = []
        try:
            async with self.database.transaction() as stores:
                tx = Tx(self, stores)
                yield tx
                committed = tx.buffered()
                await tx.flush()
        except DatabaseUnavailable:
            raise  # nothing can be written now; the outage is logged by the database
        except Exception:
            if tx is not None:
                await self._keep_after_rollback(tx)
            raise
        self._observe(committed)

    def _observe(self, events: Sequence[AuditEvent]) -> None:
        observe = self.deps.observe
        if observe is None or not events:
            return
        try:
            observe(events)
        except Exception:
            # Counting must never turn a sign-in into an error.
            logger.exception("the audit observer failed")

    @asynccontextmanager
    async def read(self) -> AsyncIterator[Tx]:
        """A read-only unit of work (session checks): no SQLite write lock, so it never
        waits behind a sign-in; PostgreSQL refuses writes in it. It records no audit
        events; a write the reads call for goes in a ``transaction()`` afterwards."""
        async with self.database.read() as stores:
            tx = Tx(self, stores)
            yield tx
            if tx.kept() != ([], []) or tx.has_events:
                raise RuntimeError("a read-only unit of work wrote or audited something")

    async def run_read(self, work: Callable[[Tx], Awaitable[T]]) -> T:
        """``work`` in a read-only unit of work, retried once from its start when the
        pooled connection turned out dead (session checks: reads are safe to repeat)."""

        async def bound(stores: Stores) -> T:
            tx = Tx(self, stores)
            result = await work(tx)
            if tx.kept() != ([], []) or tx.has_events:
                raise RuntimeError("a read-only unit of work wrote or audited something")
            return result

        return await self.database.run_read(bound)

    async def _keep_after_rollback(self, tx: Tx) -> None:
        writes, events = tx.kept()
        if not writes and not events:
            return
        self._observe(events)  # the attempt happened, whether or not its trail is written
        try:
            async with self.database.transaction() as stores:
                for write in writes:
                    await write(stores)
                await stores.audit.record_many(events)
        except Exception:
            # The refusal itself still reaches the caller; losing its trail is logged.
            logger.exception("could not keep %d audit events after a rollback", len(events))


class Tx:
    """A transaction's stores plus the request's context. Flows take one ``tx`` argument."""

    __slots__ = (
        "_events",
        "_kept_writes",
        "_stores",
        "accounts",
        "context",
        "devices",
        "email_codes",
        "identities",
        "outbox",
        "pending_flows",
        "sessions",
    )

    def __init__(self, context: Context, stores: Stores) -> None:
        self.context = context
        self._stores = stores
        self.accounts: AccountStore = stores.accounts
        self.sessions: SessionStore = stores.sessions
        self.identities: IdentityStore = stores.identities
        self.pending_flows: PendingFlowStore = stores.pending_flows
        self.devices: DeviceStore = stores.devices
        self.outbox: Outbox = stores.outbox
        self.email_codes: EmailCodeStore = stores.email_codes
        self._events: list[tuple[Event, AuditEvent]] = []
        self._kept_writes: list[KeptWrite] = []

    @property
    def deps(self) -> Deps:
        return self.context.deps

    @property
    def settings(self) -> Settings:
        return self.context.deps.settings

    @property
    def client(self) -> ClientInfo:
        return self.context.client

    def now(self) -> datetime:
        return self.context.deps.clock.now()

    def audit(
        self,
        kind: Event,
        *,
        account_id: str | None = None,
        profile: AmazonProfile | None = None,
        client_id: str | None = None,
        detail: str | None = None,
    ) -> None:
        """Record an event (account, Amazon user and app, the client's IP, the time)."""
        event = AuditEvent(
            kind=kind.value,
            at=self.now(),
            account_id=account_id,
            amazon_user_id=profile.user_id if profile else None,
            client_id=profile.client_id if profile else client_id,
            ip=self.client.ip,
            detail=detail,
        )
        self._events.append((kind, event))

    async def keep(self, write: Callable[[Stores], Awaitable[T]]) -> T:
        """Run ``write`` now and, should this transaction roll back, once more after it:
        for writes a refusal must not undo (a spent attempt, a slowed poll interval)."""
        result = await write(self._stores)
        self._kept_writes.append(write)
        return result

    async def send_mail(self, mail: OutgoingMail) -> None:
        """Queue ``mail`` in this transaction: sent after the commit (the delivery worker
        takes it from the outbox, retrying), never when the transaction rolls back."""
        await self.outbox.enqueue(mail, now=self.now())

    def buffered(self) -> list[AuditEvent]:
        """The events recorded so far, in order (not yet written)."""
        return [event for _, event in self._events]

    async def flush(self) -> None:
        """Write the buffered events into this transaction (just before its commit)."""
        await self._stores.audit.record_many([event for _, event in self._events])
        self._events.clear()

    @property
    def has_events(self) -> bool:
        return bool(self._events)

    def kept(self) -> tuple[list[KeptWrite], list[AuditEvent]]:
        """What survives a rollback: the kept writes, then the kept events."""
        return list(self._kept_writes), [event for kind, event in self._events if kind.kept]

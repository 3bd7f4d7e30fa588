"""Sign in with Amazon: find, link or create the local account (issue 5).

The web pages, the JSON API and the TV flows (issue 6) all call these functions and only
render the outcomes differently. Flows never commit (the edge owns the transaction) and
never talk to Amazon: the edge verifies the access token first, *outside* the
transaction, with ``AmazonClient.verify_and_fetch`` (tokeninfo ``aud`` in the allow-list,
then the profile), so a slow or failing Amazon holds no database lock and writes nothing;
refused tokens are audited with :func:`audit_refused_token`.

Entry points (``deps`` is the account system's ``Deps``):

``sign_in_with_profile(stores, deps, profile, *, client, kind, device_name, binding)``
    -> ``SignedInWithAmazon(created, signed_in)`` | ``LinkRequired`` |
    ``RegistrationRequired`` | ``Refused``. The one path for the web callback, devices
    posting an Amazon token, and server-assisted code-based linking. Creates and links in
    one savepoint; on a unique-constraint race, or when its reads straddle a concurrent
    first sign-in's commit, it looks again (audited ``amazon.signin_conflict``), so N
    parallel first sign-ins of one Amazon user give one account, one link, N sessions.

Pending flows (``LinkRequired`` / ``RegistrationRequired``) are server-side records: a
random id handed out once (stored as its SHA-256), the verified profile (the client never
chooses the Amazon ``user_id``), the target account, attempts left, an expiry of
``settings.flow_ttl_seconds`` and the SHA-256 of the originating browser's ``binding``
secret (None for devices, which hold the id alone). Their status goes
``pending -> spent`` when the originator finishes them itself (``deliver_to="caller"``), or
``pending -> completed -> spent`` when they are finished on another device
(``deliver_to="originator"``, e.g. "finish on your phone"; the caller must have proved its
right to the flow some other way, such as a hand-off code) and the originator then picks
up its own new session by polling:

``get_flow(stores, deps, flow_id, *, binding, client)`` -> ``PendingFlow`` | ``Refused``
    (pending flows of this browser/device only; ``registration_fields(flow, deps)`` says
    what a registration form shows prefilled and requires)
``confirm_link(stores, deps, flow_id, password, *, client, binding, deliver_to)``
    -> ``SignedInWithAmazon`` | ``FlowCompleted`` | ``Refused`` (wrong password: 401 with
    ``attempts_left``; the password throttle of sign-in applies, the N+1th try gets 429). Request
    handlers split it so argon2 holds no lock: ``begin_link`` (transaction) ->
    ``check_link_password`` (no database) -> ``finish_link`` (transaction; re-checks that
    the flow is still pending and the password unchanged)
``complete_registration(stores, deps, flow_id, form, *, client, binding, deliver_to)``
    -> ``SignedInWithAmazon`` | ``FlowCompleted`` | ``Refused`` (raises ValidationFailed,
    UsernameTaken, EmailTaken); also "create a separate account instead" of a link flow
``switch_to_registration(stores, deps, flow_id, *, client, binding)`` -> ``PendingFlow``
    | ``Refused``: "create a separate account instead" turns a link flow into a
    registration flow in place (the taken email dropped from its prefill; audited
    ``amazon.flow_switched``), for pages, the API and the phone hand-off alike
``collect_completed_flow(stores, deps, flow_id, *, client)``
    -> ``SignedInWithAmazon`` exactly once after completion, ``PendingFlow`` while pending,
    ``Refused(FlowExpired)`` afterwards.

Refusals that must leave an audit trail are returned as ``Refused(error)``: the edge
commits, then raises ``error`` (``flows.accounts.unwrap``).

Signed-in account management (need a sign-in within ``settings.recent_auth_seconds`` or
the password): ``attach_amazon`` and ``detach_amazon`` (refused when Amazon is the last way
to sign in; checked and deleted under the account's row lock).

Audit events (``amazon.*``) record account, Amazon user, client id, IP and time; never a
token or password.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Literal

from lwa_accounts.core.decide import (
    AccountFacts,
    ConfirmLink,
    Create,
    Decision,
    Facts,
    LinkToCurrent,
    Policy,
    Prefill,
    Register,
    Reject,
    SignIn,
    decide,
    separate_account,
)
from lwa_accounts.core.models import (
    Account,
    AmazonLink,
    AmazonProfile,
    AuditEvent,
    NewAccount,
    PendingFlow,
    Session,
    SessionKind,
)
from lwa_accounts.core.profile_sync import SyncPolicy
from lwa_accounts.core.validation import (
    Invalid,
    Valid,
    normalise_email,
    normalise_username,
    validate_name,
)
from lwa_accounts.errors import (
    AccountDisabled,
    AlreadyLinked,
    AmazonError,
    AmazonLinkedElsewhere,
    EmailAccountLinkedToOtherAmazon,
    EmailTaken,
    FlowExpired,
    FlowNotFound,
    InvalidCredentials,
    LastSignInMethod,
    LwaAccountsError,
    NotFound,
    ReauthenticationRequired,
    SignupClosed,
    TooManyAttempts,
    UsernameTaken,
    ValidationFailed,
)
from lwa_accounts.flows.accounts import (
    Deps,
    PasswordCheck,
    Refused,
    check_password,
    reauthenticate,
    recently_authenticated,
    record_password_check,
)
from lwa_accounts.flows.amazon_profile import (
    POSTAL_CODE_MAX,
    available_username,
    checked_prefill,
    link_seen,
    sync_profile,
    username_base,
)
from lwa_accounts.flows.sessions import ClientInfo, SignedIn, start_session
from lwa_accounts.interfaces import Stores

# Audit event kinds (stable strings: `lwa-accounts audit` prints them).
SIGNED_IN = "amazon.signed_in"
ACCOUNT_CREATED = "amazon.account_created"
LINKED = "amazon.linked"
UNLINKED = "amazon.unlinked"
FLOW_STARTED = "amazon.flow_started"
FLOW_SWITCHED = "amazon.flow_switched"  # a link step became "create a separate account"
REFUSED = "amazon.refused"
SIGNIN_CONFLICT = "amazon.signin_conflict"  # lost a first sign-in race and looked again

FLOW_ID_PREFIX = "flw_"
FLOW_ID_MAX = 100
CONFLICT_RETRIES = 3
EXPIRED_FLOW_RETENTION = timedelta(days=1)

DeliverTo = Literal["caller", "originator"]


# ---- outcomes ----


@dataclass(frozen=True, slots=True)
class SignedInWithAmazon:
    created: bool  # a new account was made for this Amazon identity
    signed_in: SignedIn


@dataclass(frozen=True, slots=True)
class LinkRequired:
    """An account holds the Amazon email: its password must be proven before linking."""

    flow_id: str  # shown to the originator once; stored only hashed
    flow: PendingFlow
    email: str  # the account's email (the person typed it at Amazon: names nothing new)


@dataclass(frozen=True, slots=True)
class RegistrationRequired:
    flow_id: str
    flow: PendingFlow
    prefill: Prefill
    required: frozenset[str]


@dataclass(frozen=True, slots=True)
class FlowCompleted:
    """Finished on another device; the originator collects its session by polling."""

    account: Account


@dataclass(frozen=True, slots=True)
class RegistrationForm:
    username: str  # blank: derived from the email or name
    name: str
    email: str | None = None
    postal_code: str | None = None


SignInOutcome = SignedInWithAmazon | LinkRequired | RegistrationRequired | Refused


# ---- helpers ----


def hash_secret(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def policy_of(deps: Deps) -> Policy:
    return Policy(
        signup=deps.settings.amazon_signup,
        required_fields=frozenset(deps.settings.amazon_required_fields),
    )


def sync_policy_of(deps: Deps) -> SyncPolicy:
    return SyncPolicy(
        name=deps.settings.profile_sync_name, postal_code=deps.settings.profile_sync_postal_code
    )


async def _sync(
    stores: Stores,
    deps: Deps,
    account: Account,
    link: AmazonLink,
    profile: AmazonProfile,
    client: ClientInfo,
) -> tuple[Account, AmazonLink]:
    """The one profile sync of sign-in, password-proven link and attach (item 14)."""
    return await sync_profile(
        stores,
        account,
        link,
        profile,
        policy=sync_policy_of(deps),
        now=deps.clock.now(),
        ip=client.ip,
    )


async def audit_event(
    stores: Stores,
    deps: Deps,
    kind: str,
    *,
    client: ClientInfo,
    account_id: str | None = None,
    profile: AmazonProfile | None = None,
    detail: str | None = None,
) -> None:
    await stores.audit.record(
        AuditEvent(
            kind=kind,
            at=deps.clock.now(),
            account_id=account_id,
            amazon_user_id=profile.user_id if profile else None,
            client_id=profile.client_id if profile else None,
            ip=client.ip,
            detail=detail,
        )
    )


async def _refuse(
    stores: Stores,
    deps: Deps,
    error: LwaAccountsError,
    *,
    client: ClientInfo,
    account_id: str | None = None,
    profile: AmazonProfile | None = None,
) -> Refused:
    await audit_event(
        stores,
        deps,
        REFUSED,
        client=client,
        account_id=account_id,
        profile=profile,
        detail=f"reason={error.code}",
    )
    return Refused(error)


async def audit_refusal(stores: Stores, deps: Deps, reason: str, *, client: ClientInfo) -> None:
    """Audit a refused attempt that never reached a flow (e.g. a forged or replayed
    callback ``state``)."""
    await audit_event(stores, deps, REFUSED, client=client, detail=f"reason={reason}")


async def audit_refused_token(
    stores: Stores, deps: Deps, error: AmazonError, *, client: ClientInfo
) -> None:
    """Audit a token Amazon's checks refused (another app's, expired, unknown)."""
    await audit_refusal(stores, deps, error.code, client=client)


def _facts_of(account: Account | None, link: AmazonLink | None) -> AccountFacts | None:
    if account is None:
        return None
    return AccountFacts(
        id=account.id,
        disabled=account.disabled,
        has_password=account.has_password,
        amazon_user_id=link.amazon_user_id if link else None,
    )


async def _gather_facts(
    stores: Stores,
    profile: AmazonProfile,
    prefill: Prefill,
    policy: Policy,
    current: Account | None = None,
) -> tuple[Facts, AmazonLink | None, Account | None]:
    link = await stores.identities.get_by_amazon_user_id(profile.user_id)
    linked = await stores.accounts.get(link.account_id) if link else None
    by_email = await stores.accounts.get_by_email(prefill.email) if prefill.email else None
    by_email_link = await stores.identities.get_for_account(by_email.id) if by_email else None
    current_link = await stores.identities.get_for_account(current.id) if current else None
    facts = Facts(
        amazon_user_id=profile.user_id,
        profile=prefill,
        linked_account=_facts_of(linked, link),
        email_account=_facts_of(by_email, by_email_link),
        current_account=_facts_of(current, current_link),
        policy=policy,
    )
    return facts, link, by_email


def _reject_error(decision: Reject) -> LwaAccountsError:
    match decision.code:
        case "amazon_linked_elsewhere":
            return AmazonLinkedElsewhere()
        case "email_account_linked_to_other_amazon":
            return EmailAccountLinkedToOtherAmazon()
        case "already_linked":
            return AlreadyLinked()
        case "account_disabled":
            return AccountDisabled()
        case "signup_closed":
            return SignupClosed()


def _new_link(
    account_id: str,
    profile: AmazonProfile,
    prefill: Prefill,
    deps: Deps,
    *,
    postal_code: str | None,
) -> AmazonLink:
    """A new link. ``postal_code``: a new account's (from its prefill); None for an existing
    account, whose link then gets one only by the sync policy (``_sync``)."""
    now = deps.clock.now()
    return link_seen(
        AmazonLink(
            amazon_user_id=profile.user_id,
            account_id=account_id,
            client_id=profile.client_id,
            name=None,
            email=None,
            postal_code=postal_code,
            linked_at=now,
            last_sign_in_at=None,
        ),
        profile,
        prefill,
        now,
    )


async def _start(
    stores: Stores,
    deps: Deps,
    account: Account,
    profile: AmazonProfile,
    *,
    kind: SessionKind,
    device_name: str | None,
    client: ClientInfo,
    via: str,
) -> SignedIn:
    """A new session (exactly like a password sign-in's) and the Amazon sign-in event."""
    signed_in = await start_session(
        stores,
        account,
        kind=kind,
        device_name=device_name,
        user_agent=client.user_agent,
        ip=client.ip,
        method="amazon",
    )
    await audit_event(
        stores,
        deps,
        SIGNED_IN,
        client=client,
        account_id=account.id,
        profile=profile,
        detail=f"via={via} session={signed_in.session.id}",
    )
    return signed_in


# ---- sign in with a verified profile ----


async def sign_in_with_profile(
    stores: Stores,
    deps: Deps,
    profile: AmazonProfile,
    *,
    client: ClientInfo,
    kind: SessionKind,
    device_name: str | None = None,
    binding: str | None = None,
) -> SignInOutcome:
    """Find, create or start linking the account of a verified Amazon identity."""
    prefill = checked_prefill(profile)
    policy = policy_of(deps)
    for attempt in range(CONFLICT_RETRIES):
        facts, link, by_email = await _gather_facts(stores, profile, prefill, policy)
        if _saw_concurrent_link(facts) and attempt < CONFLICT_RETRIES - 1:
            # Under READ COMMITTED each read sees the latest commit: a concurrent first
            # sign-in committed between our look-up by user_id (nothing) and by email (its
            # new account, linked to *this* Amazon user). Without this the winner's own
            # link would be refused as "another Amazon account's" (409). Look again.
            await _audit_conflict(stores, deps, profile, client, "read")
            continue
        decision = decide(facts)
        try:
            return await _act(
                stores,
                deps,
                decision,
                profile=profile,
                link=link,
                by_email=by_email,
                client=client,
                kind=kind,
                device_name=device_name,
                binding=binding,
            )
        except (UsernameTaken, EmailTaken, AmazonLinkedElsewhere, AlreadyLinked) as conflict:
            # A concurrent sign-in created or linked first (the savepoint undid our half, and
            # the unique index made us wait for its commit): look again, link by user_id
            # first, and, most likely, sign in to what it made.
            if attempt == CONFLICT_RETRIES - 1:
                raise
            await _audit_conflict(stores, deps, profile, client, conflict.code)
    raise AssertionError("unreachable")  # pragma: no cover


def _saw_concurrent_link(facts: Facts) -> bool:
    """The email's account is linked to this very Amazon user, yet the look-up by user_id
    found no link: the facts straddle a concurrent commit."""
    return (
        facts.linked_account is None
        and facts.email_account is not None
        and facts.email_account.amazon_user_id == facts.amazon_user_id
    )


async def _audit_conflict(
    stores: Stores, deps: Deps, profile: AmazonProfile, client: ClientInfo, reason: str
) -> None:
    # Lost the create-and-link race to a parallel first sign-in of the same Amazon user;
    # counted so the race (and how often it happens) is visible in `lwa-accounts audit`.
    await audit_event(
        stores, deps, SIGNIN_CONFLICT, client=client, profile=profile, detail=f"reason={reason}"
    )


async def _act(
    stores: Stores,
    deps: Deps,
    decision: Decision,
    *,
    profile: AmazonProfile,
    link: AmazonLink | None,
    by_email: Account | None,
    client: ClientInfo,
    kind: SessionKind,
    device_name: str | None,
    binding: str | None,
) -> SignInOutcome:
    match decision:
        case SignIn(account_id):
            account = await stores.accounts.get(account_id)
            assert account is not None
            assert link is not None
            account, _ = await _sync(stores, deps, account, link, profile, client)
            signed_in = await _start(
                stores,
                deps,
                account,
                profile,
                kind=kind,
                device_name=device_name,
                client=client,
                via="token",
            )
            return SignedInWithAmazon(created=False, signed_in=signed_in)
        case Create(prefill):
            account = await _create_linked_account(
                stores,
                deps,
                profile,
                prefill,
                username=await available_username(
                    stores, username_base(prefill.email, prefill.name)
                ),
                client=client,
            )
            signed_in = await _start(
                stores,
                deps,
                account,
                profile,
                kind=kind,
                device_name=device_name,
                client=client,
                via="new_account",
            )
            return SignedInWithAmazon(created=True, signed_in=signed_in)
        case ConfirmLink(account_id, can_register_instead):
            assert by_email is not None
            assert by_email.email is not None
            flow_id, flow = await _new_flow(
                stores,
                deps,
                "link",
                profile,
                target_account_id=account_id,
                can_register_instead=can_register_instead,
                missing=frozenset(),
                kind=kind,
                device_name=device_name,
                binding=binding,
                client=client,
            )
            return LinkRequired(flow_id=flow_id, flow=flow, email=by_email.email)
        case Register(prefill, missing):
            flow_id, flow = await _new_flow(
                stores,
                deps,
                "registration",
                # Without an email decide() dropped (another account's): the form must not
                # offer it again (registration_fields prefills from the stored profile).
                profile if prefill.email else replace(profile, email=None),
                target_account_id=None,
                can_register_instead=False,
                missing=missing,
                kind=kind,
                device_name=device_name,
                binding=binding,
                client=client,
            )
            return RegistrationRequired(
                flow_id=flow_id, flow=flow, prefill=prefill, required=missing
            )
        case Reject() as reject:
            holder = link.account_id if link else (by_email.id if by_email else None)
            return await _refuse(
                stores,
                deps,
                _reject_error(reject),
                client=client,
                account_id=holder,
                profile=profile,
            )
        case LinkToCurrent():  # pragma: no cover - decide() yields it only with a current account
            raise AssertionError("attach outside attach_amazon")


async def _create_linked_account(
    stores: Stores,
    deps: Deps,
    profile: AmazonProfile,
    prefill: Prefill,
    *,
    username: str,
    client: ClientInfo,
) -> Account:
    """Create the account and its link in one savepoint: both or neither."""
    async with stores.identities.atomic():
        account = await stores.accounts.create(
            NewAccount(
                username=username,
                email=prefill.email,
                name=prefill.name or username,
                password_hash=None,
                email_verified=False,  # Amazon's email is a hint, not proof
            )
        )
        await stores.identities.link(
            _new_link(account.id, profile, prefill, deps, postal_code=prefill.postal_code)
        )
    await audit_event(
        stores, deps, ACCOUNT_CREATED, client=client, account_id=account.id, profile=profile
    )
    return account


async def _new_flow(
    stores: Stores,
    deps: Deps,
    flow_kind: Literal["link", "registration"],
    profile: AmazonProfile,
    *,
    target_account_id: str | None,
    can_register_instead: bool,
    missing: frozenset[str],
    kind: SessionKind,
    device_name: str | None,
    binding: str | None,
    client: ClientInfo,
) -> tuple[str, PendingFlow]:
    now = deps.clock.now()
    flow_id = FLOW_ID_PREFIX + secrets.token_urlsafe(32)
    flow = PendingFlow(
        id_hash=hash_secret(flow_id),
        kind=flow_kind,
        status="pending",
        profile=profile,
        target_account_id=target_account_id,
        completed_account_id=None,
        attempts_left=deps.settings.flow_max_password_attempts,
        can_register_instead=can_register_instead,
        missing=tuple(sorted(missing)),
        session_kind=kind,
        device_name=device_name,
        binding_hash=hash_secret(binding) if binding is not None else None,
        created_at=now,
        expires_at=now + timedelta(seconds=deps.settings.flow_ttl_seconds),
    )
    # Housekeeping: drop flows long past expiry (kept a day so late polls still get 410).
    await stores.pending_flows.delete_expired(now - EXPIRED_FLOW_RETENTION)
    await stores.pending_flows.create(flow)
    await audit_event(
        stores,
        deps,
        FLOW_STARTED,
        client=client,
        account_id=target_account_id,
        profile=profile,
        detail=f"kind={flow_kind}",
    )
    return flow_id, flow


# ---- pending flows ----


def _well_formed(flow_id: str) -> bool:
    return (
        flow_id.startswith(FLOW_ID_PREFIX)
        and len(flow_id) <= FLOW_ID_MAX
        and flow_id.isascii()
        and flow_id.replace("-", "").replace("_", "").isalnum()
    )


async def _load_flow(
    stores: Stores,
    deps: Deps,
    flow_id: str,
    *,
    client: ClientInfo,
    binding: str | None,
    check_binding: bool,
    status: Literal["pending", "completed", "any"] = "pending",
) -> PendingFlow | Refused:
    """The live flow, or a refusal (audited: a bad flow id is a refused attempt)."""
    flow = (
        await stores.pending_flows.get(hash_secret(flow_id), for_update=True)
        if _well_formed(flow_id)
        else None
    )
    if flow is not None and check_binding:
        expected = flow.binding_hash or ""
        given = hash_secret(binding) if binding is not None else ""
        if not hmac.compare_digest(expected.encode(), given.encode()):  # bytes: never raises
            flow = None  # someone else's flow: as good as unknown
    if flow is None:
        return await _refuse(stores, deps, FlowNotFound(), client=client)
    live = flow.expires_at > deps.clock.now() and (
        flow.status == status or (status == "any" and flow.status != "spent")
    )
    if not live:
        return await _refuse(stores, deps, FlowExpired(), client=client, profile=flow.profile)
    return flow


async def get_flow(
    stores: Stores, deps: Deps, flow_id: str, *, binding: str | None, client: ClientInfo
) -> PendingFlow | Refused:
    """A pending flow of this browser/device (for rendering its page)."""
    return await _load_flow(
        stores, deps, flow_id, client=client, binding=binding, check_binding=True
    )


async def switch_to_registration(
    stores: Stores,
    deps: Deps,
    flow_id: str,
    *,
    client: ClientInfo,
    binding: str | None,
    check_binding: bool = True,
) -> PendingFlow | Refused:
    """ "Create a separate account instead" of proving the password of the account that
    holds the Amazon email (which may be a squatter's: anyone can register any address).

    The pending link flow becomes a registration flow in place: same id, binding, expiry
    and single use; no target account and no password attempts left; its prefill no longer
    carries the taken email (and the account holding it is not touched). The registration
    step then creates a new account linked to this Amazon identity, whose email cannot be
    the taken one (emails are unique). Idempotent for a flow already switched. Refused
    with ``signup_closed`` when the policy allows no new accounts.
    """
    loaded = await _load_flow(
        stores, deps, flow_id, client=client, binding=binding, check_binding=check_binding
    )
    if isinstance(loaded, Refused) or loaded.kind == "registration":
        return loaded
    flow = loaded
    if not flow.can_register_instead or deps.settings.amazon_signup == "closed":
        return await _refuse(stores, deps, SignupClosed(), client=client, profile=flow.profile)
    _, missing = registration_fields(flow, deps)
    if not await stores.pending_flows.become_registration(
        flow.id_hash, missing=tuple(sorted(missing))
    ):
        return await _refuse(stores, deps, FlowExpired(), client=client, profile=flow.profile)
    await audit_event(
        stores,
        deps,
        FLOW_SWITCHED,
        client=client,
        account_id=flow.target_account_id,  # whose email was declined; left unchanged
        profile=flow.profile,
        detail="kind=registration",
    )
    switched = await stores.pending_flows.get(flow.id_hash)
    assert switched is not None  # just updated in this transaction
    return switched


def registration_fields(flow: PendingFlow, deps: Deps) -> tuple[Prefill, frozenset[str]]:
    """What a registration form for this flow shows prefilled and requires."""
    prefill = checked_prefill(flow.profile)
    if flow.kind == "link":
        # "Create a separate account instead": the Amazon email is another account's.
        decision = separate_account(prefill, policy_of(deps))
        if isinstance(decision, Register):
            return decision.prefill, decision.missing
        return prefill.without_email(), frozenset()
    return prefill, frozenset(flow.missing)


async def _finish(
    stores: Stores,
    deps: Deps,
    flow: PendingFlow,
    account: Account,
    *,
    created: bool,
    deliver_to: DeliverTo,
    client: ClientInfo,
) -> SignedInWithAmazon | FlowCompleted:
    to_status: Literal["spent", "completed"] = "spent" if deliver_to == "caller" else "completed"
    if not await stores.pending_flows.transition(
        flow.id_hash, from_status="pending", to_status=to_status, completed_account_id=account.id
    ):
        raise FlowExpired()  # used concurrently: single use
    if deliver_to == "originator":
        return FlowCompleted(account)
    signed_in = await _start(
        stores,
        deps,
        account,
        flow.profile,
        kind=flow.session_kind,
        device_name=flow.device_name,
        client=client,
        via=flow.kind,
    )
    return SignedInWithAmazon(created=created, signed_in=signed_in)


@dataclass(frozen=True, slots=True)
class LinkAttempt:
    """A link step found by ``begin_link``: its password is checked outside any
    transaction (``check_link_password``), then ``finish_link`` re-checks and links."""

    flow_id: str = field(repr=False)
    flow: PendingFlow
    account: Account


async def confirm_link(
    stores: Stores,
    deps: Deps,
    flow_id: str,
    password: str,
    *,
    client: ClientInfo,
    binding: str | None = None,
    deliver_to: DeliverTo = "caller",
) -> SignedInWithAmazon | FlowCompleted | Refused:
    """Prove the local password of the account holding the Amazon email, then link.

    All in the caller's transaction. Request handlers run the three steps separately
    (``begin_link`` in one short transaction, ``check_link_password`` outside any,
    ``finish_link`` in a second one) so argon2 holds no connection or SQLite write lock.
    """
    attempt = await begin_link(
        stores, deps, flow_id, client=client, binding=binding, deliver_to=deliver_to
    )
    if isinstance(attempt, Refused):
        return attempt
    check = await check_link_password(deps, attempt, password, client=client)
    return await finish_link(
        stores, deps, attempt, check, client=client, binding=binding, deliver_to=deliver_to
    )


async def begin_link(
    stores: Stores,
    deps: Deps,
    flow_id: str,
    *,
    client: ClientInfo,
    binding: str | None = None,
    deliver_to: DeliverTo = "caller",
) -> LinkAttempt | Refused:
    """The pending link flow and its target account, or an audited refusal."""
    loaded = await _load_flow(
        stores, deps, flow_id, client=client, binding=binding, check_binding=deliver_to == "caller"
    )
    if isinstance(loaded, Refused):
        return loaded
    flow = loaded
    if flow.kind != "link" or flow.target_account_id is None:
        return await _refuse(stores, deps, FlowNotFound(), client=client, profile=flow.profile)
    account = await stores.accounts.get(flow.target_account_id)
    if account is None:
        return await _refuse(stores, deps, FlowExpired(), client=client, profile=flow.profile)
    # An early refusal when the sign-in throttle is spent, so the N+1th wrong password is a
    # 429 like on /signin (the attempt itself is reserved in check_link_password).
    try:
        await deps.throttle.peek_password(account.id, client.ip)
    except TooManyAttempts as throttled:
        return await _refuse(
            stores, deps, throttled, client=client, account_id=account.id, profile=flow.profile
        )
    if flow.attempts_left <= 0:
        return await _refuse(
            stores, deps, FlowExpired(), client=client, account_id=account.id, profile=flow.profile
        )
    return LinkAttempt(flow_id=flow_id, flow=flow, account=account)


async def check_link_password(
    deps: Deps, attempt: LinkAttempt, password: str, *, client: ClientInfo
) -> PasswordCheck:
    """Throttle (the attempt reserved before argon2) and argon2 against the target
    account; touches no database."""
    return await check_password(
        deps,
        account=attempt.account,
        account_key=attempt.account.id,
        password=password,
        client=client,
    )


async def finish_link(
    stores: Stores,
    deps: Deps,
    attempt: LinkAttempt,
    check: PasswordCheck,
    *,
    client: ClientInfo,
    binding: str | None = None,
    deliver_to: DeliverTo = "caller",
) -> SignedInWithAmazon | FlowCompleted | Refused:
    """Record the check and, if the flow is still pending and the password it was checked
    against is still the account's, link and finish the flow."""
    loaded = await _load_flow(
        stores,
        deps,
        attempt.flow_id,
        client=client,
        binding=binding,
        check_binding=deliver_to == "caller",
    )
    if isinstance(loaded, Refused):
        return loaded  # used or expired meanwhile
    flow = loaded
    account = await stores.accounts.lock(attempt.account.id)
    if account is None or flow.target_account_id != account.id:
        return await _refuse(stores, deps, FlowExpired(), client=client, profile=flow.profile)
    # Audits a wrong or throttled password, and refuses one changed since it was checked.
    refused = await record_password_check(stores, deps, check, client)
    if refused is not None and isinstance(refused.error, TooManyAttempts):
        # Throttled before argon2: 429, however far concurrent attempts spent the flow.
        return await _refuse(
            stores, deps, refused.error, client=client, account_id=account.id, profile=flow.profile
        )
    if flow.attempts_left <= 0:  # spent by concurrent attempts meanwhile
        return await _refuse(
            stores, deps, FlowExpired(), client=client, account_id=account.id, profile=flow.profile
        )
    if refused is not None:
        error = refused.error
        if isinstance(error, InvalidCredentials):
            flow_left = await stores.pending_flows.use_attempt(flow.id_hash)
            throttle_left = int(error.extra.get("attempts_left", flow_left))
            error = InvalidCredentials(
                "The password is incorrect.", attempts_left=min(flow_left, throttle_left)
            )
        return await _refuse(
            stores, deps, error, client=client, account_id=account.id, profile=flow.profile
        )
    return await _link_proven(stores, deps, flow, account, client=client, deliver_to=deliver_to)


async def _link_proven(
    stores: Stores,
    deps: Deps,
    flow: PendingFlow,
    account: Account,
    *,
    client: ClientInfo,
    deliver_to: DeliverTo,
) -> SignedInWithAmazon | FlowCompleted | Refused:
    """The password was proven: link (the account row is locked by the caller)."""
    if account.disabled:
        return await _refuse(
            stores,
            deps,
            AccountDisabled(),
            client=client,
            account_id=account.id,
            profile=flow.profile,
        )
    link = await stores.identities.get_by_amazon_user_id(flow.profile.user_id)
    if link is None:
        prefill = checked_prefill(flow.profile)
        link = await stores.identities.link(
            _new_link(account.id, flow.profile, prefill, deps, postal_code=None)
        )
    elif link.account_id != account.id:
        return await _refuse(
            stores,
            deps,
            AmazonLinkedElsewhere(),
            client=client,
            account_id=account.id,
            profile=flow.profile,
        )
    if not account.email_verified:
        # Whoever registered this unverified address may still hold a session in it
        # ("unexpired session" pre-hijacking): only the password prover stays signed in.
        await stores.sessions.revoke_all(account.id)
    await audit_event(
        stores,
        deps,
        LINKED,
        client=client,
        account_id=account.id,
        profile=flow.profile,
        detail="method=password",
    )
    account, _ = await _sync(stores, deps, account, link, flow.profile, client)
    return await _finish(
        stores, deps, flow, account, created=False, deliver_to=deliver_to, client=client
    )


def _check_registration(form: RegistrationForm, required: frozenset[str]) -> RegistrationForm:
    errors: dict[str, str] = {}
    username = normalise_username(form.username)
    name = validate_name(form.name)
    email_text = (form.email or "").strip()
    postal_code = (form.postal_code or "").strip()
    if isinstance(username, Invalid) and form.username.strip():
        errors["username"] = username.message
    if isinstance(name, Invalid):
        errors["name"] = name.message
    email: str | None = None
    if email_text:
        checked = normalise_email(email_text)
        if isinstance(checked, Invalid):
            errors["email"] = checked.message
        else:
            email = checked.value
    elif "email" in required:
        errors["email"] = "Enter an email address."
    if len(postal_code) > POSTAL_CODE_MAX or not postal_code.isprintable():
        errors["postal_code"] = f"Use at most {POSTAL_CODE_MAX} letters and digits."
    elif not postal_code and "postal_code" in required:
        errors["postal_code"] = "Enter a postal code."
    if errors:
        raise ValidationFailed(errors=errors)
    assert not isinstance(name, Invalid)
    return RegistrationForm(
        username=username.value if isinstance(username, Valid) else "",
        name=name.value,
        email=email,
        postal_code=postal_code or None,
    )


async def complete_registration(
    stores: Stores,
    deps: Deps,
    flow_id: str,
    form: RegistrationForm,
    *,
    client: ClientInfo,
    binding: str | None = None,
    deliver_to: DeliverTo = "caller",
) -> SignedInWithAmazon | FlowCompleted | Refused:
    """Create the account from the (prefilled) registration form and link Amazon to it.

    Also "create a separate account instead" for a link flow, when the policy allows it.
    Raises ValidationFailed, UsernameTaken, EmailTaken or SignupClosed.
    """
    loaded = await _load_flow(
        stores, deps, flow_id, client=client, binding=binding, check_binding=deliver_to == "caller"
    )
    if isinstance(loaded, Refused):
        return loaded
    flow = loaded
    if flow.kind == "link":
        # "Create a separate account instead", straight from the link step (devices): the
        # same switch as the pages' button, undone with the rest if the form is refused.
        switched = await switch_to_registration(
            stores,
            deps,
            flow_id,
            client=client,
            binding=binding,
            check_binding=deliver_to == "caller",
        )
        if isinstance(switched, Refused):
            return switched
        flow = switched
    if deps.settings.amazon_signup == "closed":
        return await _refuse(stores, deps, SignupClosed(), client=client, profile=flow.profile)
    _, required = registration_fields(flow, deps)
    checked = _check_registration(form, required)
    if not checked.username:
        # Devices may leave the username to us, as a sign-up in ``auto`` mode would.
        base = username_base(checked.email, checked.name)
        checked = replace(checked, username=await available_username(stores, base))
    prefill = Prefill(name=checked.name, email=checked.email, postal_code=checked.postal_code)
    if await stores.identities.get_by_amazon_user_id(flow.profile.user_id) is not None:
        return await _refuse(
            stores, deps, AmazonLinkedElsewhere(), client=client, profile=flow.profile
        )
    account = await _create_linked_account(
        stores, deps, flow.profile, prefill, username=checked.username, client=client
    )
    return await _finish(
        stores, deps, flow, account, created=True, deliver_to=deliver_to, client=client
    )


async def collect_completed_flow(
    stores: Stores, deps: Deps, flow_id: str, *, client: ClientInfo
) -> SignedInWithAmazon | PendingFlow | Refused:
    """The originating device's poll: its new session once (after completion elsewhere),
    the flow while still pending, FlowExpired afterwards.

    Only flows started without a browser binding (devices) can be collected this way.
    """
    loaded = await _load_flow(
        stores, deps, flow_id, client=client, binding=None, check_binding=True, status="any"
    )
    if isinstance(loaded, Refused):
        return loaded
    flow = loaded
    if flow.status == "pending":
        return flow
    account = await stores.accounts.get(flow.completed_account_id or "")
    if account is None or not await stores.pending_flows.transition(
        flow.id_hash, from_status="completed", to_status="spent"
    ):
        return await _refuse(stores, deps, FlowExpired(), client=client, profile=flow.profile)
    signed_in = await _start(
        stores,
        deps,
        account,
        flow.profile,
        kind=flow.session_kind,
        device_name=flow.device_name,
        client=client,
        via=f"{flow.kind}_elsewhere",
    )
    return SignedInWithAmazon(created=flow.kind == "registration", signed_in=signed_in)


# ---- attach and detach from a signed-in account ----


async def _require_recent_auth(
    stores: Stores,
    deps: Deps,
    *,
    session: Session,
    account: Account,
    password: str | None,
    client: ClientInfo,
) -> Refused | None:
    if password:
        # Only bearer (device) callers of the API pass the password here; their token is
        # kept (see ``reauthenticate``). Browser pages re-authenticate before this and get
        # a new session (``finish_reauthentication``).
        return await reauthenticate(
            stores, deps, session=session, account=account, password=password, client=client
        )
    if not recently_authenticated(session, deps):
        raise ReauthenticationRequired()
    return None


@dataclass(frozen=True, slots=True)
class Attached:
    account: Account
    link: AmazonLink
    signed_in: SignedIn | None  # the rotated browser session, when asked for


async def attach_amazon(
    stores: Stores,
    deps: Deps,
    profile: AmazonProfile,
    *,
    session: Session,
    account: Account,
    password: str | None,
    client: ClientInfo,
    rotate_session: bool = False,
) -> Attached | Refused:
    """Link a verified Amazon identity to the signed-in account.

    Needs a recent sign-in or the password. 409 ``amazon_linked_elsewhere`` names no
    other account. ``rotate_session`` swaps the browser session for a new one (no fixation).
    A new link to an account with an unverified email ends its other sessions.
    """
    refused = await _require_recent_auth(
        stores, deps, session=session, account=account, password=password, client=client
    )
    if refused is not None:
        return refused
    locked = await stores.accounts.lock(account.id)
    assert locked is not None  # the session's own account
    prefill = checked_prefill(profile)
    facts, link, _ = await _gather_facts(stores, profile, prefill, policy_of(deps), current=locked)
    decision = decide(facts)
    if isinstance(decision, Reject):
        return await _refuse(
            stores,
            deps,
            _reject_error(decision),
            client=client,
            account_id=account.id,
            profile=profile,
        )
    if isinstance(decision, LinkToCurrent):
        try:
            link = await stores.identities.link(
                _new_link(account.id, profile, prefill, deps, postal_code=None)
            )
        except (AmazonLinkedElsewhere, AlreadyLinked) as error:
            return await _refuse(
                stores, deps, error, client=client, account_id=account.id, profile=profile
            )
        # The link is made on the strength of the password (given now, or a sign-in with
        # it moments ago): as in ``_link_proven``, other sessions of an account whose email
        # was never verified end (security.md 9, "unexpired session"). The caller keeps its
        # own (a bearer token) or gets a new one below (``rotate_session``, browsers).
        ended = 0
        if not locked.email_verified:
            ended = await stores.sessions.revoke_all(account.id, except_session_id=session.id)
        await audit_event(
            stores,
            deps,
            LINKED,
            client=client,
            account_id=account.id,
            profile=profile,
            detail=f"method=attach ended_sessions={ended}",
        )
    assert link is not None
    locked, link = await _sync(stores, deps, locked, link, profile, client)
    signed_in: SignedIn | None = None
    if rotate_session:
        signed_in = await _start(
            stores,
            deps,
            locked,
            profile,
            kind=session.kind,
            device_name=session.device_name,
            client=client,
            via="attach",
        )
        await stores.sessions.revoke(account.id, session.id)
    return Attached(account=locked, link=link, signed_in=signed_in)


async def detach_amazon(
    stores: Stores,
    deps: Deps,
    *,
    session: Session,
    account: Account,
    password: str | None,
    client: ClientInfo,
) -> Refused | None:
    """Unlink Amazon. Refused (409 ``last_sign_in_method``) when the account has no
    password; the check and the delete happen under the account's row lock."""
    refused = await _require_recent_auth(
        stores, deps, session=session, account=account, password=password, client=client
    )
    if refused is not None:
        return refused
    locked = await stores.accounts.lock(account.id)
    assert locked is not None
    link = await stores.identities.get_for_account(locked.id)
    if link is None:
        raise NotFound("No Amazon account is linked.")
    profile = AmazonProfile(user_id=link.amazon_user_id, client_id=link.client_id)
    if not locked.has_password:
        return await _refuse(
            stores, deps, LastSignInMethod(), client=client, account_id=locked.id, profile=profile
        )
    await stores.identities.unlink(locked.id)
    await audit_event(stores, deps, UNLINKED, client=client, account_id=locked.id, profile=profile)
    return None

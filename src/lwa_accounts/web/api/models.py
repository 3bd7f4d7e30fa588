"""Request and response models of the JSON API, and the one account serializer."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from lwa_accounts.core.models import Account, AmazonLink, Session
from lwa_accounts.core.validation import (
    EMAIL_MAX,
    NAME_MAX,
    PASSWORD_MAX,
    POSTAL_CODE_MAX,
    USERNAME_MAX,
    Invalid,
    validate_name,
)
from lwa_accounts.errors import Moved
from lwa_accounts.flows.amazon.pending import FLOW_ID_MAX
from lwa_accounts.flows.tv_amazon import ID_MAX as AUTHORIZATION_ID_MAX

# Generous upper bounds: the flows apply the real rules; these only stop huge inputs
# before any work is done.
Login = Annotated[str, Field(min_length=1, max_length=EMAIL_MAX)]
Password = Annotated[str, Field(min_length=1, max_length=PASSWORD_MAX)]
DeviceToken = Annotated[str, Field(min_length=1, max_length=1024)]


def _printable_device_name(value: str) -> str:
    checked = validate_name(value)
    if isinstance(checked, Invalid):
        raise ValueError(checked.message.replace("name", "device name"))
    return checked.value


DeviceName = Annotated[
    str, Field(min_length=1, max_length=100), AfterValidator(_printable_device_name)
]


# Other ways forward from a pending step: "register" = create a separate account instead
# of proving the password of the account that holds the Amazon email (which may be an
# address someone else registered: email squatting); "email_code" = prove that account by
# a code sent to its verified address instead of its password.
FlowAlternative = Literal["register", "email_code"]


class Strict(BaseModel):
    # Unknown fields are refused (422 "Unknown field.") so a typo never passes silently.
    model_config = ConfigDict(extra="forbid")


# Bearer-like handles travel in JSON bodies, never in paths or queries: a URL lands in
# access logs, proxy logs and browser history (security.md item 1). Too long or not a
# string: 422 before anything is looked up.
FlowId = Annotated[
    str,
    Field(
        min_length=1,
        max_length=FLOW_ID_MAX,
        description="The flow's id (`flow.id`); keep it secret.",
    ),
]
AuthorizationId = Annotated[
    str,
    Field(
        min_length=1,
        max_length=AUTHORIZATION_ID_MAX,
        description="The authorization's `id`; keep it secret.",
    ),
]


class FlowRequest(Strict):
    flow_id: FlowId

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"flow_id": "flw_Xb1…(47 characters)"}]}
    )


class AuthorizationPollRequest(Strict):
    authorization_id: AuthorizationId

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"authorization_id": "pV3…(43 characters)"}]},
    )


def moved(new_path: str, body: str) -> Moved:
    """The answer of a retired handle-in-the-path endpoint (kept for one release)."""
    return Moved(f"Send POST {new_path} with the JSON body {body}.", moved_to=new_path)


# What the retired endpoints say in the OpenAPI description.
MOVED_NOTE = (
    "**Moved** (kept for one release): answers 410 `moved` with `moved_to` naming the new "
    "endpoint, without looking at the id. A secret in a URL ends up in access logs."
)


class RegisterRequest(Strict):
    username: Annotated[str, Field(min_length=1, max_length=USERNAME_MAX * 2)]
    email: Annotated[str, Field(max_length=EMAIL_MAX)] | None = None
    name: Annotated[str, Field(min_length=1, max_length=NAME_MAX * 2)]
    password: Password

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "username": "ada",
                    "email": "ada@example.com",
                    "name": "Ada Lovelace",
                    "password": "correct horse battery staple",
                }
            ]
        },
    )


class SignInRequest(Strict):
    username: Login = Field(description="A username or an email address.")
    password: Password
    device_name: DeviceName | None = Field(
        default=None, description="Shown on the account page, e.g. 'Living-room TV'."
    )
    device_token: DeviceToken | None = Field(
        default=None,
        description="The `device_token` an earlier sign-in to this account returned (or send "
        "it as the `Lwa-Device-Token` header): this client's attempts then have a budget of "
        "their own, which guesses from elsewhere cannot spend.",
    )

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "username": "ada",
                    "password": "correct horse battery staple",
                    "device_name": "Living-room TV",
                }
            ]
        },
    )


class AccountOut(BaseModel):
    id: str
    username: str
    email: str | None
    email_verified: bool = Field(
        description="Whether the address was proven by a code or link sent to it; an "
        "unverified address is never used to find or link an account."
    )
    name: str
    postal_code: str | None
    amazon_user_id: str | None = Field(description="The linked Amazon user id, or null.")

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "acc_3hV9cN0bq2kL1dPzX8yA4w",
                    "username": "ada",
                    "email": "ada@example.com",
                    "email_verified": True,
                    "name": "Ada Lovelace",
                    "postal_code": "98052",
                    "amazon_user_id": None,
                }
            ]
        }
    )


class AccountEnvelope(BaseModel):
    account: AccountOut


class ProfilePatch(Strict):
    """Only the fields given change; ``postal_code: null`` (or "") removes it."""

    name: Annotated[str, Field(max_length=NAME_MAX * 2)] | None = None
    postal_code: Annotated[str, Field(max_length=POSTAL_CODE_MAX * 2)] | None = None
    email: Annotated[str, Field(max_length=EMAIL_MAX)] | None = Field(
        default=None,
        description="A new address: it is sent a verification mail and becomes the "
        "account's once confirmed; the old one is told and kept meanwhile.",
    )
    password: Password | None = Field(
        default=None,
        description="For a new `email` more than 5 minutes after signing in.",
    )

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"name": "Ada King", "postal_code": "SW1A 1AA"},
                {"email": "ada@new.example", "password": "correct horse battery staple"},
            ]
        },
    )


class EmailCodeRequest(Strict):
    code: Annotated[str, Field(min_length=1, max_length=20)] = Field(
        description="The six-digit code from the verification mail (spaces allowed)."
    )

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"code": "123 456"}]})


class VerificationSentOut(BaseModel):
    email: str = Field(description="Where the verification mail went.")
    expires_at: datetime


class ProfileOut(BaseModel):
    account: AccountOut
    email_change: VerificationSentOut | None = Field(
        description="The address waiting for its confirmation, when `email` asked for one."
    )


class SessionTokenOut(BaseModel):
    token: str = Field(description="Bearer token; send as 'Authorization: Bearer <token>'.")
    expires_at: datetime


class SignedInOut(BaseModel):
    session: SessionTokenOut
    account: AccountOut
    device_token: str | None = Field(
        default=None,
        description="A known-device proof for this client and account: keep it and send it "
        "with later sign-ins (`device_token`, or the `Lwa-Device-Token` header on any "
        "password step). Valid for `LWA_ACCOUNTS_KNOWN_DEVICE_MAX_AGE_SECONDS` after the "
        "latest sign-in, until the password changes.",
    )


class SessionOut(BaseModel):
    id: str
    kind: Literal["browser", "device"]
    device_name: str | None
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    current: bool


class SessionList(BaseModel):
    sessions: list[SessionOut]


class ProblemOut(BaseModel):
    """RFC 9457 problem details with a stable machine ``code``."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    code: str
    errors: dict[str, str] | None = None
    attempts_left: int | None = None
    retry_after: int | None = Field(
        default=None, description="Seconds to wait before trying again (as `Retry-After`)."
    )
    moved_to: str | None = None


def account_json(account: Account, amazon_link: AmazonLink | None = None) -> AccountOut:
    """THE account serializer; Amazon sign-in fills ``amazon_user_id`` from its link."""
    return AccountOut(
        id=account.id,
        username=account.username,
        email=account.email,
        email_verified=account.email_verified,
        name=account.name,
        postal_code=account.postal_code,
        amazon_user_id=amazon_link.amazon_user_id if amazon_link else None,
    )


def session_json(session: Session, *, current_session_id: str | None) -> SessionOut:
    return SessionOut(
        id=session.id,
        kind=session.kind,
        device_name=session.device_name,
        created_at=session.created_at,
        last_seen_at=session.last_seen_at,
        expires_at=session.expires_at,
        current=session.id == current_session_id,
    )


def problems(*statuses: int) -> dict[int | str, dict[str, object]]:
    """OpenAPI ``responses=`` entries for the problem statuses an endpoint can answer."""
    return {
        status: {
            "model": ProblemOut,
            "content": {"application/problem+json": {}},
        }
        for status in statuses
    }

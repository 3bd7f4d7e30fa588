"""The JSON shapes of the Amazon sign-in API (``web/api/amazon.py``), with the examples
the OpenAPI document shows."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.config import JsonDict

from lwa_accounts.core.validation import EMAIL_MAX, NAME_MAX, USERNAME_MAX
from lwa_accounts.web.api.models import (
    AccountOut,
    DeviceName,
    FlowAlternative,
    FlowId,
    Password,
    SessionTokenOut,
    Strict,
)

# Amazon access tokens are at most 2048 bytes (lwa-protocol.md section 5).
AccessToken = Annotated[str, Field(min_length=1, max_length=2048)]
# Six digits as typed (spaces and dashes are ignored); room for a few more, no more.
EmailCode = Annotated[
    str,
    Field(
        min_length=1,
        max_length=32,
        description="The six-digit code from the e-mail (spaces and dashes are ignored).",
    ),
]

ACCOUNT_EXAMPLE: JsonDict = {
    "id": "acc_3hV9cN0bq2kL1dPzX8yA4w",
    "username": "ada",
    "email": "ada@example.com",
    "name": "Ada Lovelace",
    "amazon_user_id": "amzn1.account.AF5ZQ2TTD6O4W4WMR7FZH5QGRX4A",
}
SESSION_EXAMPLE: JsonDict = {"token": "q0Jm7…(43 characters)", "expires_at": "2027-11-24T18:00:00Z"}
SIGNED_IN_EXAMPLE: JsonDict = {
    "result": "signed_in",
    "created": False,
    "session": SESSION_EXAMPLE,
    "account": ACCOUNT_EXAMPLE,
}
LINK_EXAMPLE: JsonDict = {
    "result": "link_required",
    "flow": {
        "id": "flw_Xb1…(47 characters)",
        "kind": "link",
        "expires_at": "2026-11-24T18:10:00Z",
        "email": "ada@example.com",
        "can_register_instead": True,
        "alternatives": ["register", "email_code"],
        "email_code_to": "a•••@example.com",
    },
}
REGISTRATION_EXAMPLE: JsonDict = {
    "result": "registration_required",
    "flow": {
        "id": "flw_Xb1…(47 characters)",
        "kind": "registration",
        "expires_at": "2026-11-24T18:10:00Z",
        "prefill": {"name": "Ada Lovelace", "email": None, "postal_code": "98052"},
        "required": ["email"],
    },
}


class AmazonSignInRequest(Strict):
    access_token: AccessToken = Field(description="An Amazon access token (`Atza|...`).")
    device_name: DeviceName | None = Field(
        default=None, description="Shown on the account page, e.g. 'Living-room TV'."
    )

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"access_token": "Atza|IwEBIA…", "device_name": "Living-room TV"}]
        },
    )


class PrefillOut(BaseModel):
    name: str | None
    email: str | None
    postal_code: str | None


class FlowOut(BaseModel):
    id: str = Field(description="Keep it secret: it finishes the flow. Valid 10 minutes.")
    kind: Literal["link", "registration"]
    expires_at: datetime
    email: str | None = Field(
        default=None, description="link: the email of the account whose password is needed."
    )
    can_register_instead: bool | None = Field(
        default=None, description="link: whether a separate account may be created instead."
    )
    alternatives: list[FlowAlternative] | None = Field(
        default=None,
        description=(
            'link: other ways forward. `"register"`: create a separate account for this '
            "Amazon account instead (the register step with this flow id; its email must "
            'differ from the one shown, which stays with the other account). `"email_code"`: '
            "prove the account by a code sent to its verified address instead of its "
            'password (POST /api/v1/flows/email-code, then POST /api/v1/flows/link `{"flow_id", '
            '"code"}`); offered only when that address is verified.'
        ),
    )
    email_code_to: str | None = Field(
        default=None,
        description=(
            "link: where a code would go, masked (`a•••@example.com`): the account's own "
            "verified address, never Amazon's. Null when the account has no verified address."
        ),
    )
    prefill: PrefillOut | None = Field(
        default=None, description="registration: what Amazon told us."
    )
    required: list[str] | None = Field(
        default=None, description="registration: fields Amazon did not supply but we need."
    )


class AmazonSignedInOut(BaseModel):
    result: Literal["signed_in"] = "signed_in"
    created: bool = Field(description="True when a new account was created.")
    session: SessionTokenOut
    account: AccountOut

    model_config = ConfigDict(json_schema_extra={"examples": [SIGNED_IN_EXAMPLE]})


class LinkRequiredOut(BaseModel):
    result: Literal["link_required"] = "link_required"
    flow: FlowOut

    model_config = ConfigDict(json_schema_extra={"examples": [LINK_EXAMPLE]})


class RegistrationRequiredOut(BaseModel):
    result: Literal["registration_required"] = "registration_required"
    flow: FlowOut

    model_config = ConfigDict(json_schema_extra={"examples": [REGISTRATION_EXAMPLE]})


class FlowPendingOut(BaseModel):
    result: Literal["pending"] = "pending"
    flow: FlowOut


class LinkRequest(Strict):
    """Exactly one proof of the account: its ``password``, or the ``code`` e-mailed to its
    verified address (``POST /api/v1/flows/email-code``)."""

    flow_id: FlowId
    password: Password | None = Field(default=None, description="The account's password.")
    code: EmailCode | None = Field(
        default=None, description="Instead of the password: the code sent by e-mail."
    )

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"flow_id": "flw_Xb1…(47 characters)", "password": "correct horse battery"},
                {"flow_id": "flw_Xb1…(47 characters)", "code": "482 913"},
            ]
        },
    )


class CodeSentOut(BaseModel):
    result: Literal["code_sent"] = "code_sent"
    sent_to: str = Field(description="The account's verified address, masked.")
    expires_at: datetime = Field(description="The code works until then (and only once).")

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "result": "code_sent",
                    "sent_to": "a•••@example.com",
                    "expires_at": "2026-11-24T18:10:00Z",
                }
            ]
        }
    )


class FlowRegisterRequest(Strict):
    flow_id: FlowId
    username: Annotated[str, Field(max_length=USERNAME_MAX * 2)] = Field(
        default="", description="Optional: derived from the email or name when left out."
    )
    name: Annotated[str, Field(min_length=1, max_length=NAME_MAX * 2)]
    email: Annotated[str, Field(max_length=EMAIL_MAX)] | None = None
    postal_code: Annotated[str, Field(max_length=64)] | None = None

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "flow_id": "flw_Xb1…(47 characters)",
                    "username": "ada",
                    "name": "Ada Lovelace",
                    "email": "ada@example.com",
                }
            ]
        },
    )


class AttachRequest(Strict):
    access_token: AccessToken
    password: Password | None = Field(
        default=None,
        description="Needed unless this session signed in within the last 5 minutes.",
    )

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"access_token": "Atza|IwEBIA…"}]}
    )


class DetachRequest(Strict):
    password: Password | None = Field(
        default=None,
        description="Needed unless this session signed in within the last 5 minutes.",
    )


class AccountWithAmazonOut(BaseModel):
    account: AccountOut

    model_config = ConfigDict(json_schema_extra={"examples": [{"account": ACCOUNT_EXAMPLE}]})


SIGN_IN_RESPONSES: dict[int | str, dict[str, Any]] = {
    201: {
        "model": AmazonSignedInOut,
        "description": "Signed in (`created` says whether the account is new).",
        "content": {"application/json": {"example": SIGNED_IN_EXAMPLE}},
    },
    200: {
        "description": (
            "A step is needed: `link_required` (prove the account that holds this email: POST "
            '/api/v1/flows/link `{"flow_id", "password"}`, or with `"code"` after POST '
            "/api/v1/flows/email-code when `alternatives` has `email_code`) or "
            '`registration_required` (POST /api/v1/flows/register `{"flow_id", ...}`).'
        ),
        "content": {
            "application/json": {
                "examples": {
                    "link_required": {"value": LINK_EXAMPLE},
                    "registration_required": {"value": REGISTRATION_EXAMPLE},
                }
            }
        },
    },
}


FLOW_POLL_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"model": FlowPendingOut, "description": "Still pending."},
    201: {
        "model": AmazonSignedInOut,
        "description": "Finished on another device: this device's new session, once.",
    },
}

"""POST /api/v1/password-resets and /password-resets/confirm (``flows/recovery.py``).

Asking answers 202 with the same body whatever the login is, before anything is looked up
(the look-up and the message run after the answer: a background task). Confirming takes
the e-mailed link's ``token``, or the ``login`` and the ``code``, with the new password:
204, and no session (sign in with the new password).
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, BackgroundTasks, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from lwa_accounts.errors import ValidationFailed
from lwa_accounts.flows import recovery
from lwa_accounts.web.api.models import Login, Password, Strict, problems
from lwa_accounts.web.services import request_context

router = APIRouter(prefix="/api/v1", tags=["password resets"])

ACCEPTED_DETAIL = (
    "If an account with a verified email address matches, a link and a code were sent to "
    "that address. They work for 30 minutes, once; only the newest message works."
)


class PasswordResetRequest(Strict):
    login: Login = Field(description="A username or an email address.")

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"login": "ada"}]})


class PasswordResetAccepted(BaseModel):
    status: Literal["accepted"] = "accepted"
    detail: str = ACCEPTED_DETAIL


class PasswordResetConfirm(Strict):
    token: Annotated[str, Field(min_length=1, max_length=512)] | None = Field(
        default=None, description="The `token` of the e-mailed link (`/reset-password?token=`)."
    )
    login: Login | None = Field(default=None, description="With `code`: the account's login.")
    code: Annotated[str, Field(min_length=1, max_length=32)] | None = Field(
        default=None, description="With `login`: the six-digit code from the e-mail."
    )
    new_password: Password
    amazon_link: Literal["keep", "remove"] | None = Field(
        default=None,
        description="Required when the account is linked to Amazon (a 422 names the Amazon "
        "account): keep the link, or remove it.",
    )

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"token": "eyJpIjoi…", "new_password": "a new long passphrase"},
                {"login": "ada", "code": "123456", "new_password": "a new long passphrase"},
            ]
        },
    )


@router.post(
    "/password-resets",
    status_code=202,
    response_model=PasswordResetAccepted,
    responses=problems(400, 413, 422),
    summary="Ask for a password reset e-mail",
    description=(
        "Always 202 with the same body: whether the login names an account, whether its "
        "address is verified and whether its e-mail budget is spent are never said. Only a "
        "verified address gets the message (a link and a six-digit code, 30 minutes)."
    ),
)
async def ask_for_reset(
    body: PasswordResetRequest, request: Request, background: BackgroundTasks
) -> PasswordResetAccepted:
    background.add_task(recovery.request_reset_quietly, request_context(request), login=body.login)
    return PasswordResetAccepted()


def _which_proof(body: PasswordResetConfirm) -> None:
    """A link's token, or a login and a code: 422 naming the fields otherwise."""
    if body.token is not None:
        extra = [name for name in ("login", "code") if getattr(body, name) is not None]
        if extra:
            message = "Send either the link's token, or the login and the code, not both."
            raise ValidationFailed(errors=dict.fromkeys(extra, message))
        return
    missing = {
        name: "Required with `code`." if name == "login" else "Required with `login`."
        for name in ("login", "code")
        if getattr(body, name) is None
    }
    if len(missing) == 2:
        missing = {"token": "Send the link's token, or the login and the code."}
    if missing:
        raise ValidationFailed(errors=missing)


@router.post(
    "/password-resets/confirm",
    status_code=204,
    response_class=Response,
    responses=problems(400, 403, 410, 413, 422),
    summary="Set a new password with the e-mailed link or code",
    description=(
        "`token` (from the link), or `login` and `code`, plus `new_password` (the rules of "
        "registration). 204: the password is set, every session of the account ended, its "
        "other e-mailed links voided; no session is started. A link refused says why: 400 "
        "`email_link_invalid`, 410 `email_link_expired` / `email_link_used`. Every refused "
        "code is the same 400 `wrong_email_code` (`errors.code`), whether the code is "
        "wrong, expired or used or the login unknown. 422 `validation_failed` names the "
        "field: `new_password`, or `amazon_link` when the account is linked to Amazon."
    ),
)
async def confirm_reset(body: PasswordResetConfirm, request: Request) -> Response:
    _which_proof(body)
    ctx = request_context(request)
    if body.token is not None:
        await recovery.reset_with_link(
            ctx, token=body.token, new_password=body.new_password, amazon_link=body.amazon_link
        )
    else:
        assert body.login is not None
        assert body.code is not None
        await recovery.reset_with_code(
            ctx,
            login=body.login,
            code=body.code,
            new_password=body.new_password,
            amazon_link=body.amazon_link,
        )
    return Response(status_code=204)

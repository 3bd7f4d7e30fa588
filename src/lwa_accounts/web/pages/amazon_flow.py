"""The browser's pending Amazon steps: /auth/amazon/link (prove the local password of the
account that holds the Amazon email), /auth/amazon/separate ("create a separate account
instead") and /auth/amazon/register (the prefilled registration). The flow is named by
this browser's signed flow cookie and bound to its binding secret (``flows.amazon``)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from lwa_accounts.core.models import PendingFlow
from lwa_accounts.errors import (
    FlowExpired,
    FlowNotFound,
    InvalidCredentials,
    LwaAccountsError,
    ServiceUnavailable,
    ValidationFailed,
)
from lwa_accounts.flows import amazon
from lwa_accounts.flows.amazon.profile import available_username, username_base
from lwa_accounts.flows.context import Tx
from lwa_accounts.web.forms import read_form
from lwa_accounts.web.pages.amazon_common import (
    error_page,
    flow_cookie,
    flow_gone,
    pending,
    signed_in_response,
)
from lwa_accounts.web.redirects import safe_next
from lwa_accounts.web.services import Services, get_services, request_context
from lwa_accounts.web.templating import render

router = APIRouter(include_in_schema=False)


async def _link_page(
    request: Request,
    services: Services,
    tx: Tx,
    flow: PendingFlow,
    *,
    status_code: int = 200,
    error: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    target = await tx.accounts.get(flow.target_account_id or "")
    return render(
        request,
        "amazon/link.html",
        {
            "email": target.email if target else None,
            "amazon_name": flow.profile.name,
            "code_to": amazon.code_offer(target),  # "Email me a code" (amazon_link_code.py)
            "can_register_instead": flow.can_register_instead
            and services.settings.amazon_signup != "closed",
            "error": error,
        },
        status_code=status_code,
        headers=headers,
    )


@router.get("/auth/amazon/link")
async def link_page(request: Request) -> Response:
    services = get_services(request)
    try:
        async with request_context(request).transaction() as tx:
            _, flow = await pending(request, services, tx)
            if flow.kind == "link":
                return await _link_page(request, services, tx, flow)
    except (FlowExpired, FlowNotFound) as gone:
        return flow_gone(request, services, gone)
    return RedirectResponse("/auth/amazon/register", status_code=303)


@router.post("/auth/amazon/link")
async def link_submit(request: Request) -> Response:
    services = get_services(request)
    form = await read_form(request)
    password = form.get("password", 1100)
    ctx = request_context(request)
    try:
        data = flow_cookie(request, services)
    except FlowExpired as gone:
        return flow_gone(request, services, gone)
    originator = amazon.Browser(data["binding"])
    rendered: Response | None = None

    async def begin(tx: Tx) -> amazon.LinkAttempt:
        flow = await amazon.get_flow(tx, data["flow"], originator)
        if flow.kind != "link":  # switched to "create a separate account": no password here
            raise _Switched()
        return await amazon.begin_link(tx, data["flow"], originator)

    async def signed_in(tx: Tx, finished: amazon.FlowFinished) -> None:
        nonlocal rendered
        assert isinstance(finished, amazon.SignedInWithAmazon)  # a Browser originator
        next_url = safe_next(data.get("next"))
        rendered = await signed_in_response(request, services, tx, finished.signed_in, next_url)

    try:
        await amazon.link_with_password(ctx, begin, password, after=signed_in)
    except _Switched:
        return RedirectResponse("/auth/amazon/register", status_code=303)
    except (FlowExpired, FlowNotFound) as gone:
        return flow_gone(request, services, gone)
    except ServiceUnavailable:
        raise
    except LwaAccountsError as error:
        return await _link_refused(request, services, error)
    assert rendered is not None
    return rendered


class _Switched(Exception):
    """The flow became a registration: the link page sends the browser there."""


async def _link_refused(request: Request, services: Services, error: LwaAccountsError) -> Response:
    text = error.detail
    if isinstance(error, InvalidCredentials):
        left = error.extra.get("attempts_left")
        text = "The password is incorrect." + (
            f" {left} attempt{'s' if left != 1 else ''} left." if isinstance(left, int) else ""
        )
    headers = {"Retry-After": str(error.retry_after)} if error.retry_after else None
    try:
        async with request_context(request).transaction() as tx:
            _, flow = await pending(request, services, tx)
            return await _link_page(
                request, services, tx, flow, status_code=error.status, error=text, headers=headers
            )
    except (FlowExpired, FlowNotFound) as gone:
        return flow_gone(request, services, gone)


@router.post("/auth/amazon/separate")
async def separate_submit(request: Request) -> Response:
    """ "Create a separate account instead" on the link page (CSRF-checked): the link flow
    becomes a registration flow without the taken email, then the prefilled form."""
    services = get_services(request)
    await read_form(request)  # the CSRF check
    try:
        data = flow_cookie(request, services)
        async with request_context(request).transaction() as tx:
            await amazon.switch_to_registration(tx, data["flow"], amazon.Browser(data["binding"]))
    except ServiceUnavailable:
        raise
    except LwaAccountsError as refused:
        return flow_gone(request, services, refused)
    return RedirectResponse("/auth/amazon/register?separate=1", status_code=303)


async def _register_page(
    request: Request,
    services: Services,
    tx: Tx,
    flow: PendingFlow,
    *,
    form: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    prefill, required = amazon.registration_fields(flow, services.deps)
    if form is None:
        suggestion = await available_username(tx, username_base(prefill.email, prefill.name))
        form = {
            "username": suggestion,
            "name": prefill.name or "",
            "email": prefill.email or "",
            "postal_code": prefill.postal_code or "",
        }
    return render(
        request,
        "amazon/register.html",
        {
            "form": form,
            "required": required,
            "show_postal_code": "postal_code" in required or bool(prefill.postal_code),
            "separate": flow.kind == "link" or request.query_params.get("separate") == "1",
            "errors": errors or {},
            "error": error,
        },
        status_code=status_code,
    )


@router.get("/auth/amazon/register")
async def register_page(request: Request) -> Response:
    services = get_services(request)
    try:
        async with request_context(request).transaction() as tx:
            _, flow = await pending(request, services, tx)
            if flow.kind == "link" and not flow.can_register_instead:
                return RedirectResponse("/auth/amazon/link", status_code=303)
            return await _register_page(request, services, tx, flow)
    except (FlowExpired, FlowNotFound) as gone:
        return flow_gone(request, services, gone)


@router.post("/auth/amazon/register")
async def register_submit(request: Request) -> Response:
    services = get_services(request)
    form = await read_form(request)
    fields = {name: form.get(name, 300) for name in ("username", "name", "email", "postal_code")}
    shown = {key: value[:256] for key, value in fields.items()}
    ctx = request_context(request)
    try:
        async with ctx.transaction() as tx:
            data, flow = await pending(request, services, tx)
    except (FlowExpired, FlowNotFound) as gone:
        return flow_gone(request, services, gone)
    errors: dict[str, str] = {}
    failure: LwaAccountsError | None = None
    if not fields["username"].strip():
        errors["username"] = "Choose a username."
    else:
        registration = amazon.RegistrationForm(
            username=fields["username"],
            name=fields["name"],
            email=fields["email"] or None,
            postal_code=fields["postal_code"] or None,
        )
        try:
            async with ctx.transaction() as tx:
                finished = await amazon.complete_registration(
                    tx, data["flow"], registration, amazon.Browser(data["binding"])
                )
                assert isinstance(finished, amazon.SignedInWithAmazon)  # a Browser originator
                next_url = safe_next(data.get("next"))
                return await signed_in_response(request, services, tx, finished.signed_in, next_url)
        except (FlowExpired, FlowNotFound) as gone:
            return flow_gone(request, services, gone)
        except ValidationFailed as invalid:
            errors = invalid.errors
            failure = invalid
        except ServiceUnavailable:
            raise
        except LwaAccountsError as conflict:
            field = {"username_taken": "username", "email_taken": "email"}.get(conflict.code)
            if field is None:
                return error_page(request, conflict)
            errors = {field: conflict.detail}
            failure = conflict
    async with ctx.transaction() as tx:
        return await _register_page(
            request,
            services,
            tx,
            flow,
            form=shown,
            errors=errors,
            status_code=failure.status if failure else 422,
        )

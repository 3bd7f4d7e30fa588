"""The browser pages: /ap/oa (sign in, consent, redirect back) and /code (a TV's code).

Server-rendered, no JavaScript. The browser's session at the emulated Amazon is a random
cookie pointing into memory; every form carries that session's CSRF token.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route
from starlette.templating import Jinja2Templates

from lwa_accounts.emulator.compare import same_secret
from lwa_accounts.emulator.records import BrowserSession, Client, normalise_user_code
from lwa_accounts.emulator.state import parse_scopes, state_of
from lwa_accounts.emulator.wire import ControlError, WireError, read_params

SESSION_COOKIE = "emulated_amazon_session"
PKCE_CHALLENGE = re.compile(r"[A-Za-z0-9._~-]{43,128}")  # RFC 7636 section 4.2
SCOPE_DESCRIPTIONS = {
    "profile": "Your name and email address",
    "profile:user_id": "Your Amazon account identifier",
    "postal_code": "The postal code of your default shipping address",
    "alexa:all": "Alexa Voice Service on this device",
}
templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))


def _root(request: Request) -> str:
    root: str = request.scope.get("root_path", "")
    return root.rstrip("/")


class Page:
    """One request's view of the browser session; sets the cookie when it is new."""

    def __init__(self, request: Request) -> None:
        self.request = request
        self.state = state_of(request)
        existing = self.state.session(request.cookies.get(SESSION_COOKIE))
        self.is_new = existing is None
        self.session: BrowserSession = existing or self.state.new_session()

    def finish(self, response: Response) -> Response:
        if self.is_new:
            response.set_cookie(
                SESSION_COOKIE,
                self.session.session_id,
                path=_root(self.request) or "/",
                httponly=True,
                samesite="lax",
                secure=self.request.url.scheme == "https",
            )
        response.headers["Cache-Control"] = "no-store"
        return response

    def render(self, template: str, status: int = 200, **context: Any) -> Response:
        context.setdefault("root", _root(self.request))
        context.setdefault("csrf_token", self.session.csrf_token)
        return self.finish(
            templates.TemplateResponse(self.request, template, context, status_code=status)
        )

    def redirect(self, path: str) -> Response:
        """Redirect to one of the emulator's own pages (303: the browser GETs it)."""
        return self.finish(RedirectResponse(_root(self.request) + path, status_code=303))

    def error(self, message: str, code: str, status: int = 400) -> Response:
        return self.render("error.html", status, message=message, code=code)

    async def form(self) -> dict[str, str] | None:
        """The POSTed fields, or None when the CSRF token is missing or wrong."""
        try:
            params = await read_params(self.request)
        except WireError:
            return None
        token = params.get("csrf_token", "")
        if self.is_new or not same_secret(token, self.session.csrf_token):
            return None
        return params

    def expired(self) -> Response:
        return self.error("This sign-in request expired. Start again from the app.", "expired")

    def csrf_failed(self) -> Response:
        return self.error(
            "This form expired or did not come from this page. Go back and try again.",
            "csrf_failed",
            403,
        )

    def sign_in_page(
        self, flow: str, req: str = "", app_name: str = "", error: str = "", email: str = ""
    ) -> Response:
        return self.render(
            "signin.html",
            401 if error else 200,
            flow=flow,
            req=req,
            app_name=app_name,
            error=error,
            email=email,
            demo_customers=self.state.list_customers()[:10],
        )


def _with_query(url: str, params: dict[str, str | None]) -> str:
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    query += [(key, value) for key, value in params.items() if value is not None]
    return urlunsplit(parts._replace(query=urlencode(query)))


def _redirect_back(uri: str, params: dict[str, str | None]) -> RedirectResponse:
    return RedirectResponse(_with_query(uri, params), status_code=302)


# ---- /ap/oa ------------------------------------------------------------------------------


async def authorize(request: Request) -> Response:
    page, query = Page(request), request.query_params
    client_id, redirect_uri = query.get("client_id", ""), query.get("redirect_uri", "")
    client = page.state.get_client(client_id) if client_id else None
    # Before the redirect URI is known good, errors are shown here and never redirected.
    if client is None:
        return page.error("The client_id is missing or unknown.", "invalid_client")
    if not redirect_uri or redirect_uri not in client.redirect_uris:
        return page.error(
            "The redirect_uri is missing or is not an allowed return URL for this app.",
            "invalid_redirect_uri",
        )
    state = query.get("state")

    def fail(error: str, description: str) -> Response:
        return page.finish(
            _redirect_back(
                redirect_uri, {"error": error, "error_description": description, "state": state}
            )
        )

    if query.get("response_type") != "code":
        return fail("unsupported_response_type", "response_type must be code")
    scopes = parse_scopes(query.get("scope", ""))
    try:
        page.state.check_scopes(client, scopes)
    except WireError as exc:
        return fail(exc.error, exc.description)
    challenge, method = query.get("code_challenge"), query.get("code_challenge_method")
    if method is not None and (challenge is None or method not in ("S256", "plain")):
        return fail("invalid_request", "The request has an invalid parameter : code_challenge")
    if challenge is not None:
        method = method or "plain"  # Amazon's documented default
        if not PKCE_CHALLENGE.fullmatch(challenge):
            return fail("invalid_request", "The request has an invalid parameter : code_challenge")
    pending = page.state.start_authorize(
        client.client_id, redirect_uri, scopes, state, challenge, method
    )
    user_id = page.session.user_id
    if user_id is not None:
        # A customer who already granted these scopes (or only the user id) is not asked again.
        if scopes == ("profile:user_id",) or page.state.has_grant(
            user_id, client.client_id, scopes
        ):
            return _consented(page, pending.request_id, user_id)
        return page.redirect(f"/ap/consent?req={pending.request_id}")
    return page.sign_in_page("oa", pending.request_id, client.name)


def _consented(page: Page, request_id: str, user_id: str | None) -> Response:
    try:
        pending, code = page.state.finish_authorize(request_id, user_id)
    except ControlError:
        return page.expired()
    if user_id is None:
        params = {
            "error": "access_denied",
            "error_description": "The user denied the request",
            "state": pending.state,
        }
    else:
        params = {"code": code, "scope": " ".join(pending.scopes), "state": pending.state}
    return page.finish(_redirect_back(pending.redirect_uri, params))


async def sign_in(request: Request) -> Response:
    page = Page(request)
    form = await page.form()
    if form is None:
        return page.csrf_failed()
    flow, req = form.get("flow", ""), form.get("req", "")
    app_name = ""
    if flow == "oa":
        pending = page.state.get_authorize(req)
        if pending is None:
            return page.expired()
        client = page.state.get_client(pending.client_id)
        app_name = client.name if client else ""
    elif flow != "code":
        return page.error("Unknown sign-in flow.", "invalid_request")
    email = form.get("email", "")
    customer = page.state.authenticate_customer(email, form.get("password", ""))
    if customer is None:
        return page.sign_in_page(
            flow, req, app_name, "We cannot find an account with that email and password.", email
        )
    page.state.sign_in(page.session, customer.user_id)
    return page.redirect(f"/ap/consent?req={req}" if flow == "oa" else "/code/confirm")


async def sign_out(request: Request) -> Response:
    page = Page(request)
    form = await page.form()
    if form is None:
        return page.csrf_failed()
    page.state.sign_in(page.session, None)
    if form.get("flow") == "oa" and page.state.get_authorize(form.get("req", "")) is not None:
        return page.redirect(f"/ap/consent?req={form['req']}")
    return page.redirect("/code")


def _scope_list(scopes: tuple[str, ...]) -> list[str]:
    return [SCOPE_DESCRIPTIONS.get(scope, scope) for scope in scopes]


async def consent(request: Request) -> Response:
    page = Page(request)
    if request.method == "GET":
        req = request.query_params.get("req", "")
        pending = page.state.get_authorize(req)
        if pending is None:
            return page.expired()
        client = page.state.get_client(pending.client_id)
        app_name = client.name if client else pending.client_id
        customer = page.state.find_customer(page.session.user_id)
        if customer is None:
            return page.sign_in_page("oa", req, app_name)
        return page.render(
            "consent.html",
            heading="Allow access?",
            app_name=app_name,
            customer=customer,
            data=_scope_list(pending.scopes),
            action=_root(request) + "/ap/consent",
            flow="oa",
            req=req,
        )
    form = await page.form()
    if form is None:
        return page.csrf_failed()
    if page.session.user_id is None:
        return page.sign_in_page("oa", form.get("req", ""))
    allowed = form.get("decision") == "allow"
    return _consented(page, form.get("req", ""), page.session.user_id if allowed else None)


# ---- /code -------------------------------------------------------------------------------


async def code_page(request: Request) -> Response:
    page = Page(request)
    customer = page.state.find_customer(page.session.user_id)
    if request.method == "GET":
        return page.render("code.html", user_code="", customer=customer, error="")
    form = await page.form()
    if form is None:
        return page.csrf_failed()
    typed = form.get("user_code", "")[:40]
    pair = page.state.pending_pair(typed)
    if pair is None:
        return page.render(
            "code.html",
            400,
            user_code=normalise_user_code(typed),
            customer=customer,
            error="That code is not valid or has expired. Check the code on your device.",
        )
    page.state.set_session_code(page.session, pair.user_code)
    if customer is None:
        client = page.state.get_client(pair.client_id)
        return page.sign_in_page("code", app_name=client.name if client else "")
    return page.redirect("/code/confirm")


def _app_name(client: Client | None, fallback: str) -> str:
    return client.name if client else fallback


async def code_confirm(request: Request) -> Response:
    page = Page(request)
    user_code = page.session.user_code
    pair = page.state.pending_pair(user_code) if user_code else None
    if pair is None:
        return page.render(
            "code.html",
            400,
            user_code="",
            customer=None,
            error="That code is not valid or has expired. Enter the code on your device again.",
        )
    client = page.state.get_client(pair.client_id)
    customer = page.state.find_customer(page.session.user_id)
    if customer is None:
        return page.sign_in_page("code", app_name=_app_name(client, pair.client_id))
    if request.method == "GET":
        return page.render(
            "consent.html",
            heading="Allow your device?",
            app_name=_app_name(client, pair.client_id),
            customer=customer,
            data=_scope_list(pair.scopes),
            action=_root(request) + "/code/confirm",
            flow="code",
            req="",
        )
    form = await page.form()
    if form is None:
        return page.csrf_failed()
    allowed = form.get("decision") == "allow"
    try:
        page.state.decide_code(pair.user_code, customer.user_id if allowed else None)
    except ControlError:
        return page.error("That code is no longer valid.", "expired")
    page.state.set_session_code(page.session, None)
    return page.redirect("/code/done?result=" + ("approved" if allowed else "denied"))


async def code_done(request: Request) -> Response:
    page = Page(request)
    if request.query_params.get("result") == "approved":
        return page.render(
            "done.html",
            heading="Success!",
            message="Your device is now registered. Go back to your device to continue.",
        )
    return page.render(
        "done.html",
        heading="Request declined",
        message="You declined access. Go back to your device; it will not be signed in.",
    )


routes = [
    Route("/ap/oa", authorize, methods=["GET"]),
    Route("/ap/signin", sign_in, methods=["POST"]),
    Route("/ap/signout", sign_out, methods=["POST"]),
    Route("/ap/consent", consent, methods=["GET", "POST"]),
    Route("/code", code_page, methods=["GET", "POST"]),
    Route("/code/confirm", code_confirm, methods=["GET", "POST"]),
    Route("/code/done", code_done, methods=["GET"]),
]

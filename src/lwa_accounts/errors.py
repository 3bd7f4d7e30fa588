"""One error tree. Each error has a stable machine ``code`` and an HTTP status.

The HTTP mapping (problem+json rendering) lives in ``web/problems.py``; everything else
raises these. Codes are part of the public contract: never rename one.
"""

from __future__ import annotations

from typing import Any, ClassVar

from lwa_accounts.core.waits import try_again_in


class LwaAccountsError(Exception):
    """Base of every error the service reports to a client."""

    code: ClassVar[str] = "error"
    status: ClassVar[int] = 400
    title: ClassVar[str] = "Bad request"
    default_detail: ClassVar[str] = "The request could not be processed."

    def __init__(
        self,
        detail: str | None = None,
        *,
        retry_after: int | None = None,
        **extra: Any,
    ) -> None:
        self.detail = detail or self.default_detail
        self.retry_after = retry_after
        self.extra: dict[str, Any] = extra
        super().__init__(self.detail)


# ---- input -------------------------------------------------------------------------


class ValidationFailed(LwaAccountsError):
    code = "validation_failed"
    status = 422
    title = "Validation failed"
    default_detail = "Some fields are missing or invalid."

    def __init__(self, detail: str | None = None, *, errors: dict[str, str] | None = None) -> None:
        super().__init__(detail, errors=errors or {})
        self.errors: dict[str, str] = errors or {}


class BadRequest(LwaAccountsError):
    code = "bad_request"
    status = 400
    title = "Bad request"


class NotFound(LwaAccountsError):
    code = "not_found"
    status = 404
    title = "Not found"
    default_detail = "There is nothing here."


class NotSupported(LwaAccountsError):
    """The store cannot do this (e.g. a kit users table with no active/disabled column)."""

    code = "not_supported"
    status = 501
    title = "Not supported"
    default_detail = "This installation cannot do that."


class PayloadTooLarge(LwaAccountsError):
    code = "payload_too_large"
    status = 413
    title = "Payload too large"
    default_detail = "The request body is too large."


class CsrfFailed(LwaAccountsError):
    code = "csrf_failed"
    status = 403
    title = "Form expired"
    default_detail = "The form expired or did not come from this site. Please try again."


# ---- accounts and sessions -----------------------------------------------------------


class InvalidCredentials(LwaAccountsError):
    code = "invalid_credentials"
    status = 401
    title = "Invalid credentials"
    default_detail = "The username or password is incorrect."


class NotAuthenticated(LwaAccountsError):
    code = "not_authenticated"
    status = 401
    title = "Not authenticated"
    default_detail = "Sign in first."


class ReauthenticationRequired(LwaAccountsError):
    code = "reauthentication_required"
    status = 403
    title = "Please confirm it is you"
    default_detail = "This change needs a recent sign-in or your password."


class AccountDisabled(LwaAccountsError):
    code = "account_disabled"
    status = 403
    title = "Account disabled"
    default_detail = "This account is disabled."


class UsernameTaken(LwaAccountsError):
    code = "username_taken"
    status = 409
    title = "Username taken"
    default_detail = "That username is already taken."


class EmailTaken(LwaAccountsError):
    code = "email_taken"
    status = 409
    title = "Email taken"
    default_detail = "An account with that email address already exists."


class TooManyAttempts(LwaAccountsError):
    """A budget is spent. With ``retry_after`` the detail says the wait in words and the
    problem body carries ``retry_after`` (the same seconds as the ``Retry-After`` header),
    so every page and API answer tells the person when to come back."""

    code = "too_many_attempts"
    status = 429
    title = "Too many attempts"
    default_detail = "Too many attempts. Wait a little and try again."

    def __init__(
        self, detail: str | None = None, *, retry_after: int | None = None, **extra: Any
    ) -> None:
        if retry_after is not None:
            detail = detail or try_again_in(retry_after)
        super().__init__(detail, retry_after=retry_after, **extra)
        if retry_after is not None:
            self.extra.setdefault("retry_after", retry_after)


# ---- Amazon ----------------------------------------------------------------------------


class AmazonError(LwaAccountsError):
    """Anything that went wrong talking to, or because of, Login with Amazon."""

    code = "amazon_error"
    status = 502
    title = "Amazon sign-in failed"
    default_detail = "Signing in with Amazon failed."


class InvalidToken(AmazonError):
    code = "invalid_token"
    status = 401
    title = "Invalid Amazon token"
    default_detail = "The Amazon access token is invalid or expired."


class AmazonSignedOut(InvalidToken):
    """A refresh answered ``invalid_grant``: the customer removed the app at Amazon (or the
    grant was voided). Sign in again; nothing is misconfigured."""

    code = "amazon_signed_out"
    title = "Signed out at Amazon"
    default_detail = "Amazon no longer accepts this sign-in (the app was removed). Sign in again."


class TokenForAnotherApp(AmazonError):
    code = "token_for_another_app"
    status = 401
    title = "Token for another app"
    default_detail = "The Amazon access token was not issued to this application."


class InsufficientScope(AmazonError):
    code = "insufficient_scope"
    status = 403
    title = "Missing Amazon permission"
    default_detail = "The Amazon token does not grant the profile data this service needs."


class AmazonUnavailable(AmazonError):
    code = "amazon_unavailable"
    status = 503
    title = "Amazon is unavailable"
    default_detail = "Amazon could not be reached. Please try again in a moment."

    def __init__(self, detail: str | None = None, *, retry_after: int = 5, **extra: Any) -> None:
        super().__init__(detail, retry_after=retry_after, **extra)


class AmazonProtocolError(AmazonError):
    """Amazon answered with an OAuth error we cannot recover from (bad grant, bad client...)."""

    code = "amazon_protocol_error"
    status = 502
    title = "Amazon refused the request"

    def __init__(self, detail: str | None = None, *, oauth_error: str = "", **extra: Any) -> None:
        super().__init__(detail, oauth_error=oauth_error, **extra)
        self.oauth_error = oauth_error


class AmazonAuthorizationFailed(AmazonError):
    """The person declined at Amazon, or the redirect came back broken (state, code)."""

    code = "amazon_authorization_failed"
    status = 400
    title = "Amazon sign-in did not complete"
    default_detail = "Signing in with Amazon did not complete."


# ---- linking ---------------------------------------------------------------------------


class AmazonLinkedElsewhere(LwaAccountsError):
    code = "amazon_linked_elsewhere"
    status = 409
    title = "Amazon account already linked"
    default_detail = "This Amazon account is already linked to another account."


class AlreadyLinked(LwaAccountsError):
    code = "already_linked"
    status = 409
    title = "Already linked"
    default_detail = "This account is already linked to a different Amazon account."


class LastSignInMethod(LwaAccountsError):
    code = "last_sign_in_method"
    status = 409
    title = "Last way to sign in"
    default_detail = "Set a password before unlinking Amazon: it is your only way to sign in."


class SignupClosed(LwaAccountsError):
    code = "signup_closed"
    status = 403
    title = "Sign-up closed"
    default_detail = "New accounts cannot be created with Amazon."


class FlowNotFound(LwaAccountsError):
    code = "flow_not_found"
    status = 404
    title = "Unknown sign-in flow"
    default_detail = "This sign-in step does not exist. Start again."


class FlowExpired(LwaAccountsError):
    code = "flow_expired"
    status = 410
    title = "Sign-in step expired"
    default_detail = "This sign-in step expired or was already used. Start again."


class CodeProofUnavailable(LwaAccountsError):
    """A link step asked for a code by e-mail, but the account has no verified address:
    an unverified one proves nothing (whoever registered it may not own it)."""

    code = "code_proof_unavailable"
    status = 409
    title = "No code by e-mail for this account"
    default_detail = (
        "This account has no verified e-mail address, so it cannot be proven by a code sent "
        "by e-mail: enter its password instead."
    )


class Moved(LwaAccountsError):
    """An endpoint that took a secret handle in its path; ``moved_to`` names its successor.

    Answered without looking at the handle: a path ends up in access logs and proxies."""

    code = "moved"
    status = 410
    title = "Endpoint moved"
    default_detail = "This endpoint moved: send the id in the JSON body of the new one."


# ---- e-mail links and codes --------------------------------------------------------------


class EmailLinkRefused(LwaAccountsError):
    """A one-time link or code from an e-mail that cannot be used; ``reason`` says why
    (``core.email_codes.Refusal``) and each reason has its own code."""

    def __init__(self, detail: str | None = None, **extra: Any) -> None:
        super().__init__(detail, **extra)


class EmailLinkInvalid(EmailLinkRefused):
    code = "email_link_invalid"
    status = 400
    title = "Link not valid"
    default_detail = (
        "This link is not valid: it may have been cut short or altered. Ask for a new one."
    )


class EmailLinkExpired(EmailLinkRefused):
    code = "email_link_expired"
    status = 410
    title = "Link expired"
    default_detail = "This link has expired. Ask for a new one."


class EmailLinkUsed(EmailLinkRefused):
    code = "email_link_used"
    status = 410
    title = "Link already used"
    default_detail = "This link was already used. Ask for a new one if you still need it."


class EmailLinkForAnotherAccount(EmailLinkRefused):
    code = "email_link_other_account"
    status = 403
    title = "Link for another account"
    default_detail = "This link belongs to another account. Sign out, then open it again."


class WrongEmailCode(EmailLinkRefused):
    code = "wrong_email_code"
    status = 400
    title = "Wrong code"
    default_detail = "That code is not right. Check the code in the e-mail."


class EmailCodeExhausted(EmailLinkRefused):
    code = "email_code_exhausted"
    status = 410
    title = "Too many wrong codes"
    default_detail = "Too many wrong codes were typed for this e-mail. Ask for a new one."


class EmailAlreadyVerified(LwaAccountsError):
    code = "email_already_verified"
    status = 409
    title = "Already confirmed"
    default_detail = (
        "Your e-mail address is already confirmed. To use another one, change it first."
    )


# ---- devices ---------------------------------------------------------------------------


class SlowDown(LwaAccountsError):
    code = "slow_down"
    status = 429
    title = "Polling too fast"
    default_detail = "Poll less often."


class DeviceCodeExpired(LwaAccountsError):
    code = "expired"
    status = 410
    title = "Code expired"
    default_detail = "The code expired. Ask for a new one."


class AccessDenied(LwaAccountsError):
    code = "access_denied"
    status = 403
    title = "Access denied"
    default_detail = "The sign-in was declined."


class InvalidUserCode(LwaAccountsError):
    code = "invalid_user_code"
    status = 400
    title = "Unknown code"
    default_detail = "That code is not valid or has expired. Check the code on your TV."


class AmazonProofRequired(LwaAccountsError):
    """A hand-off link step without proof, on this phone, of the TV's Amazon identity
    (security.md item 14b)."""

    code = "amazon_proof_required"
    status = 403
    title = "Sign in with Amazon first"
    default_detail = (
        "Sign in with Amazon on this phone first, with the Amazon account your TV used. "
        "Nothing was linked."
    )


class AmazonUserMismatch(LwaAccountsError):
    """The phone proved a different Amazon identity than the TV's flow holds."""

    code = "amazon_user_mismatch"
    status = 403
    title = "Not the same Amazon account"
    default_detail = (
        "That is not the Amazon account the TV signed in with, so nothing was linked. If "
        "you did not start this on a TV in front of you, someone else may be trying to use "
        "your account: do not continue."
    )


# ---- emulator --------------------------------------------------------------------------


class EmulatorRefused(LwaAccountsError):
    """The offline Amazon emulator was asked to run where it must not (production)."""

    code = "emulator_refused"
    status = 500
    title = "Emulator refused"
    default_detail = "The Amazon emulator does not run in production."


# ---- Sign in with Amazon: find, link or create (issue 5) -------------------------------


class EmailAccountLinkedToOtherAmazon(LwaAccountsError):
    code = "email_account_linked_to_other_amazon"
    status = 409
    title = "Email belongs to another sign-in"
    default_detail = (
        "An account with this email address already signs in with a different Amazon "
        "account. Sign in to it with its password or its own Amazon account."
    )


# ---- infrastructure ----------------------------------------------------------------------


class ServiceUnavailable(LwaAccountsError):
    """A backing service (e.g. Redis for rate limits) is down: fail closed, retryably."""

    code = "service_unavailable"
    status = 503
    title = "Service unavailable"
    default_detail = "The service is briefly unavailable. Please try again in a moment."

    def __init__(self, detail: str | None = None, *, retry_after: int = 5, **extra: Any) -> None:
        super().__init__(detail, retry_after=retry_after, **extra)


class DatabaseUnavailable(ServiceUnavailable):
    """The database is down, unreachable or held busy past its timeout (same code: clients
    retry after ``Retry-After`` either way); raised by ``store.db.Database.transaction``."""

    default_detail = "The service's database is briefly unavailable. Please try again in a moment."


class ConfigurationRefused(LwaAccountsError):
    """The settings are not fit for production: the service refuses to start
    (``config_check.py`` decides; ``sentences`` says every problem, one sentence each)."""

    code = "configuration_refused"
    status = 500
    title = "Configuration refused"
    default_detail = "The configuration is not fit for LWA_ACCOUNTS_ENV=production."

    def __init__(self, sentences: list[str]) -> None:
        super().__init__(" ".join(sentences) or None)
        self.sentences = sentences

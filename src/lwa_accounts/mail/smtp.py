"""Talking to the SMTP server (aiosmtplib): one connection per batch, every failure sorted.

``smtp_session(target, ...)`` connects (TLS as the URL says), logs in when the URL has a
user, and hands out a ``SmtpSession`` whose ``send`` delivers one message; every failure
is raised as ``SendFailed``:

- ``permanent``: the server refused this message or its recipient with a 5xx (or the
  message cannot be sent at all): retrying cannot help, the message fails at once;
- ``connection``: the session is unusable (cannot connect, TLS or login refused, dropped,
  timed out, the sender refused): the message and the rest of the batch are retried later.

Otherwise (a 4xx for this message) it is retried later and the session goes on. Reasons
are short, one line, without the password (logged and kept in ``outbox.last_error``).
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass

import aiosmtplib

from lwa_accounts import redaction
from lwa_accounts.mail.message import Envelope
from lwa_accounts.mail.smtp_url import SmtpTarget

REASON_MAX = 200


class SendFailed(Exception):
    def __init__(self, reason: str, *, permanent: bool = False, connection: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent
        self.connection = connection


def _short(text: str, secret: str | None) -> str:
    if secret:
        text = text.replace(secret, redaction.REDACTED)
    one_line = " ".join(redaction.redact_text(text).split())
    return one_line[:REASON_MAX]


def _failure(error: Exception, target: SmtpTarget) -> SendFailed:
    """What ``error`` means for the message and for the session."""
    secret = target.password

    def reason(text: str) -> str:
        return _short(text, secret)

    if isinstance(error, aiosmtplib.SMTPRecipientsRefused):
        codes = [refusal.code for refusal in error.recipients]
        first = error.recipients[0] if error.recipients else None
        text = f"recipient refused: {first.code} {first.message}" if first else "refused"
        return SendFailed(reason(text), permanent=bool(codes) and min(codes) >= 500)
    if isinstance(error, aiosmtplib.SMTPRecipientRefused | aiosmtplib.SMTPDataError):
        what = "recipient" if isinstance(error, aiosmtplib.SMTPRecipientRefused) else "message"
        return SendFailed(
            reason(f"{what} refused: {error.code} {error.message}"), permanent=error.code >= 500
        )
    if isinstance(error, aiosmtplib.SMTPSenderRefused):
        # Our From is refused: the configuration's fault, not this message's.
        return SendFailed(reason(f"sender refused: {error.code} {error.message}"), connection=True)
    if isinstance(error, aiosmtplib.SMTPAuthenticationError):
        return SendFailed(reason(f"login refused: {error.code} {error.message}"), connection=True)
    if isinstance(error, aiosmtplib.SMTPResponseException):
        return SendFailed(reason(f"{error.code} {error.message}"), connection=True)
    if isinstance(error, ValueError):  # an address or header value that cannot be sent
        return SendFailed(reason(f"cannot be sent: {error}"), permanent=True)
    name = type(error).__name__
    return SendFailed(reason(f"{target.where}: {name}: {error}"), connection=True)


@dataclass
class SmtpSession:
    client: aiosmtplib.SMTP
    target: SmtpTarget

    async def send(self, envelope: Envelope) -> str:
        """Deliver one message; the server's answer, or ``SendFailed``."""
        try:
            errors, answer = await self.client.send_message(
                envelope.message, sender=envelope.sender, recipients=[envelope.recipient]
            )
        except (aiosmtplib.SMTPException, OSError, ValueError) as error:
            raise _failure(error, self.target) from None
        if errors:  # one recipient only: a partial refusal cannot happen, but never ignore it
            code, message = next(iter(errors.values()))
            raise SendFailed(_short(f"recipient refused: {code} {message}", None))
        return _short(answer, None)


def _tls_context(target: SmtpTarget) -> ssl.SSLContext | None:
    if target.tls == "none":
        return None
    return ssl.create_default_context(cafile=target.cafile)


@asynccontextmanager
async def smtp_session(
    target: SmtpTarget, *, command_timeout: float, local_hostname: str
) -> AsyncIterator[SmtpSession]:
    """Connected (and logged in) for the block, closed after it; ``SendFailed`` with
    ``connection=True`` when the server cannot be reached or refuses the session."""
    client = aiosmtplib.SMTP(
        hostname=target.host,
        port=target.port,
        username=target.username,
        password=target.password,
        use_tls=target.tls == "implicit",
        start_tls=target.tls == "starttls",  # required when asked for, never opportunistic
        tls_context=_tls_context(target),
        timeout=command_timeout,  # each connect and command
        # Not socket.getfqdn(): a reverse DNS lookup per connection, slow without DNS.
        local_hostname=local_hostname,
    )
    try:
        await client.connect()
    except (aiosmtplib.SMTPException, OSError, ValueError) as error:
        failed = _failure(error, target)
        failed.connection, failed.permanent = True, False
        raise failed from None
    try:
        yield SmtpSession(client, target)
    finally:
        with suppress(aiosmtplib.SMTPException, OSError):
            if client.is_connected:
                await client.quit()
        client.close()

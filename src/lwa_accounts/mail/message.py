"""One outbox message as the MIME message that goes over SMTP.

``multipart/alternative``: the text part first, the HTML part last (mail readers show the
last part they understand). Headers are built by the standard library's ``EmailMessage``,
which refuses a value with a line break, so no value can add a header.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr


@dataclass(frozen=True)
class Envelope:
    message: EmailMessage
    sender: str  # MAIL FROM: the bare address of the From header
    recipient: str


def build_message(
    *,
    mail_from: str,
    to: str,
    subject: str,
    text: str,
    html: str,
    kind: str,
    now: datetime,
) -> Envelope:
    """``ValueError`` when an address or header value cannot be sent (never retried)."""
    sender = parseaddr(mail_from)[1]
    domain = sender.rpartition("@")[2] or "localhost"
    message = EmailMessage()
    message["From"] = mail_from
    message["To"] = Address(addr_spec=to)
    message["Subject"] = subject
    message["Date"] = format_datetime(now)
    message["Message-ID"] = make_msgid(domain=domain)
    # RFC 3834: sent by a program, so vacation responders do not answer it.
    message["Auto-Submitted"] = "auto-generated"
    message["X-LWA-Accounts-Kind"] = kind
    message.set_content(text)
    if html:
        message.add_alternative(html, subtype="html")
    return Envelope(message=message, sender=sender, recipient=to)

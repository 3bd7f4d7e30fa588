"""A real SMTP server on loopback (aiosmtpd), and what arrived at it.

``MailServer`` runs aiosmtpd's ``Controller`` in its own thread on 127.0.0.1 at a port
chosen once, so it can be stopped and started again on the same port (the SMTP server
"going down and coming back"). Variants: plain, STARTTLS (required) and implicit TLS
with a self-signed certificate made by ``cryptography``, each with or without AUTH.
``refuse`` answers chosen recipients with a chosen reply (``550 ...``, ``451 ...``).
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Literal

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

USER, PASSWORD = "mailer", "smtp-pass-w0rd-xyz"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 (and localhost) and its key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "smtp-cert.pem", directory / "smtp-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@dataclass
class Arrival:
    sender: str
    recipients: list[str]
    message: EmailMessage

    def part(self, subtype: str) -> str:
        body = self.message.get_body(preferencelist=(subtype,))
        assert body is not None, f"no text/{subtype} part"
        content: str = body.get_content()
        return content


@dataclass
class _Handler:
    arrivals: list[Arrival] = field(default_factory=list)
    refuse: dict[str, str] = field(default_factory=dict)
    logins: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_RCPT(
        self, server: Any, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        parsed = message_from_bytes(raw, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        with self.lock:
            self.arrivals.append(Arrival(str(envelope.mail_from), list(envelope.rcpt_tos), parsed))
        return "250 Message accepted for delivery"


Tls = Literal["none", "starttls", "implicit"]


class MailServer:
    def __init__(self, directory: Path, *, tls: Tls = "none", auth: bool = False) -> None:
        self.port = free_port()
        self.tls = tls
        self.auth = auth
        self.handler = _Handler()
        self.cafile: Path | None = None
        self._context: ssl.SSLContext | None = None
        if tls != "none":
            cert, key = self_signed(directory)
            self.cafile = cert
            self._context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            self._context.load_cert_chain(cert, key)
        self._controller: Controller | None = None

    @property
    def arrivals(self) -> list[Arrival]:
        with self.handler.lock:
            return list(self.handler.arrivals)

    @property
    def refuse(self) -> dict[str, str]:
        return self.handler.refuse

    def url(self, *, user: str | None = USER, password: str | None = PASSWORD) -> str:
        scheme = "smtps" if self.tls == "implicit" else "smtp"
        credentials = f"{user}:{password}@" if self.auth and user else ""
        options = []
        if self.tls == "starttls":
            options.append("starttls=1")
        if self.cafile is not None:
            options.append(f"cafile={self.cafile}")
        query = ("?" + "&".join(options)) if options else ""
        return f"{scheme}://{credentials}127.0.0.1:{self.port}{query}"

    def _authenticate(
        self, server: Any, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        login = data.login.decode() if isinstance(data.login, bytes) else str(data.login)
        password = data.password.decode() if isinstance(data.password, bytes) else data.password
        self.handler.logins.append(login)
        # handled=False: aiosmtpd answers a refusal with its 535 itself.
        return AuthResult(success=(login, password) == (USER, PASSWORD), handled=False)

    def start(self) -> None:
        kwargs: dict[str, Any] = {}
        if self.auth:
            kwargs.update(
                authenticator=self._authenticate,
                auth_required=True,
                # Implicit TLS is invisible to aiosmtpd's check; STARTTLS must come first.
                auth_require_tls=self.tls == "starttls",
            )
        if self.tls == "starttls":
            kwargs.update(tls_context=self._context, require_starttls=True)
        elif self.tls == "implicit":
            kwargs.update(ssl_context=self._context)
        self._controller = Controller(
            self.handler, hostname="127.0.0.1", port=self.port, ready_timeout=10, **kwargs
        )
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

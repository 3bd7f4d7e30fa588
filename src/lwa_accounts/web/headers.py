"""Security headers on every response we render ourselves.

``Referrer-Policy`` is ``same-origin``, and ``no-referrer`` on any response to a URL with a
query: such a URL may carry a secret (``/activate?code=``, ``/auth/amazon/callback?code=
&state=``) that must not travel on in a ``Referer`` header, not even to ourselves (a
reverse proxy's access log records it).
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Only our own origin; no framing; forms post only to us.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS: dict[str, str] = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
}
STRICT_REFERRER_POLICY = "no-referrer"
# The embedded emulator plays another site (Amazon) with its own rules.
EXEMPT_PREFIXES = ("/_amazon",)


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] != "http" or path.startswith(EXEMPT_PREFIXES):
            await self.app(scope, receive, send)
            return

        carries_query = bool(scope.get("query_string"))

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers.setdefault(name, value)
                if carries_query:
                    headers["Referrer-Policy"] = STRICT_REFERRER_POLICY
            await send(message)

        await self.app(scope, receive, send_with_headers)

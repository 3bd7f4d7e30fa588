"""The emulated Amazon as one ASGI app: ``create_app(config)``.

Use it standalone (``lwa-accounts emulator serve``), mounted under a prefix by the main app
(Starlette ``Mount("/_amazon", app=create_app(...))``), or as an httpx transport in tests.
Its state is ``app.state.emulator`` (an ``EmulatorState``): tests may reach it directly.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from lwa_accounts.emulator import control, oauth, pages
from lwa_accounts.emulator.config import EmulatorConfig, refuse_in_production
from lwa_accounts.emulator.faults import FaultInjection
from lwa_accounts.emulator.middleware import CaseInsensitivePaths
from lwa_accounts.emulator.state import EmulatorState
from lwa_accounts.emulator.wire import WireError, error_response


async def _not_found(request: Request, exc: Exception) -> Response:
    return error_response(WireError("not_found", "There is no such endpoint", 404))


async def _method_not_allowed(request: Request, exc: Exception) -> Response:
    return error_response(WireError("invalid_request", "Method not allowed", 405))


async def _server_error(request: Request, exc: Exception) -> Response:
    return JSONResponse(
        {"error_description": "Internal error in the emulator", "error": "server_error"},
        status_code=500,
    )


def create_app(config: EmulatorConfig | None = None) -> Starlette:
    """Build an emulator. Raises ``EmulatorRefused`` when ``config.environment`` is production."""
    config = config or EmulatorConfig()
    refuse_in_production(config.environment)
    state = EmulatorState(config)
    app = Starlette(
        routes=[*oauth.routes, *pages.routes, *control.routes],
        middleware=[
            Middleware(CaseInsensitivePaths),
            Middleware(FaultInjection, book=state.faults),
        ],
        exception_handlers={404: _not_found, 405: _method_not_allowed, 500: _server_error},
    )
    app.state.emulator = state
    return app

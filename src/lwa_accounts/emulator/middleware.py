"""Case-insensitive paths (Amazon accepts /auth/O2/token), as ASGI middleware.

Paths (and fault paths) are taken relative to the emulator's root, so they behave the same
standalone and mounted under a prefix (Starlette keeps the full path in ``path`` and the
prefix in ``root_path``).
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

CONTROL_PREFIX = "/_emulator"
# Path segments that carry an identifier (kept as typed): /_emulator/customers/{user_id}...
_ID_SEGMENT_AFTER = {"customers", "codes", "faults"}


def relative_path(scope: Scope) -> str:
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


def normalise_path(path: str) -> str:
    """Lower-case every literal segment; keep identifiers in /_emulator/ paths as typed."""
    segments = path.split("/")
    lowered = [segment.lower() for segment in segments]
    if len(lowered) > 3 and lowered[1] == CONTROL_PREFIX[1:] and lowered[2] in _ID_SEGMENT_AFTER:
        lowered[3] = segments[3]
    return "/".join(lowered)


class CaseInsensitivePaths:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            root: str = scope.get("root_path", "")
            path = root + normalise_path(relative_path(scope))
            if path != scope["path"]:
                scope = dict(scope, path=path, raw_path=path.encode())
        await self.app(scope, receive, send)

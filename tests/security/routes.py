"""The app's routes as its router declares them, so a new form or endpoint is attacked
by the security tests the day it is added."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence

from fastapi import FastAPI
from starlette.routing import BaseRoute, Route

from lwa_accounts.settings import Settings
from lwa_accounts.web.app import create_app

_PARAM = re.compile(r"\{[^}]+\}")


def _walk(routes: Sequence[BaseRoute], prefix: str = "") -> Iterator[tuple[str, set[str]]]:
    for route in routes:
        # FastAPI keeps included routers as branches; their routes live on the original.
        original = getattr(route, "original_router", None)
        if original is not None:
            context = getattr(route, "include_context", None)
            yield from _walk(original.routes, prefix + getattr(context, "prefix", ""))
        elif isinstance(route, Route):
            yield prefix + route.path, set(route.methods or ())


def post_form_paths(app: FastAPI) -> list[str]:
    """Every POST page route (not ``/api``), path parameters filled with a dummy value."""
    paths = {
        _PARAM.sub("dummy", path)
        for path, methods in _walk(app.routes)
        if "POST" in methods and not (path == "/api" or path.startswith("/api/"))
    }
    return sorted(paths)


def form_paths_of(settings: Settings) -> list[str]:
    return post_form_paths(create_app(settings))

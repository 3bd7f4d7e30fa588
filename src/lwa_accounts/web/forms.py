"""Reading HTML form posts: CSRF first, then plain string fields only."""

from __future__ import annotations

from starlette.datastructures import FormData
from starlette.requests import Request

from lwa_accounts.errors import BadRequest
from lwa_accounts.web import csrf
from lwa_accounts.web.services import get_services

FIELD_MAX = 4096


class Form:
    def __init__(self, data: FormData) -> None:
        self._data = data

    def get(self, name: str, limit: int = FIELD_MAX) -> str:
        """The field as text ('' when missing); files and over-long values are refused."""
        value = self._data.get(name)
        if value is None:
            return ""
        if not isinstance(value, str):
            raise BadRequest(f"The field {name!r} must be text.")
        if len(value) > limit:
            raise BadRequest(f"The field {name!r} is too long.")
        return value


async def read_form(request: Request) -> Form:
    """Parse the body (urlencoded or multipart) and check its CSRF token."""
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        raise BadRequest("Send the form as application/x-www-form-urlencoded.")
    data = await request.form(max_files=0, max_fields=50)
    services = get_services(request)
    csrf.verify(request, data.get(csrf.FIELD_NAME), services.settings, now=services.clock.now())
    return Form(data)

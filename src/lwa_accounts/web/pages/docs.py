"""GET /api/docs: Swagger UI served from /static/swagger, so it works offline."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import HTMLResponse

router = APIRouter(include_in_schema=False)

# Swagger UI sets style attributes from JavaScript; scripts stay 'self' only.
DOCS_CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)

PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>lwa-accounts API</title>
  <link rel="stylesheet" href="/static/swagger/swagger-ui.css">
  <link rel="icon" href="data:,">
</head>
<body>
  <div id="swagger-ui"></div>
  <noscript><p>The API description is at
    <a href="/api/openapi.json">/api/openapi.json</a>.</p></noscript>
  <script src="/static/swagger/swagger-ui-bundle.js"></script>
  <script src="/static/swagger/init.js"></script>
</body>
</html>
"""


@router.get("/api/docs")
async def api_docs() -> HTMLResponse:
    return HTMLResponse(PAGE, headers={"Content-Security-Policy": DOCS_CSP})

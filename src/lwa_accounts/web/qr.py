"""QR codes for the TV: drawn at the web edge from the URL a flow hands out."""

from __future__ import annotations

import io

import segno


def qr_svg(data: str) -> str:
    """A QR code as a standalone SVG element (with its namespace, for DOMParser)."""
    out = io.BytesIO()
    segno.make(data, error="m").save(
        out, kind="svg", xmldecl=False, svgns=True, omitsize=True, scale=4, nl=False
    )
    return out.getvalue().decode()

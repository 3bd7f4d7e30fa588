"""Showing an e-mail address without giving it away: ``j•••@example.com``.

Where a page says where a code went, the person recognises their own address from its
first letter and domain; whoever else looks at the page learns no more than that.

Standard library only (core/ is pure).
"""

from __future__ import annotations

MASK = "•••"


def mask_email(address: str) -> str:
    """The first character of the local part, a fixed mask (so the length stays hidden)
    and the domain."""
    local, at, domain = address.strip().rpartition("@")
    if not at or not local or not domain:
        return MASK
    return f"{local[0]}{MASK}@{domain}"

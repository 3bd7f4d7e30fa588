"""E-mail rendering: one message kind = three templates under ``mail/templates/``.

``{kind}.subject.txt`` (one line), ``{kind}.txt`` (the text part) and ``{kind}.html``
(the HTML part, extending ``_layout.html``). The text part is never autoescaped; the HTML
part always is. A flow renders a message and queues it in its transaction::

    await tx.send_mail(render_mail("verify_email", to=address, account_id=account.id,
                                   settings=tx.settings, link=url, code=code))

Links in a message are absolute: flows build them from ``settings.public_url``.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from lwa_accounts.core.models import OutgoingMail
from lwa_accounts.settings import Settings

TEMPLATES_DIR = Path(__file__).parent / "templates"
PRODUCT_NAME = "lwa-accounts"


@lru_cache(maxsize=1)
def _environment() -> Environment:
    # StrictUndefined: a message missing a value is a bug, not an empty link in a mail.
    return Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=select_autoescape(enabled_extensions=("html",), default=False),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
    )


def kinds() -> list[str]:
    """Every message kind there are templates for."""
    return sorted(p.name.removesuffix(".subject.txt") for p in TEMPLATES_DIR.glob("*.subject.txt"))


def render_mail(
    kind: str,
    *,
    to: str,
    settings: Settings,
    account_id: str | None = None,
    **context: Any,
) -> OutgoingMail:
    """The message ``kind`` for ``to``, rendered with ``context`` (plus ``product_name``,
    ``public_url`` and ``to``)."""
    env = _environment()
    values = {
        "product_name": PRODUCT_NAME,
        "public_url": settings.public_url.rstrip("/"),
        "to": to,
        **context,
    }
    subject = env.get_template(f"{kind}.subject.txt").render(values).strip()
    return OutgoingMail(
        kind=kind,
        to=to,
        subject=" ".join(subject.split()),  # one line: no header injection by a value
        text=env.get_template(f"{kind}.txt").render(values),
        html=env.get_template(f"{kind}.html").render(values),
        account_id=account_id,
    )

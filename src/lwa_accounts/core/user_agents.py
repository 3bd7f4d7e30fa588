"""A user agent string in a person's words ("Firefox on Windows"), for notices by mail.

Only names from the fixed lists below ever come out: a user agent is whatever the client
sent, so it is never copied into a message (no text of an attacker's choosing in a mail
that comes from us). Anything not recognised is None; the caller says "an unrecognised
browser or app". Order matters: Edge and Opera also say "Chrome", Chrome also says
"Safari", iOS also says "Mac OS X", Android also says "Linux".

Standard library only (core/ is pure).
"""

from __future__ import annotations

from typing import Final

UA_MAX: Final = 512  # longer input is not looked at beyond this

_BROWSERS: Final = (
    ("Edg/", "Edge"),
    ("EdgiOS/", "Edge"),
    ("EdgA/", "Edge"),
    ("OPR/", "Opera"),
    ("SamsungBrowser/", "Samsung Internet"),
    ("Firefox/", "Firefox"),
    ("FxiOS/", "Firefox"),
    ("CriOS/", "Chrome"),
    ("Chrome/", "Chrome"),
    ("Version/", "Safari"),  # Safari says Version/x Safari/y; others matched above
)
_SYSTEMS: Final = (
    ("Windows", "Windows"),
    ("Android", "Android"),
    ("iPhone", "iOS"),
    ("iPad", "iPadOS"),
    ("CrOS", "ChromeOS"),
    ("Mac OS X", "macOS"),
    ("Macintosh", "macOS"),
    ("Linux", "Linux"),
)


def _first(user_agent: str, names: tuple[tuple[str, str], ...]) -> str | None:
    return next((name for token, name in names if token in user_agent), None)


def describe(user_agent: str | None) -> str | None:
    """ "Firefox on Windows", "Safari on iOS", "Windows" (an unknown browser), or None."""
    if not user_agent:
        return None
    text = user_agent[:UA_MAX]
    system = _first(text, _SYSTEMS)
    browser = _first(text, _BROWSERS) if "Mozilla/" in text else None
    if browser == "Safari" and "Safari/" not in text:
        browser = None  # "Version/" alone is not a browser
    if browser and system:
        return f"{browser} on {system}"
    return browser or system

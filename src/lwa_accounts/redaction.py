"""Secrets never reach a log line (security.md item 1): redaction of request targets and text.

Every line the process writes passes ``RedactSecrets``: uvicorn's access and error logs,
our own loggers and httpx/httpcore (``logs.logging_config`` puts the filter on the one
handler of ``lwa-accounts serve``, and ``redact_processor`` in its structlog formatter;
``install`` covers the handlers of other commands). The filter works
on values, not on knowledge of who logged them:

- ``redact_target`` (a request path with its query, as the access log shows it): every
  query value becomes ``[redacted]`` (keys stay: ``/auth/amazon/callback?code=[redacted]&
  state=[redacted]``), and path segments that carry a handle (``/api/v1/flows/{id}...``,
  ``/amazon/device-authorizations/{id}/poll``, the emulator's ``/_emulator/codes/{code}``)
  or look like a token (24 or more URL-safe characters) become ``[redacted]``;
- ``redact_text`` (any other message): URLs and paths in it as above, Amazon tokens
  (``Atza|``, ``Atzr|``...), our flow ids, long random-looking words (32 or more URL-safe
  characters with a digit or mixed case: tokens, codes, digests), and the local part of
  e-mail addresses.

Over-redaction is the accepted price: a log line only needs the shape of a request.
Standard library only, so every layer (and the command line) can use it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, MutableMapping
from typing import Any

REDACTED = "[redacted]"

# (segments before the handle, lower case) -> the names there that are endpoints, not handles.
_HANDLE_SEGMENTS: tuple[tuple[tuple[str, ...], frozenset[str]], ...] = (
    (("api", "v1", "flows"), frozenset({"poll", "link", "register", "handoff"})),
    (("amazon", "device-authorizations"), frozenset({"poll"})),
    (("_emulator", "codes"), frozenset()),
)
# Our handles and tokens are secrets.token_urlsafe values of 24 bytes or more (32+ chars);
# 24 characters (18 bytes) leaves room and spares names like "device-authorizations".
_TOKEN_SEGMENT = re.compile(r"[A-Za-z0-9_\-|%=+~]{24,}")
_QUERY_SEPARATOR = re.compile(r"([&;])")

# Free text: a URL, or a path that starts a word.
_URL = re.compile(r"\b[A-Za-z][A-Za-z0-9+.\-]*://[^\s\"'<>`]*")
_PATH = re.compile(r"(?<![\w.~\-/:%])/[^\s\"'<>`]*")
# Shapes of secrets wherever they stand: Amazon's tokens (Atza|, Atzr|) and our flow ids;
# then long random-looking words (a session token, a device code, an OAuth code, a digest).
_KNOWN_SECRETS = re.compile(r"\bAtz[a-z]\|[^\s\"'<>&,;)\]}]*|\bflw_[A-Za-z0-9_\-]+")
_LONG_WORD = re.compile(r"(?<![A-Za-z0-9_\-])[A-Za-z0-9_\-]{32,}(?![A-Za-z0-9_\-])")


def _random_word(match: re.Match[str]) -> str:
    # A digit or mixed case: a token or a digest, not a long English or snake_case word.
    word = match.group(0)
    mixed = any(c.isupper() for c in word) and any(c.islower() for c in word)
    return REDACTED if mixed or any(c.isdigit() for c in word) else word


# Bounded like RFC 5321 (local part <= 64, labels <= 63): no quadratic backtracking.
_EMAIL = re.compile(
    r"[^\s@\"'<>(),;:\[\]/?#&=]{1,64}@([A-Za-z0-9\-]{1,63}(?:\.[A-Za-z0-9\-]{1,63}){1,10})"
)


def _redact_path(path: str) -> str:
    segments = path.split("/")
    lowered = [segment.lower() for segment in segments]
    for index, segment in enumerate(segments):
        if segment and (_is_handle(lowered, index) or _TOKEN_SEGMENT.fullmatch(segment)):
            segments[index] = REDACTED
    return _redact_emails("/".join(segments))


def _redact_emails(text: str) -> str:
    # The cheap test first: the pattern backtracks over long runs of characters.
    return _EMAIL.sub(REDACTED + r"@\1", text) if "@" in text else text


def _is_handle(lowered: list[str], index: int) -> bool:
    for before, endpoints in _HANDLE_SEGMENTS:
        start = index - len(before)
        if start >= 0 and tuple(lowered[start:index]) == before:
            return lowered[index] not in endpoints
    return False


def _redact_query(query: str) -> str:
    parts = _QUERY_SEPARATOR.split(query)
    for index, part in enumerate(parts):
        if index % 2 or not part:
            continue  # a separator, or nothing between two
        key, equals, _value = part.partition("=")
        if not equals or _TOKEN_SEGMENT.fullmatch(key) or _KNOWN_SECRETS.search(key):
            parts[index] = REDACTED  # a bare value, or a key that is itself a secret
        else:
            parts[index] = key + "=" + REDACTED
    return "".join(parts)


def redact_target(target: str) -> str:
    """A request target (path, query, fragment) with every secret part replaced."""
    rest, hash_mark, fragment = target.partition("#")
    path, question_mark, query = rest.partition("?")
    redacted = _redact_path(path) + question_mark + _redact_query(query)
    return redacted + hash_mark + (REDACTED if fragment else "")


def _redact_url(match: re.Match[str]) -> str:
    url = match.group(0)
    scheme, _, rest = url.partition("://")
    authority, slash, target = rest.partition("/")
    if "@" in authority:  # user:password@host
        authority = REDACTED + "@" + authority.rpartition("@")[2]
    if not slash:
        authority, question_mark, query = authority.partition("?")
        return f"{scheme}://{authority}{question_mark}{_redact_query(query)}"
    return f"{scheme}://{authority}{redact_target('/' + target)}"


def redact_text(text: str) -> str:
    """Free text (a log message, a traceback) with every secret we can recognise replaced."""
    if "://" in text:  # the URL pattern backtracks over long words: only when needed
        text = _URL.sub(_redact_url, text)
    if "/" in text:
        text = _PATH.sub(lambda match: redact_target(match.group(0)), text)
    text = _KNOWN_SECRETS.sub(REDACTED, text)
    text = _LONG_WORD.sub(_random_word, text)
    return _redact_emails(text)


# Fields of our structured log lines whose values we produce from bounded, known sets (a
# route template, a status, a checked request id, an account id): left as they are, so a
# UUID-shaped request or account id stays searchable. Every other value is redacted.
SAFE_FIELDS = frozenset(
    {
        "timestamp",
        "level",
        "logger",
        "request_id",
        "method",
        "route",
        "status",
        "duration_ms",
        "account_id",
        "endpoint",
        "outcome",
        "retries",
    }
)


def redact_value(value: object) -> object:
    """A structured log value with every secret replaced (strings, and strings in lists,
    tuples and dicts; numbers and None as they are)."""
    if isinstance(value, str):
        return redact_text(value)
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, dict):
        return {key: redact_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [redact_value(item) for item in value]
    return redact_text(str(value))


def redact_event(event: Mapping[str, Any]) -> dict[str, Any]:
    """A structlog event dict with every value outside ``SAFE_FIELDS`` redacted."""
    return {
        key: value if key in SAFE_FIELDS or key.startswith("_") else redact_value(value)
        for key, value in event.items()
    }


def redact_processor(_logger: Any, _method: str, event: MutableMapping[str, Any]) -> dict[str, Any]:
    """structlog processor: ``redact_event`` as the last step before rendering, so it
    also sees what the renderer's earlier steps added (a formatted traceback)."""
    return redact_event(event)


_EXCEPTION_FORMATTER = logging.Formatter()


class RedactSecrets(logging.Filter):
    """Rewrites each record in place so that every handler after it sees only redacted text."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(record.msg, dict):
            # A structlog event on its way to structlog's ProcessorFormatter.
            record.msg = redact_event(record.msg)
        elif record.name == "uvicorn.access" and isinstance(args, tuple) and len(args) == 5:
            # uvicorn's AccessFormatter unpacks (client, method, target, version, status).
            client, method, target, version, status = args
            record.args = (client, method, redact_target(str(target)), version, status)
        else:
            try:
                message = record.getMessage()
            except (TypeError, ValueError):  # a broken format string: log its parts
                message = f"{record.msg!s} {args!r}"
            redacted = redact_text(message)
            if redacted != message:
                record.msg, record.args = redacted, None
                # uvicorn's coloured variant would be formatted with the old arguments.
                record.__dict__.pop("color_message", None)
        if record.exc_info and not record.exc_text:
            record.exc_text = _EXCEPTION_FORMATTER.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact_text(record.exc_text)
        if record.stack_info:
            record.stack_info = redact_text(record.stack_info)
        return True


FILTER_NAME = "redact_secrets"


def install() -> None:
    """Put ``RedactSecrets`` on the root logger's handlers and on logging's last-resort
    handler (what prints warnings when nothing was configured)."""
    handlers = list(logging.getLogger().handlers)
    if logging.lastResort is not None:
        handlers.append(logging.lastResort)
    for handler in handlers:
        if not any(isinstance(f, RedactSecrets) for f in handler.filters):
            handler.addFilter(RedactSecrets())

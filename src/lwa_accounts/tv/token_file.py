"""Where a Python device keeps its session: a small JSON file only its owner can read."""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from lwa_accounts.tv.client import SignedIn

TOKEN_FILE_MODE = 0o600


@dataclass(frozen=True, slots=True)
class StoredSession:
    server: str
    token: str = field(repr=False)
    expires_at: str
    account_id: str
    username: str


def default_token_file() -> Path:
    return Path.home() / ".config" / "lwa-accounts" / "device-token.json"


def save_session(path: Path, server: str, signed_in: SignedIn) -> StoredSession:
    """Write the session atomically; the file is created with mode 0600 and never wider."""
    stored = StoredSession(
        server=server,
        token=signed_in.token,
        expires_at=signed_in.expires_at,
        account_id=signed_in.account.id,
        username=signed_in.account.username,
    )
    payload = json.dumps(
        {
            "server": stored.server,
            "token": stored.token,
            "expires_at": stored.expires_at,
            "account_id": stored.account_id,
            "username": stored.username,
        },
        indent=2,
    )
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temporary = path.with_name(path.name + ".tmp")
    with contextlib.suppress(FileNotFoundError):
        temporary.unlink()
    # O_EXCL + mode at creation: the token is never readable by others, not even briefly.
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, TOKEN_FILE_MODE)
    try:
        os.fchmod(fd, TOKEN_FILE_MODE)  # the umask may have narrowed it; never widen
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(payload)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    temporary.replace(path)
    return stored


def load_session(path: Path) -> StoredSession | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return StoredSession(
            server=str(data["server"]),
            token=str(data["token"]),
            expires_at=str(data["expires_at"]),
            account_id=str(data["account_id"]),
            username=str(data["username"]),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def forget_session(path: Path) -> bool:
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True

"""``lwa-accounts mail test --to ADDRESS`` sends the test message now (no outbox) and says
what the SMTP server answered; it exits non-zero on any failure, never printing the
SMTP password."""

from __future__ import annotations

from pathlib import Path

from tests.config.production_env import clean_env
from tests.mail.smtp_server import MailServer, free_port
from tests.processes import run_cli


def mail_env(tmp_path: Path, smtp_url: str | None) -> dict[str, str]:
    variables = {"MAIL_FROM": "Accounts <no-reply@accounts.example.com>"}
    if smtp_url is not None:
        variables["SMTP_URL"] = smtp_url
    return clean_env(tmp_path, **variables, MAIL_SMTP_TIMEOUT_SECONDS="5")


def test_the_test_message_is_sent_now_and_the_answer_printed(
    smtp: MailServer, tmp_path: Path
) -> None:
    result = run_cli("mail", "test", "--to", "ada@example.com", env=mail_env(tmp_path, smtp.url()))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "sent: the test message to ada@example.com from Accounts "
        f"<no-reply@accounts.example.com> via 127.0.0.1:{smtp.port} (none)",
        "server: Message accepted for delivery",
    ]
    (arrival,) = smtp.arrivals
    assert arrival.recipients == ["ada@example.com"]
    assert arrival.message["Subject"] == "A test message from lwa-accounts"
    assert "If it reached ada@example.com, outgoing mail works." in arrival.part("plain")
    assert not (tmp_path / "lwa-accounts.db").exists()  # straight out: no outbox involved


def test_tls_with_login_works_from_the_command_line(tmp_path: Path) -> None:
    server = MailServer(tmp_path, tls="starttls", auth=True)
    server.start()
    try:
        ok = run_cli(
            "mail", "test", "--to", "ada@example.com", env=mail_env(tmp_path, server.url())
        )
        assert ok.returncode == 0, ok.stderr
        wrong = server.url(password="wrong-pass-9876")
        refused = run_cli("mail", "test", "--to", "ada@example.com", env=mail_env(tmp_path, wrong))
    finally:
        server.stop()
    assert len(server.arrivals) == 1
    assert refused.returncode == 1
    assert refused.stderr.startswith(
        f"error: 127.0.0.1:{server.port} (starttls): login refused: 535"
    )
    assert "wrong-pass-9876" not in refused.stdout + refused.stderr


def test_every_failure_exits_non_zero_with_the_reason(smtp: MailServer, tmp_path: Path) -> None:
    smtp.refuse["gone@example.com"] = "550 5.1.1 no such user here"
    refused = run_cli(
        "mail", "test", "--to", "gone@example.com", env=mail_env(tmp_path, smtp.url())
    )
    assert refused.returncode == 1
    assert "recipient refused: 550 5.1.1 no such user here" in refused.stderr
    assert refused.stdout == ""

    down = run_cli(
        "mail",
        "test",
        "--to",
        "ada@example.com",
        env=mail_env(tmp_path, f"smtp://127.0.0.1:{free_port()}"),
    )
    assert down.returncode == 1
    assert down.stderr.startswith("error: 127.0.0.1:")

    unset = run_cli("mail", "test", "--to", "ada@example.com", env=mail_env(tmp_path, None))
    assert unset.returncode == 1
    assert "LWA_ACCOUNTS_SMTP_URL is not set" in unset.stderr

    bad = run_cli("mail", "test", "--to", "not-an-address", env=mail_env(tmp_path, smtp.url()))
    assert bad.returncode == 2
    assert "Enter a valid email address" in bad.stderr
    assert [a.recipients for a in smtp.arrivals] == []

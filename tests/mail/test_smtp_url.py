"""LWA_ACCOUNTS_SMTP_URL's forms: TLS modes, default ports, decoded credentials, a CA file."""

from __future__ import annotations

from lwa_accounts.mail.smtp_url import SmtpTarget, parse_smtp_url


def test_each_form_of_the_url() -> None:
    assert parse_smtp_url("smtp://user:p%40ss%3Aword@mail.example.com:587?starttls=1") == (
        SmtpTarget("mail.example.com", 587, "starttls", "user", "p@ss:word")
    )
    assert parse_smtp_url("smtps://u:pw@mail.example.com") == SmtpTarget(
        "mail.example.com", 465, "implicit", "u", "pw"
    )
    assert parse_smtp_url("smtp://127.0.0.1") == SmtpTarget("127.0.0.1", 25, "none")
    assert parse_smtp_url("smtp://relay?starttls=yes").port == 587
    assert parse_smtp_url("smtp://relay:2525?starttls=0").tls == "none"
    with_ca = parse_smtp_url("smtps://relay?cafile=/etc/ssl/ca.pem")
    assert with_ca.cafile == "/etc/ssl/ca.pem"


def test_the_password_is_never_shown() -> None:
    target = parse_smtp_url("smtp://user:hunter2-secret@mail.example.com:587?starttls=1")
    assert "hunter2-secret" not in repr(target) + target.where
    assert target.where == "mail.example.com:587 (starttls)"

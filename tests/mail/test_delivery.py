"""Mail really leaves: queued in a committed transaction, delivered to a real SMTP server on
loopback (read back: headers, text and HTML parts), its body emptied once sent; a rolled
back one never leaves; a server that is down is retried with backoff until it is back; a
permanent refusal fails at once; the last attempt gives up (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from lwa_accounts import metrics
from lwa_accounts.clock import FixedClock
from lwa_accounts.mail.render import render_mail
from lwa_accounts.store.db import Database
from lwa_accounts.store.schema import outbox
from lwa_accounts.testing.mail import queued_mail
from tests.mail.conftest import START, context, delivery, mail_settings, queue, rows
from tests.mail.smtp_server import MailServer, free_port


def counter(metric: object, *labels: str) -> float:
    return float(metric.labels(*labels)._value.get())  # type: ignore[attr-defined]


async def test_a_committed_message_arrives_whole_and_its_body_is_emptied(
    db: Database, smtp: MailServer, clock: FixedClock, tmp_path: Path
) -> None:
    settings = mail_settings(tmp_path, smtp.url())
    ctx = context(db, settings, clock)
    await queue(ctx, "ada@example.com")
    sent_before = counter(metrics.mail_sent, "test")

    assert await delivery(db, settings, clock).deliver_due() == 1

    (arrival,) = smtp.arrivals
    assert arrival.sender == "no-reply@accounts.example.com"
    assert arrival.recipients == ["ada@example.com"]
    message = arrival.message
    assert message["From"] == "Accounts <no-reply@accounts.example.com>"
    assert message["To"] == "ada@example.com"
    assert message["Subject"] == "A test message from lwa-accounts"
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["Message-ID"].endswith("@accounts.example.com>")
    assert message.get_content_type() == "multipart/alternative"
    assert "If it reached ada@example.com, outgoing mail works." in arrival.part("plain")
    html = arrival.part("html")
    assert '<a href="http://accounts.test">http://accounts.test</a>' in html
    assert html.lstrip().startswith("<!doctype html>")

    (row,) = await rows(db)
    assert row["sent_at"] == START
    assert row["sealed_body"] is None  # no link kept at rest once sent
    assert (row["attempts"], row["claimed_until"], row["last_error"]) == (1, None, None)
    assert (await queued_mail(db, "ada@example.com"))[0].text == ""
    assert counter(metrics.mail_sent, "test") == sent_before + 1
    # Sent once: nothing is due any more.
    assert await delivery(db, settings, clock).deliver_due() == 0
    assert len(smtp.arrivals) == 1


async def test_a_rolled_back_message_never_leaves(
    db: Database, smtp: MailServer, clock: FixedClock, tmp_path: Path
) -> None:
    settings = mail_settings(tmp_path, smtp.url())
    ctx = context(db, settings, clock)

    async def refused_after_queueing() -> None:
        async with ctx.transaction() as tx:
            await tx.send_mail(render_mail("test", to="ada@example.com", settings=settings))
            raise RuntimeError("the flow refused after queueing")

    with pytest.raises(RuntimeError):
        await refused_after_queueing()
    await queue(ctx, "grace@example.com")  # the worker does run: this one leaves
    assert await delivery(db, settings, clock).deliver_due() == 1
    assert [a.recipients for a in smtp.arrivals] == [["grace@example.com"]]


async def test_a_server_that_is_down_is_retried_with_backoff_until_it_is_back(
    db: Database, clock: FixedClock, tmp_path: Path
) -> None:
    server = MailServer(tmp_path)  # its port is chosen, nothing listens there yet
    settings = mail_settings(
        tmp_path, server.url(), mail_retry_base_seconds=60, mail_retry_max_seconds=600
    )
    ctx = context(db, settings, clock)
    await queue(ctx, "ada@example.com")
    worker = delivery(db, settings, clock)
    retried_before = counter(metrics.mail_retried, "test")

    waits = []
    for _ in range(3):
        assert await worker.deliver_due() == 1
        (row,) = await rows(db)
        assert row["sent_at"] is None
        assert row["failed_at"] is None
        assert row["claimed_until"] is None
        assert "ConnectionRefusedError" in row["last_error"] or "connect" in row["last_error"]
        waits.append((row["next_attempt_at"] - clock.now()).total_seconds())
        assert await worker.deliver_due() == 0  # not due before its time
        clock.advance(waits[-1])
    # Doubling (jitter pinned at its largest draw, half the ceiling): 60, 120, 240 s / 2.
    assert waits == [30, 60, 120]
    assert counter(metrics.mail_retried, "test") == retried_before + 3

    server.start()
    try:
        assert await worker.deliver_due() == 1
        assert [a.recipients for a in server.arrivals] == [["ada@example.com"]]
    finally:
        server.stop()
    (row,) = await rows(db)
    assert row["attempts"] == 4
    assert row["sent_at"] == clock.now()
    assert row["last_error"] is None
    assert row["sealed_body"] is None


async def test_the_backoff_is_capped_and_the_last_attempt_gives_up(
    db: Database, clock: FixedClock, tmp_path: Path
) -> None:
    settings = mail_settings(
        tmp_path,
        f"smtp://127.0.0.1:{free_port()}",
        mail_max_attempts=4,
        mail_retry_base_seconds=100,
        mail_retry_max_seconds=300,
    )
    await queue(context(db, settings, clock), "ada@example.com")
    worker = delivery(db, settings, clock)
    exhausted_before = counter(metrics.mail_failed, "test", "exhausted")
    waits = []
    for _ in range(3):
        assert await worker.deliver_due() == 1
        (row,) = await rows(db)
        waits.append((row["next_attempt_at"] - clock.now()).total_seconds())
        clock.advance(waits[-1])
    assert waits == [50, 100, 150]  # 100, 200, then capped at 300 (halved by the jitter)
    assert await worker.deliver_due() == 1
    (row,) = await rows(db)
    assert row["attempts"] == 4
    assert row["failed_at"] == clock.now()
    assert row["sealed_body"] is None
    assert counter(metrics.mail_failed, "test", "exhausted") == exhausted_before + 1
    clock.advance(10_000)
    assert await worker.deliver_due() == 0  # failed for good


async def test_a_permanent_refusal_fails_at_once_and_the_batch_goes_on(
    db: Database, smtp: MailServer, clock: FixedClock, tmp_path: Path
) -> None:
    smtp.refuse["gone@example.com"] = "550 5.1.1 <gone@example.com>: no such user"
    smtp.refuse["full@example.com"] = "452 4.2.2 mailbox full, try later"
    settings = mail_settings(tmp_path, smtp.url())
    ctx = context(db, settings, clock)
    for to in ("gone@example.com", "full@example.com", "ada@example.com"):
        await queue(ctx, to)
    refused_before = counter(metrics.mail_failed, "test", "refused")

    assert await delivery(db, settings, clock).deliver_due() == 3

    assert [a.recipients for a in smtp.arrivals] == [["ada@example.com"]]
    gone, full, ada = await rows(db)
    assert gone["failed_at"] == START
    assert gone["attempts"] == 1
    assert gone["last_error"].startswith("recipient refused: 550")
    assert "gone@" not in gone["last_error"]  # the local part is redacted, like in logs
    assert gone["sealed_body"] is None
    assert full["failed_at"] is None
    assert full["next_attempt_at"] > START
    assert full["last_error"].startswith("recipient refused: 452")
    assert full["sealed_body"] is not None  # still to send
    assert ada["sent_at"] == START
    assert counter(metrics.mail_failed, "test", "refused") == refused_before + 1


async def test_a_wrong_password_is_retried_not_failed_and_never_recorded(
    db: Database, clock: FixedClock, tmp_path: Path
) -> None:
    server = MailServer(tmp_path, tls="starttls", auth=True)
    server.start()
    try:
        settings = mail_settings(tmp_path, server.url(password="not-the-password-123"))
        await queue(context(db, settings, clock), "ada@example.com")
        assert await delivery(db, settings, clock).deliver_due() == 1
        (row,) = await rows(db)
        assert row["failed_at"] is None
        assert row["next_attempt_at"] > START
        assert row["last_error"].startswith("login refused: 535")
        assert "not-the-password-123" not in row["last_error"]
        assert server.arrivals == []
    finally:
        server.stop()


# aiosmtpd cannot see that an implicit-TLS connection is TLS, and says so per connection.
@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
@pytest.mark.parametrize("tls", ["starttls", "implicit"])
async def test_tls_with_login_delivers(
    db: Database, clock: FixedClock, tmp_path: Path, tls: str
) -> None:
    server = MailServer(tmp_path, tls=tls, auth=True)  # type: ignore[arg-type]
    server.start()
    try:
        settings = mail_settings(tmp_path, server.url())
        await queue(context(db, settings, clock), "ada@example.com")
        assert await delivery(db, settings, clock).deliver_due() == 1
        assert [a.recipients for a in server.arrivals] == [["ada@example.com"]]
        assert server.handler.logins == ["mailer"]
    finally:
        server.stop()


async def test_starttls_is_required_not_hoped_for(
    db: Database, smtp: MailServer, clock: FixedClock, tmp_path: Path
) -> None:
    # The server offers no STARTTLS: the message is not sent in clear, it waits.
    settings = mail_settings(tmp_path, smtp.url() + "?starttls=1")
    await queue(context(db, settings, clock), "ada@example.com")
    assert await delivery(db, settings, clock).deliver_due() == 1
    assert smtp.arrivals == []
    (row,) = await rows(db)
    assert row["failed_at"] is None
    assert row["next_attempt_at"] > START
    assert "STARTTLS" in row["last_error"] or "starttls" in row["last_error"].lower()


async def test_a_body_that_no_longer_opens_fails_and_nothing_is_sent(
    db: Database, smtp: MailServer, clock: FixedClock, tmp_path: Path
) -> None:
    settings = mail_settings(tmp_path, smtp.url())
    await queue(context(db, settings, clock), "ada@example.com")
    async with db.engine.begin() as connection:  # copied onto another recipient
        await connection.execute(update(outbox).values(to_address="mallory@example.com"))
    assert await delivery(db, settings, clock).deliver_due() == 1
    assert smtp.arrivals == []
    (row,) = await rows(db)
    assert row["failed_at"] == START
    assert "does not open" in row["last_error"]


async def test_a_batch_is_sent_over_one_connection_and_a_full_batch_says_so(
    db: Database, smtp: MailServer, clock: FixedClock, tmp_path: Path
) -> None:
    settings = mail_settings(tmp_path, smtp.url())
    ctx = context(db, settings, clock)
    for n in range(5):
        await queue(ctx, f"user{n}@example.com")
        clock.advance(1)
    worker = delivery(db, settings, clock, batch_size=3)
    assert await worker.deliver_due() == 3  # full: the worker loops at once
    assert await worker.deliver_due() == 2
    assert [a.recipients[0] for a in smtp.arrivals] == [f"user{n}@example.com" for n in range(5)]
    assert len({a.message["Message-ID"] for a in smtp.arrivals}) == 5
    assert all(row["sent_at"] is not None for row in await rows(db))
    assert START + timedelta(seconds=5) == clock.now()


async def test_log_lines_name_no_address_body_or_password(
    db: Database, clock: FixedClock, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server = MailServer(tmp_path, tls="starttls", auth=True)
    server.refuse["gone.person@example.com"] = "550 5.1.1 <gone.person@example.com> unknown"
    server.start()
    try:
        settings = mail_settings(tmp_path, server.url())
        ctx = context(db, settings, clock)
        await queue(ctx, "gone.person@example.com")
        await queue(ctx, "ada.lovelace@example.com")
        with caplog.at_level("INFO", logger="lwa_accounts.mail"):
            assert await delivery(db, settings, clock).deliver_due() == 2
        wrong = mail_settings(tmp_path, server.url(password="never-logged-pw-42"))
        await queue(ctx, "grace.hopper@example.com")
        with caplog.at_level("INFO", logger="lwa_accounts.mail"):
            assert await delivery(db, wrong, clock).deliver_due() == 1
    finally:
        server.stop()
    ours = [r.msg for r in caplog.records if r.name == "lwa_accounts.mail"]
    assert [event["event"] for event in ours] == ["mail_failed", "mail_sent", "mail_retry"]  # type: ignore[index]
    text = "\n".join(str(event) for event in ours)
    for secret in ("gone.person", "ada.lovelace", "grace.hopper", "never-logged-pw-42"):
        assert secret not in text, secret
    assert "outgoing mail works" not in text  # no body
    assert "login refused: 535" in text  # but the reason is there

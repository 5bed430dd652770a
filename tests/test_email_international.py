"""The outbox and addresses beyond ASCII (RFC 6531), and errors nobody expected while delivering one email: every
email ends delivered or failed, through the real SMTP sink, never claimed again and again."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import timedelta

import aiosmtplib
import pytest

from app.core.clock import utcnow
from app.models.outbox import EmailStatus, OutboxEmail
from tests.services import SmtpSink, body_text
from tests.support import API, eventually, new_client, random_ip, rewrite

SUBSCRIBE = f"{API}/newsletter/subscribe"
CONFIRM_SUBJECT = "confirm your Amour Florals newsletter"
NEEDS_SMTPUTF8 = "the address needs SMTPUTF8 (RFC 6531), which the SMTP server does not offer"


@pytest.fixture
def ascii_sink() -> Iterator[SmtpSink]:
    """An SMTP server that does not offer SMTPUTF8 (as many still do not)."""
    sink = SmtpSink(smtputf8=False)
    sink.start()
    yield sink
    sink.stop()


async def settled(address: str) -> OutboxEmail:
    """The outbox email to ``address`` once the worker recorded an outcome other than pending."""

    async def check() -> OutboxEmail | None:
        doc = await OutboxEmail.find_one(OutboxEmail.to == address)
        return doc if doc and doc.status != EmailStatus.pending else None

    return await eventually(check, what=f"an outcome for the email to {address}")


async def test_a_non_ascii_mailbox_is_delivered_with_smtputf8_when_the_server_offers_it(client, mailbox):
    r = await client.post(SUBSCRIBE, json={"email": "üser@exämple.com"})
    assert r.status_code == 202, r.text

    msg = (await mailbox.wait_for("üser@exämple.com", CONFIRM_SUBJECT))[0]
    assert msg["X-Envelope-To"] == "üser@exämple.com"  # the envelope as written, in UTF-8
    assert msg["X-Envelope-SMTPUTF8"] == "yes"
    assert str(msg["To"]) == "üser@exämple.com"  # a raw UTF-8 header, not an RFC 2047 encoded word
    assert "/newsletter/confirm?token=" in body_text(msg)
    doc = await settled("üser@exämple.com")
    assert (doc.status, doc.attempts, doc.last_error) == (EmailStatus.sent, 1, None)


async def test_an_idn_domain_is_delivered_punycoded_without_smtputf8(make_settings, app_factory, ascii_sink):
    settings = make_settings(smtp_port=ascii_sink.port)
    async with app_factory(settings) as application, new_client(application, ip=random_ip()) as c:
        r = await c.post(SUBSCRIBE, json={"email": "rose@exämple.com"})
        assert r.status_code == 202, r.text
        msg = (await ascii_sink.mailbox.wait_for("rose@xn--exmple-cua.com", CONFIRM_SUBJECT))[0]
        doc = await settled("rose@exämple.com")
    assert msg["X-Envelope-To"] == "rose@xn--exmple-cua.com" and msg["X-Envelope-SMTPUTF8"] is None
    assert msg["To"] == "rose@xn--exmple-cua.com"
    assert (doc.status, doc.attempts) == (EmailStatus.sent, 1)


async def test_a_non_ascii_mailbox_fails_at_once_when_the_server_lacks_smtputf8(make_settings, app_factory,
                                                                               ascii_sink):
    settings = make_settings(smtp_port=ascii_sink.port)
    async with app_factory(settings) as application, new_client(application, ip=random_ip()) as c:
        for address in ("üser@exämple.com", "lily@example.com"):
            r = await c.post(SUBSCRIBE, json={"email": address})
            assert r.status_code == 202, r.text
        await ascii_sink.mailbox.wait_for("lily@example.com", CONFIRM_SUBJECT)  # not held back
        failed = await settled("üser@exämple.com")
        assert (failed.status, failed.attempts, failed.lease) == (EmailStatus.failed, 1, None)  # no retry
        assert failed.last_error == NEEDS_SMTPUTF8
        assert await application.state.runtime.email.send_due() == 0  # never claimed again
    assert [m["X-Envelope-To"] for m in ascii_sink.mailbox.messages] == ["lily@example.com"]


async def test_an_unexpected_error_counts_as_a_failed_attempt_of_that_email_only(make_settings, app_factory,
                                                                                  mailbox, caplog, monkeypatch):
    settings = make_settings(workers_enabled=False, email_max_attempts=2)
    async with app_factory(settings) as application:
        email = application.state.runtime.email
        coll = OutboxEmail.get_pymongo_collection()
        await email.enqueue(to="first@example.com", template="password_changed", context={"first_name": "F"},
                            dedupe_key="first")
        # A header value with a line break: building the message raises ValueError.
        await OutboxEmail(dedupe_key="bad-header", to="bad@example.com", subject="s", text="t", template="campaign",
                          headers={"X-Campaign": "spring\r\nBcc: someone@example.com"}).insert()
        # A stored document the model refuses (no subject): reading it raises a ValidationError.
        broken = OutboxEmail(dedupe_key="broken", to="broken@example.com", subject="s", text="t",
                             template="campaign").model_dump(by_alias=True)
        del broken["subject"]
        await coll.insert_one(broken)
        # A failure in the middle of the SMTP envelope (injected into RCPT for this address only): the session is
        # dropped, else the next email would meet "503 nested MAIL command".
        await email.enqueue(to="midway@example.com", template="password_changed", context={"first_name": "M"},
                            dedupe_key="midway")
        rcpt = aiosmtplib.SMTP.rcpt

        async def failing_rcpt(self, recipient, *args, **kwargs):
            if recipient == "midway@example.com":
                raise RuntimeError("injected failure")
            return await rcpt(self, recipient, *args, **kwargs)

        monkeypatch.setattr(aiosmtplib.SMTP, "rcpt", failing_rcpt)
        await email.enqueue(to="last@example.com", template="password_changed", context={"first_name": "L"},
                            dedupe_key="last")

        with caplog.at_level(logging.WARNING, logger="app.email"):
            assert await email.send_due() == 5  # the round goes on past all three
        assert sorted(m["X-Envelope-To"] for m in mailbox.messages) == ["first@example.com", "last@example.com"]
        failing = {"bad-header": "ValueError: ", "broken": "ValidationError: ", "midway": "RuntimeError: injected"}
        for key, error in failing.items():
            doc = await coll.find_one({"dedupe_key": key})
            assert (doc["status"], doc["attempts"]) == ("pending", 1)
            assert doc["last_error"].startswith(error) and doc["lease"]["until"] > utcnow()  # retried later
            logged = [r for r in caplog.records if doc["_id"] in r.getMessage()]
            assert len(logged) == 1 and logged[0].levelno == logging.WARNING  # once per attempt
        assert await email.send_due() == 0  # held until their retry time, not claimed at once

        for key in failing:
            doc = await coll.find_one({"dedupe_key": key})
            await rewrite(OutboxEmail, doc["_id"], lease={**doc["lease"], "until": utcnow() - timedelta(seconds=1)})
        assert await email.send_due() == 3
        for key in failing:  # EMAIL_MAX_ATTEMPTS reached: given up
            doc = await coll.find_one({"dedupe_key": key})
            assert (doc["status"], doc["attempts"], doc["lease"]) == ("failed", 2, None)
        assert await email.send_due() == 0  # never picked up again
        assert len(mailbox.messages) == 2

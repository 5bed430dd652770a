"""The email outbox: templates, delivery to a real SMTP server, retries while SMTP is down, leases."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from email.header import decode_header, make_header

from app.core.clock import utcnow
from app.core.embedded_mongo import free_port
from app.core.jobs import claim, release
from app.models.outbox import EmailStatus, OutboxEmail
from app.services.email import EmailService
from tests.services import SmtpSink, body_text
from tests.support import API, STRONG, eventually, new_client, register, rewrite


def html_part(msg) -> str:
    for part in msg.walk():
        if part.get_content_type() == "text/html":
            return part.get_payload(decode=True).decode()
    raise AssertionError("no HTML part")


async def test_welcome_email_arrives_with_subject_text_and_escaped_html(client, mailbox, settings):
    body = await register(client, "camellia@example.com", first_name="Cam <b>&")
    msg = (await mailbox.wait_for("camellia@example.com", "welcome"))[0]
    assert str(make_header(decode_header(msg["Subject"]))) == "Welcome to Amour Florals — please confirm your email"
    assert msg["From"] == settings.email_from and msg["To"] == "camellia@example.com"
    text = body_text(msg)
    assert text.startswith("Hello Cam <b>&,") and "/verify-email?token=" in text and "— Amour Florals" in text
    html = html_part(msg)
    assert "Cam &lt;b&gt;&amp;" in html and "<b>&" not in html

    async def marked_sent():  # the SMTP server has the message a moment before the worker records it
        doc = await OutboxEmail.find_one(OutboxEmail.to == "camellia@example.com")
        return doc if doc.status == EmailStatus.sent else None

    stored = await eventually(marked_sent)
    assert stored.template == "welcome_verify"
    assert stored.attempts == 1 and stored.sent_at is not None and stored.lease is None
    assert msg["Message-ID"] == f"<{stored.id}@amourflorals.com>"
    assert body["user"]["email"] == "camellia@example.com"


async def test_email_queued_while_smtp_is_down_arrives_after_it_comes_back(make_settings, app_factory):
    port = free_port()  # nothing listens here yet
    async with app_factory(make_settings(smtp_port=port)) as application, new_client(application) as c:
        r = await c.post(f"{API}/auth/register", json={
            "email": "snowdrop@example.com", "password": STRONG, "first_name": "Snow", "last_name": "Drop"})
        assert r.status_code == 201, r.text  # the API answers although SMTP is down

        async def failed_once():
            doc = await OutboxEmail.find_one(OutboxEmail.to == "snowdrop@example.com")
            return doc if doc and doc.attempts >= 1 else None

        pending = await eventually(failed_once)
        assert pending.status == EmailStatus.pending and pending.sent_at is None
        assert pending.last_error and ("Connect" in pending.last_error or "refused" in pending.last_error)
        # Held for nobody until the retry time (exponential backoff: 5 s after the first failure).
        assert pending.lease.owner is None and pending.lease.until > utcnow()

        sink = SmtpSink(port)
        sink.start()
        try:
            await rewrite(OutboxEmail, pending.id, lease={"owner": None, "token": None,
                                                          "until": utcnow() - timedelta(seconds=1)})
            msgs = await sink.mailbox.wait_for("snowdrop@example.com", "welcome")  # the background worker

            async def marked_sent():
                doc = await OutboxEmail.get(pending.id)
                return doc if doc.status == EmailStatus.sent else None

            sent = await eventually(marked_sent)
        finally:
            sink.stop()
    assert len(msgs) == 1
    assert sent.attempts == 2 and sent.last_error is None and sent.lease is None


async def test_email_gives_up_after_max_attempts(make_settings, app_factory):
    settings = make_settings(smtp_port=free_port(), email_max_attempts=1, workers_enabled=False)
    async with app_factory(settings) as application:
        email = application.state.runtime.email
        assert await email.enqueue(to="nowhere@example.com", template="password_changed",
                                   context={"first_name": "N"}, dedupe_key="giveup-1")
        assert await email.send_due() == 1
        doc = await OutboxEmail.find_one(OutboxEmail.dedupe_key == "giveup-1")
        assert doc.status == EmailStatus.failed and doc.attempts == 1 and doc.lease is None
        assert await email.send_due() == 0  # never picked up again


async def test_enqueue_is_deduplicated(app, mailbox):
    email = app.state.runtime.email
    assert await email.enqueue(to="dup@example.com", template="password_changed", context={"first_name": "D"},
                               dedupe_key="order:ord_1:confirmed") is True
    assert await email.enqueue(to="dup@example.com", template="password_changed", context={"first_name": "D"},
                               dedupe_key="order:ord_1:confirmed") is False
    assert await OutboxEmail.find(OutboxEmail.dedupe_key == "order:ord_1:confirmed").count() == 1
    await mailbox.wait_for("dup@example.com", "password was changed")

    async def marked_sent():
        doc = await OutboxEmail.find_one(OutboxEmail.dedupe_key == "order:ord_1:confirmed")
        return doc if doc.status == EmailStatus.sent else None

    assert (await eventually(marked_sent)).attempts == 1
    assert await email.send_due() == 0  # nothing is left for a later poll to send again
    assert len(mailbox.to("dup@example.com")) == 1


async def test_two_workers_never_send_the_same_email_twice(make_settings, app_factory, mailbox):
    settings = make_settings(workers_enabled=False)
    async with app_factory(settings) as application:
        email = application.state.runtime.email
        for i in range(20):
            await email.enqueue(to=f"bulk{i}@example.com", template="password_changed",
                                context={"first_name": f"B{i}"}, dedupe_key=f"bulk-{i}")
        workers = [EmailService(settings), EmailService(settings), EmailService(settings)]
        handled = await asyncio.gather(*(w.send_due() for w in workers))
        assert sum(handled) == 20
        recipients = [m["X-Envelope-To"] for m in mailbox.messages]
        assert sorted(recipients) == sorted(f"bulk{i}@example.com" for i in range(20))
        docs = await OutboxEmail.find_all().to_list()
        assert all(d.status == EmailStatus.sent and d.attempts == 1 and d.lease is None for d in docs)


async def test_concurrent_claims_take_each_item_once(make_settings, app_factory):
    settings = make_settings(workers_enabled=False)
    async with app_factory(settings) as application:
        email = application.state.runtime.email
        for i in range(3):
            await email.enqueue(to=f"c{i}@example.com", template="password_changed", context={}, dedupe_key=f"c-{i}")
        coll = OutboxEmail.get_pymongo_collection()
        claims = await asyncio.gather(*(claim(coll, {"status": "pending"}, lease_seconds=60) for _ in range(10)))
        taken = [c for c in claims if c is not None]
        assert len(taken) == 3 and len({c["_id"] for c in taken}) == 3
        assert len({c["lease"]["token"] for c in taken}) == 3


async def test_an_item_whose_worker_died_is_claimed_again(make_settings, app_factory, mailbox):
    settings = make_settings(workers_enabled=False)
    async with app_factory(settings) as application:
        email = application.state.runtime.email
        await email.enqueue(to="orphan@example.com", template="password_changed", context={"first_name": "O"},
                            dedupe_key="orphan-1")
        coll = OutboxEmail.get_pymongo_collection()
        dead = await claim(coll, {"status": "pending"}, lease_seconds=60)  # a worker claims it, then dies
        assert dead is not None
        assert await email.send_due() == 0  # the lease still holds: nobody else sends it
        assert mailbox.to("orphan@example.com") == []

        await rewrite(OutboxEmail, dead["_id"], lease={**dead["lease"], "until": utcnow() - timedelta(seconds=1)})
        assert await email.send_due() == 1
        await mailbox.wait_for("orphan@example.com", "password was changed")
        # The dead worker waking up late cannot overwrite the result: its lease token is gone.
        assert await release(coll, dead, changes={"status": "pending"}) is False
        doc = await OutboxEmail.get(dead["_id"])
        assert doc.status == EmailStatus.sent and doc.attempts == 1
        assert len(mailbox.to("orphan@example.com")) == 1


async def test_a_permanent_refusal_bounces_and_suppresses_a_temporary_one_is_retried(make_settings, app_factory,
                                                                                     mailbox):
    from app.models.marketing import EmailSuppression

    settings = make_settings(workers_enabled=False)
    async with app_factory(settings) as application:
        email = application.state.runtime.email
        mailbox.refuse.add("gone@example.com")
        mailbox.defer.add("busy@example.com")
        for to in ("gone@example.com", "busy@example.com", "fine@example.com"):
            await email.enqueue(to=to, template="password_changed", context={"first_name": "R"}, dedupe_key=to)
        # A later marketing email to the bouncing address waits in the queue behind the bounce.
        await OutboxEmail(dedupe_key="promo", to="gone@example.com", subject="s", text="t", template="campaign",
                          marketing=True, next_attempt_at=utcnow() + timedelta(hours=1)).insert()
        assert await email.send_due() == 3  # one SMTP connection: the refusals do not end it

        gone = await OutboxEmail.find_one(OutboxEmail.dedupe_key == "gone@example.com")
        assert (gone.status, gone.attempts, gone.lease) == (EmailStatus.bounced, 1, None)
        assert gone.last_error.startswith("hard bounce: 550")
        assert (await EmailSuppression.find_one({"email": "gone@example.com"})).reason == "hard-bounce"
        assert (await OutboxEmail.find_one(OutboxEmail.dedupe_key == "promo")).status == EmailStatus.cancelled

        busy = await OutboxEmail.find_one(OutboxEmail.dedupe_key == "busy@example.com")
        assert (busy.status, busy.attempts) == (EmailStatus.pending, 1) and "450" in busy.last_error
        assert busy.lease.until > utcnow()  # held until its retry time
        assert await EmailSuppression.find_one({"email": "busy@example.com"}) is None
        assert [m["X-Envelope-To"] for m in mailbox.messages] == ["fine@example.com"]


async def test_emails_of_one_order_arrive_in_the_order_they_were_queued(make_settings, app_factory, mailbox):
    """A temporary refusal of an order's confirmation does not let its next email overtake it; email of another
    ordering key (or none) is not held back; an email being sent by another worker holds its followers too."""
    settings = make_settings(workers_enabled=False)
    async with app_factory(settings) as application:
        email = application.state.runtime.email
        coll = OutboxEmail.get_pymongo_collection()
        to = "buyer@example.com"

        async def queue(key: str, ordering_key: str | None, name: str) -> None:
            await email.enqueue(to=to, template="password_changed", context={"first_name": name}, dedupe_key=key,
                                ordering_key=ordering_key)

        async def due_now(key: str) -> None:  # its retry (or its wait) is over
            doc = await coll.find_one({"dedupe_key": key})
            await rewrite(OutboxEmail, doc["_id"], lease={**doc["lease"], "until": utcnow() - timedelta(seconds=1)})

        def received() -> list[str]:
            return [body_text(m).split(",")[0].split()[-1] for m in mailbox.to(to)]

        mailbox.defer.add(to)
        await queue("first", "order:ord_a", "First")
        await queue("second", "order:ord_a", "Second")
        assert await email.send_due() == 1  # "first" refused for now; "second" waits behind it
        first, second = [await coll.find_one({"dedupe_key": k}) for k in ("first", "second")]
        assert (first["status"], first["attempts"], second["attempts"]) == ("pending", 1, 0)
        assert second["lease"]["until"] >= first["lease"]["until"]  # not before the first one's retry

        mailbox.defer.clear()
        await queue("other", "order:ord_b", "Other")  # another order's email is not held back
        await queue("plain", None, "Plain")
        assert await email.send_due() == 2
        assert received() == ["Other", "Plain"]

        await due_now("second")  # its wait is over, but "first" is still pending: it waits again
        assert await email.send_due() == 0
        await due_now("first")
        await due_now("second")
        assert await email.send_due() == 2
        assert received() == ["Other", "Plain", "First", "Second"]

        # An earlier email claimed by another worker (in flight) holds its follower until that lease ends.
        await queue("third", "order:ord_c", "Third")
        await queue("fourth", "order:ord_c", "Fourth")
        in_flight = await claim(coll, {"dedupe_key": "third"}, lease_seconds=60)
        assert await email.send_due() == 0
        fourth = await coll.find_one({"dedupe_key": "fourth"})
        assert (fourth["status"], fourth["lease"]["until"]) == ("pending", in_flight["lease"]["until"])
        assert await release(coll, in_flight, changes={"status": EmailStatus.failed.value})  # it gave up
        await due_now("fourth")
        assert await email.send_due() == 1  # a failed earlier email no longer holds anything back
        assert received()[-1] == "Fourth"


async def test_a_long_unicode_subject_is_folded_into_short_encoded_words(make_settings, app_factory, mailbox):
    """RFC 2047: an encoded word is at most 75 characters; header lines stay within RFC 5322's 78 — while the
    List-Unsubscribe URL still arrives on one line, as written."""
    settings = make_settings(workers_enabled=False)
    async with app_factory(settings) as application:
        subject = "Roses " + "🌹" * 150
        url = "<https://shop.example.com/api/v1/newsletter/unsubscribe?token=" + "a" * 300 + ">"
        await OutboxEmail(dedupe_key="long-subject", to="long@example.com", subject=subject, text="t",
                          template="campaign", headers={"List-Unsubscribe": url}).insert()
        assert await application.state.runtime.email.send_due() == 1
        (msg,) = await mailbox.wait_for("long@example.com")
        raw = msg.get("Subject")
        assert all(len(line) <= 78 for line in raw.splitlines()), raw
        assert str(make_header(decode_header(raw))) == subject
        assert msg["List-Unsubscribe"] == url

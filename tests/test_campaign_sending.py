"""A campaign stays `sending` while any of its emails is unsent (SMTP down, retrying), so it can still be
cancelled then: cancelling cancels every unsent email, exactly counted, and none of them is delivered when
the mail server comes back. Real SMTP server (aiosmtpd), which defers (450) the recipients while it is "down"."""

from __future__ import annotations

from typing import Any

from app.models.outbox import OutboxEmail
from app.models.user import Role
from app.services.campaign_jobs import CampaignSender
from app.services.email import EmailService
from tests.conftest import create_user, login_headers
from tests.interleave import interleave
from tests.support import assert_problem, eventually, new_client
from tests.test_campaigns import CAMPAIGNS, FAST, campaign_body, subscribers

READERS = ("ann@example.com", "bea@example.com")


async def queued_and_tried(client, headers, cid: str) -> dict[str, Any]:
    """The campaign once every recipient's email is queued (``finished_at``) and the mail server has refused
    each one once (so the outbox waits for its retry)."""
    async def check():
        got = (await client.get(f"{CAMPAIGNS}/{cid}", headers=headers)).json()
        tried = await OutboxEmail.find({"campaign_id": cid, "attempts": {"$gte": 1}}).count()
        return got if got["finished_at"] and tried == len(READERS) else None

    return await eventually(check, 30.0, what=f"campaign {cid} queued and tried once")


async def test_sending_until_delivered_and_cancel_stops_unsent_emails(make_settings, app_factory, mailbox):
    async with app_factory(make_settings(**FAST)) as application, new_client(application) as client:
        headers = await login_headers(client, (await create_user(Role.admin)).email)
        await subscribers(*READERS)
        mailbox.defer.update(READERS)  # the mail server is "down" for them: 450, try again later

        first = (await client.post(CAMPAIGNS, headers=headers, json=campaign_body(subject="First"))).json()
        assert (await client.post(f"{CAMPAIGNS}/{first['id']}/schedule", headers=headers, json={})).status_code == 200
        waiting = await queued_and_tried(client, headers, first["id"])
        assert waiting["status"] == "sending"  # every email is queued, none is sent: not finished
        assert waiting["stats"] == {"recipients": 2, "queued": 2, "sent": 0, "failed": 0, "cancelled": 0,
                                    "unsubscribed": 0}

        r = await client.post(f"{CAMPAIGNS}/{first['id']}/cancel", headers=headers)
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "cancelled" and r.json()["cancelled_at"]
        assert r.json()["stats"] == {"recipients": 2, "queued": 0, "sent": 0, "failed": 0, "cancelled": 2,
                                     "unsubscribed": 0}

        # A second campaign while the server is still down: it waits too, then finishes once it is back.
        second = (await client.post(CAMPAIGNS, headers=headers, json=campaign_body(subject="Second"))).json()
        assert (await client.post(f"{CAMPAIGNS}/{second['id']}/schedule", headers=headers,
                                  json={})).status_code == 200
        assert (await queued_and_tried(client, headers, second["id"]))["status"] == "sending"
        mailbox.defer.clear()

        async def sent():
            got = (await client.get(f"{CAMPAIGNS}/{second['id']}", headers=headers)).json()
            return got if got["status"] == "sent" else None

        done = await eventually(sent, 60.0, what="second campaign sent")  # after the outbox's 5 s backoff
        assert done["stats"] == {"recipients": 2, "queued": 0, "sent": 2, "failed": 0, "cancelled": 0,
                                 "unsubscribed": 0}
        assert_problem(await client.post(f"{CAMPAIGNS}/{second['id']}/cancel", headers=headers), 409,
                       "campaign-not-cancellable")
        # The first campaign's emails were due for their retry before the second's: cancelled, never sent.
        assert sorted((m["X-Envelope-To"], m["Subject"]) for m in mailbox.messages) == [
            ("ann@example.com", "Second"), ("bea@example.com", "Second")]
        again = (await client.get(f"{CAMPAIGNS}/{first['id']}", headers=headers)).json()
        assert again["status"] == "cancelled" and again["stats"]["cancelled"] == 2 and again["stats"]["sent"] == 0


async def test_cancel_while_an_email_is_being_handed_to_smtp(make_settings, app_factory, mailbox, monkeypatch):
    """The campaign is cancelled after the outbox worker claimed an email and connected to the server: if the
    server accepts it, it went (counted as sent); if the server defers it, it stays cancelled (never retried)."""
    settings = make_settings(workers_enabled=False)
    async with app_factory(settings) as application, new_client(application) as client:
        rt = application.state.runtime
        headers = await login_headers(client, (await create_user(Role.admin)).email)
        await subscribers("ann@example.com")
        sender = CampaignSender(settings, rt.email)
        ids = []
        for name in ("Deferred", "Accepted"):
            cid = (await client.post(CAMPAIGNS, headers=headers, json=campaign_body(subject=name))).json()["id"]
            await client.post(f"{CAMPAIGNS}/{cid}/schedule", headers=headers, json={})
            ids.append(cid)
        while await sender.run_due():  # both queue their one email and wait for it
            pass
        for cid in ids:
            got = (await client.get(f"{CAMPAIGNS}/{cid}", headers=headers)).json()
            assert (got["status"], got["stats"]["queued"]) == ("sending", 1) and got["finished_at"]

        cancels = interleave(monkeypatch, EmailService, "_connect",
                             lambda: client.post(f"{CAMPAIGNS}/{ids[0]}/cancel", headers=headers))
        mailbox.defer.add("ann@example.com")
        assert await rt.email.send_due(limit=1) == 1  # claims the first campaign's email: cancelled, deferred
        assert cancels[0].json()["status"] == "cancelled"
        mailbox.defer.clear()
        first = (await client.get(f"{CAMPAIGNS}/{ids[0]}", headers=headers)).json()
        assert first["stats"] == {"recipients": 1, "queued": 0, "sent": 0, "failed": 0, "cancelled": 1,
                                  "unsubscribed": 0}
        email = await OutboxEmail.find_one({"campaign_id": ids[0]})
        assert (email.status, email.attempts, email.lease) == ("cancelled", 1, None)

        cancels = interleave(monkeypatch, EmailService, "_connect",
                             lambda: client.post(f"{CAMPAIGNS}/{ids[1]}/cancel", headers=headers))
        assert await rt.email.send_due() == 1  # the second campaign's email, cancelled while it is handed over
        assert cancels[0].json()["status"] == "cancelled"
        second = (await client.get(f"{CAMPAIGNS}/{ids[1]}", headers=headers)).json()
        assert second["status"] == "cancelled"
        assert second["stats"] == {"recipients": 1, "queued": 0, "sent": 1, "failed": 0, "cancelled": 0,
                                   "unsubscribed": 0}
    assert [m["Subject"] for m in mailbox.messages] == ["Accepted"]

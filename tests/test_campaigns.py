"""Campaigns through HTTP with the real SMTP server: drafts, preview, test send, audiences, a 500-recipient
campaign interrupted by a crash and resumed without a duplicate, suppression of bounced, unsubscribed and
deactivated addresses, one-click unsubscribe (RFC 8058)."""

from __future__ import annotations

import re
from datetime import timedelta
from email.header import decode_header, make_header
from typing import Any
from urllib.parse import quote

import pytest

from app.core.clock import utcnow
from app.models.marketing import EmailSuppression, NewsletterSubscription
from app.models.order import OrderStatus
from app.models.outbox import OutboxEmail
from app.models.user import Role
from app.services.campaign_jobs import CampaignSender
from tests.conftest import create_user, login_headers
from tests.factories import build_order, line_for, make_product
from tests.interleave import interleave
from tests.services import body_text
from tests.support import API, assert_problem, eventually, new_client

CAMPAIGNS = f"{API}/admin/campaigns"
# Small batches; the campaign job is woken when a campaign is scheduled, and polls twice a second (to resume
# after the simulated crash once the lease expired).
FAST = {"marketing_batch_size": 100, "marketing_poll_seconds": 0.5}


def subject(msg) -> str:
    return str(make_header(decode_header(msg["Subject"])))


def html_part(msg) -> str:
    return next(p.get_payload(decode=True).decode() for p in msg.walk() if p.get_content_type() == "text/html")


def campaign_body(product_id: str | None = None, **fields: Any) -> dict[str, Any]:
    blocks: list[dict[str, Any]] = [
        {"type": "heading", "text": "Spring is here, {first_name}"},
        {"type": "paragraph", "text": "Fresh <script>alert(1)</script> peonies & tulips.\n\nSee you soon."},
        {"type": "button", "text": "Shop spring", "url": "/collections/spring"},
    ]
    if product_id:
        blocks.insert(2, {"type": "products", "title": "New in", "product_ids": [product_id]})
    return {"name": "Spring", "subject": "{first_name}, spring is in bloom", "blocks": blocks, **fields}


async def subscribers(*emails: str) -> list[NewsletterSubscription]:
    docs = [NewsletterSubscription(email=e, status="confirmed", source="seed", confirmed_at=utcnow()) for e in emails]
    await NewsletterSubscription.insert_many(docs)
    return docs


async def send(client, headers, body: dict[str, Any], *, patience: float = 30.0) -> dict[str, Any]:
    """Create and schedule a campaign now; wait (up to ``patience`` seconds: a wait, not a speed target) until
    it is sent and every email left the outbox."""
    r = await client.post(CAMPAIGNS, headers=headers, json=body)
    assert r.status_code == 201, r.text
    cid = r.json()["id"]
    assert (await client.post(f"{CAMPAIGNS}/{cid}/schedule", headers=headers, json={})).status_code == 200

    async def done():
        got = (await client.get(f"{CAMPAIGNS}/{cid}", headers=headers)).json()
        return got if got["status"] == "sent" and got["stats"]["queued"] == 0 else None

    return await eventually(done, patience, what=f"campaign {cid} sent")


def unsubscribe_url(msg) -> str:
    header = msg["List-Unsubscribe"]
    match = re.search(r"<(https?://[^>]+)>", header)
    assert match, header
    return match.group(1)


async def test_draft_preview_test_send_and_rules(client, admin, staff, customer, mailbox, settings):
    _, headers = admin
    product = await make_product(name="Peony <Blush>")
    r = await client.post(CAMPAIGNS, headers=headers, json=campaign_body(product.id, preheader="Peonies are back"))
    assert r.status_code == 201, r.text
    draft = r.json()
    assert r.headers["location"] == f"{API}/admin/campaigns/{draft['id']}"
    assert draft["status"] == "draft" and draft["send_at"] is None and draft["audience"] == {"kind": "subscribers"}
    assert draft["stats"] == {"recipients": 0, "queued": 0, "sent": 0, "failed": 0, "cancelled": 0,
                              "unsubscribed": 0}
    assert draft["blocks"][2] == {"type": "products", "title": "New in", "product_ids": [product.id]}

    preview = (await client.get(f"{CAMPAIGNS}/{draft['id']}/preview", headers=headers)).json()
    assert preview["subject"] == "Test, spring is in bloom" and preview["to"] == admin[0].email
    html, text = preview["html"], preview["text"]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>" not in html
    assert "Peony &lt;Blush&gt;" in html and "Peonies are back" in html
    assert f"{settings.storefront_url}/products/{quote(product.slug)}?utm_source=newsletter" in html
    assert "Fresh <script>alert(1)</script> peonies & tulips." in text  # the text part is plain text
    assert "Peony <Blush> — from $45.00" in text and f"{settings.storefront_url}/collections/spring" in text
    assert "Unsubscribe with one click: " in text
    assert preview["headers"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert preview["headers"]["List-Unsubscribe"].startswith(f"<{settings.public_base_url}/api/v1/newsletter/")

    r = await client.post(f"{CAMPAIGNS}/{draft['id']}/test-send", headers=headers, json={"email": "qa@example.com"})
    assert r.status_code == 202, r.text
    msg = (await mailbox.wait_for("qa@example.com", "[Test]"))[0]
    assert subject(msg) == "[Test] there, spring is in bloom"  # no account at that address
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click" and "Spring is here, there" in body_text(msg)
    assert (await client.get(f"{CAMPAIGNS}/{draft['id']}", headers=headers)).json()["stats"]["recipients"] == 0

    r = await client.patch(f"{CAMPAIGNS}/{draft['id']}", headers=headers,
                           json={"subject": "Peony week", "audience": {"kind": "occasion", "occasion": "birthday"}})
    assert (r.json()["subject"], r.json()["audience"]) == ("Peony week", {"kind": "occasion", "occasion": "birthday"})
    unknown = {"type": "products", "product_ids": ["prd_01JD7Z8K4M2N6P8Q0R2S4T6V8W"]}
    assert_problem(await client.patch(f"{CAMPAIGNS}/{draft['id']}", headers=headers, json={"blocks": [unknown]}),
                   422, "unknown-product")
    for bad in ({"blocks": []}, {"blocks": [{"type": "video", "text": "x"}]}, {"subject": None},
                {"blocks": [{"type": "button", "text": "Go", "url": "javascript:alert(1)"}]},
                {"blocks": [{"type": "button", "text": "Go", "url": "//evil.example/x"}]},  # another site
                {"blocks": [{"type": "button", "text": "Go", "url": "/\\evil.example/x"}]},
                {"blocks": [{"type": "products", "product_ids": [product.id, product.id]}]},
                {"audience": {"kind": "lapsed", "days": "30"}}, {"audience": {"kind": "occasion"}}):
        assert_problem(await client.patch(f"{CAMPAIGNS}/{draft['id']}", headers=headers, json=bad), 422)
    assert_problem(await client.post(f"{CAMPAIGNS}/{draft['id']}/schedule", headers=headers,
                                     json={"send_at": "2020-01-01T00:00:00Z"}), 422, "send-at-in-past")
    for who in (staff[1], customer[1]):
        assert_problem(await client.get(CAMPAIGNS, headers=who), 403)
        assert_problem(await client.post(CAMPAIGNS, headers=who, json=campaign_body()), 403)
    assert_problem(await client.get(f"{CAMPAIGNS}/cmp_01JD7Z8K4M2N6P8Q0R2S4T6V8W", headers=headers), 404,
                   "campaign-not-found")

    later = (utcnow() + timedelta(hours=2)).isoformat()
    r = await client.post(f"{CAMPAIGNS}/{draft['id']}/schedule", headers=headers, json={"send_at": later})
    assert r.json()["status"] == "scheduled" and r.json()["send_at"].endswith("Z")
    assert_problem(await client.patch(f"{CAMPAIGNS}/{draft['id']}", headers=headers, json={"name": "x"}), 409,
                   "campaign-not-draft")
    listed = (await client.get(CAMPAIGNS, headers=headers, params={"status": "scheduled"})).json()
    assert [c["id"] for c in listed["items"]] == [draft["id"]]
    assert (await client.post(f"{CAMPAIGNS}/{draft['id']}/cancel", headers=headers)).json()["status"] == "cancelled"
    assert_problem(await client.post(f"{CAMPAIGNS}/{draft['id']}/cancel", headers=headers), 409,
                   "campaign-not-cancellable")
    assert await OutboxEmail.find({"campaign_id": draft["id"]}).count() == 0


async def test_500_recipients_survive_a_crash_mid_campaign(make_settings, app_factory, mailbox, monkeypatch):
    """The job dies after queueing its second batch, before recording it (its lease is left to expire): the
    batch is done again and nobody gets a second email, nobody is missed."""
    settings = make_settings(**FAST, worker_lease_seconds=1)
    crashes = []

    async def crash():
        crashes.append(utcnow())
        raise RuntimeError("simulated crash after queueing a batch")

    interleave(monkeypatch, CampaignSender, "_enqueue_batch", crash, skip=1)
    async with app_factory(settings) as application, new_client(application) as client:
        admin = await create_user(Role.admin)
        headers = await login_headers(client, admin.email)
        addresses = [f"reader{i:03d}@example.com" for i in range(500)]
        await subscribers(*addresses)
        # 500 emails over SMTP plus a lease to expire: a loaded CI machine needed more than 30 s
        campaign = await send(client, headers, campaign_body(), patience=180.0)
        assert await OutboxEmail.find({"campaign_id": campaign["id"]}).count() == 500

    assert len(crashes) == 1
    got = sorted(m["X-Envelope-To"] for m in mailbox.messages)
    assert got == addresses  # everyone exactly once
    assert campaign["stats"] == {"recipients": 500, "queued": 0, "sent": 500, "failed": 0, "cancelled": 0,
                                 "unsubscribed": 0}
    sample = next(m for m in mailbox.messages if m["X-Envelope-To"] == "reader042@example.com")
    assert subject(sample) == "there, spring is in bloom" and sample["List-Unsubscribe"]


async def test_bounced_unsubscribed_and_deactivated_addresses_are_never_mailed(make_settings, app_factory, mailbox):
    settings = make_settings(**FAST)
    async with app_factory(settings) as application, new_client(application) as client:
        admin = await create_user(Role.admin)
        headers = await login_headers(client, admin.email)
        gone = await create_user(email="gone@example.com")
        await subscribers("ok@example.com", "bounce@example.com", "gone@example.com", "quit@example.com")
        assert (await client.patch(f"{API}/admin/users/{gone.id}", headers=headers,
                                   json={"is_active": False})).status_code == 200
        mailbox.refuse.add("bounce@example.com")

        first = await send(client, headers, campaign_body(subject="First"))
        assert first["stats"] == {"recipients": 3, "queued": 0, "sent": 2, "failed": 1, "cancelled": 0,
                                  "unsubscribed": 0}
        assert mailbox.to("gone@example.com") == [] and mailbox.to("bounce@example.com") == []
        bounced = await OutboxEmail.find_one({"to": "bounce@example.com"})
        assert bounced.status == "bounced" and bounced.attempts == 1 and "550" in bounced.last_error
        assert (await EmailSuppression.find_one({"email": "bounce@example.com"})).reason == "hard-bounce"

        # One-click unsubscribe exactly as a mail client does it: POST, no credentials, the RFC 8058 body.
        msg = mailbox.to("quit@example.com")[0]
        assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert "<mailto:unsubscribe@amourflorals.com?subject=unsubscribe%20" in msg["List-Unsubscribe"]
        url = unsubscribe_url(msg).removeprefix(settings.public_base_url)
        r = await client.post(url, content="List-Unsubscribe=One-Click",
                              headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert r.status_code == 200, r.text
        assert (await client.post(url)).status_code == 200  # again, from the storefront page: idempotent
        page = await client.get(url)  # opened in a browser: a redirect to the storefront, nothing changes
        assert page.status_code == 303
        assert page.headers["location"].startswith(f"{settings.storefront_url}/newsletter/unsubscribe?token=")
        sub = await NewsletterSubscription.find_one({"email": "quit@example.com"})
        assert (sub.status, sub.unsubscribed_via) == ("unsubscribed", first["id"])
        again = (await client.get(f"{CAMPAIGNS}/{first['id']}", headers=headers)).json()
        assert again["stats"]["unsubscribed"] == 1
        assert_problem(await client.post(url.replace("token=", "token=x")), 400, "invalid-token")

        before = len(mailbox.messages)
        second = await send(client, headers, campaign_body(subject="Second"))
        assert second["stats"]["recipients"] == 1 and second["stats"]["sent"] == 1
        assert [m["X-Envelope-To"] for m in mailbox.messages[before:]] == ["ok@example.com"]


@pytest.mark.parametrize(("audience", "expected"), [
    ({"kind": "occasion", "occasion": "birthday"}, ["recent@example.com"]),
    ({"kind": "lapsed", "days": 30}, ["lapsed@example.com"]),
])
async def test_audiences(make_settings, app_factory, mailbox, audience, expected):
    async with app_factory(make_settings(**FAST)) as application, new_client(application) as client:
        headers = await login_headers(client, (await create_user(Role.admin)).email)
        birthday = await make_product(name="Birthday Bunch", occasions=["birthday"])
        sympathy = await make_product(name="Quiet Lilies", occasions=["sympathy"])
        await subscribers("recent@example.com", "lapsed@example.com", "never@example.com", "unpaid@example.com")
        orders = [("recent@example.com", birthday, OrderStatus.delivered, 10),
                  ("lapsed@example.com", sympathy, OrderStatus.picked_up, 100),
                  ("unpaid@example.com", birthday, OrderStatus.expired, 100)]
        for i, (email, product, status, days) in enumerate(orders):
            order = build_order([line_for(product)], number=f"AF-9{i}", email=email,
                                created_at=utcnow() - timedelta(days=days))
            order.status = status
            await order.insert()
        campaign = await send(client, headers, campaign_body(audience=audience))
    assert sorted(m["X-Envelope-To"] for m in mailbox.messages) == expected
    assert campaign["stats"]["recipients"] == len(expected)


async def test_demo_seed_has_subscribers_and_a_draft_campaign(client):
    from app.demo.marketing import DEMO_CAMPAIGN, seed_marketing
    from app.demo.seed import DEMO_PASSWORD, seed_users

    await seed_users()
    assert len(await seed_marketing()) == 2
    assert await seed_marketing() == []  # idempotent
    admin = await login_headers(client, "admin@amourflorals.com", DEMO_PASSWORD)
    [draft] = (await client.get(CAMPAIGNS, headers=admin)).json()["items"]
    assert (draft["name"], draft["status"]) == (DEMO_CAMPAIGN, "draft")
    assert "Spring is in bloom, Ava" in (await client.get(f"{CAMPAIGNS}/{draft['id']}/preview",
                                                          headers=admin)).json()["text"]
    olivia = await login_headers(client, "olivia@example.com", DEMO_PASSWORD)
    assert (await client.get(f"{API}/users/me", headers=olivia)).json()["preferences"]["newsletter"] is True
    assert await NewsletterSubscription.find({"status": "confirmed"}).count() == 3


async def test_unsubscribe_and_cancel_stop_queued_emails(make_settings, app_factory, mailbox):
    """Emails already queued are not sent once their address unsubscribes or their campaign is cancelled
    (the job and the outbox sender are run by hand here, so the queue can be inspected in between)."""
    settings = make_settings(workers_enabled=False)
    async with app_factory(settings) as application, new_client(application) as client:
        rt = application.state.runtime
        headers = await login_headers(client, (await create_user(Role.admin)).email)
        await subscribers("a@example.com", "b@example.com", "c@example.com")
        cid = (await client.post(CAMPAIGNS, headers=headers, json=campaign_body())).json()["id"]
        await client.post(f"{CAMPAIGNS}/{cid}/schedule", headers=headers, json={})
        sender = CampaignSender(settings, rt.email)
        assert await sender.run_due() == 3  # one batch: three emails queued
        queued = await OutboxEmail.find_one({"to": "a@example.com"})
        assert queued.status == "pending" and queued.marketing is True

        url = re.search(r"<(https?://[^>]+)>", queued.headers["List-Unsubscribe"]).group(1)
        r = await client.post(url.removeprefix(settings.public_base_url), data={"List-Unsubscribe": "One-Click"})
        assert r.status_code == 200, r.text
        assert (await OutboxEmail.get(queued.id)).status == "cancelled"

        r = await client.post(f"{CAMPAIGNS}/{cid}/cancel", headers=headers)
        assert r.json()["status"] == "cancelled"
        assert r.json()["stats"] == {"recipients": 3, "queued": 0, "sent": 0, "failed": 0, "cancelled": 3,
                                     "unsubscribed": 1}
        assert await sender.run_due() == 0  # a cancelled campaign is not picked up again
        assert await rt.email.send_due() == 0
    assert mailbox.messages == []


@pytest.mark.parametrize("url", [
    "https://a.com/\u0000x", "https://a.com/\u007f", "https://a.com/x\u0085", "https://evil.com/\u202e",
    "https://a.com/\u200bx", "https://a.com/\u00adx", "https://a.com/\ufeff", "https://a.com/a b",
    "https://a.com/\u00a0", "https:///evil", "https://?x", "https://[::1/x", "/collections/\u2066spring",
    "/collections/\u0000", "https://./x", "https://.../x", "https://a.com/\u034fx", "https://a.com/\u3164",
    "https://a.com/\u2800", "https://a.com/x\ufe0f",
])
async def test_button_urls_refuse_controls_invisible_characters_and_no_host(client, admin, url):
    body = campaign_body()
    body["blocks"][2] = {"type": "button", "text": "Go", "url": url}
    problem = assert_problem(await client.post(CAMPAIGNS, headers=admin[1], json=body), 422)
    assert [e["loc"][-2:] for e in problem["errors"]] == [["button", "url"]]


async def test_button_urls_that_are_fine(client, admin, settings):
    body = campaign_body()
    body["blocks"][2] = {"type": "button", "text": "Go", "url": " https://shop.example/päonien?x=1#top "}
    r = await client.post(CAMPAIGNS, headers=admin[1], json=body)
    assert r.status_code == 201, r.text
    assert r.json()["blocks"][2]["url"] == "https://shop.example/päonien?x=1#top"


async def test_the_unsubscribe_link_of_previews_and_test_copies_changes_nothing_and_says_so(
        client, admin, mailbox, settings):
    _, headers = admin
    await subscribers(admin[0].email, "qa@example.com")
    cid = (await client.post(CAMPAIGNS, headers=headers, json=campaign_body())).json()["id"]
    preview = (await client.get(f"{CAMPAIGNS}/{cid}/preview", headers=headers)).json()
    assert (await client.post(f"{CAMPAIGNS}/{cid}/test-send", headers=headers,
                              json={"email": "qa@example.com"})).status_code == 202
    copy = (await mailbox.wait_for("qa@example.com", "[Test]"))[0]
    for header in (preview["headers"]["List-Unsubscribe"], copy["List-Unsubscribe"]):
        url = re.search(r"<(https?://[^>]+)>", header).group(1).removeprefix(settings.public_base_url)
        r = await client.post(url, content="List-Unsubscribe=One-Click",
                              headers={"Content-Type": "application/x-www-form-urlencoded"})
        problem = assert_problem(r, 422, "preview-link")
        assert "preview or test copy" in problem["detail"] and "nothing was changed" in problem["detail"]
        page = await client.get(url)  # opened in a browser: the storefront's page, told it is a preview link
        assert page.status_code == 303
        assert page.headers["location"] == f"{settings.storefront_url}/newsletter/unsubscribe?status=preview"
    states = {s.email: s.status for s in await NewsletterSubscription.find_all().to_list()}
    assert states == {admin[0].email: "confirmed", "qa@example.com": "confirmed"}

"""The audit log over HTTP: every admin write leaves one entry with the changed fields only (never a secret),
admins filter and page through it, nobody can change it, and a change whose process died is recovered."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from fastapi.routing import APIRoute, iter_route_contexts

from app.main import create_app
from app.models.audit import AuditEntry
from app.models.review import Review
from app.models.user import Role, User
from app.routers.params import API_PREFIX
from app.services.audit import Actor, AuditScope, record
from app.services.audit_targets import ACTIONS, ROUTE_ACTIONS
from tests.catalog_fixtures import image_bytes
from tests.catalog_helpers import make_category, make_product
from tests.factories import line_for
from tests.factories import make_product as stored_product
from tests.stripe_fixtures import paid_order
from tests.support import API, assert_problem

AUDIT = f"{API}/admin/audit"
SECRET_WORDS = ("password", "hash", "security_stamp", "tokens_valid_after", "token", "secret")


@pytest.fixture
def settings(make_settings, stripe_settings):
    return make_settings(audit_recovery_grace_seconds=1, **stripe_settings)


async def entries(client, admin_headers: dict[str, str], **params: Any) -> list[dict[str, Any]]:
    r = await client.get(AUDIT, headers=admin_headers, params={"limit": 100, **params})
    assert r.status_code == 200, r.text
    return r.json()["items"]


def changes(entry: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    return {c["field"]: (c["before"], c["after"]) for c in entry["changes"]}


def test_every_admin_write_route_has_an_audit_action(settings):
    app = create_app(settings)
    writes = {(m, ctx.path.removeprefix(API_PREFIX)) for ctx in iter_route_contexts(app.routes)
              if isinstance(ctx.original_route, APIRoute) and ctx.path.startswith(f"{API_PREFIX}/admin")
              for m in ctx.methods - {"GET", "HEAD"}}
    assert writes == set(ROUTE_ACTIONS)
    assert all(a.name.startswith(a.target.name + ".") for a in ACTIONS.values())


async def test_catalog_stock_and_image_changes_are_audited_with_their_diff(client, staff, admin):
    user, headers = staff
    category = await make_category(client, headers, "Peonies")
    product = await make_product(client, headers, category["id"], "Blush Peonies")
    r = await client.patch(f"{API}/admin/products/{product['id']}", headers=headers, json={
        "name": "Blush Peony Cloud", "sizes": [{"code": "standard", "name": "Standard", "price": 5500},
                                               {"code": "deluxe", "name": "Deluxe", "price": 7000}]})
    assert r.status_code == 200, r.text
    request_id = r.headers["x-request-id"]
    r = await client.post(f"{API}/admin/products/{product['id']}/stock", headers=headers,
                          json={"size": "standard", "delta": 3, "reason": "restock"})
    assert r.status_code == 201, r.text
    r = await client.post(f"{API}/admin/products/{product['id']}/images", headers=headers, data={"alt": "Peonies"},
                          files={"file": ("p.jpg", image_bytes(), "image/jpeg")})
    assert r.status_code == 201, r.text
    image_id = r.json()["id"]
    # Refused (slug taken, unknown product): nothing changed, so no entry.
    other = await make_product(client, headers, category["id"], "Other")
    assert_problem(await client.patch(f"{API}/admin/products/{other['id']}", headers=headers,
                                      json={"slug": product["slug"]}), 409)
    assert_problem(await client.patch(f"{API}/admin/products/prd_01JD7Z00000000000000000000", headers=headers,
                                      json={"name": "Ghost"}), 404)

    listed = await entries(client, admin[1], target_id=product["id"])
    assert [e["action"] for e in listed] == ["product.image_upload", "product.stock_adjust", "product.update",
                                             "product.create"]
    upload, stock, update, create = listed
    assert changes(update) == {"name": ("Blush Peonies", "Blush Peony Cloud"),
                               "sizes.standard.price": (5000, 5500)}
    assert update["request_id"] == request_id and update["status"] == 200 and update["outcome"] == "succeeded"
    assert (update["actor_id"], update["actor_role"], update["ip"], update["target_type"]) == \
        (user.id, "staff", "127.0.0.1", "product")
    assert update["at"].endswith("Z") and not update["recovered"]
    assert changes(stock) == {"sizes.standard.stock": (5, 8)}
    assert changes(create)["name"] == (None, "Blush Peonies") and changes(create)["sizes.deluxe.price"] == (None, 7000)
    assert create["status"] == 201 and "updated_at" not in changes(create) and "stock_total" not in changes(create)
    up = changes(upload)
    assert up["images"] == ([], [image_id]) and up[f"images.{image_id}.alt"] == (None, "Peonies")
    assert not [f for f in up if "storage_key" in f or "variants" in f]
    assert [e["action"] for e in await entries(client, admin[1], target_id=other["id"])] == ["product.create"]
    cat = await entries(client, admin[1], target_type="category")
    assert [(e["action"], e["target_id"]) for e in cat] == [("category.create", category["id"])]


@pytest.mark.parametrize("code", ["secret", "token", "hashtag-bouquet"])
async def test_a_size_whose_code_looks_like_a_secret_is_audited_like_any_other(client, staff, admin, code):
    """Size codes are chosen by staff: only secret *fields* are left out of entries, never data keys."""
    headers = staff[1]
    category = await make_category(client, headers, "Roses")
    product = await make_product(client, headers, category["id"], "Red Roses")
    sizes = [{"code": "standard", "name": "Standard", "price": 5000},
             {"code": "deluxe", "name": "Deluxe", "price": 7000}, {"code": code, "name": "Odd", "price": 9999}]
    r = await client.patch(f"{API}/admin/products/{product['id']}", headers=headers, json={"sizes": sizes})
    assert r.status_code == 200, r.text
    sizes[2]["price"] = 1
    assert (await client.patch(f"{API}/admin/products/{product['id']}", headers=headers,
                               json={"sizes": sizes})).status_code == 200
    r = await client.post(f"{API}/admin/products/{product['id']}/stock", headers=headers,
                          json={"size": code, "delta": 50, "reason": "restock"})
    assert r.status_code == 201, r.text

    stock, price, added, _create = await entries(client, admin[1], target_id=product["id"])
    assert changes(stock) == {f"sizes.{code}.stock": (0, 50)}
    assert changes(price) == {f"sizes.{code}.price": (9999, 1)}
    assert changes(added)[f"sizes.{code}.price"] == (None, 9999)


async def test_order_changes_are_audited_and_a_refused_refund_that_changed_the_order_is_failed(
        app, client, staff, admin, stripe_double):
    order = await paid_order(app, client, stripe_double, [line_for(await stored_product())])
    url = f"{API}/admin/orders/{order.id}"
    r = await client.post(f"{url}/refund", headers=staff[1], json={"amount": 1000, "reason": "Late delivery"})
    assert r.status_code == 200, r.text
    refund_id = r.json()["refunds"][0]["id"]
    assert_problem(await client.post(f"{url}/refund", headers=staff[1],
                                     json={"amount": 10**8, "reason": "Too much"}), 409, "refund-exceeds-paid")
    stripe_double.fail_next("/v1/refunds", status=400, kind="invalid_request_error", code="charge_disputed")
    assert_problem(await client.post(f"{url}/refund", headers=staff[1], json={"amount": 500, "reason": "Again"}),
                   409, "refund-refused")
    r = await client.post(f"{url}/notes", headers=staff[1], json={"text": "Customer called"})
    note_id = r.json()["notes"][-1]["id"]
    assert (await client.post(f"{url}/status", headers=staff[1], json={"status": "preparing"})).status_code == 200

    status, note, refused, refund = await entries(client, admin[1], target_id=order.id)
    assert status["action"] == "order.status_change" and changes(status)["status"] == ("paid", "preparing")
    assert changes(note) == {"notes": ([], [note_id]), f"notes.{note_id}.by": (None, staff[0].id),
                             f"notes.{note_id}.text": (None, "Customer called"),
                             f"notes.{note_id}.at": (None, r.json()["notes"][-1]["at"])}
    assert (refused["action"], refused["outcome"], refused["status"]) == ("order.refund", "failed", 409)
    # The refused refund was recorded as failed and flagged the order: those changes are in the entry.
    assert changes(refused)["flags"] == ([], ["refund-failed"])
    assert [v[1] for k, v in changes(refused).items() if k.endswith(".status")] == ["failed"]
    assert refund["outcome"] == "succeeded"
    assert changes(refund)["amount_refunded"] == (0, 1000)
    assert changes(refund)["payment_status"] == ("paid", "partially_refunded")
    assert changes(refund)[f"refunds.{refund_id}.amount"] == (None, 1000)
    assert not any(k.startswith(("lines", "contact", "delivery")) for e in (status, note, refund) for k in changes(e))


async def test_promo_delivery_review_and_user_changes_are_audited_without_secrets(client, admin, staff, customer):
    h = admin[1]
    promo = (await client.post(f"{API}/admin/promo-codes", headers=h,
                               json={"code": "ROSES5", "kind": "fixed", "amount": 500})).json()
    assert (await client.patch(f"{API}/admin/promo-codes/{promo['id']}", headers=h,
                               json={"active": False})).status_code == 200
    assert (await client.get(f"{API}/admin/delivery/config", headers=h)).status_code == 200
    assert (await client.patch(f"{API}/admin/delivery/config", headers=h,
                               json={"same_day_cutoff": "12:00"})).status_code == 200
    review = await Review(product_id="prd_01JD7Z00000000000000000000", user_id=customer[0].id, rating=5,
                          title="Lovely").insert()
    assert (await client.post(f"{API}/admin/reviews/{review.id}/hide", headers=staff[1])).status_code == 200
    r = await client.patch(f"{API}/admin/users/{customer[0].id}", headers=h, json={"is_active": False})
    assert r.status_code == 200, r.text
    stored = await User.get(customer[0].id)
    assert stored.security_stamp > 0  # deactivation raised the stamp and ended sessions: not for the log

    assert [changes(e) for e in await entries(client, h, target_id=promo["id"])][0] == {"active": (True, False)}
    (cfg,) = await entries(client, h, target_type="delivery_config")
    assert (cfg["action"], cfg["target_id"], changes(cfg)) == ("delivery_config.update", "delivery",
                                                               {"same_day_cutoff": ("13:00", "12:00")})
    (hide,) = await entries(client, h, target_id=review.id)
    assert changes(hide)["hidden"] == (False, True) and changes(hide)["hidden_by"] == (None, staff[0].id)
    (deactivate,) = await entries(client, h, target_id=customer[0].id)
    assert deactivate["action"] == "user.update" and changes(deactivate) == {"is_active": (True, False)}
    assert deactivate["actor_role"] == "admin"
    raw = json.dumps(await AuditEntry.get_pymongo_collection().find({}).to_list(None), default=str).lower()
    assert not [w for w in SECRET_WORDS if w in raw] and stored.password_hash.lower() not in raw


async def test_admins_filter_and_page_through_the_log(client, admin, staff):
    for n in range(3):
        await make_category(client, staff[1], f"Seasonal {n}")
    zones = [(await client.post(f"{API}/admin/delivery/zones", headers=admin[1],
                                json={"name": f"Zone {n}", "zip_codes": [f"1001{n}"], "fee": 500})).json()
             for n in range(2)]
    everything = await entries(client, admin[1])
    assert len(everything) == 5 and [e["id"] for e in everything] == sorted((e["id"] for e in everything),
                                                                          reverse=True)
    assert len(await entries(client, admin[1], actor_id=staff[0].id)) == 3
    assert [e["target_id"] for e in await entries(client, admin[1], action="delivery_zone.create")] == \
        [z["id"] for z in reversed(zones)]
    assert len(await entries(client, admin[1], target_type="category", actor_id=staff[0].id)) == 3
    oldest_zone = everything[1]
    since = await entries(client, admin[1], **{"from": oldest_zone["at"]})
    assert [e["id"] for e in since] == [e["id"] for e in everything if e["at"] >= oldest_zone["at"]]
    until = await entries(client, admin[1], to=oldest_zone["at"])
    assert {e["id"] for e in until} == {e["id"] for e in everything} - {e["id"] for e in since}

    seen, cursor = [], None
    while True:
        r = await client.get(AUDIT, headers=admin[1], params={"limit": 2, **({"cursor": cursor} if cursor else {})})
        body = r.json()
        seen += [e["id"] for e in body["items"]]
        cursor = body["next_cursor"]
        if not cursor:
            break
    assert seen == [e["id"] for e in everything]
    for bad in ({"cursor": "bm90LWEtY3Vyc29y"}, {"action": "Product.Update"}, {"actor_id": "{'$ne': ''}"},
                {"from": "2030-01-02T00:00:00Z", "to": "2030-01-01T00:00:00Z"}, {"sort": "oldest"}):
        assert_problem(await client.get(AUDIT, headers=admin[1], params=bad), 422)

    raw = await AuditEntry.get_pymongo_collection().find_one({"_id": everything[0]["id"]})
    days = (raw["expires_at"] - raw["at"]).total_seconds() / 86400
    assert days == 400 and raw["state"] == "committed" and raw["snapshot"] is None
    indexes = await AuditEntry.get_pymongo_collection().index_information()
    fields = [[k for k, _ in v["key"]] for v in indexes.values()]
    for ix in AuditEntry.Settings.indexes:
        assert ix.document["name"] in indexes or list(ix.document["key"]) in fields, ix.document["name"]
    ttl = next(ix.document for ix in AuditEntry.Settings.indexes if ix.document["name"] == "expires_ttl")
    assert ttl["expireAfterSeconds"] == 0


async def test_only_admins_read_the_log_and_no_route_changes_it(client, admin, staff, customer):
    assert_problem(await client.get(AUDIT), 401)
    assert_problem(await client.get(AUDIT, headers=staff[1]), 403)
    assert_problem(await client.get(AUDIT, headers=customer[1]), 403)
    await make_category(client, admin[1], "Tulips")
    (entry,) = await entries(client, admin[1])
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        assert_problem(await client.request(method, AUDIT, headers=admin[1]), 405)
        assert_problem(await client.request(method, f"{AUDIT}/{entry['id']}", headers=admin[1]), 404)
    assert [e["id"] for e in await entries(client, admin[1])] == [entry["id"]]


async def test_a_change_whose_process_died_is_recovered_and_one_that_never_happened_is_dropped(
        app, client, admin, settings):
    product = await stored_product(name="Sunny Tulips")
    untouched = await stored_product(name="Calm Lilies")
    actor = Actor(id=admin[0].id, role=Role.admin.value, ip="10.0.0.7", request_id="req-crashed")
    # Each intent is written, then the process "dies": the change (or nothing) happens, the entry is never closed.
    changed = AuditScope(ACTIONS["product.update"], product.id, actor, settings)
    await changed.open()
    await product.get_pymongo_collection().update_one({"_id": product.id}, {"$set": {"featured": True}})
    never = AuditScope(ACTIONS["product.update"], untouched.id, actor, settings)
    await never.open()
    lost_create = AuditScope(ACTIONS["category.create"], None, actor, settings)
    await lost_create.open()
    (pending,) = await entries(client, admin[1], target_id=product.id)
    assert pending["outcome"] == "pending" and pending["changes"] == []

    async def still_pending() -> bool:  # the job takes the intents one by one: wait for all three
        intents = [*await entries(client, admin[1], target_id=product.id),
                   *await entries(client, admin[1], target_id=untouched.id),
                   *await entries(client, admin[1], target_type="category")]
        return any(e["outcome"] == "pending" for e in intents)

    deadline = asyncio.get_running_loop().time() + 20
    while await still_pending():
        assert asyncio.get_running_loop().time() < deadline, "the recovery job did not run"
        await asyncio.sleep(0.1)
    (recovered,) = await entries(client, admin[1], target_id=product.id)
    assert (recovered["recovered"], recovered["outcome"], changes(recovered)) == (True, "unknown",
                                                                                   {"featured": (False, True)})
    assert (recovered["request_id"], recovered["ip"], recovered["actor_id"]) == ("req-crashed", "10.0.0.7",
                                                                                  admin[0].id)
    assert await entries(client, admin[1], target_id=untouched.id) == []  # nothing happened: no entry
    (create,) = await entries(client, admin[1], target_type="category")
    assert (create["target_id"], create["outcome"], create["recovered"]) == (None, "unknown", True)


async def test_record_writes_one_entry_for_a_change_made_elsewhere_without_its_secrets(client, admin, settings):
    """``audit.record``: the one call for changes made outside the admin API (e.g. a campaign being sent)."""
    before = {"status": "draft", "sent": 0, "smtp": {"password": "pw-1", "host": "mx"}, "api_token": "t-1"}
    after = {"status": "sending", "sent": 120, "smtp": {"password": "pw-2", "host": "mx"}, "api_token": "t-2",
             "recipients": [{"id": "r1", "email_hash": "ab12"}]}
    await record("campaign.send", "campaign", "cmp_01JD7Z00000000000000000000", before=before, after=after,
                 actor=Actor(id=None, role="system"), settings=settings)
    (entry,) = await entries(client, admin[1], action="campaign.send")
    assert changes(entry) == {"status": ("draft", "sending"), "sent": (0, 120), "recipients": (None, ["r1"])}
    assert (entry["actor_role"], entry["outcome"], entry["target_type"]) == ("system", "succeeded", "campaign")


async def test_campaign_changes_are_audited(client, admin):
    h = admin[1]
    r = await client.post(f"{API}/admin/campaigns", headers=h, json={
        "name": "Spring", "subject": "Spring is in bloom", "blocks": [{"type": "heading", "text": "Hello"}]})
    assert r.status_code == 201, r.text
    cid = r.json()["id"]
    assert (await client.patch(f"{API}/admin/campaigns/{cid}", headers=h,
                               json={"subject": "Peony week"})).status_code == 200
    assert (await client.post(f"{API}/admin/campaigns/{cid}/test-send", headers=h,
                              json={"email": "QA@Example.com"})).status_code == 202
    later = "2099-05-01T09:00:00Z"
    assert (await client.post(f"{API}/admin/campaigns/{cid}/schedule", headers=h, json={"send_at": later})) \
        .status_code == 200
    assert (await client.post(f"{API}/admin/campaigns/{cid}/cancel", headers=h)).status_code == 200
    assert_problem(await client.post(f"{API}/admin/campaigns/{cid}/cancel", headers=h), 409)  # nothing changed

    cancel, schedule, test_send, update, create = await entries(client, h, target_id=cid)
    assert [e["action"] for e in (cancel, schedule, test_send, update, create)] == [
        "campaign.cancel", "campaign.schedule", "campaign.test_send", "campaign.update", "campaign.create"]
    # A test send changes nothing on the campaign; its entry says where the copy went.
    assert changes(test_send) == {"test_send.to": (None, "qa@example.com")}
    assert changes(create)["blocks.0.text"] == (None, "Hello") and create["target_type"] == "campaign"
    assert changes(update) == {"subject": ("Spring is in bloom", "Peony week")}
    assert changes(schedule) == {"status": ("draft", "scheduled"), "send_at": (None, later)}
    assert changes(cancel)["status"] == ("scheduled", "cancelled")
    assert not [f for e in (cancel, schedule, update, create) for f in changes(e) if f.startswith("stats")]

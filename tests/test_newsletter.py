"""Newsletter: double opt-in through the real SMTP server, a sign-up that reveals nothing, signed links, the
account preference as the same fact, rate limits."""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from pydantic import SecretStr

from app.core.security import sign_link
from app.models.marketing import EmailSuppression, NewsletterSubscription
from app.models.outbox import OutboxEmail
from tests.services import body_text
from tests.support import API, assert_problem, new_client, random_ip, register

SUBSCRIBE = f"{API}/newsletter/subscribe"


def html_part(msg) -> str:
    for part in msg.walk():
        if part.get_content_type() == "text/html":
            return part.get_payload(decode=True).decode()
    raise AssertionError("no HTML part")


def link_token(msg, path: str) -> str:
    match = re.search(rf"https?://\S+{re.escape(path)}\?token=(\S+)", body_text(msg))
    assert match, body_text(msg)
    return parse_qs(urlsplit(match.group(0)).query)["token"][0]


async def test_double_opt_in(client, mailbox, settings):
    r = await client.post(SUBSCRIBE, json={"email": "  Peony@Example.com "})
    assert r.status_code == 202, r.text
    sub = await NewsletterSubscription.find_one({"email": "peony@example.com"})
    assert sub.status == "pending"  # nothing is sent to a pending subscriber but the confirmation

    msg = (await mailbox.wait_for("peony@example.com", "confirm your Amour Florals newsletter"))[0]
    text, html = body_text(msg), html_part(msg)
    assert f"{settings.storefront_url}/newsletter/confirm?token=" in text and "within 72 hours" in text
    assert "/newsletter/confirm?token=" in html and "<!doctype html>" in html.lower()
    token = link_token(msg, "/newsletter/confirm")

    r = await client.post(f"{API}/newsletter/confirm", json={"token": token})
    assert r.status_code == 200, r.text
    assert r.json() == {"email": "peony@example.com", "status": "confirmed"}
    assert (await NewsletterSubscription.get(sub.id)).confirmed_at is not None
    # Confirming twice is harmless.
    assert (await client.post(f"{API}/newsletter/confirm", json={"token": token})).json()["status"] == "confirmed"

    # An account registered later with that address shows the same fact as its preference.
    body = await register(client, "peony@example.com")
    assert body["user"]["preferences"]["newsletter"] is True
    assert body["user"]["preferences"]["newsletter_status"] == "confirmed"


async def test_confirmation_tokens_are_signed_and_expire(client, settings):
    await client.post(SUBSCRIBE, json={"email": "iris@example.com"})
    sub = await NewsletterSubscription.find_one({"email": "iris@example.com"})
    good = sign_link(settings, "nl-confirm", {"i": sub.id}, ttl=timedelta(hours=1))
    body, mac = good.split(".")
    forged = sign_link(settings.model_copy(update={"jwt_secret": SecretStr("x" * 40)}), "nl-confirm", {"i": sub.id})
    expired = sign_link(settings, "nl-confirm", {"i": sub.id}, ttl=timedelta(seconds=-1))
    other_purpose = sign_link(settings, "nl-unsub", {"i": sub.id})
    for token in (f"{body}.{mac[::-1]}", forged, expired, other_purpose):
        assert_problem(await client.post(f"{API}/newsletter/confirm", json={"token": token}), 400, "invalid-token")
    assert (await NewsletterSubscription.get(sub.id)).status == "pending"
    for token in ("short", "a" * 60, f"{body}.{mac}!"):
        assert_problem(await client.post(f"{API}/newsletter/confirm", json={"token": token}), 422)
    assert (await client.post(f"{API}/newsletter/confirm", json={"token": good})).status_code == 200


async def test_subscribe_never_reveals_the_state_of_an_address(client, mailbox):
    confirmed = NewsletterSubscription(email="known@example.com", status="confirmed", source="seed")
    await confirmed.insert()
    await EmailSuppression(email="bounced@example.com", reason="hard-bounce").insert()
    first = await client.post(SUBSCRIBE, json={"email": "fresh@example.com"})
    answers = [first,
               await client.post(SUBSCRIBE, json={"email": "fresh@example.com"}),  # pending
               await client.post(SUBSCRIBE, json={"email": "known@example.com"}),  # already subscribed
               await client.post(SUBSCRIBE, json={"email": "bounced@example.com"})]  # suppressed
    assert {(r.status_code, r.text, r.headers["content-type"]) for r in answers} == {
        (first.status_code, first.text, first.headers["content-type"])}
    assert first.status_code == 202

    await mailbox.wait_for("fresh@example.com", "confirm", count=2)  # each request of a pending address
    assert mailbox.to("known@example.com") == [] and mailbox.to("bounced@example.com") == []
    assert await OutboxEmail.find({"to": {"$in": ["known@example.com", "bounced@example.com"]}}).count() == 0
    assert (await NewsletterSubscription.get(confirmed.id)).status == "confirmed"
    assert await NewsletterSubscription.find_one({"email": "bounced@example.com"}) is None


async def test_subscribe_is_limited_per_address_and_per_ip(make_settings, app_factory):
    settings = make_settings(rate_limit_newsletter_email="2/hour", rate_limit_newsletter_ip="3/hour")
    async with app_factory(settings) as application:
        a, b = new_client(application, random_ip()), new_client(application, random_ip())
        async with a, b:
            for _ in range(2):
                assert (await a.post(SUBSCRIBE, json={"email": "lily@example.com"})).status_code == 202
            # The address is used up, whichever IP asks.
            r = assert_problem(await b.post(SUBSCRIBE, json={"email": "lily@example.com"}), 429)
            assert r["code"] == "rate-limited"
            assert int((await b.post(SUBSCRIBE, json={"email": "Lily@example.com"})).headers["retry-after"]) >= 1
            # One IP: three sign-ups of any addresses (a's two, and one more).
            assert (await a.post(SUBSCRIBE, json={"email": "tulip@example.com"})).status_code == 202
            assert_problem(await a.post(SUBSCRIBE, json={"email": "daisy@example.com"}), 429)
        assert await OutboxEmail.find({"to": "lily@example.com"}).count() == 2


@pytest.mark.parametrize("body", [{}, {"email": "not-an-email"}, {"email": {"$ne": ""}}, {"email": "a@example.com",
                                                                                          "list": "x"}])
async def test_subscribe_rejects_bad_bodies(client, body):
    assert_problem(await client.post(SUBSCRIBE, json=body), 422)
    assert await NewsletterSubscription.find_all().count() == 0


async def test_account_preference_is_the_subscription(client, mailbox, user_factory):
    # An unverified account: turning the preference on starts the double opt-in.
    unverified, headers = await user_factory(email="rose@example.com", email_verified_at=None)
    r = await client.patch(f"{API}/users/me", headers=headers, json={"preferences": {"newsletter": True}})
    prefs = r.json()["preferences"]
    assert (prefs["newsletter"], prefs["newsletter_status"]) == (False, "pending")
    msg = (await mailbox.wait_for("rose@example.com", "confirm"))[0]
    await client.post(f"{API}/newsletter/confirm", json={"token": link_token(msg, "/newsletter/confirm")})
    assert (await client.get(f"{API}/users/me", headers=headers)).json()["preferences"]["newsletter"] is True

    # Turning it off unsubscribes the address; the public sign-up then sends a new confirmation.
    r = await client.patch(f"{API}/users/me", headers=headers, json={"preferences": {"newsletter": False}})
    assert r.json()["preferences"]["newsletter_status"] == "unsubscribed"
    sub = await NewsletterSubscription.find_one({"email": "rose@example.com"})
    assert (sub.status, sub.unsubscribed_via) == ("unsubscribed", "account")
    # Turned on again (still unverified): waiting for its confirmation again, as the API says.
    r = await client.patch(f"{API}/users/me", headers=headers, json={"preferences": {"newsletter": True}})
    assert r.json()["preferences"]["newsletter_status"] == "pending"
    me = (await client.get(f"{API}/users/me", headers=headers)).json()["preferences"]
    assert (me["newsletter"], me["newsletter_status"]) == (False, "pending")

    # Closing the account removes the consent record with the address.
    r = await client.request("DELETE", f"{API}/users/me", headers=headers, json={"password": "Blooming-Peonies-42"})
    assert r.status_code == 204, r.text
    assert await NewsletterSubscription.find_one({"email": "rose@example.com"}) is None


async def test_account_preference_counts_against_the_sign_up_limit(client, user_factory, settings):
    _, headers = await user_factory(email="aster@example.com", email_verified_at=None)
    limit = int(settings.rate_limit_newsletter_email.split("/")[0])
    for _ in range(limit):
        r = await client.patch(f"{API}/users/me", headers=headers, json={"preferences": {"newsletter": True}})
        assert r.status_code == 200, r.text
    r = await client.patch(f"{API}/users/me", headers=headers, json={"preferences": {"newsletter": True}})
    assert_problem(r, 429, "rate-limited")
    assert await OutboxEmail.find({"to": "aster@example.com", "template": "newsletter_confirm"}).count() == limit
    # Other changes of the profile are not limited by it.
    assert (await client.patch(f"{API}/users/me", headers=headers, json={"first_name": "Aster"})).status_code == 200


async def test_a_confirmation_link_from_before_an_unsubscribe_never_signs_up_again(client, mailbox, settings):
    await client.post(SUBSCRIBE, json={"email": "aster@example.com"})
    old = link_token((await mailbox.wait_for("aster@example.com", "confirm"))[0], "/newsletter/confirm")
    assert (await client.post(f"{API}/newsletter/confirm", json={"token": old})).status_code == 200
    sub = await NewsletterSubscription.find_one({"email": "aster@example.com"})
    unsub = sign_link(settings, "nl-unsub", {"i": sub.id, "c": "link"})
    r = await client.post(f"{API}/newsletter/unsubscribe", params={"token": unsub},
                          data={"List-Unsubscribe": "One-Click"})
    assert r.status_code == 200, r.text

    assert_problem(await client.post(f"{API}/newsletter/confirm", json={"token": old}), 400, "invalid-token")
    assert (await NewsletterSubscription.get(sub.id)).status == "unsubscribed"
    # Signing up again sends a new link, and that one works.
    mailbox.messages.clear()
    await client.post(SUBSCRIBE, json={"email": "aster@example.com"})
    new = link_token((await mailbox.wait_for("aster@example.com", "confirm"))[0], "/newsletter/confirm")
    assert (await client.post(f"{API}/newsletter/confirm", json={"token": new})).json()["status"] == "confirmed"


@pytest.mark.parametrize("query", [
    "token=abc", "token=", "", "token=%FF%FE", "token=" + "a" * 5000, "token=%E2%80%AE" + "a" * 60,
    # well-formed but altered, signed for another purpose, or not an unsubscribe token at all
    "token=" + "A" * 20 + "." + "B" * 43, "token={confirm}", "token=x&token=y", "token=abc&utm_source=mail",
])
async def test_opening_a_bad_unsubscribe_link_redirects_to_the_storefront_page(client, settings, query):
    confirm = sign_link(settings, "nl-confirm", {"i": "nls_x", "t": 1})
    r = await client.get(f"{API}/newsletter/unsubscribe?{query.replace('{confirm}', confirm)}")
    assert r.status_code == 303, r.text
    assert r.headers["location"] == f"{settings.storefront_url}/newsletter/unsubscribe?status=invalid"


async def test_the_one_click_post_keeps_its_problems_for_bad_tokens(client, settings):
    assert_problem(await client.post(f"{API}/newsletter/unsubscribe?token=abc"), 422, "validation-error")
    forged = "A" * 20 + "." + "B" * 43
    assert_problem(await client.post(f"{API}/newsletter/unsubscribe", params={"token": forged}), 400,
                   "invalid-token")
    good = sign_link(settings, "nl-unsub", {"i": "nls_01JD7Z8K4M2N6P8Q0R2S4T6V8W", "c": "link"})
    page = await client.get(f"{API}/newsletter/unsubscribe", params={"token": good})
    assert page.headers["location"] == f"{settings.storefront_url}/newsletter/unsubscribe?token={good}"

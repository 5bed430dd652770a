"""Rotating JWT_SECRET without logging everyone out (JWT_PREVIOUS_SECRETS), and the production settings
that go with it (issue 11 "Operations", issue 7 item 9 for METRICS_TOKEN)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from jose import jwt
from pydantic import ValidationError

from app.config import Settings
from app.core.clock import utcnow
from app.core.security import ALGORITHM, hash_token
from app.services.order_access import order_access_token
from tests.checkout_helpers import NOW, checkout, checkout_body, guest_cart, open_shop
from tests.conftest import login_headers
from tests.factories import make_product
from tests.support import API, bearer, login, new_client, register

OLD = "old-secret-7Jq2vX9pL4mN8rT1wZ5yB3cF6hK0dG2s"
NEW = "new-secret-Q8wE4rT6yU1iO9pA3sD5fG7hJ2kL0zX4"
OLDER = "older-secret-M3nB5vC7xZ9aS1dF4gH6jK8lQ2wE0rT"


def signed_with(token: str, secret: str) -> bool:
    try:
        jwt.decode(token, secret, algorithms=[ALGORITHM], options={"verify_aud": False, "verify_iss": False})
    except Exception:
        return False
    return True


async def test_tokens_signed_with_a_previous_secret_work_until_it_is_dropped(make_settings, app_factory):
    async with app_factory(make_settings(jwt_secret=OLD)) as before, new_client(before) as c:
        account = await register(c)
        email = account["user"]["email"]
        issued = await login(c, email)
    old_access, old_refresh = issued["access_token"], issued["refresh_token"]
    assert signed_with(old_access, OLD)

    # During the rotation: old tokens still work, new ones are signed with the new secret only.
    rotating = make_settings(jwt_secret=NEW, jwt_previous_secrets=[OLDER, OLD])
    async with app_factory(rotating) as during, new_client(during) as c:
        assert (await c.get(f"{API}/users/me", headers=bearer(old_access))).json()["email"] == email
        fresh = (await login(c, email))["access_token"]
        assert signed_with(fresh, NEW) and not signed_with(fresh, OLD)
        # Expiry is still checked on a token signed with a previous secret.
        expired = jwt.encode({"sub": account["user"]["id"], "role": "customer", "sid": "ses_x", "typ": "access",
                              "iat": (utcnow() - timedelta(hours=2)).timestamp(),
                              "exp": int((utcnow() - timedelta(hours=1)).timestamp()),
                              "iss": rotating.jwt_issuer, "aud": rotating.jwt_audience}, OLD, algorithm=ALGORITHM)
        assert (await c.get(f"{API}/users/me", headers=bearer(expired))).status_code == 401

    # After it: the old secret is dropped; its access tokens fail, but nobody is logged out, because
    # refresh tokens are opaque (stored hashed), not signed: the refresh returns a new-secret access token.
    async with app_factory(make_settings(jwt_secret=NEW)) as after, new_client(after) as c:
        assert (await c.get(f"{API}/users/me", headers=bearer(old_access))).status_code == 401
        assert (await c.get(f"{API}/users/me", headers=bearer(fresh))).status_code == 200
        r = await c.post(f"{API}/auth/refresh", json={"refresh_token": old_refresh})
        assert r.status_code == 200, r.text
        assert signed_with(r.json()["access_token"], NEW)


async def test_guest_order_links_survive_a_rotation(make_settings, app_factory, admin):
    """The guest's order token is derived from the server secret; a replay or email sent during the
    rotation must carry the token the guest already has (the one whose hash the order stores)."""
    async with app_factory(make_settings(jwt_secret=OLD)) as before, new_client(before) as c:
        admin_headers = await login_headers(c, admin[0].email)
        await open_shop(before, c, admin_headers)
        cart = await guest_cart(c, await make_product())
        body = checkout_body("pay_on_pickup", guest=True, method="pickup")
        r = await checkout(c, cart, body, key="rotation-replay-key")
        assert r.status_code == 201, r.text
        order_id, token = r.json()["order"]["id"], r.json()["access_token"]

    rotating = make_settings(jwt_secret=NEW, jwt_previous_secrets=[OLD])
    assert order_access_token(rotating, order_id, hash_token(token)) == token
    assert order_access_token(rotating, order_id) != token  # a new order would get a new-secret token
    async with app_factory(rotating) as during, new_client(during) as c:
        during.state.clock = lambda: NOW  # the shop clock of the checkout above (its zone is in the database)
        replay = await checkout(c, cart, body, key="rotation-replay-key")
        assert replay.status_code == 201 and replay.headers["Idempotent-Replayed"] == "true"
        assert replay.json()["access_token"] == token
        r = await c.get(f"{API}/orders/{order_id}", headers={"X-Order-Token": token})
        assert r.status_code == 200 and r.json()["id"] == order_id


STRONG_SECRET = "k3J9-x7Qp2mVb8Lr5Tz1Wc4Yh6Nd0Fs2Gu8Ae"


def prod(**values) -> Settings:
    return Settings(_env_file=None, **{"environment": "production", "mongodb_url": "mongodb://db:27017",
                                       "jwt_secret": STRONG_SECRET, "metrics_token": "scrape-token-0123456789",
                                       **values})


@pytest.mark.parametrize("token", [None, "", "short"])
def test_production_refuses_to_start_without_a_metrics_token(token):
    with pytest.raises(ValidationError, match="METRICS_TOKEN"):
        prod(metrics_token=token)
    assert prod().metrics_token.get_secret_value() == "scrape-token-0123456789"


def test_production_refuses_a_weak_previous_jwt_secret():
    with pytest.raises(ValidationError, match="JWT_PREVIOUS_SECRETS"):
        prod(jwt_previous_secrets=["changeme"])
    assert prod(jwt_previous_secrets=[OLD]).jwt_verify_secrets == [STRONG_SECRET, OLD]


def test_previous_secrets_come_from_a_json_list_in_the_environment(monkeypatch):
    monkeypatch.setenv("JWT_PREVIOUS_SECRETS", f'["{OLD}", "{OLDER}"]')
    s = Settings(_env_file=None)
    assert s.jwt_verify_secrets[1:] == [OLD, OLDER]


async def test_a_rolled_stripe_webhook_secret_verifies_during_stripes_overlap(make_settings, app_factory,
                                                                              stripe_settings):
    """When a webhook signing secret is rolled with an expiry, Stripe signs each event with both secrets
    (two v1 entries in Stripe-Signature) until the old one expires: deploying the new secret alone is enough."""
    import time

    from tests.stripe_double import event, sign

    old_wh, new_wh = "whsec_oldRolledSecret0123456789", "whsec_newRolledSecret9876543210"
    settings = make_settings(**{**stripe_settings, "stripe_webhook_secret": new_wh})
    async with app_factory(settings) as app, new_client(app) as c:
        body = event("customer.created", {"id": "cus_rotation", "object": "customer"})
        ts = int(time.time())
        both = f"{sign(body, old_wh, ts)},v1={sign(body, new_wh, ts).split('v1=')[1]}"
        headers = {"Content-Type": "application/json"}
        r = await c.post(f"{API}/payments/webhook", content=body, headers={**headers, "Stripe-Signature": both})
        assert r.status_code == 200, r.text
        only_old = sign(body, old_wh, ts)
        r = await c.post(f"{API}/payments/webhook", content=body, headers={**headers, "Stripe-Signature": only_old})
        assert r.status_code == 400

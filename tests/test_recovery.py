"""Password reset and email verification: /auth/forgot-password, /reset-password, /verify-email,
/resend-verification — with the emails read from the real SMTP server."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from app.core.clock import utcnow
from app.models.auth import OneTimeToken, TokenPurpose
from app.models.outbox import OutboxEmail
from app.models.user import User
from tests.conftest import PASSWORD, create_user
from tests.services import body_text
from tests.support import API, STRONG, assert_problem, bearer, login, register, rewrite, token_from_email

NEW_PASSWORD = "Sunflower-Fields-88"


async def _reset_token(client, mailbox, email: str) -> str:
    r = await client.post(f"{API}/auth/forgot-password", json={"email": email})
    assert r.status_code == 202, r.text
    msgs = await mailbox.wait_for(email, "reset your")
    return token_from_email(msgs[-1])


async def test_forgot_password_answers_the_same_for_known_and_unknown_emails(client, mailbox):
    await create_user(email="poppy@example.com")
    known = await client.post(f"{API}/auth/forgot-password", json={"email": "Poppy@Example.com"})
    unknown = await client.post(f"{API}/auth/forgot-password", json={"email": "ghost@example.com"})
    assert known.status_code == unknown.status_code == 202
    assert known.json() == unknown.json()
    msg = (await mailbox.wait_for("poppy@example.com", "reset your"))[0]
    text = body_text(msg)
    token = token_from_email(msg)
    assert f"http://localhost:5173/reset-password?token={token}" in text and "60 minutes" in text
    assert await OutboxEmail.find(OutboxEmail.to == "ghost@example.com").count() == 0
    stored = await OneTimeToken.find_one(OneTimeToken.purpose == TokenPurpose.password_reset)
    assert stored.token_hash != token and len(stored.token_hash) == 64  # stored hashed
    assert timedelta(minutes=59) < stored.expires_at - utcnow() <= timedelta(minutes=60)


async def test_forgot_password_rejects_malformed_bodies(client):
    for body in ({"email": {"$ne": ""}}, {"email": "x@example.com", "extra": 1}, {}):
        assert_problem(await client.post(f"{API}/auth/forgot-password", json=body), 422)


async def test_reset_password_sets_the_password_once_and_ends_every_session(client, mailbox):
    user = await create_user(email="tulip@example.com")
    old = await login(client, user.email, PASSWORD)
    token = await _reset_token(client, mailbox, user.email)

    r = await client.post(f"{API}/auth/reset-password", json={"token": token, "password": NEW_PASSWORD})
    assert r.status_code == 204, r.text
    client.cookies.clear()
    assert_problem(await client.get(f"{API}/users/me", headers=bearer(old["access_token"])), 401)
    assert_problem(await client.post(f"{API}/auth/refresh", json={"refresh_token": old["refresh_token"]}), 401)
    r = await client.post(f"{API}/auth/login", json={"email": user.email, "password": PASSWORD})
    assert_problem(r, 401)
    await login(client, user.email, NEW_PASSWORD)

    r = await client.post(f"{API}/auth/reset-password", json={"token": token, "password": "Another-Meadow-55"})
    assert_problem(r, 400, "invalid-token")
    await login(client, user.email, NEW_PASSWORD)


async def test_expired_reset_token_is_refused(client, mailbox):
    user = await create_user(email="aster@example.com")
    token = await _reset_token(client, mailbox, user.email)
    record = await OneTimeToken.find_one(OneTimeToken.user_id == user.id)
    await rewrite(OneTimeToken, record.id, expires_at=utcnow() - timedelta(seconds=1))
    r = await client.post(f"{API}/auth/reset-password", json={"token": token, "password": NEW_PASSWORD})
    assert_problem(r, 400, "invalid-token")
    await login(client, user.email, PASSWORD)  # unchanged


async def test_a_refused_new_password_does_not_spend_the_reset_link(client, mailbox):
    user = await create_user(email="zinnia@example.com")
    token = await _reset_token(client, mailbox, user.email)
    r = await client.post(f"{API}/auth/reset-password", json={"token": token, "password": "zinnia@example.com"})
    assert_problem(r, 422, "weak-password")
    r = await client.post(f"{API}/auth/reset-password", json={"token": token, "password": "password123"})
    assert_problem(r, 422, "weak-password")
    r = await client.post(f"{API}/auth/reset-password", json={"token": token, "password": NEW_PASSWORD})
    assert r.status_code == 204, r.text
    await login(client, user.email, NEW_PASSWORD)


async def test_a_newer_reset_link_replaces_the_older_one(client, mailbox):
    user = await create_user(email="violet@example.com")
    first = await _reset_token(client, mailbox, user.email)
    mailbox.messages.clear()
    second = await _reset_token(client, mailbox, user.email)
    assert first != second
    r = await client.post(f"{API}/auth/reset-password", json={"token": first, "password": NEW_PASSWORD})
    assert_problem(r, 400, "invalid-token")
    r = await client.post(f"{API}/auth/reset-password", json={"token": second, "password": NEW_PASSWORD})
    assert r.status_code == 204


async def test_concurrent_resets_with_one_token_succeed_once(client, mailbox):
    user = await create_user(email="orchid@example.com")
    token = await _reset_token(client, mailbox, user.email)
    passwords = [f"Concurrent-Orchid-{i:02d}" for i in range(5)]
    responses = await asyncio.gather(*(client.post(f"{API}/auth/reset-password",
                                                   json={"token": token, "password": p}) for p in passwords))
    assert sorted(r.status_code for r in responses) == [204, 400, 400, 400, 400]
    winner = passwords[[r.status_code for r in responses].index(204)]
    await login(client, user.email, winner)


async def test_reset_with_unknown_or_malformed_token(client):
    r = await client.post(f"{API}/auth/reset-password", json={"token": "A" * 43, "password": NEW_PASSWORD})
    assert_problem(r, 400, "invalid-token")
    r = await client.post(f"{API}/auth/reset-password", json={"token": "bad token!", "password": NEW_PASSWORD})
    assert_problem(r, 422)
    r = await client.post(f"{API}/auth/reset-password", json={"token": "A" * 43, "password": "short"})
    assert_problem(r, 422)


async def test_forgot_password_of_a_deactivated_account_sends_nothing(client, mailbox):
    user = await create_user(email="inactive@example.com", is_active=False)
    r = await client.post(f"{API}/auth/forgot-password", json={"email": user.email})
    assert r.status_code == 202
    assert await OutboxEmail.find(OutboxEmail.to == user.email).count() == 0


async def test_verify_email_with_the_welcome_token(client, mailbox):
    body = await register(client, "marigold@example.com")
    assert body["user"]["email_verified"] is False
    msg = (await mailbox.wait_for("marigold@example.com", "welcome"))[0]
    token = token_from_email(msg)
    assert f"/verify-email?token={token}" in body_text(msg) and "48 hours" in body_text(msg)

    r = await client.post(f"{API}/auth/verify-email", json={"token": token})
    assert r.status_code == 200, r.text
    assert r.json()["email_verified"] is True and r.json()["email"] == "marigold@example.com"
    me = await client.get(f"{API}/users/me", headers=bearer(body["tokens"]["access_token"]))
    assert me.json()["email_verified"] is True
    assert (await User.get(body["user"]["id"])).email_verified_at is not None

    assert_problem(await client.post(f"{API}/auth/verify-email", json={"token": token}), 400, "invalid-token")
    assert_problem(await client.post(f"{API}/auth/verify-email", json={"token": "B" * 43}), 400, "invalid-token")
    assert_problem(await client.post(f"{API}/auth/verify-email", json={"token": {"$ne": ""}}), 422)


async def test_a_reset_token_does_not_verify_an_email(client, mailbox):
    user = await create_user(email="cosmos@example.com", email_verified_at=None)
    token = await _reset_token(client, mailbox, user.email)
    assert_problem(await client.post(f"{API}/auth/verify-email", json={"token": token}), 400, "invalid-token")


async def test_resend_verification_sends_a_fresh_token_that_replaces_the_old(client, mailbox):
    body = await register(client, "peony@example.com")
    first = token_from_email((await mailbox.wait_for("peony@example.com", "welcome"))[0])

    r = await client.post(f"{API}/auth/resend-verification", json={"email": "PEONY@example.com"})
    assert r.status_code == 202
    second = token_from_email((await mailbox.wait_for("peony@example.com", "confirm your email address"))[0])
    assert second != first
    assert_problem(await client.post(f"{API}/auth/verify-email", json={"token": first}), 400)
    r = await client.post(f"{API}/auth/verify-email", json={"token": second})
    assert r.status_code == 200 and r.json()["id"] == body["user"]["id"]

    # Verified, unknown: the same 202 and nothing queued.
    before = await OutboxEmail.count()
    for email in ("peony@example.com", "nobody@example.com"):
        r = await client.post(f"{API}/auth/resend-verification", json={"email": email})
        assert r.status_code == 202 and r.json()["detail"].startswith("If this account")
    assert await OutboxEmail.count() == before


async def test_registration_then_login_still_works_with_unverified_email(client):
    body = await register(client, "unverified@example.com")
    tokens = await login(client, "unverified@example.com", STRONG)
    me = await client.get(f"{API}/users/me", headers=bearer(tokens["access_token"]))
    assert me.json()["id"] == body["user"]["id"] and me.json()["email_verified"] is False

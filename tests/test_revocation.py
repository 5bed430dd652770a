"""Revocation is consistent: logout ends that session's access tokens at once, parallel refreshes with one
token rotate it exactly once, and every security event voids the outstanding one-time links."""

from __future__ import annotations

import asyncio

import pytest

from app.models.auth import RefreshSession
from app.models.user import Role, User
from tests.conftest import PASSWORD, create_user, login_headers
from tests.support import API, assert_problem, bearer, login, new_client, random_ip, token_from_email

NEW_PASSWORD = "Sunflower-Fields-88"


async def test_logout_ends_the_access_token_of_that_session_at_once(client):
    user = await create_user()
    mine = await login(client, user.email, PASSWORD)
    other = await login(client, user.email, PASSWORD)
    client.cookies.clear()
    # A refresh rotates the session: the access token issued before it belongs to the same session.
    r = await client.post(f"{API}/auth/refresh", json={"refresh_token": mine["refresh_token"]})
    assert r.status_code == 200, r.text
    rotated = r.json()
    client.cookies.clear()
    for token in (mine["access_token"], rotated["access_token"]):
        assert (await client.get(f"{API}/users/me", headers=bearer(token))).status_code == 200

    r = await client.post(f"{API}/auth/logout", headers=bearer(rotated["access_token"]))
    assert r.status_code == 204
    for token in (mine["access_token"], rotated["access_token"]):
        assert_problem(await client.get(f"{API}/users/me", headers=bearer(token)), 401, "unauthorized")
    # The user's other session is untouched.
    assert (await client.get(f"{API}/users/me", headers=bearer(other["access_token"]))).status_code == 200


async def test_logout_with_the_refresh_cookie_alone_ends_the_access_token_too(client):
    user = await create_user()
    tokens = await login(client, user.email, PASSWORD)  # the client keeps the refresh cookie
    assert (await client.post(f"{API}/auth/logout")).status_code == 204
    assert_problem(await client.get(f"{API}/users/me", headers=bearer(tokens["access_token"])), 401)


async def test_a_reused_refresh_token_also_ends_the_familys_access_tokens(client):
    user = await create_user()
    stolen = await login(client, user.email, PASSWORD)
    client.cookies.clear()
    r = await client.post(f"{API}/auth/refresh", json={"refresh_token": stolen["refresh_token"]})
    newest = r.json()
    client.cookies.clear()
    assert_problem(await client.post(f"{API}/auth/refresh", json={"refresh_token": stolen["refresh_token"]}), 401)
    assert_problem(await client.get(f"{API}/users/me", headers=bearer(newest["access_token"])), 401)


async def test_parallel_refreshes_with_one_token_rotate_it_exactly_once(client):
    user = await create_user()
    tokens = await login(client, user.email, PASSWORD)
    client.cookies.clear()
    responses = await asyncio.gather(*(
        client.post(f"{API}/auth/refresh", json={"refresh_token": tokens["refresh_token"]}) for _ in range(10)))
    winners = [r for r in responses if r.status_code == 200]
    assert len(winners) == 1, [r.status_code for r in responses]
    for r in responses:
        if r is not winners[0]:
            assert_problem(r, 401, "invalid-refresh-token")
    # The losers count as reuse of a rotated token: the whole family ends, the winner's tokens too.
    sessions = await RefreshSession.find(RefreshSession.user_id == user.id).to_list()
    assert len(sessions) == 2 and all(s.revoked_at is not None for s in sessions)
    assert_problem(await client.post(f"{API}/auth/refresh",
                                     json={"refresh_token": winners[0].json()["refresh_token"]}), 401)


# --- one-time links and security events -----------------------------------------------------------------------
async def _links(app, mailbox, email: str) -> tuple[str, str]:
    """(reset token, verification token) as emailed; each request from its own client address."""
    async with new_client(app, random_ip()) as c:
        assert (await c.post(f"{API}/auth/forgot-password", json={"email": email})).status_code == 202
        assert (await c.post(f"{API}/auth/resend-verification", json={"email": email})).status_code == 202
    reset = token_from_email((await mailbox.wait_for(email, "reset your"))[-1])
    verify = token_from_email((await mailbox.wait_for(email, "confirm your email"))[-1])
    return reset, verify


async def _change_password(client, user, admin_headers):
    headers = await login_headers(client, user.email)
    r = await client.post(f"{API}/users/me/password", headers=headers,
                          json={"current_password": PASSWORD, "new_password": NEW_PASSWORD})
    assert r.status_code == 200, r.text


async def _deactivate_and_reactivate(client, user, admin_headers):
    for active in (False, True):
        r = await client.patch(f"{API}/admin/users/{user.id}", headers=admin_headers, json={"is_active": active})
        assert r.status_code == 200 and r.json()["is_active"] is active, r.text


async def _role_change(client, user, admin_headers):
    r = await client.patch(f"{API}/admin/users/{user.id}", headers=admin_headers, json={"role": "staff"})
    assert r.status_code == 200 and r.json()["role"] == "staff", r.text


async def _delete_account(client, user, admin_headers):
    headers = await login_headers(client, user.email)
    r = await client.request("DELETE", f"{API}/users/me", headers=headers, json={"password": PASSWORD})
    assert r.status_code == 204, r.text


async def _logout_all(client, user, admin_headers):
    headers = await login_headers(client, user.email)
    assert (await client.post(f"{API}/auth/logout-all", headers=headers)).status_code == 204


@pytest.mark.parametrize("event", [_change_password, _deactivate_and_reactivate, _role_change, _delete_account,
                                   _logout_all])
async def test_a_security_event_voids_every_outstanding_link(app, client, mailbox, event):
    user = await create_user(email_verified_at=None)
    admin = await create_user(Role.admin)
    admin_headers = await login_headers(client, admin.email)
    reset, verify = await _links(app, mailbox, user.email)

    await event(client, user, admin_headers)

    r = await client.post(f"{API}/auth/reset-password", json={"token": reset, "password": "Another-Meadow-55"})
    assert_problem(r, 400, "invalid-token")
    assert_problem(await client.post(f"{API}/auth/verify-email", json={"token": verify}), 400, "invalid-token")
    stored = await User.get(user.id)
    assert stored.email_verified_at is None
    if event is not _delete_account:  # the password is whatever the event left, not the link's
        expected = NEW_PASSWORD if event is _change_password else PASSWORD
        await login(client, stored.email, expected)


async def test_a_password_reset_voids_the_other_outstanding_links(app, client, mailbox):
    user = await create_user(email_verified_at=None)
    reset, verify = await _links(app, mailbox, user.email)
    r = await client.post(f"{API}/auth/reset-password", json={"token": reset, "password": NEW_PASSWORD})
    assert r.status_code == 204, r.text
    assert_problem(await client.post(f"{API}/auth/verify-email", json={"token": verify}), 400, "invalid-token")


async def test_links_requested_after_a_security_event_work(app, client, mailbox):
    user = await create_user(email_verified_at=None)
    await _logout_all(client, user, None)
    reset, verify = await _links(app, mailbox, user.email)
    r = await client.post(f"{API}/auth/verify-email", json={"token": verify})
    assert r.status_code == 200 and r.json()["email_verified"] is True, r.text
    r = await client.post(f"{API}/auth/reset-password", json={"token": reset, "password": NEW_PASSWORD})
    assert r.status_code == 204, r.text
    await login(client, user.email, NEW_PASSWORD)

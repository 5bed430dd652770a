"""What the published contract promises, checked over HTTP: 400/415 for bodies that are not JSON, a 405 whose
Allow names every method of the path, Location on 201, the browser session mode without a readable
refresh token, and the offline docs pages under a content-security policy."""

from __future__ import annotations

from tests.conftest import PASSWORD, create_user
from tests.support import API, assert_problem


async def test_a_body_that_is_not_json_is_415(client):
    r = await client.post(f"{API}/auth/login", content=b'{"email": "a@example.com", "password": "x"}',
                          headers={"content-type": "text/plain"})
    assert_problem(r, 415, "unsupported-media-type")
    r = await client.post(f"{API}/auth/login", content=b"email=a@example.com")  # no content type at all
    assert_problem(r, 415, "unsupported-media-type")


async def test_a_missing_json_body_is_still_422(client):
    r = await client.post(f"{API}/auth/login", headers={"content-type": "application/json"})
    assert_problem(r, 422, "validation-error")


async def test_405_allow_lists_every_method_of_the_path(client):
    # GET and DELETE /cart are two routes: Starlette's own 405 named only the first one's method.
    r = await client.put(f"{API}/cart")
    assert_problem(r, 405)
    assert r.headers["allow"] == "DELETE, GET"
    r = await client.post(f"{API}/users/me/addresses/adr_01JD7Z8K4M2N6P8Q0R2S4T6V8W")
    assert r.headers["allow"] == "DELETE, GET, PATCH"


async def test_options_is_405_with_the_documented_methods(client, app):
    r = await client.options(f"{API}/products/facets")
    assert_problem(r, 405)
    documented = {m.upper() for m in app.openapi()["paths"][f"{API}/products/facets"]}
    assert set(r.headers["allow"].split(", ")) == documented


async def test_201_carries_location_of_the_new_resource(client, customer, admin):
    _, headers = admin
    r = await client.post(f"{API}/admin/categories", json={"name": "Peonies"}, headers=headers)
    assert r.status_code == 201, r.text
    assert r.headers["location"] == f"{API}/admin/categories/{r.json()['id']}"
    assert (await client.get(r.headers["location"], headers=headers)).status_code == 200
    _, headers = customer
    address = {"first_name": "Ada", "last_name": "Lovelace", "line1": "1 Main St", "city": "New York",
               "state": "NY", "zip": "10012", "phone": "+1 212 555 0134"}
    r = await client.post(f"{API}/users/me/addresses", json=address, headers=headers)
    assert r.status_code == 201, r.text
    assert (await client.get(r.headers["location"], headers=headers)).json()["id"] == r.json()["id"]


async def test_register_points_location_at_the_profile(client):
    r = await client.post(f"{API}/auth/register", json={"email": "new@example.com", "password": "Blooming-Tulips-9",
                                                        "first_name": "New", "last_name": "Customer"})
    assert r.status_code == 201, r.text
    assert r.headers["location"] == f"{API}/users/me"


async def test_cookie_session_mode_keeps_the_refresh_token_out_of_bodies(client):
    user = await create_user()
    r = await client.post(f"{API}/auth/login", json={"email": user.email, "password": PASSWORD},
                          headers={"X-Session-Mode": "cookie"})
    assert r.status_code == 200, r.text
    assert r.json()["tokens"]["refresh_token"] is None and r.json()["tokens"]["access_token"]
    cookie = client.cookies.get("af_refresh", path="/api/v1/auth")
    assert cookie and cookie not in r.text
    # The browser refreshes with the cookie alone, still in cookie mode: a new cookie, no token in the body.
    r = await client.post(f"{API}/auth/refresh", headers={"X-Session-Mode": "cookie"})
    assert r.status_code == 200, r.text
    assert r.json()["refresh_token"] is None
    rotated = client.cookies.get("af_refresh", path="/api/v1/auth")
    assert rotated and rotated != cookie and rotated not in r.text
    # The old cookie value no longer works (rotation): the cookie really carried the session.
    client.cookies.clear()
    r = await client.post(f"{API}/auth/refresh", json={"refresh_token": rotated})
    assert r.status_code == 200 and r.json()["refresh_token"]  # body mode (default) returns it


async def test_body_session_mode_is_the_default_for_mobile_clients(client):
    user = await create_user()
    r = await client.post(f"{API}/auth/login", json={"email": user.email, "password": PASSWORD})
    assert r.json()["tokens"]["refresh_token"]
    r = await client.post(f"{API}/auth/login", json={"email": user.email, "password": PASSWORD},
                          headers={"X-Session-Mode": "sometimes"})
    assert_problem(r, 422, "validation-error")


async def test_docs_pages_use_local_assets_under_a_csp(client):
    for page, asset in (("/docs", "swagger-ui-bundle.js"), ("/redoc", "redoc.standalone.js")):
        r = await client.get(page)
        assert r.status_code == 200
        csp = r.headers["content-security-policy"]
        assert "default-src 'none'" in csp and "connect-src 'self'" in csp
        assert "https://" not in r.text.replace("https://amourflorals.com", "")  # no CDN
        nonce = csp.split("'nonce-")[1].split("'")[0]
        assert f'<script nonce="{nonce}">' in r.text or page == "/redoc"
        assert f"/docs/assets/{asset}" in r.text
        js = await client.get(f"/docs/assets/{asset}")
        assert js.status_code == 200 and len(js.content) > 100_000
    r1, r2 = await client.get("/docs"), await client.get("/docs")
    assert r1.headers["content-security-policy"] != r2.headers["content-security-policy"]  # a nonce per page

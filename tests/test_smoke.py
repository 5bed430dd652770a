async def test_health(client):
    r = await client.get("/api/v1/health")
    assert r.status_code == 200 and r.json() == {"status": "ok"}
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["x-request-id"]


async def test_register_login_me(client, mailbox):
    r = await client.post("/api/v1/auth/register", json={
        "email": "Rose@Example.com", "password": "Velvet-Tulips-2026", "first_name": "Rose", "last_name": "Petal"})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["user"]["email"] == "rose@example.com"
    headers = {"Authorization": f"Bearer {body['tokens']['access_token']}"}
    r = await client.get("/api/v1/users/me", headers=headers)
    assert r.status_code == 200 and r.json()["first_name"] == "Rose"
    msgs = await mailbox.wait_for("rose@example.com", "confirm")
    assert len(msgs) == 1


async def test_streamed_body_over_the_cap_is_413_problem(client):
    async def chunks():
        for _ in range(40):
            yield b"x" * 65536

    r = await client.post("/api/v1/auth/login", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["detail"] == "The request body is larger than 1048576 bytes."

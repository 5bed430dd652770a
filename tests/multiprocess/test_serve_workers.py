"""``amour-florals serve --workers N`` on the embedded database (MONGODB_URL unset) with Redis: every worker
serves live events, whichever worker made the change; SIGTERM closes the streams and stops cleanly. Several
workers without Redis are refused."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from app.cli import cli
from app.config import get_settings
from tests.events_support import Stream
from tests.multiprocess.conftest import ROOT, cluster_env, start_api, stop, wait_ready
from tests.support import API, STRONG

pytestmark = pytest.mark.multiprocess
ADMIN = "owner@example.com"


@pytest.fixture(scope="module")
def served(redis_url, smtp_server, stripe_server, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("serve")
    env = cluster_env("", redis_url, smtp_server.port, stripe_server[1], "amour_florals", tmp)
    del env["MONGODB_URL"]  # the embedded database, in EMBEDDED_DB_DIR, started once by `serve`
    amour = str(Path(sys.executable).with_name("amour-florals"))
    done = subprocess.run([amour, "create-admin", "--email", ADMIN, "--password", STRONG], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    url, proc = start_api(env, tmp / "serve.log", amour, "serve", "--workers", "2")
    try:
        wait_ready(url, proc, tmp / "serve.log")
        yield url, proc, tmp
    finally:
        stop([proc])


async def test_every_worker_serves_live_events_and_sigterm_closes_them(served):
    url, proc, tmp = served
    async with httpx.AsyncClient(base_url=url, timeout=30) as c:
        r = await c.post(f"{API}/auth/login", json={"email": ADMIN, "password": STRONG})
        assert r.status_code == 200, r.text
        admin = {"Authorization": f"Bearer {r.json()['tokens']['access_token']}"}
        cat = await c.post(f"{API}/admin/categories", headers=admin, json={"name": "Roses"})
        assert cat.status_code == 201, cat.text
        r = await c.post(f"{API}/admin/products", headers=admin, json={
            "name": "Garden Roses", "category_id": cat.json()["id"], "status": "active",
            "sizes": [{"code": "standard", "name": "Standard", "price": 4500, "stock": 2}]})
        assert r.status_code == 201, r.text
        product_id = r.json()["id"]
        ready = (await c.get(f"{API}/health/ready")).json()
        assert (ready["checks"]["mongodb"], ready["events"]["transport"], ready["events"]["status"]) == (
            "ok", "redis", "ok")

    # Separate connections, spread over the workers by the kernel; the changes are made on any of them.
    clients = [httpx.AsyncClient(base_url=url, timeout=30) for _ in range(4)]
    streams = [Stream(c, f"{API}/events/stock?product_id={product_id}") for c in clients]
    try:
        for s in streams:
            await s.__aenter__()
            assert (await s.data("stock"))["available"] == 2
        for delta, expected in ((3, 5), (-1, 4), (2, 6)):
            async with httpx.AsyncClient(base_url=url, timeout=30) as c:  # a new connection: any worker
                r = await c.post(f"{API}/admin/products/{product_id}/stock", headers=admin,
                                 json={"size": "standard", "delta": delta, "reason": "correction"})
                assert r.status_code == 201, r.text
            for s in streams:
                assert (await s.data("stock"))["available"] == expected

        proc.send_signal(signal.SIGTERM)
        for s in streams:
            assert await s.data("end") == {"reason": "shutdown"}
            await s.closed()
        assert await asyncio.to_thread(proc.wait, 30) == 0
        assert list((tmp / "var" / "mongo").glob("*.pid")) == []  # the embedded database stopped with it
    finally:
        for s in streams:
            await s.__aexit__(None, None, None)
        for c in clients:
            await c.aclose()


def test_sigterm_stops_a_single_worker_and_its_embedded_database(redis_url, smtp_server, stripe_server, tmp_path):
    """uvicorn re-raises SIGTERM after its shutdown; the embedded database must not outlive ``serve``."""
    env = cluster_env("", redis_url, smtp_server.port, stripe_server[1], "amour_florals", tmp_path)
    del env["MONGODB_URL"]
    url, proc = start_api(env, tmp_path / "serve.log", str(Path(sys.executable).with_name("amour-florals")), "serve")
    try:
        wait_ready(url, proc, tmp_path / "serve.log")
        (pid_file,) = (tmp_path / "var" / "mongo").glob("*.pid")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        assert not pid_file.exists()
    finally:
        stop([proc])


def test_several_workers_without_redis_are_refused(monkeypatch):
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.setenv("REDIS_URL", "")
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(cli, ["serve", "--workers", "2"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 2 and "needs REDIS_URL" in result.output

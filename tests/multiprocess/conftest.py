"""Two real uvicorn processes (A and B) on one database, one Redis, one SMTP sink and the Stripe double, each
running the background jobs, as a deployment runs several API processes. The test process reaches the same
database through Beanie to write test data and read outcomes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from pymongo import MongoClient

from app.config import Settings
from app.core.embedded_mongo import free_port
from app.models.db import connect
from tests.events_support import WAIT
from tests.stripe_fixtures import STRIPE_KEY, WEBHOOK_SECRET

ROOT = Path(__file__).resolve().parents[2]
PROCESSES = 2


@dataclass
class Cluster:
    urls: list[str]
    db: str
    settings: Settings
    logs: list[Path]

    def client(self, i: int) -> httpx.AsyncClient:
        # Idle connections expire on our side first (uvicorn closes them after --timeout-keep-alive): no request
        # is ever sent on a connection the server is closing.
        return httpx.AsyncClient(base_url=self.urls[i], timeout=30, limits=httpx.Limits(keepalive_expiry=2.0))


def cluster_env(mongo_url: str, redis_url: str, smtp_port: int, stripe_base: str, db: str, tmp: Path,
                **extra: str) -> dict[str, str]:
    """The environment of an API process: every setting as a variable, as in a deployment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MONGODB_", "REDIS_", "SMTP_", "STRIPE_"))}
    env.update(ENVIRONMENT="test", MONGODB_URL=mongo_url, MONGODB_DB=db, REDIS_URL=redis_url,
               SMTP_HOST="127.0.0.1", SMTP_PORT=str(smtp_port), STRIPE_SECRET_KEY=STRIPE_KEY,
               STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET, STRIPE_API_BASE=stripe_base, STRIPE_MAX_NETWORK_RETRIES="0",
               WORKER_POLL_SECONDS="0.1", LOG_JSON="false", LOG_LEVEL="WARNING", REFRESH_COOKIE_SECURE="false",
               EMBEDDED_DB_DIR=str(tmp / "var"), MEDIA_DIR=str(tmp / "media"), RATE_LIMIT_DEFAULT="100000/minute",
               RATE_LIMIT_LOGIN_IP="100000/minute", PICKUP_SLOT_CAPACITY="500", RECONCILE_AFTER_MINUTES="1",
               LOW_STOCK_ALERT_EMAIL="florist@amourflorals.test", EVENTS_PING_SECONDS="1",
               PYTHONUNBUFFERED="1", **extra)
    return env


def wait_ready(url: str, proc: subprocess.Popen[Any], log: Path, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url} exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            last = httpx.get(f"{url}/api/v1/health/ready", timeout=5)
            if last.status_code == 200:
                return
            last = last.text
        except httpx.HTTPError as exc:
            last = repr(exc)
        time.sleep(0.1)
    raise RuntimeError(f"{url} not ready within {timeout}s ({last}):\n{log.read_text()[-3000:]}")


def stop(procs: list[subprocess.Popen[Any]]) -> None:
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout=5)


def start_api(env: dict[str, str], log: Path, *args: str) -> tuple[str, subprocess.Popen[Any]]:
    """One API process on a free port (``args``: a command instead of plain uvicorn); waits until ready."""
    port = free_port()
    cmd = list(args) or [sys.executable, "-m", "uvicorn", "app.main:app_factory", "--factory", "--no-access-log",
                         "--timeout-graceful-shutdown", "10", "--timeout-keep-alive", "30", "--host", "127.0.0.1"]
    proc = subprocess.Popen([*cmd, "--port", str(port)], cwd=ROOT, env=env, stdout=log.open("wb"),
                            stderr=subprocess.STDOUT)
    return f"http://127.0.0.1:{port}", proc


@pytest.fixture(scope="module")
def processes(mongo_url, redis_url, smtp_server, stripe_server, tmp_path_factory) -> Any:
    _, stripe_base = stripe_server
    tmp = tmp_path_factory.mktemp("cluster")
    db = f"mp_{uuid.uuid4().hex[:10]}"
    env = cluster_env(mongo_url, redis_url, smtp_server.port, stripe_base, db, tmp)
    started = [start_api(env, tmp / f"api-{i}.log") for i in range(PROCESSES)]
    try:
        for i, (url, proc) in enumerate(started):
            wait_ready(url, proc, tmp / f"api-{i}.log")
        yield [url for url, _ in started], db, [tmp / f"api-{i}.log" for i in range(PROCESSES)]
    finally:
        stop([proc for _, proc in started])
        with MongoClient(mongo_url) as mongo:
            mongo.drop_database(db)


@pytest.fixture(scope="module")
async def cluster(processes, mongo_url) -> AsyncIterator[Cluster]:
    urls, db, logs = processes
    settings = Settings(_env_file=None, mongodb_url=mongo_url, mongodb_db=db, environment="test")
    client = await connect(settings, mongo_url)  # Beanie in the test process, on the same database
    try:
        yield Cluster(urls, db, settings, logs)
    finally:
        await client.close()


__all__ = ["WAIT", "Cluster", "cluster_env", "stop", "wait_ready"]

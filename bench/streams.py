"""Live streams: the memory one API process needs per idle stream, and the latency from a stock change (an
admin HTTP request) to its event on every one of N open streams.

    .venv/bin/python bench/streams.py [--streams 1000] [--changes 10] [--redis redis://127.0.0.1:6379/0]

One uvicorn process (uvloop, httptools) on an embedded database; all streams watch one product. The
process's resident memory (VmRSS) is read before and after opening the streams. Each change is an HTTP
``POST /admin/products/{id}/stock``; the latency of one stream is the time from sending that request to that
stream receiving the event. The client is one Python process reading every stream on raw sockets, so the
figures include its own delay in going through N sockets (an upper bound for the server's share). Loopback
only, bounded.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.core.embedded_mongo import EmbeddedMongo, free_port  # noqa: E402

DB = "bench_streams"
UVICORN = ["--host", "127.0.0.1", "--workers", "1", "--loop", "uvloop", "--http", "httptools",
           "--no-access-log", "--log-level", "warning"]


async def prepare(url: str) -> tuple[str, str]:
    """One product (5 units) and a staff account; returns (product id, bearer token)."""
    from app.config import Settings
    from app.core.security import create_access_token
    from app.models.catalog import Product, ProductStatus, Size
    from app.models.db import connect
    from app.models.user import Role, User

    settings = Settings(_env_file=None, mongodb_db=DB)
    client = await connect(settings, url)
    await client.drop_database(DB)
    client = await connect(settings, url)
    product = await Product(name="Bench Bouquet", slug="bench-bouquet", category_id="cat_none",
                            status=ProductStatus.active, sizes=[Size(code="standard", name="Standard", price=4500)],
                            stock={"standard": 5}, stock_total=5, price_min=4500).insert()
    staff = await User(email="bench@example.com", first_name="Bench", last_name="Staff", role=Role.staff).insert()
    token, _ = create_access_token(settings, user_id=staff.id, role="staff", session_id="ses_bench")
    await client.close()
    return product.id, token


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def serve(env: dict[str, str]) -> tuple[subprocess.Popen, str]:
    port = free_port()
    inherited = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "app.main:app_factory", "--factory", *UVICORN,
                             "--port", str(port)], cwd=ROOT, env={**inherited, **env}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if httpx.get(base + "/api/v1/health/ready", timeout=2).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"server did not start: {proc.stderr.read().decode()[-2000:] if proc.stderr else ''}")


class Watcher:
    """One stream on a raw socket (a light client: httpx would cost more than the server): after the first event,
    records when each later ``available`` value arrived. Events are found in the bytes as they come (each
    is one chunk of the chunked response)."""

    FIELD = re.compile(rb'"available":(\d+)')

    def __init__(self) -> None:
        self.ready = asyncio.Event()
        self.seen: dict[int, float] = {}
        self.arrived: dict[int, asyncio.Event] = {}

    async def run(self, host: str, port: int, path: str) -> None:
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept: text/event-stream\r\n\r\n".encode())
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200"), head[:80]
        try:
            while chunk := await reader.read(65536):
                for match in self.FIELD.finditer(chunk):
                    if not self.ready.is_set():
                        self.ready.set()
                        continue
                    available = int(match.group(1))
                    self.seen[available] = time.perf_counter()
                    self.arrived.setdefault(available, asyncio.Event()).set()
        finally:
            writer.close()

    async def wait(self, available: int) -> None:
        await self.arrived.setdefault(available, asyncio.Event()).wait()


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))]


async def bench(base: str, pid: int, product_id: str, token: str, streams: int, changes: int) -> None:
    url = f"/api/v1/events/stock?product_id={product_id}"
    host, port = base.removeprefix("http://").split(":")
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        for _ in range(3):  # warm-up: one stream open and closed, a few requests
            w = Watcher()
            task = asyncio.create_task(w.run(host, int(port), url))
            await asyncio.wait_for(w.ready.wait(), 30)
            task.cancel()
            await client.get(f"/api/v1/products/{product_id}")
        await asyncio.sleep(1)
        before = rss_kib(pid)
        watchers = [Watcher() for _ in range(streams)]
        tasks = []
        t0 = time.perf_counter()
        for i, w in enumerate(watchers):
            tasks.append(asyncio.create_task(w.run(host, int(port), url)))
            if i % 100 == 99:
                await asyncio.gather(*(x.ready.wait() for x in watchers[i - 99:i + 1]))
        await asyncio.wait_for(asyncio.gather(*(w.ready.wait() for w in watchers)), 120)
        opened = time.perf_counter() - t0
        await asyncio.sleep(2)
        after = rss_kib(pid)
        print(f"{streams} idle streams open in {opened:.1f}s; server RSS {before / 1024:.0f} MiB -> "
              f"{after / 1024:.0f} MiB: {(after - before) / streams:.1f} KiB per stream")

        headers = {"Authorization": f"Bearer {token}"}
        all_latencies: list[float] = []
        request_ms: list[float] = []
        for k in range(changes):
            expected = 5 + k + 1
            sent = time.perf_counter()
            r = await client.post(f"/api/v1/admin/products/{product_id}/stock", headers=headers,
                                  json={"size": "standard", "delta": 1, "reason": "restock"})
            request_ms.append((time.perf_counter() - sent) * 1000)
            assert r.status_code == 201, r.text
            await asyncio.wait_for(asyncio.gather(*(w.wait(expected) for w in watchers)), 60)
            latencies = [(w.seen[expected] - sent) * 1000 for w in watchers]
            all_latencies += latencies
            print(f"change {k + 1}: first {min(latencies):.1f} ms, p50 {pct(latencies, 0.5):.1f} ms, "
                  f"p95 {pct(latencies, 0.95):.1f} ms, last {max(latencies):.1f} ms")
            await asyncio.sleep(0.5)
        print(f"stock change -> event on {streams} streams, {changes} changes: "
              f"p50 {pct(all_latencies, 0.5):.1f} ms, p95 {pct(all_latencies, 0.95):.1f} ms, "
              f"max {max(all_latencies):.1f} ms (the change request itself: p50 "
              f"{statistics.median(request_ms):.1f} ms)")
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--changes", type=int, default=10)
    parser.add_argument("--redis", default=None, help="REDIS_URL for the server (default: in-memory bus)")
    args = parser.parse_args()
    mongo = EmbeddedMongo(None)
    url = mongo.start()
    proc = None
    try:
        product_id, token = asyncio.run(prepare(url))
        env = {"MONGODB_URL": url, "MONGODB_DB": DB, "RATE_LIMIT_ENABLED": "false", "LOG_LEVEL": "WARNING",
               "EVENTS_MAX_STREAMS_PER_IP": "10000", "ENVIRONMENT": "test"}
        if args.redis:
            env["REDIS_URL"] = args.redis
        proc, base = serve(env)
        print(f"bus: {'redis' if args.redis else 'in-memory'}; Python {sys.version.split()[0]}; "
              f"{os.cpu_count()} cores")
        asyncio.run(bench(base, proc.pid, product_id, token, args.streams, args.changes))
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=30)
        mongo.stop()


if __name__ == "__main__":
    main()

"""Our catalog overhead against a bare FastAPI app, both under uvicorn on one embedded database.

    .venv/bin/python bench/catalog.py [--requests 3000] [--concurrency 4] [--rounds 5] [--redis redis://...]

(a) product detail              vs a bare endpoint doing the same raw PyMongo find_one
(b) cached catalog list         vs a bare endpoint returning a fixed JSON body of the same size
(c) /api/v1/health              vs a bare endpoint returning {"ok": true}
Loopback only, bounded loops; ours and bare alternate in rounds so machine noise hits both alike.
Prints req/s, p50 and p95 per side and the ratio ours/bare (req/s).
Targets: (a) >= 0.5, (b) >= 0.5, (c) >= 0.7. The embedded server is not a database benchmark.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.core.embedded_mongo import EmbeddedMongo, free_port  # noqa: E402

DB = "bench_catalog"
LIST_QUERY = ("/api/v1/products?category=bouquets&occasion=birthday&occasion=mothers_day&occasion=just_because"
              "&min_price=4000&max_price=30000&sort=price_asc&limit=24")
UVICORN = ["--host", "127.0.0.1", "--workers", "1", "--loop", "uvloop", "--http", "httptools",
           "--no-access-log", "--log-level", "warning"]


async def prepare(url: str) -> None:
    """Seed the demo catalog and add copies so that lists fill pages of 24."""
    from app.config import Settings
    from app.core.db import connect
    from app.core.ids import new_id
    from app.models.catalog import Product
    from app.seed_catalog import seed_catalog

    client = await connect(Settings(_env_file=None, mongodb_db=DB), url)
    await seed_catalog()
    coll = Product.get_pymongo_collection()
    originals = await coll.find({}).to_list(None)
    for n in range(1, 5):
        copies = []
        for d in originals:
            c = {**d, "_id": new_id("prd"), "slug": f"{d['slug']}-copy-{n}", "name": f"{d['name']} No. {n}"}
            copies.append(c)
        await coll.insert_many(copies)
    await client.close()


def serve(args: list[str], env: dict[str, str]) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", *args, *UVICORN, "--port", str(port)],
                            cwd=ROOT, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(base + "/docs", timeout=1).status_code in (200, 404):
                return proc, base
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"server did not start: {proc.stderr.read().decode() if proc.stderr else ''}")


async def load(base: str, path: str, requests: int, concurrency: int) -> tuple[int, float, list[float]]:
    """(count, seconds, latencies) of ``requests`` GETs (after a warm-up) from ``concurrency`` connections."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:
        for _ in range(max(20, requests // 10)):
            r = await client.get(path)
            assert r.status_code == 200, (path, r.status_code, r.text[:300])
        latencies: list[float] = []
        per_worker = requests // concurrency

        async def worker() -> None:
            for _ in range(per_worker):
                t = time.perf_counter()
                r = await client.get(path)
                latencies.append(time.perf_counter() - t)
                if r.status_code != 200:
                    raise RuntimeError(f"{path}: {r.status_code}")

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
    return len(latencies), elapsed, latencies


async def measure(base: str, path: str, requests: int, concurrency: int, rounds: int,
                  other: tuple[str, str]) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
    """Alternate rounds of ours and bare so that machine noise hits both sides alike."""
    sides: list[list] = [[0, 0.0, []], [0, 0.0, []]]
    for _ in range(rounds):
        for side, (b, p) in zip(sides, ((base, path), other), strict=True):
            n, secs, lat = await load(b, p, requests // rounds, concurrency)
            side[0] += n
            side[1] += secs
            side[2].extend(lat)

    def summary(side: list) -> tuple[float, float, float]:
        q = statistics.quantiles(side[2], n=100)
        return side[0] / side[1], q[49] * 1000, q[94] * 1000

    return summary(sides[0]), summary(sides[1])


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=5, help="Alternating ours/bare rounds per case")
    parser.add_argument("--redis", default=None, help="Serve our app with this REDIS_URL (shared cache)")
    opts = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="af-bench-"))
    mongo = EmbeddedMongo(None)
    url = mongo.start()
    procs: list[subprocess.Popen] = []
    try:
        await prepare(url)
        ours_env = {"MONGODB_URL": url, "MONGODB_DB": DB, "ENVIRONMENT": "development", "LOG_LEVEL": "WARNING",
                    "RATE_LIMIT_DEFAULT": "100000000/minute", "REDIS_URL": opts.redis or ""}
        ours_proc, ours = serve(["app.main:app_factory", "--factory"], ours_env)
        procs.append(ours_proc)
        async with httpx.AsyncClient(base_url=ours) as c:
            detail = (await c.get("/api/v1/products/peche-peonies")).json()
            listing = await c.get(LIST_QUERY)
        assert listing.status_code == 200 and len(listing.json()["items"]) == 24, listing.text[:300]
        fixed = tmp / "fixed.json"
        fixed.write_bytes(listing.content)
        bare_env = {"BENCH_MONGO_URL": url, "BENCH_DB": DB, "BENCH_FIXED_FILE": str(fixed)}
        bare_proc, bare = serve(["bench.bare_app:create", "--factory"], bare_env)
        procs.append(bare_proc)

        cases = [
            ("(a) product detail", "/api/v1/products/peche-peonies", f"/raw/{detail['id']}", 0.5),
            ("(b) cached list", LIST_QUERY, "/fixed", 0.5),
            ("(c) health", "/api/v1/health", "/ok", 0.7),
        ]
        print(f"{opts.requests} requests per measurement, {opts.concurrency} connections, "
              f"cache: {'redis ' + opts.redis if opts.redis else 'in-process'}; list body {len(listing.content)} B")
        print(f"{'case':<22}{'ours req/s':>11}{'p50 ms':>8}{'p95 ms':>8}{'bare req/s':>12}{'p50 ms':>8}"
              f"{'p95 ms':>8}{'ratio':>7}{'target':>8}")
        for name, ours_path, bare_path, target in cases:
            o, b = await measure(ours, ours_path, opts.requests, opts.concurrency, opts.rounds, (bare, bare_path))
            ratio = o[0] / b[0]
            print(f"{name:<22}{o[0]:>11.0f}{o[1]:>8.2f}{o[2]:>8.2f}{b[0]:>12.0f}{b[1]:>8.2f}{b[2]:>8.2f}"
                  f"{ratio:>7.2f}{'>= ' + str(target):>8}{'' if ratio >= target else '  BELOW'}")
    finally:
        for p in procs:
            p.terminate()
            p.wait(timeout=10)
        mongo.stop()


if __name__ == "__main__":
    asyncio.run(main())

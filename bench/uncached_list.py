"""Uncached filtered product list against bare FastAPI endpoints doing the same find + count (issue 13, item 3).

    .venv/bin/python -m bench.uncached_list [--sizes 320 5000] [--duration 10] [--rounds 2] [--redis-url URL]
                                            [--baseline-src DIR [--baseline-path DIR]]

Every request asks for a different page: ``category`` (the "bouquets" subtree) + a price range whose bounds
wrk's Lua script draws at random per request + ``sort=price_asc`` + ``limit=24``, so the catalog cache never
answers (each bound pair is a new key) and every request reaches the database. Sides, on one embedded
database seeded with the demo catalog and renamed copies of it (``--sizes``, default 320 and 5,000 products):

* ours: ``GET /api/v1/products?category=bouquets&min_price=..&max_price=..&sort=price_asc&limit=24``
  (the app under uvicorn as in production: access log on, rate limits on with a limit no run reaches);
* bare (documented): a bare FastAPI endpoint running the same flat ``find`` (same projection, sort and limit)
  and the exact count PyMongo documents, ``count_documents`` on the same filter;
* bare (same forms): the same ``find`` and the count our app sends, ``$match`` + ``$count`` (uncapped);
* today (``--baseline-src DIR``): the app at another commit (e.g. ``git archive main | tar -x -C DIR``) with
  the same URLs; ``--baseline-path`` adds a directory of that commit's extra dependencies to its PYTHONPATH
  (main still needs slowapi: ``pip install --target DIR slowapi==0.1.10``).

Targets: ours/bare(documented) >= 0.7 at each size, and ours >= 10x today's requests/s at 5,000 products.
Ours and the bare endpoints alternate in rounds (the order flips each round) with 16 connections and
``--timeout 30s``; today's app runs ``--baseline-duration`` seconds per round (default 60: at 5,000 products its
16 concurrent requests all finish after more than 10 s). Between runs the script waits for the database to
finish the requests wrk left in flight, so no side pays for another's queue. Installs wrk from Debian's packages
when missing. The embedded server runs one query at a time: requests/s here is 1 / (database time per
request) plus our Python; it measures the query forms and our overhead on the same server, not MongoDB.

For ``bench/run.py`` (perf-cache's runner): ``DATASETS`` seeds, ``bare(app, db)`` adds the bare routes and
``lua(path_prefix, category)`` builds the wrk script of per-request URLs.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from app.core.embedded_mongo import EmbeddedMongo  # noqa: E402
from bench.run import Run, Server, ensure_wrk, load, parse_wrk  # noqa: E402
from bench.summary import result  # noqa: E402

CATEGORY = "bouquets"
LIMIT = 24
CONNECTIONS = 16
# Bounds drawn per request (cents): lo in [3000, 6000), hi in [9000, 30000): ~60 % of the bouquets match.
LO, LO_SPAN, HI, HI_SPAN = 3000, 3000, 9000, 21000
PROJECTION = dict.fromkeys(["name", "slug", "category_id", "price_min", "sizes", "images", "rating_avg",
                            "rating_count", "featured", "occasions", "flower_types", "colors", "units_sold"], 1)


def lua(prefix: str, category: str) -> str:
    """A wrk script: every request GETs ``prefix`` with ``category`` and fresh random price bounds."""
    return (
        "local n = 0\n"
        "function setup(thread) n = n + 1; thread:set('seed', n) end\n"
        "function init(args) math.randomseed(os.time() * 1000 + (seed or 0)) end\n"
        "function request()\n"
        f"  local lo = {LO} + math.random(0, {LO_SPAN - 1})\n"
        f"  local hi = {HI} + math.random(0, {HI_SPAN - 1})\n"
        f"  return wrk.format('GET', '{prefix}?category={category}&min_price=' .. lo .. '&max_price=' .. hi ..\n"
        f"                    '&sort=price_asc&limit={LIMIT}')\n"
        "end\n"
    )


# --- data ---------------------------------------------------------------------------------------------------
async def seed_products(n: int) -> None:
    """The demo catalog (64 bouquets) and renamed copies of it, cut at ``n`` products."""
    from app.core.ids import new_id
    from app.demo.catalog import seed_catalog
    from app.models.catalog import Product

    await seed_catalog()
    coll = Product.get_pymongo_collection()
    originals = await coll.find({}).to_list(None)
    have, copy = len(originals), 1
    while have < n:
        batch = [{**d, "_id": new_id("prd"), "slug": f"{d['slug']}-copy-{copy}", "name": f"{d['name']} No. {copy}"}
                 for d in originals][: n - have]
        await coll.insert_many(batch)
        have, copy = have + len(batch), copy + 1


async def _seed_320(ctx: Any) -> None:
    await seed_products(320)


async def _seed_5000(ctx: Any) -> None:
    await seed_products(5000)


DATASETS = {"catalog-320": _seed_320, "catalog-5000": _seed_5000}


# --- the bare app -------------------------------------------------------------------------------------------
def bare(app: Any, db: Any) -> None:
    """Add ``/bare/list-documented`` and ``/bare/list-same`` to ``app``: the minimal equivalent of our list on
    ``db`` (a PyMongo ``AsyncDatabase``), written as FastAPI's and PyMongo's documentation show."""
    products = db["products"]

    def flat(category: str, lo: int, hi: int) -> dict[str, Any]:
        return {"status": "active", "category_path": {"$in": [category]}, "price_min": {"$gte": lo, "$lte": hi}}

    async def page(query: dict[str, Any]) -> list[dict[str, Any]]:
        return await products.find(query, PROJECTION).sort([("price_min", 1), ("_id", 1)]).limit(LIMIT) \
            .to_list(None)

    @app.get("/bare/list-documented")
    async def list_documented(category: str, min_price: int, max_price: int) -> dict[str, Any]:
        query = flat(category, min_price, max_price)
        return {"items": await page(query), "total": await products.count_documents(query)}

    @app.get("/bare/list-same")
    async def list_same(category: str, min_price: int, max_price: int) -> dict[str, Any]:
        query = flat(category, min_price, max_price)
        rows = await (await products.aggregate([{"$match": query}, {"$count": "n"}])).to_list(1)
        return {"items": await page(query), "total": rows[0]["n"] if rows else 0}


def create() -> Any:
    """The bare app (``uvicorn bench.uncached_list:create --factory``; BENCH_MONGO_URL, BENCH_DB)."""
    from contextlib import asynccontextmanager

    from fastapi import FastAPI
    from pymongo import AsyncMongoClient

    client: AsyncMongoClient = AsyncMongoClient(os.environ["BENCH_MONGO_URL"], tz_aware=True)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        await client.close()

    app = FastAPI(lifespan=lifespan)
    bare(app, client[os.environ["BENCH_DB"]])

    @app.get("/ok")
    async def ok() -> dict[str, bool]:
        return {"ok": True}

    return app


# --- running ------------------------------------------------------------------------------------------------
def wrk(binary: str, base: str, script: Path, seconds: float) -> Run:
    out = subprocess.run([binary, "-t", "1", "-c", str(CONNECTIONS), "-d", f"{seconds:g}s", "--timeout", "30s",
                          "--latency", "-s", str(script), base], capture_output=True, text=True, check=True).stdout
    return parse_wrk(out)


def drain(mongo_url: str, db: str) -> None:
    """Wait until the database is idle: a server keeps running the requests wrk left in flight, and the next
    side must not pay for them. The embedded server runs one command at a time, so a tiny read answering
    quickly twice in a row means its queue is empty."""
    from pymongo import MongoClient  # the bench's own process, not a request path
    from pymongo.errors import PyMongoError

    # a busy server may not even answer the driver's monitoring for a while: wait, do not fail
    with MongoClient(mongo_url, serverSelectionTimeoutMS=600_000, connectTimeoutMS=600_000) as client:
        quick = 0
        deadline = time.monotonic() + 900
        while quick < 2 and time.monotonic() < deadline:
            t = time.perf_counter()
            try:
                client[db]["categories"].find_one({"slug": CATEGORY})
            except PyMongoError:
                quick = 0
                continue
            quick = quick + 1 if time.perf_counter() - t < 0.05 else 0
            time.sleep(0.1)


def check(base: str, path: str) -> dict[str, Any]:
    import httpx

    r = httpx.get(base + path, timeout=120)
    if r.status_code != 200:
        raise SystemExit(f"GET {base}{path}: {r.status_code} {r.text[:300]}")
    return r.json()


async def _seed(n: int, mongo_url: str, db: str) -> str:
    from app.config import Settings
    from app.models.catalog import Category
    from app.models.db import connect

    client = await connect(Settings(_env_file=None, mongodb_db=db), mongo_url)
    try:
        await seed_products(n)
        return (await Category.find_one({"slug": CATEGORY})).id
    finally:
        await client.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[320, 5000], help="Products per data set")
    parser.add_argument("--duration", type=float, default=10.0, help="Seconds per side per round (default 10)")
    parser.add_argument("--rounds", type=int, default=2, help="Alternating rounds per comparison (default 2)")
    parser.add_argument("--redis-url", default=None, help="Serve ours (and today's) with this REDIS_URL")
    parser.add_argument("--baseline-src", type=Path, default=None, help="Source tree of the app to compare with")
    parser.add_argument("--baseline-path", default=None, help="Extra PYTHONPATH entries for the baseline")
    parser.add_argument("--baseline-duration", type=float, default=60.0,
                        help="Seconds per round for the baseline (default 60: at 5,000 products today's app "
                             "answers nothing within 10 s)")
    opts = parser.parse_args()

    binary = ensure_wrk()
    tmp = Path(tempfile.mkdtemp(prefix="af-bench-uncached-"))
    mongo = EmbeddedMongo(None)
    mongo_url = mongo.start()
    servers: list[Server] = []
    failed: list[str] = []
    print(f"bench.uncached_list {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {os.cpu_count()} cores; load average "
          f"{load()}; wrk -t1 -c{CONNECTIONS}, {opts.rounds} alternating rounds of {opts.duration:g} s; "
          f"{'REDIS_URL set' if opts.redis_url else 'no REDIS_URL'}")
    try:
        for n in opts.sizes:
            db = f"bench_uncached_{n}"
            category_id = asyncio.run(_seed(n, mongo_url, db))
            env = {"MONGODB_URL": mongo_url, "MONGODB_DB": db, "ENVIRONMENT": "development", "LOG_LEVEL": "INFO",
                   "LOG_JSON": "true", "RATE_LIMIT_DEFAULT": "100000000/minute", "EMBEDDED_DB_DIR": str(tmp / "var"),
                   "MEDIA_DIR": str(tmp / "media"), **({"REDIS_URL": opts.redis_url} if opts.redis_url else {})}
            sides: dict[str, tuple[Server, str]] = {}
            ours = Server("app.main:app_factory", env, "/api/v1/health")
            servers.append(ours)
            sides["ours"] = (ours, lua("/api/v1/products", CATEGORY))
            bare_srv = Server("bench.uncached_list:create", {"BENCH_MONGO_URL": mongo_url, "BENCH_DB": db}, "/ok")
            servers.append(bare_srv)
            sides["bare (documented)"] = (bare_srv, lua("/bare/list-documented", category_id))
            sides["bare (same forms)"] = (bare_srv, lua("/bare/list-same", category_id))
            if opts.baseline_src:
                path = ":".join(p for p in (str(opts.baseline_src.resolve()), opts.baseline_path) if p)
                today = Server("app.main:app_factory", env, "/api/v1/health", cwd=opts.baseline_src, pythonpath=path)
                servers.append(today)
                sides["today"] = (today, lua("/api/v1/products", CATEGORY))
            sample = "?category={c}&min_price=4000&max_price=20000&sort=price_asc&limit=24"
            mine = check(ours.base, "/api/v1/products" + sample.format(c=CATEGORY))
            documented = check(bare_srv.base, "/bare/list-documented" + sample.format(c=category_id))
            same = check(bare_srv.base, "/bare/list-same" + sample.format(c=category_id))
            if "today" in sides:
                before = check(sides["today"][0].base, "/api/v1/products" + sample.format(c=CATEGORY))
                assert [i["id"] for i in before["items"]] == [i["id"] for i in mine["items"]], "today's page differs"
                print(f"today's app answers {'with' if 'total_capped' in before else 'without'} total_capped "
                      f"(from {opts.baseline_src})")
            assert [i["id"] for i in mine["items"]] == [i["_id"] for i in documented["items"]], "different pages"
            exact = documented["total"]
            assert same["total"] == exact, "different totals"
            assert (mine["total"], mine["total_capped"]) == ((exact, False) if exact <= 1000 else (1000, True))
            scripts = {}
            for i, (name, (_, text)) in enumerate(sides.items()):
                scripts[name] = tmp / f"side-{i}.lua"
                scripts[name].write_text(text)
            for name, (srv, _) in sides.items():  # warm-up: connections, category index, imports
                if name != "today":  # (check() warmed it; a wrk warm-up would queue seconds of work)
                    wrk(binary, srv.base, scripts[name], 3)
                    drain(mongo_url, db)
            runs: dict[str, list[Run]] = {name: [] for name in sides}
            for r in range(opts.rounds):
                for name in (list(sides) if r % 2 == 0 else list(reversed(sides))):
                    seconds = opts.baseline_duration if name == "today" else opts.duration
                    runs[name].append(wrk(binary, sides[name][0].base, scripts[name], seconds))
                    drain(mongo_url, db)
            rps = {name: sum(x.requests for x in rs) / sum(x.seconds for x in rs) for name, rs in runs.items()}
            print(f"\n[{n:,} products; {documented['total']:,} match the sample bounds] load average {load()}")
            print(f"{'side':<22}{'req/s':>9}{'p50 ms':>10}{'ours / side':>13}")
            for name, rs in runs.items():
                p50 = sorted(x.p50 for x in rs)[len(rs) // 2]
                ratio = rps["ours"] / rps[name] if rps[name] else float("inf")
                print(f"{name:<22}{rps[name]:>9.1f}{p50:>10.1f}{ratio:>13.2f}"
                      + (f"   errors: {'; '.join(x.errors for x in rs if x.errors)}" if any(x.errors for x in rs)
                         else ""))
            ratio = rps["ours"] / rps["bare (documented)"] if rps["bare (documented)"] else float("inf")
            print(f"ours / bare (documented) = {ratio:.2f} (target >= 0.7)")
            result(f"uncached list, {n:,} products, vs bare (documented count)", ratio, 0.7)
            if ratio < 0.7:
                failed.append(f"{n}: ours/bare {ratio:.2f} < 0.7")
            if "today" in rps:
                gain = rps["ours"] / rps["today"] if rps["today"] else float("inf")
                print(f"ours / today = {gain:.1f}x" + (" (target >= 10x)" if n >= 5000 else ""))
                result(f"uncached list, {n:,} products, vs today's app", gain, 10.0 if n >= 5000 else None)
                if n >= 5000 and gain < 10:
                    failed.append(f"{n}: ours/today {gain:.1f}x < 10x")
            for srv in {id(s): s for s, _ in sides.values()}.values():
                srv.stop()
                servers.remove(srv)
    finally:
        for srv in servers:
            srv.stop()
        mongo.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"\nload average at the end: {load()}")
    if failed:
        print("NOT MET: " + "; ".join(failed))
        return 1
    print("every target met")
    return 0


if __name__ == "__main__":
    sys.exit(main())

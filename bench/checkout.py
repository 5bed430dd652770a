"""The money path: database round trips per operation and orders/s for concurrent customers, ours vs a baseline.

    .venv/bin/python bench/checkout.py [--customers 16] [--orders 240] [--rounds 3] [--base-ref REF]
                                       [--redis redis://127.0.0.1:6379/0]

Two uvicorn processes (one worker each, uvloop + httptools, same settings) serve the same embedded database
(one logical database each) and the same local Stripe double (tests/stripe_double.py with persistent
connections, as Stripe's; the real SDK talks to it): **ours** (this tree) and the **baseline**
(``--base-ref``, by default the commit where this branch left ``main``, extracted with ``git archive`` into
a temporary directory). Both run inside ``bench/counted_app.py``, which adds to every response the number
of MongoDB commands its request sent (a PyMongo command listener), so round trips are counted on the real
servers under the same load.

Per order, a guest customer adds one bouquet to a new cart (``POST /cart/items``) and checks out with a
card (``POST /checkout``, a PaymentIntent in the double); ``--customers`` customers do this concurrently,
ours and baseline alternating in ``--rounds`` rounds of ``--orders / --rounds`` orders each. Afterwards a
sample of orders is paid (signed ``payment_intent.succeeded`` webhooks, one at a time) to count the
round trips of a payment. Prints round trips per operation (median; min-max), p50 latency, orders/s and
ours/baseline. Background jobs are off on both sides (``WORKERS_ENABLED=false``). The embedded server is
not a database benchmark: the ratio is what our code asks of it.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.core.embedded_mongo import EmbeddedMongo, free_port  # noqa: E402
from bench.summary import result  # noqa: E402

HEADER = "x-bench-db-commands"
WEBHOOK_SECRET = "whsec_bench_amour_florals"
ZIP = "10012"
SLOTS = ("morning", "afternoon", "evening")
UVICORN = ["--host", "127.0.0.1", "--workers", "1", "--loop", "uvloop", "--http", "httptools",
           "--no-access-log", "--log-level", "warning"]


def _load(name: str, path: Path) -> Any:
    """A module of this tree by file path (the baseline tree may have no such module)."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    sys.modules[name] = module
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


stripe_double = _load("bench_stripe_double", ROOT / "tests" / "stripe_double.py")


def merge_base() -> str:
    """The commit where this branch left ``main``."""
    return subprocess.run(["git", "-C", str(ROOT), "merge-base", "HEAD", "main"], check=True, capture_output=True,
                          text=True).stdout.strip()


def extract(ref: str) -> Path:
    """``git archive`` of ``ref`` into a new temporary directory (nothing in the repository changes)."""
    target = Path(tempfile.mkdtemp(prefix="af-bench-base-"))
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", ref], check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    return target


async def prepare(url: str, db: str, products: int) -> list[str]:
    """Products with ample stock and a delivery zone for ZIP 10012, in database ``db``; returns product ids."""
    from app.config import Settings
    from app.models.catalog import AddOn, AddOnKind, Product, ProductStatus, Size
    from app.models.db import connect
    from app.models.delivery import DeliveryZone

    client = await connect(Settings(_env_file=None, mongodb_db=db), url)
    ids = []
    for n in range(products):
        p = Product(name=f"Bench Bouquet {n}", slug=f"bench-bouquet-{n}", category_id="cat_bench",
                    category_path=["cat_bench"], price_min=4500, status=ProductStatus.active,
                    stock={"standard": 1_000_000},
                    sizes=[Size(code="standard", name="Standard", price=4500)],
                    add_ons=[AddOn(code="glass-vase", name="Glass vase", kind=AddOnKind.vase, price=1500)])
        await p.insert()
        ids.append(p.id)
    await DeliveryZone(name="Manhattan South", zip_codes=[ZIP], fee=999).insert()
    await client.close()
    return ids


def serve(tree: Path, env: dict[str, str], extra_path: str | None = None) -> tuple[subprocess.Popen, str]:
    """uvicorn on ``bench/counted_app.py:create`` with ``tree`` first on the path (so its ``app`` is served),
    then ``extra_path`` (a baseline's own dependencies, e.g. slowapi for commits that still used it)."""
    port = free_port()
    cmd = [sys.executable, "-m", "uvicorn", "counted_app:create", "--factory", "--app-dir", str(ROOT / "bench"),
           *UVICORN, "--port", str(port)]
    path = ":".join(p for p in (str(tree), extra_path) if p)
    proc = subprocess.Popen(cmd, cwd=tree, env={**os.environ, "PYTHONPATH": path, **env},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        try:
            if httpx.get(base + "/api/v1/health", timeout=1).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"server did not start: {proc.stderr.read().decode()[-3000:] if proc.stderr else ''}")


@dataclass
class Side:
    name: str
    base: str
    products: list[str]
    commands: dict[str, list[int]] = field(default_factory=lambda: {"add-to-cart": [], "checkout": [], "pay": []})
    latency: dict[str, list[float]] = field(default_factory=lambda: {"add-to-cart": [], "checkout": []})
    pid: int = 0
    orders: int = 0
    seconds: float = 0.0
    cpu: float = 0.0  # seconds of CPU of this side's API process during its rounds
    db_cpu: float = 0.0  # seconds of CPU of the database server during this side's rounds
    client_cpu: float = 0.0  # seconds of CPU of this process (load generator and Stripe double)
    intents: list[str] = field(default_factory=list)


def cpu_seconds(pid: int) -> float:
    """User + system CPU of process ``pid`` (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def delivery_days(count: int) -> list[str]:
    today = datetime.now(UTC).astimezone(ZoneInfo("America/New_York")).date()
    return [(today + timedelta(days=n)).isoformat() for n in range(2, 2 + count)]


async def place(client: httpx.AsyncClient, side: Side, n: int, days: list[str]) -> None:
    """One guest order: a new cart with one bouquet, then a card checkout."""
    t = time.perf_counter()
    r = await client.post("/api/v1/cart/items", json={"product_id": side.products[n % len(side.products)],
                                                      "size": "standard", "quantity": 1})
    side.latency["add-to-cart"].append(time.perf_counter() - t)
    if r.status_code != 200:
        raise RuntimeError(f"{side.name} add-to-cart: {r.status_code} {r.text[:300]}")
    side.commands["add-to-cart"].append(int(r.headers[HEADER]))
    body = {"payment_method": "card",
            "contact": {"email": f"guest{n}@example.com", "phone": "+12125550100", "name": "Gia Guest"},
            "delivery": {"method": "delivery", "date": days[n % len(days)], "slot": SLOTS[n % len(SLOTS)],
                         "recipient_name": "Mia Rose", "recipient_phone": "+1 212 555 0199",
                         "address": {"line1": "1 Bleecker St", "city": "New York", "state": "NY", "zip": ZIP}}}
    t = time.perf_counter()
    r = await client.post("/api/v1/checkout", json=body, headers={"X-Cart-Token": r.headers["X-Cart-Token"],
                                                                  "Idempotency-Key": uuid.uuid4().hex})
    side.latency["checkout"].append(time.perf_counter() - t)
    if r.status_code != 201:
        raise RuntimeError(f"{side.name} checkout: {r.status_code} {r.text[:300]}")
    side.commands["checkout"].append(int(r.headers[HEADER]))
    side.intents.append(r.json()["payment"]["payment_intent_id"])


async def run_round(side: Side, customers: int, orders: int, start: int, days: list[str], db_pid: int) -> None:
    limits = httpx.Limits(max_connections=customers, max_keepalive_connections=customers)
    async with httpx.AsyncClient(base_url=side.base, limits=limits, timeout=120) as client:
        queue = iter(range(start, start + orders))

        async def customer() -> None:
            for n in queue:
                await place(client, side, n, days)

        t, cpu, db_cpu = time.perf_counter(), cpu_seconds(side.pid), cpu_seconds(db_pid)
        own = cpu_seconds(os.getpid())
        await asyncio.gather(*(customer() for _ in range(customers)))
        side.seconds += time.perf_counter() - t
        side.client_cpu += cpu_seconds(os.getpid()) - own
        side.cpu += cpu_seconds(side.pid) - cpu
        side.db_cpu += cpu_seconds(db_pid) - db_cpu
        side.orders += orders


async def pay(side: Side, double: Any, count: int) -> None:
    async with httpx.AsyncClient(base_url=side.base, timeout=60) as client:
        for intent in side.intents[:count]:
            body = stripe_double.event("payment_intent.succeeded", double.succeed(intent))
            r = await client.post("/api/v1/payments/webhook", content=body, headers={
                "Stripe-Signature": stripe_double.sign(body, WEBHOOK_SECRET), "Content-Type": "application/json"})
            if r.status_code != 200:
                raise RuntimeError(f"{side.name} webhook: {r.status_code} {r.text[:300]}")
            side.commands["pay"].append(int(r.headers[HEADER]))


def spread(values: list[int]) -> str:
    if not values:
        return "-"
    return f"{statistics.median(values):g} ({min(values)}-{max(values)})"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=16, help="Concurrent customers")
    parser.add_argument("--orders", type=int, default=240, help="Orders per side (measured)")
    parser.add_argument("--rounds", type=int, default=3, help="Alternating rounds per side")
    parser.add_argument("--warmup", type=int, default=16, help="Orders per side before measuring")
    parser.add_argument("--payments", type=int, default=20, help="Orders paid by webhook to count its round trips")
    parser.add_argument("--base-ref", default=None,
                        help="Git ref of the baseline (default: where this branch left main; '' to bench ours alone)")
    parser.add_argument("--base-path", default=None, help="Extra PYTHONPATH for the baseline (its own dependencies)")
    parser.add_argument("--redis", default=None, help="REDIS_URL for both servers")
    opts = parser.parse_args()

    double = stripe_double.StripeDouble(keep_alive=True)  # Stripe keeps connections open
    stripe_base = double.start()
    mongo = EmbeddedMongo(None)
    url = mongo.start()
    trees = [("ours", ROOT)]
    base_ref = merge_base() if opts.base_ref is None else opts.base_ref
    if base_ref:
        trees.append((f"base {base_ref[:10]}", extract(base_ref)))
    procs: list[subprocess.Popen] = []
    sides: list[Side] = []
    try:
        for i, (name, tree) in enumerate(trees):
            db = f"bench_checkout_{i}"
            products = await prepare(url, db, 8)
            env = {"MONGODB_URL": url, "MONGODB_DB": db, "ENVIRONMENT": "development", "LOG_LEVEL": "WARNING",
                   "RATE_LIMIT_DEFAULT": "100000000/minute", "REDIS_URL": opts.redis or "",
                   "WORKERS_ENABLED": "false", "DELIVERY_SLOT_CAPACITY": "10000",
                   "STRIPE_SECRET_KEY": "sk_test_bench", "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
                   "STRIPE_API_BASE": stripe_base, "STRIPE_MAX_NETWORK_RETRIES": "0"}
            proc, base = serve(tree, env, opts.base_path if i else None)
            procs.append(proc)
            sides.append(Side(name, base, products, pid=proc.pid))
        days = delivery_days(10)
        db_pid = mongo.proc.pid  # type: ignore[union-attr]
        for side in sides:
            await run_round(side, opts.customers, opts.warmup, 0, days, db_pid)
            side.orders, side.seconds, side.cpu, side.db_cpu, side.client_cpu = 0, 0.0, 0.0, 0.0, 0.0
            for values in (*side.commands.values(), *side.latency.values()):
                values.clear()
            side.intents.clear()
        per_round = opts.orders // opts.rounds
        for r in range(opts.rounds):
            for side in sides if r % 2 == 0 else reversed(sides):
                await run_round(side, opts.customers, per_round, opts.warmup + r * per_round, days, db_pid)
        for side in sides:
            await pay(side, double, opts.payments)

        load = os.getloadavg()
        print(f"{opts.customers} concurrent guest customers, {per_round * opts.rounds} orders per side in "
              f"{opts.rounds} alternating rounds; cache: {'redis' if opts.redis else 'in-process'}; "
              f"load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")
        print(f"{'side':<16}{'add-to-cart':>14}{'checkout':>14}{'pay webhook':>14}{'add p50 ms':>12}"
              f"{'checkout p50 ms':>17}{'API CPU ms':>12}{'DB CPU ms':>11}{'bench CPU ms':>14}{'orders/s':>10}")
        for side in sides:
            rate = side.orders / side.seconds
            print(f"{side.name:<16}{spread(side.commands['add-to-cart']):>14}{spread(side.commands['checkout']):>14}"
                  f"{spread(side.commands['pay']):>14}"
                  f"{statistics.median(side.latency['add-to-cart']) * 1000:>12.0f}"
                  f"{statistics.median(side.latency['checkout']) * 1000:>17.0f}"
                  f"{side.cpu * 1000 / side.orders:>12.1f}{side.db_cpu * 1000 / side.orders:>11.1f}"
                  f"{side.client_cpu * 1000 / side.orders:>14.1f}{rate:>10.1f}")
        print("(round trips: MongoDB commands per request, median (min-max); CPU: per order, of the API process, "
              "the database server and this process: load generator and Stripe double)")
        if len(sides) == 2:
            ours, base = sides
            ratio = (ours.orders / ours.seconds) / (base.orders / base.seconds)
            print(f"orders/s ours/base: {ratio:.2f} (target >= 2.0){'' if ratio >= 2 else '  BELOW'}")
            mode = "REDIS_URL set" if opts.redis else "no REDIS_URL"
            result(f"checkout orders/s vs {base.name} ({mode})", ratio, 2.0)
        for side in sides:
            result(f"checkout round trips, add-to-cart + checkout ({side.name})",
                   statistics.median(side.commands["add-to-cart"]) + statistics.median(side.commands["checkout"]),
                   None, " trips")
    finally:
        for p in procs:
            p.terminate()
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        mongo.stop()
        double.stop()
        for _, tree in trees[1:]:
            shutil.rmtree(tree, ignore_errors=True)  # the extracted baseline


if __name__ == "__main__":
    asyncio.run(main())

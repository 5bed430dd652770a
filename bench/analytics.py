"""The added cost of recording shopper events on the product-detail endpoint.

    .venv/bin/python -m bench.analytics [--seconds 5] [--rounds 6] [--pairs 2] [--concurrency 8] [--control]

Two uvicorn processes of this app on one embedded database, identical but for ANALYTICS_ENABLED (true: every
GET /products/{slug} queues a product_view event, counted by the background writer into its day document;
false: no recording at all). Both receive the same X-Visitor-Id. Rounds alternate with/without (in ABBA order)
so machine noise hits both alike, on ``--pairs`` fresh pairs of processes (started in turn first, same
PYTHONHASHSEED) so that neither side keeps a process that happens to run faster. ``--control`` runs both sides
without recording: an A/A run, the ratio the set-up itself gives. The load comes from wrk (installed with
apt-get when missing, as bench/run.py does). Prints req/s, p50 and p99 of each side, the CPU time per request
of its server and of the database during its rounds, the ratio with/without (req/s; also per round, and by
CPU per request, which the other load on a shared machine disturbs less) and the events the recording side
stored and dropped.
Target: ratio >= 0.90 (recording costs at most 10 %). The embedded server is not a database benchmark.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import sys
from pathlib import Path
from statistics import median_high as median  # the upper middle value, as the runs have always been read

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.core.embedded_mongo import EmbeddedMongo, free_port  # noqa: E402
from bench.run import Server, ensure_wrk  # noqa: E402
from bench.summary import result  # noqa: E402

DB = "bench_analytics"
SLUG = "peche-peonies"
VISITOR = "3f0c7d1e-9b2a-4c5d-8e6f-0a1b2c3d4e5f"
UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


async def prepare(url: str) -> None:
    from app.config import Settings
    from app.demo.catalog import seed_catalog
    from app.models.db import connect

    client = await connect(Settings(_env_file=None, mongodb_db=DB), url)
    await seed_catalog()
    await client.close()


def wrk(binary: str, base: str, path: str, seconds: int, concurrency: int) -> tuple[int, float, float, float]:
    """(requests, seconds, p50 ms, p99 ms) of one wrk run."""
    out = subprocess.run([binary, "-t1", f"-c{concurrency}", f"-d{seconds}s", "--latency", "-H",
                          f"X-Visitor-Id: {VISITOR}", base + path], capture_output=True, text=True, check=True).stdout
    if "Non-2xx" in out:
        raise RuntimeError(out)
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    duration = float(re.search(r"requests in ([\d.]+)s", out).group(1))

    def pct(p: str) -> float:
        value, unit = re.search(rf"\s{p}%\s+([\d.]+)(us|ms|s)", out).groups()
        return float(value) * UNITS[unit]

    return requests, duration, pct("50"), pct("99")


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU seconds used so far by process ``pid`` (Linux /proc; 0 when unknown)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def stored_events(url: str) -> int:
    """Events stored: product views counted in their day documents, others in their buckets."""
    from pymongo import AsyncMongoClient

    client: AsyncMongoClient = AsyncMongoClient(url)
    try:
        days = await client[DB]["analytics_product_views"].find({}, {"views": 1}).to_list(None)
        buckets = await client[DB]["analytics_events"].find({}, {"events": 1}).to_list(None)
        return sum(d["views"] for d in days) + sum(len(b["events"]) for b in buckets)
    finally:
        await client.close()


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=5, help="Length of one measurement")
    parser.add_argument("--rounds", type=int, default=6, help="Alternating with/without rounds")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--pairs", type=int, default=2,
                        help="Fresh pairs of server processes (the rounds run on each pair)")
    parser.add_argument("--micro", action="store_true",
                        help="CPU time of the recording pieces alone: the hook per view, a flush per view")
    parser.add_argument("--same-process", action="store_true",
                        help="One server process; recording switched on and off between rounds (no process pair)")
    parser.add_argument("--control", action="store_true",
                        help="A/A control: neither side records (measures the set-up's own asymmetry)")
    return parser.parse_args()


async def main(opts: argparse.Namespace) -> None:
    binary = ensure_wrk()

    mongo = EmbeddedMongo(None)
    url = mongo.start()
    servers: list[Server] = []
    try:
        await prepare(url)
        env = {"MONGODB_URL": url, "MONGODB_DB": DB, "ENVIRONMENT": "development", "LOG_LEVEL": "WARNING",
               "RATE_LIMIT_DEFAULT": "100000000/minute", "REDIS_URL": "", "ANALYTICS_FLUSH_SECONDS": "1",
               "PYTHONHASHSEED": "0"}  # the same dict and set layouts in both processes
        enabled = {"with": "false" if opts.control else "true", "without": "false"}
        path = f"/api/v1/products/{SLUG}"
        names = list(enabled)
        totals = {name: [0, 0.0, [], []] for name in names}
        db_pid = mongo.proc.pid if mongo.proc is not None else None
        cpu = {name: [0.0, 0.0] for name in names}  # CPU seconds of the side's server, of the database meanwhile
        per_round: dict[str, list[float]] = {name: [] for name in names}
        dropped = 0.0
        for pair in range(opts.pairs):  # fresh processes, started in turn first: no side keeps a lucky process
            sides: dict[str, Server] = {}
            for name in names if pair % 2 == 0 else names[::-1]:
                sides[name] = Server("app.main:app_factory", {**env, "ANALYTICS_ENABLED": enabled[name]},
                                     "/api/v1/health")
                servers.append(sides[name])
            async with httpx.AsyncClient() as c:
                for server in sides.values():  # warm both (caches, connections)
                    for _ in range(50):
                        r = await c.get(server.base + path, headers={"X-Visitor-Id": VISITOR})
                        assert r.status_code == 200, r.text[:300]
            for rnd in range(opts.rounds):
                order = names if rnd % 2 == 0 else names[::-1]  # ABBA: neither side always goes first
                for name in order:
                    pid = sides[name].proc.pid
                    before = cpu_seconds(pid), cpu_seconds(db_pid)
                    n, secs, p50, p99 = wrk(binary, sides[name].base, path, opts.seconds, opts.concurrency)
                    cpu[name][0] += cpu_seconds(pid) - before[0]
                    cpu[name][1] += cpu_seconds(db_pid) - before[1]
                    totals[name][0] += n
                    totals[name][1] += secs
                    totals[name][2].append(p50)
                    totals[name][3].append(p99)
                    per_round[name].append(n / secs)
            async with httpx.AsyncClient() as c:
                metrics = (await c.get(sides["with"].base + "/metrics")).text
            dropped += sum(float(v) for v in re.findall(
                r'analytics_events_total\{result="dropped[^"]*"\} ([\d.e+]+)', metrics))
            for server in sides.values():
                server.stop()  # the recording side writes what it holds on the way out
        await asyncio.sleep(1.5)  # let the last batch be written
        stored = await stored_events(url)

        print(f"GET {path}, {opts.pairs} pairs of processes x {opts.rounds} alternating rounds of {opts.seconds} s "
              f"per side, {opts.concurrency} connections, load from wrk")
        print(f"{'side':<10}{'requests':>10}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'app CPU us/req':>16}"
              f"{'db CPU us/req':>15}")
        rate, cost = {}, {}
        for name, (n, secs, p50s, p99s) in totals.items():
            rate[name] = n / secs
            app_us, db_us = (c / n * 1e6 for c in cpu[name])
            cost[name] = app_us + db_us
            print(f"{name:<10}{n:>10}{rate[name]:>9.0f}{median(p50s):>9.2f}{median(p99s):>9.2f}{app_us:>16.0f}"
                  f"{db_us:>15.0f}")
        ratio = rate["with"] / rate["without"]
        pairs = [w / wo for w, wo in zip(per_round["with"], per_round["without"], strict=True)]
        print(f"per-round ratios: {' '.join(f'{r:.2f}' for r in pairs)} (median {median(pairs):.3f}); CPU per "
              f"request without/with (app + db): {cost['without'] / cost['with']:.3f}")
        print(f"ratio with/without (req/s): {ratio:.3f}  target >= 0.90{'' if ratio >= 0.9 else '  BELOW'}")
        result("product detail with/without analytics recording (two processes)", ratio, 0.9)
        print(f"events stored by the recording side: {stored} (views answered: {totals['with'][0] + 50 * opts.pairs} "
              f"+ those in "
              f"flight when a round ended); dropped: "
              f"{dropped:.0f}")
    finally:
        for server in servers:
            server.stop()
        mongo.stop()


async def micro() -> None:
    """CPU time (this process) of the product-page hook without and with a recorder, and of flushing 500 views
    (tally + one bulk write of upserts into the embedded database), per view."""
    import time
    from types import SimpleNamespace

    from starlette.requests import Request

    from app.config import Settings
    from app.models.db import connect
    from app.services import analytics

    mongo = EmbeddedMongo(None)
    url = mongo.start()
    try:
        settings = Settings(_env_file=None, mongodb_db=DB, analytics_queue_size=1_000_000, analytics_batch_size=500)
        client = await connect(settings, url)
        scope = {"type": "http", "method": "GET", "path": "/x", "query_string": b"",
                 "app": SimpleNamespace(state=SimpleNamespace(settings=settings)),
                 "headers": [(b"host", b"x"), (b"user-agent", b"wrk"), (b"x-visitor-id", VISITOR.encode())]}
        request = Request(scope)

        def hook() -> None:
            analytics.tracker_of(request).product_viewed("prd_01JD7Z00000000000000000001")

        def per_call(n: int) -> float:
            start = time.process_time()
            for _ in range(n):
                hook()
            return (time.process_time() - start) / n * 1e6

        without = min(per_call(100_000) for _ in range(3))
        recorder = analytics.AnalyticsRecorder(settings)
        analytics.install(recorder)
        try:
            with_ = min(per_call(100_000) for _ in range(3))
            recorder.pending.clear()
            spent, flushes = 0.0, 100
            for _ in range(flushes):
                for _ in range(500):
                    hook()
                start = time.process_time()
                await recorder.flush()
                spent += time.process_time() - start
        finally:
            analytics.uninstall(recorder)
        await client.close()
    finally:
        mongo.stop()
    print(f"hook per view: {without:.2f} us without a recorder, {with_:.2f} us with (+{with_ - without:.2f})")
    print(f"flush of 500 views: {spent / flushes * 1e3:.2f} ms = {spent / flushes / 500 * 1e6:.2f} us per view")


def same_process(opts: argparse.Namespace, binary: str) -> None:
    """Both sides in one uvicorn server (this process, recording on): between rounds the load thread uninstalls
    the recorder (``without``: the hook finds none, as with ANALYTICS_ENABLED=false) or installs it again
    (``with``; with ``--control`` it stays installed for both). No second process to differ by luck; CPU is
    this process's (the load thread only waits)."""
    import threading
    import time

    import uvicorn

    from app.services import analytics

    mongo = EmbeddedMongo(None)
    url = mongo.start()
    try:
        asyncio.run(prepare(url))
        os.environ.update({"MONGODB_URL": url, "MONGODB_DB": DB, "ENVIRONMENT": "development", "LOG_LEVEL": "WARNING",
                           "RATE_LIMIT_DEFAULT": "100000000/minute", "REDIS_URL": "", "ANALYTICS_ENABLED": "true",
                           "ANALYTICS_FLUSH_SECONDS": "1"})
        from app.main import app_factory

        port = free_port()
        server = uvicorn.Server(uvicorn.Config(app_factory, factory=True, host="127.0.0.1", port=port,
                                               log_level="warning", access_log=False))
        base, path = f"http://127.0.0.1:{port}", f"/api/v1/products/{SLUG}"
        db_pid = mongo.proc.pid if mongo.proc is not None else None
        rows: dict[str, list[tuple[int, float, float, float, float, float]]] = {"with": [], "without": []}

        def load() -> None:
            try:
                while not server.started:
                    time.sleep(0.1)
                for _ in range(50):
                    assert httpx.get(base + path, headers={"X-Visitor-Id": VISITOR}).status_code == 200
                recorder = analytics._installed[-1]
                for rnd in range(opts.rounds):
                    for name in ("with", "without") if rnd % 2 == 0 else ("without", "with"):
                        recording = name == "with" or opts.control
                        if recording and recorder not in analytics._installed:
                            analytics.install(recorder)
                        elif not recording:
                            analytics.uninstall(recorder)
                        time.sleep(1.2)  # the writer's timer drains what the other state queued
                        before = time.process_time(), cpu_seconds(db_pid)
                        n, secs, p50, p99 = wrk(binary, base, path, opts.seconds, opts.concurrency)
                        rows[name].append((n, secs, p50, p99, time.process_time() - before[0],
                                           cpu_seconds(db_pid) - before[1]))
                if recorder not in analytics._installed:
                    analytics.install(recorder)  # for the lifespan's own uninstall
            finally:
                server.should_exit = True

        thread = threading.Thread(target=load, daemon=True)
        thread.start()
        server.run()
        thread.join()
    finally:
        mongo.stop()

    print(f"GET {path}, one process, recording on/off in {opts.rounds} alternating rounds of {opts.seconds} s, "
          f"{opts.concurrency} connections, load from wrk")
    print(f"{'side':<10}{'requests':>10}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'app CPU us/req':>16}"
          f"{'db CPU us/req':>15}")
    rate, cost = {}, {}
    for name, rs in rows.items():
        n, secs = sum(r[0] for r in rs), sum(r[1] for r in rs)
        app_us, db_us = sum(r[4] for r in rs) / n * 1e6, sum(r[5] for r in rs) / n * 1e6
        rate[name], cost[name] = n / secs, app_us + db_us
        print(f"{name:<10}{n:>10}{rate[name]:>9.0f}{median([r[2] for r in rs]):>9.2f}"
              f"{median([r[3] for r in rs]):>9.2f}{app_us:>16.0f}{db_us:>15.0f}")
    pairs = [w[0] / w[1] / (wo[0] / wo[1]) for w, wo in zip(rows["with"], rows["without"], strict=True)]
    ratio = rate["with"] / rate["without"]
    print(f"per-round ratios: {' '.join(f'{r:.2f}' for r in pairs)} (median {median(pairs):.3f}); CPU per "
          f"request without/with (app + db): {cost['without'] / cost['with']:.3f}")
    print(f"ratio with/without (req/s): {ratio:.3f}  target >= 0.90{'' if ratio >= 0.9 else '  BELOW'}")
    result("product detail with/without analytics recording (one process)", ratio, 0.9)


if __name__ == "__main__":
    options = parse()
    if options.micro:
        asyncio.run(micro())
    elif options.same_process:
        same_process(options, ensure_wrk())
    else:
        asyncio.run(main(options))

"""Our app against a bare FastAPI app, side by side under ``wrk``, with the ratio ours/bare per case.

    .venv/bin/python bench/run.py [--redis] [--duration 5] [--rounds 3] [--only TEXT]

One command: installs ``wrk`` from Debian's packages when it is missing (``apt-get install -y wrk``), starts
one embedded database, seeds each data set the cases use, then for each Redis mode starts our app
(``app.main:app_factory``) and the bare app (``bench/bare_app.py``) under uvicorn with one worker each, the
same settings for both, and measures every case: a warm-up, then ``--rounds`` rounds in which ours and
bare run in turn (the order alternates) for ``--duration`` seconds each with 16 connections. Prints
requests/s and p50/p99 latency per side, ours/bare (requests/s) and the case's target; exits 1 when a
ratio is below its target.

Modes: without ``--redis`` our app runs without REDIS_URL (the in-process cache and limits of a
single-process deployment). ``--redis`` runs every case again with REDIS_URL set, on a private
``redis-server`` (or ``--redis-url URL``). The bare app never uses Redis.

Our app runs as in production: access log on (LOG_LEVEL=INFO, JSON, to /dev/null), rate limits on, background
workers on. The default limit is one no run reaches, per second: the moving window keeps every hit of its
window, and the in-memory storage of ``limits`` inserts each at the front of that list, so a per-minute limit
would make every hit of a long run slower than any real client (each IP has its own short list) ever sees.
The embedded database is not a database benchmark: the cases measure what our code adds to the same work.

Cases live in ``bench/cases/`` (one module per area; see that package's docstring for the interface).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.core.embedded_mongo import EmbeddedMongo, free_port  # noqa: E402
from bench.cases import Case, Ctx, Req, modules  # noqa: E402
from bench.summary import result  # noqa: E402

UVICORN = ["--host", "127.0.0.1", "--workers", "1", "--no-access-log", "--log-level", "warning"]


# --- tools and servers -----------------------------------------------------------------------------------
def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    print("wrk is missing: installing it from Debian's packages (apt-get install -y wrk)", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    if subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], env=env).returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], env=env, check=True)
        subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], env=env, check=True)
    found = shutil.which("wrk")
    if not found:
        raise SystemExit("wrk could not be installed")
    return found


def redis_binary() -> str:
    for candidate in (shutil.which("redis-server"), str(Path(sys.executable).parent / "redis-server")):
        if candidate and Path(candidate).exists():
            return candidate
    raise SystemExit("--redis needs a redis-server on PATH (or pass --redis-url)")


def wait_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise SystemExit(f"nothing listens on port {port}")


class Server:
    """A uvicorn process on a free port, stopped by ``stop``; ``cwd``/``pythonpath`` pick the code it runs
    (another commit's tree for a baseline)."""

    def __init__(self, target: str, env: dict[str, str], probe: str, cwd: Path = ROOT,
                 pythonpath: str | None = None) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        inherited = {k: v for k, v in os.environ.items() if not k.startswith(("MONGODB_", "REDIS_"))}
        if pythonpath:
            inherited["PYTHONPATH"] = pythonpath
        self.proc = subprocess.Popen([sys.executable, "-m", "uvicorn", target, "--factory", *UVICORN, "--port",
                                      str(self.port)], cwd=cwd, env={**inherited, **env},
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                if httpx.get(self.base + probe, timeout=5).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        err = self.proc.stderr.read().decode()[-3000:] if self.proc.stderr else ""
        raise SystemExit(f"{target} did not start:\n{err}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# --- wrk ------------------------------------------------------------------------------------------------
def lua_str(s: str) -> str:
    out = []
    for b in s.encode():
        ch = chr(b)
        out.append(ch if 32 <= b < 127 and ch not in '"\\' else f"\\{b}")
    return '"' + "".join(out) + '"'


def lua_script(reqs: list[Req]) -> str | None:
    """A wrk script cycling through ``reqs`` (None: one plain GET needs no script)."""
    if len(reqs) == 1 and reqs[0].method == "GET" and not reqs[0].headers:
        return None
    rows = []
    for r in reqs:
        headers = "{" + ", ".join(f"[{lua_str(k)}] = {lua_str(v)}" for k, v in r.headers.items()) + "}"
        body = lua_str(r.body) if r.body is not None else "nil"
        rows.append(f"    wrk.format({lua_str(r.method)}, {lua_str(r.path)}, {headers}, {body}),")
    return ("local reqs\nlocal i = 0\nfunction init(args)\n  reqs = {\n" + "\n".join(rows) + "\n  }\nend\n"
            "function request()\n  i = i % #reqs + 1\n  return reqs[i]\nend\n")


@dataclass
class Run:
    requests: int
    seconds: float
    p50: float  # ms
    p99: float
    errors: str  # non-2xx/3xx responses and socket errors, "" when none


UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def parse_wrk(out: str) -> Run:
    def latency(pct: str) -> float:
        m = re.search(rf"^\s*{pct}%\s+([\d.]+)(us|ms|s|m)\s*$", out, re.M)
        if not m:
            raise RuntimeError(f"no {pct}% latency in wrk output:\n{out}")
        return float(m.group(1)) * UNITS[m.group(2)]

    m = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m),", out)
    if not m:
        raise RuntimeError(f"unexpected wrk output:\n{out}")
    errors = [e.strip() for e in re.findall(r"^\s*(Non-2xx or 3xx responses: \d+|Socket errors: .*)$", out, re.M)]
    return Run(int(m.group(1)), float(m.group(2)) * UNITS[m.group(3)] / 1000, latency("50"), latency("99"),
               "; ".join(errors))


class Wrk:
    def __init__(self, binary: str, threads: int, tmp: Path) -> None:
        self.binary, self.threads, self.tmp = binary, threads, tmp

    def run(self, base: str, reqs: list[Req], lua: str | None, connections: int, seconds: float) -> Run:
        script = lua if lua is not None else lua_script(reqs)
        args = [self.binary, "-t", str(self.threads), "-c", str(connections), "-d", f"{seconds:g}s",
                "--timeout", "10s", "--latency"]
        if script is not None:
            path = self.tmp / f"case-{abs(hash(script))}.lua"
            path.write_text(script)
            args += ["-s", str(path)]
        done = subprocess.run([*args, base + reqs[0].path], capture_output=True, text=True, check=True)
        return parse_wrk(done.stdout)


# --- measuring ------------------------------------------------------------------------------------------
@dataclass
class Side:
    runs: list[Run]

    @property
    def rps(self) -> float:
        return sum(r.requests for r in self.runs) / sum(r.seconds for r in self.runs)

    @property
    def p50(self) -> float:
        return statistics.median(r.p50 for r in self.runs)

    @property
    def p99(self) -> float:
        return statistics.median(r.p99 for r in self.runs)

    @property
    def errors(self) -> str:
        return "; ".join(sorted({r.errors for r in self.runs if r.errors}))


def preflight(base: str, reqs: list[Req]) -> None:
    """Every request of a side answers below 400 before it is measured."""
    with httpx.Client(base_url=base, timeout=30) as client:
        for r in reqs:
            res = client.request(r.method, r.path, headers=r.headers, content=r.body)
            if res.status_code >= 400:
                raise RuntimeError(f"{r.method} {base}{r.path}: {res.status_code} {res.text[:300]}")


def measure(wrk: Wrk, case: Case, ours: str, bare: str, rounds: int, seconds: float) -> tuple[Side, Side]:
    sides = [(ours, Case.requests(case.ours), case.ours_lua), (bare, Case.requests(case.bare), case.bare_lua)]
    for base, reqs, lua in sides:
        if lua is None:
            preflight(base, reqs)
        wrk.run(base, reqs, lua, case.connections, min(1.0, seconds))  # warm-up: caches, connections, JIT-free
    results: list[list[Run]] = [[], []]
    for n in range(rounds):
        order = (0, 1) if n % 2 == 0 else (1, 0)
        for i in order:
            base, reqs, lua = sides[i]
            results[i].append(wrk.run(base, reqs, lua, case.connections, seconds))
    return Side(results[0]), Side(results[1])


HEADER = (f"{'case':<32}{'ours req/s':>11}{'p50 ms':>8}{'p99 ms':>8}{'bare req/s':>12}{'p50 ms':>8}{'p99 ms':>8}"
          f"{'ratio':>7}{'target':>9}")


def row(name: str, o: Side, b: Side, target: float | None) -> tuple[str, bool]:
    ratio = o.rps / b.rps
    ok = target is None or ratio >= target
    tgt = f">= {target:g}" if target is not None else "-"
    line = (f"{name[:31]:<32}{o.rps:>11,.0f}{o.p50:>8.2f}{o.p99:>8.2f}{b.rps:>12,.0f}{b.p50:>8.2f}{b.p99:>8.2f}"
            f"{ratio:>7.2f}{tgt:>9}{'' if ok else '  BELOW'}")
    return line, ok


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


# --- the run --------------------------------------------------------------------------------------------
async def seed(dataset: str, fn, mongo_url: str, db: str) -> None:
    from app.config import Settings
    from app.models.db import connect

    client = await connect(Settings(_env_file=None, mongodb_db=db), mongo_url)
    try:
        await fn(Ctx(dataset=dataset, mongo_url=mongo_url, db=db))
    finally:
        await client.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=5.0, help="Seconds per side per round (default 5)")
    parser.add_argument("--rounds", type=int, default=3, help="Alternating ours/bare rounds per case (default 3)")
    parser.add_argument("--threads", type=int, default=1, help="wrk threads (default 1: the cores go to the servers)")
    parser.add_argument("--redis", action="store_true", help="Also run with REDIS_URL (a private redis-server)")
    parser.add_argument("--redis-url", default=None, help="With --redis: use this Redis instead of starting one")
    parser.add_argument("--only", default=None, help="Run only the cases whose name contains this text")
    opts = parser.parse_args()

    wrk_bin = ensure_wrk()
    mods = modules()
    datasets: dict[str, object] = {}
    for m in mods:
        for name, fn in getattr(m, "DATASETS", {}).items():
            datasets.setdefault(name, fn)
    tmp = Path(tempfile.mkdtemp(prefix="af-bench-"))
    wrk = Wrk(wrk_bin, opts.threads, tmp)
    mongo = EmbeddedMongo(None)
    mongo_url = mongo.start()
    redis_proc = None
    modes: list[tuple[str, str | None]] = [("local", None)]
    if opts.redis:
        redis_url = opts.redis_url
        if redis_url is None:
            port = free_port()
            redis_proc = subprocess.Popen([redis_binary(), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                           "--appendonly", "no", "--dir", str(tmp)],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            redis_url = f"redis://127.0.0.1:{port}/0"
            wait_port(port)
        modes.append(("redis", redis_url))

    print(f"bench/run.py {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; Python {platform.python_version()}; "
          f"{os.cpu_count()} cores; load average {load()}")
    print(f"wrk -t{opts.threads}, {opts.rounds} alternating rounds of {opts.duration:g} s per side; one uvicorn "
          "worker per app; embedded database")
    failures: list[str] = []
    servers: list[Server] = []
    open_extras: list[contextlib.ExitStack] = []
    try:
        for dataset, fn in datasets.items():
            db = "bench_" + re.sub(r"\W", "_", dataset)
            asyncio.run(seed(dataset, fn, mongo_url, db))
            for mode, redis_url in modes:
                ctx = Ctx(dataset=dataset, mongo_url=mongo_url, db=db, mode=mode, redis_url=redis_url)
                extras = contextlib.ExitStack()
                open_extras.append(extras)
                extra_env: dict[str, str] = {}
                for m in mods:
                    if hasattr(m, "around"):
                        extra_env.update(extras.enter_context(m.around(ctx)))
                env = {"MONGODB_URL": mongo_url, "MONGODB_DB": db, "ENVIRONMENT": "development", "LOG_LEVEL": "INFO",
                       "LOG_JSON": "true", "RATE_LIMIT_DEFAULT": "1000000/second",
                       "EMBEDDED_DB_DIR": str(tmp / "var"), "MEDIA_DIR": str(tmp / "media")}
                if redis_url:
                    env["REDIS_URL"] = redis_url
                env.update(extra_env)
                ours = Server("app.main:app_factory", env, "/api/v1/health/ready")
                servers.append(ours)
                bare = Server("bench.bare_app:create", {"BENCH_MONGO_URL": mongo_url, "BENCH_DB": db}, "/ok")
                servers.append(bare)
                ctx.ours, ctx.bare = ours.base, bare.base
                cases = [c for m in mods if hasattr(m, "cases") for c in asyncio.run(m.cases(ctx))]
                cases = [c for c in cases if opts.only is None or opts.only.lower() in c.name.lower()]
                if cases:
                    print(f"\n[{dataset}, {'REDIS_URL set' if redis_url else 'no REDIS_URL'}] load average {load()}")
                    print(HEADER)
                for case in cases:
                    o, b = measure(wrk, case, ours.base, bare.base, opts.rounds, opts.duration)
                    line, ok = row(case.name, o, b, case.target)
                    result(f"{case.name} vs bare ({'REDIS_URL set' if redis_url else 'no REDIS_URL'})",
                           o.rps / b.rps, case.target)
                    print(line, flush=True)
                    for side, label in ((o, "ours"), (b, "bare")):
                        if side.errors:
                            print(f"    {label}: {side.errors}")
                            failures.append(f"{case.name} ({mode}): {label} {side.errors}")
                    if case.report is not None:
                        text = asyncio.run(case.report())
                        if text:
                            print("    " + text.replace("\n", "\n    "))
                    if not ok:
                        failures.append(f"{case.name} ({mode}): below {case.target}")
                for server in (bare, ours):
                    server.stop()
                    servers.remove(server)
                extras.close()
    finally:
        for server in servers:
            server.stop()
        for extras in open_extras:
            extras.close()
        if redis_proc is not None:
            redis_proc.terminate()
            redis_proc.wait(timeout=10)
        mongo.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"\nload average at the end: {load()}")
    if failures:
        print("NOT MET: " + "; ".join(failures))
        return 1
    print("every ratio at or past its target")
    return 0


if __name__ == "__main__":
    sys.exit(main())

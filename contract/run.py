"""Contract checks against the served app (called by scripts/contract, which installs the tools first).

1. A real uvicorn (``amour-florals serve``) on a fresh embedded database seeded with the demo shop.
2. schemathesis (all checks, a bounded number of examples) anonymously, as the demo customer and as the
   demo admin; any failure fails the run.
3. The TypeScript journey (openapi-typescript types + openapi-fetch, compiled by ``tsc --strict``) against it.
4. openapi-python-client: generates without warnings; ``contract/python_client_check.py`` then drives the
   served app with the generated client.

Usage: ``.venv-contract/bin/python contract/run.py [--examples N] [--only schemathesis,journey,python]``
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONTRACT = ROOT / "contract"
APP_BIN = ROOT / ".venv" / "bin"
TOOLS_BIN = Path(sys.executable).parent
PASSWORD = "Bouquet-Demo-2026"
ADMIN, CUSTOMER = "admin@amourflorals.com", "olivia@example.com"
# Operations that end the caller's own session would turn the rest of an authenticated run anonymous.
SESSION_ENDERS = ["auth_logout", "auth_logout_all", "users_me_password", "users_me_delete"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def post_json(url: str, body: dict) -> dict:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:  # noqa: S310 (loopback only)
        return json.load(r)


class Server:
    """The app under uvicorn on a free loopback port, with its own database directory."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "EMBEDDED_DB_DIR": str(workdir / "var"), "MEDIA_DIR": str(workdir / "media"),
                    "RATE_LIMIT_ENABLED": "false", "LOG_LEVEL": "WARNING", "REFRESH_COOKIE_SECURE": "false",
                    "SMTP_PORT": str(free_port()), "ENVIRONMENT": "development"}
        for key in ("MONGODB_URL", "REDIS_URL", "STRIPE_SECRET_KEY", "CLOUDINARY_URL"):
            self.env.pop(key, None)
        self.log = open(workdir / "server.log", "wb")  # noqa: SIM115 (closed in stop)
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        subprocess.run([str(APP_BIN / "amour-florals"), "seed"], env=self.env, check=True, cwd=ROOT,
                       stdout=subprocess.DEVNULL)
        self.proc = subprocess.Popen([str(APP_BIN / "amour-florals"), "serve", "--port", str(self.port)],
                                     env=self.env, cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.base}/api/v1/health", timeout=2):  # noqa: S310
                    return
            except OSError:
                if self.proc.poll() is not None:
                    break
                time.sleep(0.5)
        raise SystemExit(f"the app did not start; see {self.log.name}")

    def token(self, email: str) -> str:
        return post_json(f"{self.base}/api/v1/auth/login", {"email": email, "password": PASSWORD})["tokens"][
            "access_token"]

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, 15)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, 9)
        self.log.close()


def schemathesis(server: Server, name: str, examples: int, phases: str, token: str | None,
                 selection: list[str], report: Path) -> tuple[bool, float]:
    args = [str(TOOLS_BIN / "schemathesis"), "--config-file", str(CONTRACT / "schemathesis.toml"), "run",
            f"{server.base}/api/v1/openapi.json", "--checks", "all",
            "--max-examples", str(examples), "--seed", "20260501", "--workers", "2", "--no-shrink",
            "--phases", phases,
            "--suppress-health-check", "all", "--report", "junit", "--report-junit-path",
            str(report / f"schemathesis-{name}.xml"), *selection]
    if token:
        args += ["-H", f"Authorization: Bearer {token}"]
    print(f"\n=== schemathesis ({name}) ===", flush=True)
    started = time.monotonic()
    ok = subprocess.run(args, cwd=ROOT).returncode == 0
    return ok, time.monotonic() - started


STREAMS = r"^/api/v1/events/(stock|orders|staff)"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--examples", type=int, default=int(os.environ.get("CONTRACT_EXAMPLES", "6")))
    parser.add_argument("--only", default="schemathesis,journey,python")
    parser.add_argument("--phases", default=os.environ.get("CONTRACT_PHASES", "examples,fuzzing"))
    ns = parser.parse_args()
    steps = set(ns.only.split(","))
    workdir = Path(tempfile.mkdtemp(prefix="af-contract-"))
    report = ROOT / "var" / "contract"
    report.mkdir(parents=True, exist_ok=True)
    server = Server(workdir)
    results: dict[str, bool] = {}
    try:
        server.start()
        print(f"app served at {server.base} (log: {workdir / 'server.log'})", flush=True)
        if "schemathesis" in steps:
            admin_token, customer_token = server.token(ADMIN), server.token(CUSTOMER)
            enders = [a for op in SESSION_ENDERS for a in ("--exclude-operation-id", op)]
            # Live-event streams stay open for minutes: a request/response fuzzer cannot read them to the end.
            # Their tickets endpoint is fuzzed; the streams are tested in tests/test_events*.py.
            streams = ["--exclude-path-regex", STREAMS]
            # Hypothesis (6.x on CPython 3.11) dies inside its own lambda-source description while drawing
            # the refresh operation's cookie/body ("AST constructor recursion depth mismatch"), a tool error,
            # not a finding; refresh is covered by tests/test_auth.py, the TS journey and the Python client.
            tool_errors = ["--exclude-operation-id", "auth_refresh"]
            runs = [
                ("anonymous", None, [*streams, *tool_errors]),
                ("customer", customer_token, ["--exclude-path-regex", "^/api/v1/admin", *streams, *enders]),
                ("admin", admin_token, ["--include-path-regex", "^/api/v1/admin", *enders]),
            ]
            for name, token, selection in runs:
                ok, seconds = schemathesis(server, name, ns.examples, ns.phases, token, selection, report)
                results[f"schemathesis {name} ({seconds:.0f} s)"] = ok
        if "journey" in steps:
            print("\n=== TypeScript journey (openapi-fetch) ===", flush=True)
            ok = subprocess.run(["node", str(CONTRACT / "dist" / "journey.js"), server.base], cwd=CONTRACT).returncode
            results["typescript journey"] = ok == 0
        if "python" in steps:
            print("\n=== openapi-python-client ===", flush=True)
            results["python client"] = python_client(server, workdir)
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    print("\n=== contract summary ===")
    for name, ok in results.items():
        print(f"{'ok  ' if ok else 'FAIL'} {name}")
    print(f"{sum(results.values())} passed, {len(results) - sum(results.values())} failed")
    return 0 if all(results.values()) else 1


def python_client(server: Server, workdir: Path) -> bool:
    out = workdir / "amour_florals_client"
    gen = subprocess.run([str(TOOLS_BIN / "openapi-python-client"), "generate", "--path", str(ROOT / "openapi.json"),
                          "--output-path", str(out), "--meta", "none", "--config",
                          str(CONTRACT / "python-client.yaml")], cwd=workdir, capture_output=True, text=True)
    print(gen.stdout, gen.stderr, sep="\n")
    if gen.returncode != 0 or "Warning" in gen.stdout + gen.stderr:
        print("openapi-python-client failed or warned")
        return False
    env = {**os.environ, "PYTHONPATH": str(workdir)}
    check = subprocess.run([sys.executable, str(CONTRACT / "python_client_check.py"), server.base, str(out)],
                           env=env)
    return check.returncode == 0


if __name__ == "__main__":
    sys.exit(main())

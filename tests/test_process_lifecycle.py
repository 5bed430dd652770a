"""`amour-florals serve` and its embedded database child, as real processes (issue 7, item 9).

Each test starts `serve` as a subprocess on a free port with its own data directory, talks to it over
HTTP and looks at the machine's process table (/proc) for nx-27017 servers of that directory.
Waits are bounded polls; nothing asserts how fast anything is.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.core.embedded_mongo import free_port
from tests.support import API, STRONG, unique_email

CLI = Path(sys.executable).with_name("amour-florals")


def _state(pid: int) -> str | None:
    """The process state letter from /proc (None when there is no such process)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[0]


def _cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def database_servers(data_dir: Path) -> list[int]:
    """Live (non-zombie) nx-27017 processes serving ``data_dir`` (whatever started them)."""
    wanted = str(data_dir.resolve())
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        args = _cmdline(pid)
        if wanted in args and any("nx" in a for a in args) and _state(pid) not in (None, "Z", "X"):
            found.append(pid)
    return found


def poll(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"not within {timeout}s: {what}")


class Serve:
    """One `amour-florals serve` subprocess on a free port serving ``home/var/mongo``."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if k not in ("MONGODB_URL", "REDIS_URL", "ENVIRONMENT")}
        env.update(EMBEDDED_DB_DIR=str(home / "var"), MEDIA_DIR=str(home / "media"), LOG_JSON="false",
                   WORKERS_ENABLED="false", SMTP_PORT=str(free_port()))
        self.err_path = home / f"serve-{self.port}.err"
        with open(home / f"serve-{self.port}.out", "wb") as out, open(self.err_path, "wb") as err:
            self.proc = subprocess.Popen([str(CLI), "serve", "--port", str(self.port)], cwd=home, env=env,
                                         stdout=out, stderr=err)

    @property
    def stderr(self) -> str:
        return self.err_path.read_text()

    def ready(self) -> bool:
        try:
            return httpx.get(f"{self.base}{API}/health/ready", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def wait_ready(self) -> Serve:
        def up() -> bool:
            assert self.proc.poll() is None, f"serve exited with {self.proc.returncode}: {self.stderr}"
            return self.ready()

        poll(up, 90, f"serve on port {self.port} ready")
        return self

    def wait_exit(self) -> int:
        return self.proc.wait(timeout=60)


class Home:
    """A folder for `serve` runs; `serve()` starts one more."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.data_dir = path / "var" / "mongo"
        self.started: list[Serve] = []

    def serve(self) -> Serve:
        serve = Serve(self.path)
        self.started.append(serve)
        return serve


@pytest.fixture
def home(tmp_path) -> Iterator[Home]:
    """Every process started for the test is gone afterwards, also when it fails."""
    home = Home(tmp_path)
    yield home
    for serve in home.started:
        if serve.proc.poll() is None:
            serve.proc.kill()
            serve.proc.wait(timeout=30)
    for pid in database_servers(home.data_dir):  # only servers of this test's own folder
        os.kill(pid, signal.SIGKILL)


def register(serve: Serve) -> str:
    email = unique_email("lifecycle")
    r = httpx.post(f"{serve.base}{API}/auth/register", timeout=30,
                   json={"email": email, "password": STRONG, "first_name": "Rose", "last_name": "Petal"})
    assert r.status_code == 201, r.text
    return email


def can_login(serve: Serve, email: str) -> bool:
    r = httpx.post(f"{serve.base}{API}/auth/login", json={"email": email, "password": STRONG}, timeout=30)
    return r.status_code == 200


def test_sigterm_stops_the_database_child_and_the_data_survive_the_next_start(home):
    first = home.serve().wait_ready()
    email = register(first)
    assert len(database_servers(home.data_dir)) == 1

    first.proc.send_signal(signal.SIGTERM)  # what systemd, Docker and most supervisors send
    assert first.wait_exit() == 0, first.stderr
    assert database_servers(home.data_dir) == []  # stopped before serve exited, not merely later

    second = home.serve().wait_ready()
    assert can_login(second, email)
    assert len(database_servers(home.data_dir)) == 1
    second.proc.send_signal(signal.SIGTERM)
    assert second.wait_exit() == 0
    assert database_servers(home.data_dir) == []


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGHUP], ids=lambda s: s.name)
def test_sigint_and_sighup_stop_the_database_child(home, signum):
    serve = home.serve().wait_ready()
    assert len(database_servers(home.data_dir)) == 1
    serve.proc.send_signal(signum)
    assert serve.wait_exit() == 0, serve.stderr
    assert database_servers(home.data_dir) == []


def test_a_second_server_on_a_served_data_directory_is_refused(home):
    data_dir = home.data_dir
    first = home.serve().wait_ready()
    [db_pid] = database_servers(data_dir)

    second = home.serve()
    assert second.wait_exit() == 1
    assert f"already served by process {first.proc.pid}" in second.stderr, second.stderr
    assert database_servers(data_dir) == [db_pid]
    assert first.ready()
    holder = json.loads((data_dir / "server.lock").read_text())
    assert holder == {"pid": first.proc.pid, "child_pid": db_pid, "port": holder["port"]}

    first.proc.send_signal(signal.SIGTERM)
    assert first.wait_exit() == 0
    assert database_servers(data_dir) == []


def test_a_killed_server_takes_its_database_child_along_and_leaves_nothing_that_blocks_a_restart(home):
    data_dir = home.data_dir
    first = home.serve().wait_ready()
    email = register(first)
    [db_pid] = database_servers(data_dir)

    first.proc.kill()  # SIGKILL: no handler runs in serve
    first.wait_exit()
    poll(lambda: database_servers(data_dir) == [], 30, f"database child {db_pid} gone after its parent was killed")

    # A pid file naming a live process (as left by a killed server whose pid was reused) is stale
    # once the lock is ours: it must not stop the next start.
    (data_dir / "nx-27017.pid").write_text(str(os.getpid()))
    second = home.serve().wait_ready()
    assert can_login(second, email)
    assert len(database_servers(data_dir)) == 1
    second.proc.send_signal(signal.SIGTERM)
    assert second.wait_exit() == 0

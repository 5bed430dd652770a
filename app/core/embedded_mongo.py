"""Start/stop the embedded nx-27017 MongoDB-wire server (development, demos, tests — never production)."""

from __future__ import annotations

import logging
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

log = logging.getLogger("app.embedded_mongo")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _binary() -> list[str]:
    exe = shutil.which("nx-27017") or str(Path(sys.executable).with_name("nx-27017"))
    if Path(exe).exists():
        return [exe]
    return [sys.executable, "-m", "nx_27017"]


class EmbeddedMongo:
    """A child nx-27017 process on 127.0.0.1 and a free port.

    ``data_dir=None`` keeps everything in memory (tests); otherwise one SQLite file per database
    lives under ``data_dir`` so a restart keeps accounts and orders.
    """

    def __init__(self, data_dir: Path | None, port: int | None = None) -> None:
        self.data_dir = data_dir
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        run_dir = Path(data_dir) if data_dir else Path(tempfile.gettempdir())
        run_dir.mkdir(parents=True, exist_ok=True)
        self.pid_file = run_dir / f"nx-27017-{self.port}.pid"
        self.log_file = run_dir / f"nx-27017-{self.port}.log"

    @property
    def url(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/?directConnection=true"

    def start(self, timeout: float = 20.0) -> str:
        data = str(self.data_dir.resolve()) if self.data_dir else "memory"
        cmd = [*_binary(), "--data-dir", data, "--host", "127.0.0.1", "-p", str(self.port),
               "--pid-file", str(self.pid_file), "--log-file", str(self.log_file)]
        log.info("starting embedded MongoDB-wire server (nx-27017) on 127.0.0.1:%s data=%s", self.port, data)
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"nx-27017 exited with {self.proc.returncode}; see {self.log_file}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self.url
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"nx-27017 did not listen on port {self.port} within {timeout}s")

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.proc = None
        self.pid_file.unlink(missing_ok=True)

    def __enter__(self) -> EmbeddedMongo:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

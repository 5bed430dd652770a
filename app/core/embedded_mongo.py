"""Start/stop the embedded nx-27017 MongoDB-wire server (development, demos, tests — never production).

Lifecycle guarantees (tested with real processes in tests/test_process_lifecycle.py):
- the child exits when its parent dies, even by SIGKILL (`app.core.nx_child`: Linux parent-death signal,
  a watchdog elsewhere);
- one data directory is served by one server at a time: an exclusive ``flock`` on ``<data_dir>/server.lock``
  is taken before the child starts and shared with it, so it is released only when both are gone (the
  kernel drops it with the last process, so a killed process never leaves a stale lock); a second
  server on the same directory raises `DataDirBusy`;
- pid files left in the data directory by a killed server are removed once the lock is held.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

log = logging.getLogger("app.embedded_mongo")

LOCK_NAME = "server.lock"


class DataDirBusy(RuntimeError):
    """Another live process already serves this data directory (message names it and says what to do)."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class DataDirLock:
    """An exclusive, non-blocking ``flock`` on ``<directory>/server.lock`` naming its holder (JSON).

    The lock belongs to the open file description, so a child started with ``pass_fds=(lock.fd,)``
    keeps it held after the parent is gone; the kernel releases it when the last holder exits.
    """

    def __init__(self, directory: Path) -> None:
        self.path = Path(directory) / LOCK_NAME
        self.fd: int | None = None

    def acquire(self) -> None:
        """Take the lock or raise `DataDirBusy` naming the holder recorded in the file."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = self._read(fd)
            os.close(fd)
            who = f"process {holder['pid']}" if "pid" in holder else "another process"
            where = f" (database server on 127.0.0.1:{holder['port']})" if "port" in holder else ""
            raise DataDirBusy(
                f"{self.path.parent} is already served by {who}{where}. Stop that server first, or set "
                f"EMBEDDED_DB_DIR to another folder (or MONGODB_URL to a real MongoDB).") from None
        self.fd = fd
        self.record(pid=os.getpid())

    def record(self, **holder: object) -> None:
        """Rewrite the holder description (pid of the owning process, child pid, port)."""
        if self.fd is None:
            return
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, json.dumps(holder).encode(), 0)

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # the content stays: a lock file that nobody holds is free, not stale
            self.fd = None

    @staticmethod
    def _read(fd: int) -> dict[str, object]:
        try:
            data = json.loads(os.pread(fd, 4096, 0) or b"{}")
        except ValueError:
            return {}
        return data if isinstance(data, dict) else {}


class EmbeddedMongo:
    """A child nx-27017 process on 127.0.0.1 and a free port.

    ``data_dir=None`` keeps everything in memory (tests); otherwise one SQLite file per database
    lives under ``data_dir`` so a restart keeps accounts and orders, and the directory is locked
    (see the module docstring). Call `start` from a thread that lives as long as the server: on
    Linux the child is signalled when the thread that started it ends.
    """

    def __init__(self, data_dir: Path | None, port: int | None = None) -> None:
        self.data_dir = Path(data_dir) if data_dir else None
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.lock = DataDirLock(self.data_dir) if self.data_dir else None
        if self.data_dir:
            self.pid_file = self.data_dir / "nx-27017.pid"
            self.log_file = self.data_dir / "nx-27017.log"
        else:
            run_dir = Path(tempfile.gettempdir())
            self.pid_file = run_dir / f"nx-27017-{self.port}.pid"
            self.log_file = run_dir / f"nx-27017-{self.port}.log"

    @property
    def url(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/?directConnection=true"

    def _clean_stale_files(self) -> None:
        """Under the lock no other server uses this directory: its pid files are leftovers of a killed one."""
        assert self.data_dir is not None
        for stale in self.data_dir.glob("nx-27017*.pid"):
            log.info("removing stale pid file %s", stale)
            stale.unlink(missing_ok=True)

    def start(self, timeout: float = 20.0) -> str:
        """Start the child and wait until it accepts connections; returns its URL.

        Raises `DataDirBusy` when another live server holds the data directory, RuntimeError when the
        child exits or does not listen within ``timeout`` seconds.
        """
        pass_fds: tuple[int, ...] = ()
        if self.lock is not None:
            self.lock.acquire()
            self._clean_stale_files()
            if self.lock.fd is not None:  # always, once acquired
                pass_fds = (self.lock.fd,)
        data = str(self.data_dir.resolve()) if self.data_dir else "memory"
        cmd = [sys.executable, "-m", "app.core.nx_child", str(os.getpid()),
               "--data-dir", data, "--host", "127.0.0.1", "-p", str(self.port),
               "--pid-file", str(self.pid_file), "--log-file", str(self.log_file)]
        log.info("starting embedded MongoDB-wire server (nx-27017) on 127.0.0.1:%s data=%s", self.port, data)
        try:
            # Own session: a Ctrl-C in the terminal reaches only the parent, which stops the child itself.
            self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                         start_new_session=True, pass_fds=pass_fds)
        except BaseException:
            self._release()
            raise
        if self.lock is not None:
            self.lock.record(pid=os.getpid(), child_pid=self.proc.pid, port=self.port)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                code = self.proc.returncode
                self.stop()
                raise RuntimeError(f"nx-27017 exited with {code}; see {self.log_file}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self.url
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"nx-27017 did not listen on port {self.port} within {timeout}s")

    def stop(self) -> None:
        """SIGTERM the child (SIGKILL after 10 s), wait for it, then release the data directory."""
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(timeout=5)
            self.proc = None
            self.pid_file.unlink(missing_ok=True)
        self._release()

    def _release(self) -> None:
        if self.lock is not None:
            self.lock.release()

    def __enter__(self) -> EmbeddedMongo:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

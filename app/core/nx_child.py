"""Entry point of the embedded nx-27017 child: exit when the parent dies, then run the server.

Run as ``python -m app.core.nx_child PARENT_PID [nx-27017 arguments...]`` by `app.core.embedded_mongo`.
On Linux the kernel sends SIGTERM to this process when the thread that started it exits, including when
the parent is killed with SIGKILL (``prctl(PR_SET_PDEATHSIG)``, see prctl(2)); nx-27017 handles SIGTERM
by exiting cleanly. Elsewhere a watchdog thread polls ``getppid()`` twice a second and does the same.
The parent's id is checked once after arming, for a parent that died before the arming.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def _arm_parent_death_signal() -> bool:
    """Ask the kernel for SIGTERM when the parent dies; False where prctl is unavailable (not Linux)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        status: int = libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
        return status == 0
    except (OSError, AttributeError):
        return False


def _watch_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(0.5)
    os.kill(os.getpid(), signal.SIGTERM)


def main(argv: list[str]) -> int:
    parent = int(argv[0])
    if not _arm_parent_death_signal():
        threading.Thread(target=_watch_parent, args=(parent,), daemon=True, name="parent-watchdog").start()
    if os.getppid() != parent:  # the parent died before the signal was armed
        return 0
    from nx_27017.nx_27017 import main as nx_main

    sys.argv = ["nx-27017", *argv[1:]]
    return nx_main() or 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

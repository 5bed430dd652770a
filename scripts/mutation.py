"""Mutation testing of the money-path and auth modules with mutmut (pinned in the `[mutation]` extra).

    ./scripts/mutation app/services/inventory.py app/services/promo.py [--minutes 15] [--children 1]

For each module, in a copy of the working tree under var/mutation/<module>/ (the worktree itself is never
mutated; the copy is kept, so a run stopped by the budget goes on where it stopped next time):
1. writes a `[tool.mutmut]` table that mutates only that module and selects only the test files mapped to it
   in pyproject's `[tool.amour.mutation.tests]` (mutmut then runs, per mutant, only the tests of that
   selection that actually call the mutated function);
2. starts one embedded MongoDB-wire server and one Redis for the whole run (MONGODB_URL / REDIS_URL), so a
   mutant's test session does not start its own;
3. lets mutmut generate the mutants, then skips those that only change human-readable text (a string literal
   with a space in it: a message or a log line, never a key, a code or a query operator) and runs the rest,
   stopping at the time budget (`--minutes`, per module; results so far are kept and reported);
4. prints (and writes to var/mutation/<module>.md) the kill rate and the diff of every surviving mutant.

Exit status 0 when the run completed with no survivor, 1 when a mutant survived, 2 when the budget ran out.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "var" / "mutation"
PY = ROOT / ".venv" / "bin" / "python"
MUTMUT = ROOT / ".venv" / "bin" / "mutmut"


def config() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["amour"]["mutation"]


def ensure_mutmut() -> None:
    """Install the pinned `[mutation]` extra into .venv when mutmut is missing or another version."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    pin = next(r for r in pyproject["project"]["optional-dependencies"]["mutation"] if r.startswith("mutmut=="))
    probe = subprocess.run([PY, "-c", "import importlib.metadata as m; print(m.version('mutmut'))"],
                           capture_output=True, text=True)
    if probe.returncode != 0 or probe.stdout.strip() != pin.split("==")[1]:
        subprocess.run([PY, "-m", "pip", "install", "--quiet", "-e", f"{ROOT}[dev,mutation]"], check=True)


def copy_tree(dest: Path) -> None:
    """Tracked and new (not ignored) files of the working tree, as they are on disk now. An earlier copy is
    updated in place (unchanged files keep their time stamps), so mutmut keeps the results of functions
    that did not change and a run stopped by the budget goes on where it stopped."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            check=True, capture_output=True).stdout.decode().split("\0")
    for rel in filter(None, listed):
        src = ROOT / rel
        target = dest / rel
        if src.is_file() and not (target.is_file() and target.read_bytes() == src.read_bytes()):
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, target)


def write_mutmut_config(dest: Path, module: str, tests: list[str]) -> None:
    text = (ROOT / "pyproject.toml").read_text()
    table = (
        "\n[tool.mutmut]\n"
        'source_paths = ["app/"]\n'
        f"only_mutate = [{json.dumps(module)}]\n"
        f"pytest_add_cli_args_test_selection = {json.dumps(tests)}\n"
        'pytest_add_cli_args = ["-p", "no:cacheprovider", "-W", "ignore"]\n'
        'process_isolation = "forkserver"\n'
    )
    target = dest / "pyproject.toml"
    if not target.is_file() or target.read_text() != text + table:
        target.write_text(text + table)


# --- which mutants change only prose --------------------------------------------------------------------
def _is_prose(value: object) -> bool:
    return isinstance(value, str) and any(ch.isspace() for ch in value.strip())


def _text_only_change(orig: ast.AST, mutant: ast.AST) -> bool:
    """True when the two functions differ only in string constants that are prose (or prose → None)."""
    a_nodes, b_nodes = list(ast.walk(orig)), list(ast.walk(mutant))
    if len(a_nodes) != len(b_nodes):
        return False
    changed = False
    for a, b in zip(a_nodes, b_nodes, strict=True):
        if type(a) is not type(b):
            return False
        if isinstance(a, ast.Constant):
            if a.value != b.value or type(a.value) is not type(b.value):
                if not _is_prose(a.value):
                    return False
                changed = True
        elif isinstance(a, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        else:
            fields_a = {k: v for k, v in ast.iter_fields(a) if not isinstance(v, ast.AST | list)}
            fields_b = {k: v for k, v in ast.iter_fields(b) if not isinstance(v, ast.AST | list)}
            if fields_a != fields_b:
                return False
    return changed


def classify(work: Path, module: str) -> tuple[list[str], list[str]]:
    """(mutant names to run, mutant names that only change prose) from mutmut's generated module."""
    dotted = module.removesuffix(".py").replace("/", ".")
    tree = ast.parse((work / "mutants" / module).read_text())
    funcs = {n.name: n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)}
    run, prose = [], []
    for name, node in funcs.items():
        stem, sep, suffix = name.rpartition("__mutmut_")
        if not sep or not suffix.isdigit():
            continue
        orig = funcs.get(f"{stem}__mutmut_orig")
        key = f"{dotted}.{name}"
        (prose if orig is not None and _text_only_change(orig, node) else run).append(key)
    return run, prose


# --- running --------------------------------------------------------------------------------------------
def start_services() -> tuple[dict[str, str], list]:
    sys.path.insert(0, str(ROOT))
    from app.core.embedded_mongo import EmbeddedMongo
    from tests.services import RedisProcess

    mongo, redis = EmbeddedMongo(None), RedisProcess()
    env = {"MONGODB_URL": mongo.start(), "REDIS_URL": redis.start()}
    return env, [mongo, redis]


def run_mutmut(work: Path, args: list[str], env: dict[str, str], deadline: float, log) -> str:
    """Run `mutmut <args>` in its own process group; 'done', or 'budget' when stopped at the deadline."""
    proc = subprocess.Popen([str(MUTMUT), *args], cwd=work, env={**os.environ, **env}, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        proc.wait(timeout=max(1.0, deadline - time.monotonic()))
        return "done"
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        return "budget"


def results(work: Path, module: str) -> dict[str, str]:
    from mutmut.stats import status_by_exit_code

    meta = json.loads((work / "mutants" / f"{module}.meta").read_text())
    return {k: status_by_exit_code[v] for k, v in meta["exit_code_by_key"].items()}


def diff(work: Path, name: str) -> str:
    out = subprocess.run([str(MUTMUT), "show", name], cwd=work, capture_output=True, text=True).stdout
    return "\n".join(line for line in out.splitlines() if line.startswith(("-", "+")) and
                     not line.startswith(("---", "+++")))


def mutate_module(module: str, tests: list[str], minutes: float, children: int, env: dict[str, str]) -> int:
    slug = Path(module).stem
    work = WORK / slug
    copy_tree(work)
    write_mutmut_config(work, module, tests)
    deadline = time.monotonic() + minutes * 60
    started = time.monotonic()
    with (WORK / f"{slug}.log").open("w") as log:
        # 1: generate the mutants and the per-function test map, running one cheap mutant.
        first = run_mutmut(work, ["run", "--max-children", str(children), "*__mutmut_1"], env, deadline, log)
        to_run, prose = classify(work, module) if (work / "mutants" / module).exists() else ([], [])
        done = results(work, module) if (work / "mutants" / f"{module}.meta").exists() else {}
        to_run = [m for m in to_run if done.get(m, "not checked") not in ("killed", "timeout")]  # again: survivors
        state = first
        if first == "done" and to_run:  # 2: every mutant that changes code, not only text
            state = run_mutmut(work, ["run", "--max-children", str(children), *to_run], env, deadline, log)
    status = results(work, module) if (work / "mutants" / f"{module}.meta").exists() else {}
    ran = {k: v for k, v in status.items() if k not in prose}
    counts: dict[str, int] = {}
    for v in ran.values():
        counts[v] = counts.get(v, 0) + 1
    killed = counts.get("killed", 0) + counts.get("timeout", 0)
    checked = sum(n for s, n in counts.items() if s not in ("not checked", "no tests"))
    survivors = sorted((k for k, v in ran.items() if v == "survived"), key=_natural)
    lines = [f"## {module}", "",
             f"- tests: {' '.join(tests)}",
             f"- mutants: {len(status)} generated, {len(prose)} skipped (text only), {len(ran)} to run; "
             f"{', '.join(f'{n} {s}' for s, n in sorted(counts.items()))}",
             f"- kill rate: {killed}/{checked} = {100 * killed / checked:.1f}% of the checked mutants"
             if checked else "- kill rate: nothing checked",
             f"- time: {(time.monotonic() - started) / 60:.1f} min ({state})", ""]
    for name in survivors:
        lines += [f"### survived: {name}", "```diff", diff(work, name), "```", ""]
    for name in sorted((k for k, v in ran.items() if v == "no tests"), key=_natural):
        lines.append(f"- no test calls {name}")
    report = "\n".join(lines)
    (WORK / f"{slug}.md").write_text(report + "\n")
    print(report, flush=True)
    if state != "done":
        return 2
    return 1 if survivors else 0


def _natural(name: str) -> tuple[str, int]:
    stem, _, n = name.rpartition("_")
    return stem, int(n) if n.isdigit() else 0


def main() -> int:
    ap = argparse.ArgumentParser(description="Mutation testing of money-path modules (mutmut).")
    ap.add_argument("modules", nargs="+", help="e.g. app/services/promo.py (a key of [tool.amour.mutation.tests])")
    ap.add_argument("--minutes", type=float, default=15.0, help="time budget per module (default 15)")
    ap.add_argument("--children", type=int, default=1, help="mutants run in parallel (default 1)")
    args = ap.parse_args()
    test_map: dict[str, list[str]] = config()["tests"]
    unknown = [m for m in args.modules if m not in test_map]
    if unknown:
        ap.error(f"no test selection for {unknown} in [tool.amour.mutation.tests]; known: {sorted(test_map)}")
    ensure_mutmut()
    WORK.mkdir(parents=True, exist_ok=True)
    env, services = start_services()
    worst = 0
    try:
        for module in args.modules:
            worst = max(worst, mutate_module(module, test_map[module], args.minutes, args.children, env))
    finally:
        for s in services:
            s.stop()
    return worst


if __name__ == "__main__":
    sys.exit(main())

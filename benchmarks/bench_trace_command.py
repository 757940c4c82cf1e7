"""Benchmark the `bpoguard trace leak DUMP --json` command, old code against new, alternated.

Each run is a fresh process, as a user starts it (`bpoguard.cli.entry`), with
PYTHONPATH pointing at one source tree: the old one (say `git archive <commit>
src | tar -x -C /tmp/old`) or the new one (`src`, by default). The runs alternate
old, new, new, old, ... so that the shared machine's load falls on both alike.
Measured from outside the child: wall seconds from spawn to reap, the child's own
CPU seconds and peak RSS (its rusage from wait4, not the parent's). The reports
must be the same bytes: every run's stdout is hashed, and with ``--html`` each
tree also writes the HTML page once, after the timed runs, and those are compared.

    python benchmarks/bench_trace_command.py --old /tmp/old/src --home W --dump D --runs 3
    python benchmarks/bench_trace_command.py --old /tmp/old/src --home W --dump D --html --stages

``--old-home`` gives the old tree its own workspace where a cache's format changed
between the trees (a view of the same world with the old cache), so that neither
rebuilds the other's.

``--command`` times another command instead, its stdout compared the same way (start-up
is shared by every command: `--command=--help`, `--command "info --json"`; the
workspace is passed as `--home` where the command is not `--help` or `--version`).

    python benchmarks/bench_trace_command.py --old /tmp/old/src --home W --command=--help

``--stages`` runs each tree once more in process with the stages timed (the import
of the CLI, the fork of the dump's worker where there is one, the import of the trace,
trace_leak and its own stages, leak_document, emit_json, and the end of main to the
process's exit); ``--stages N`` runs N such pairs, alternated.
Prints medians and maxima per tree, the new/old ratios, and the load average.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_COMMAND = (
    "import sys; from bpoguard.cli import entry; sys.argv = ['bpoguard', *sys.argv[1:]]; entry()"
)

# The lead's stage timer (session 13), run inside the child: it wraps the command's
# parts in place and prints a mark as each ends; the last mark is printed by the parent.
# The parts are wrapped as their modules load (an import hook), not imported ahead: the
# command imports the trace itself, after it has forked the dump's worker.
_STAGES = """
import importlib.machinery, sys, time
T0 = time.perf_counter()
marks = []
found = {}
def wrap(mod, name):
    f = getattr(mod, name)
    def g(*a, **k):
        s = time.perf_counter(); r = f(*a, **k)
        marks.append((name, time.perf_counter() - T0, time.perf_counter() - s))
        if name == "trace_leak": found.update(r.timings)
        return r
    setattr(mod, name, g)
def on_leak(mod):
    marks.append(("import trace", time.perf_counter() - T0)); wrap(mod, "trace_leak")
def on_recognition(mod):
    cls = getattr(mod, "DumpRecognition", None)
    if cls is not None:
        start = cls._start
        def _start(self):
            marks.append(("worker forked", time.perf_counter() - T0)); start(self)
        cls._start = _start
AFTER = {"bpoguard.trace.leak": on_leak, "bpoguard.trace.recognition": on_recognition,
         "bpoguard.trace.report": lambda mod: wrap(mod, "leak_document"),
         "bpoguard.cli._common": lambda mod: wrap(mod, "emit_json")}
class Hook:
    def find_spec(self, name, path, target=None):
        if name not in AFTER:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None:
            return spec
        real = spec.loader.exec_module
        def exec_module(module):
            real(module); AFTER[name](module)
        spec.loader.exec_module = exec_module
        return spec
sys.meta_path.insert(0, Hook())
import bpoguard.cli.app
marks.append(("import cli", time.perf_counter() - T0))
from bpoguard.cli import main
sys.argv = ["bpoguard", *sys.argv[1:]]
code = main()
sys.stdout.flush()
marks.append(("main returned", time.perf_counter() - T0))
for m in sorted(marks, key=lambda m: m[1]):
    print("  ", m[0], *(f"{x:.3f}" for x in m[1:]), file=sys.stderr)
print("   trace_leak stages:", ", ".join(f"{k} {v:.3f}" for k, v in found.items()), file=sys.stderr)
import resource
own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
print(f"   CPU: this process {own.ru_utime + own.ru_stime:.3f} s, its workers "
      f"{kids.ru_utime + kids.ru_stime:.3f} s", file=sys.stderr)
print(f"END {time.time():.6f}", file=sys.stderr)
import gc
gc.freeze()  # as bpoguard.cli.entry does before it exits: the exit is timed as the command's
"""


def _run(tree: Path, args: list[str], code: str = _COMMAND) -> tuple[float, float, int, str, str]:
    """One child: wall, CPU seconds, peak RSS (KiB), the sha256 of stdout, stderr."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        child = subprocess.Popen(
            [sys.executable, "-c", code, *args], stdout=out, stderr=err, env=env
        )
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - start
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        digest = hashlib.sha256(out.read()).hexdigest()
        err.seek(0)
        text = err.read().decode("utf-8", "replace")
    if child.returncode != 0:
        raise SystemExit(f"{tree}: exit {child.returncode}: {text[-2000:]}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss, digest, text


def _argv(command: str | None, dump: Path | None, home: Path) -> list[str]:
    """The command's arguments: trace leak of the dump, or another command, in ``home``."""
    if command is None:
        return ["trace", "leak", str(dump), "--home", str(home), "--json"]
    argv = command.split()
    if not {"--help", "--version"} & set(argv):
        argv += ["--home", str(home)]
    return argv


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    """Time old and new alternately and compare their reports."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--old", type=Path, required=True, help="the old source tree (its src folder)")
    p.add_argument("--new", type=Path, default=Path(__file__).resolve().parent.parent / "src")
    p.add_argument("--home", type=Path, required=True, help="the workspace (only read)")
    p.add_argument(
        "--old-home", type=Path,
        help="the workspace for the old tree, where a cache's format changed (default: --home)",
    )  # fmt: skip
    p.add_argument("--dump", type=Path, help="the dump (for trace leak, the default command)")
    p.add_argument("--command", help="another command to time, e.g. '--help' or 'info --json'")
    p.add_argument("--runs", type=int, default=3, help="timed runs of each tree")
    p.add_argument("--warm", type=int, default=1, help="untimed runs first (the page cache)")
    p.add_argument("--html", action="store_true", help="also compare the HTML pages")
    p.add_argument(
        "--stages", type=int, nargs="?", const=1, default=0, metavar="N",
        help="N staged runs of each tree at the end, alternated (1 without N)",
    )  # fmt: skip
    a = p.parse_args()
    trees = {"old": a.old.resolve(), "new": a.new.resolve()}
    homes = {"old": a.old_home or a.home, "new": a.home}
    if a.command is not None:
        if a.html or a.stages:
            p.error("--html and --stages are for trace leak")
    elif a.dump is None:
        p.error("--dump is required for trace leak")
    argvs = {name: _argv(a.command, a.dump, home) for name, home in homes.items()}
    for _ in range(a.warm):
        for name, tree in trees.items():
            _run(tree, argvs[name])
    figures: dict[str, list[tuple[float, float, int]]] = {"old": [], "new": []}
    digests: dict[str, set[str]] = {"old": set(), "new": set()}
    print(f"load before: {_load()}")
    for k in range(a.runs):
        order = ["old", "new"] if k % 2 == 0 else ["new", "old"]
        for name in order:
            wall, cpu, rss, digest, _ = _run(trees[name], argvs[name])
            figures[name].append((wall, cpu, rss))
            digests[name].add(digest)
            print(
                f"  run {k + 1} {name}: wall {wall:.2f} s, CPU {cpu:.2f} s, peak RSS {rss / 1024:.0f} MiB"
            )
    print(f"load after: {_load()}")
    med = {}
    for name, runs in figures.items():
        walls, cpus, rsss = zip(*runs, strict=True)
        med[name] = (statistics.median(walls), statistics.median(cpus), statistics.median(rsss))
        print(
            f"{name}: wall median {med[name][0]:.2f} s (max {max(walls):.2f}), CPU median "
            f"{med[name][1]:.2f} s (max {max(cpus):.2f}), peak RSS median {med[name][2] / 1024:.0f} MiB"
        )
    print(
        f"new/old: wall {med['new'][0] / med['old'][0]:.2f}, CPU {med['new'][1] / med['old'][1]:.2f}, "
        f"peak RSS {med['new'][2] / med['old'][2]:.2f}"
    )
    same = len(digests["old"] | digests["new"]) == 1
    print(f"stdout: {'identical bytes' if same else 'DIFFERENT'} over all runs")
    if a.html:
        pages = {}
        with tempfile.TemporaryDirectory() as folder:
            for name, tree in trees.items():
                page = Path(folder) / f"{name}.html"
                _run(tree, [*argvs[name], "--html", str(page)])
                pages[name] = page.read_bytes()
        print(f"HTML pages: {'identical bytes' if pages['old'] == pages['new'] else 'DIFFERENT'}")
    for k in range(a.stages):
        for name in ["old", "new"] if k % 2 == 0 else ["new", "old"]:
            tree = trees[name]
            wall, cpu, _, _, text = _run(tree, argvs[name], _STAGES)
            ended = time.time()
            lines = [x for x in text.splitlines() if not x.startswith("END ")]
            end = next(float(x.split()[1]) for x in text.splitlines() if x.startswith("END "))
            print(
                f"{name} stages (wall {wall:.2f} s, CPU {cpu:.2f} s; seconds from start, then own):"
            )
            print("\n".join(lines))
            print(f"   main returned to process reaped: about {ended - end:.3f} s")
    if not same:
        raise SystemExit(1)


if __name__ == "__main__":
    main()

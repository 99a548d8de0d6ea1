"""Fast path: a fresh process with warm caches fits Exam random slope and prints the summary.

Each run is a new Python process that imports hierfit, loads the Exam data, fits
``normexam ~ standLRT + (standLRT | school)`` (defaults: 4 chains, 1000 draws after 1000
tune, seed 1) and prints the summary, timed from the first import to the printed
summary.  The caches are warm: a first, untimed run fills numba's kernel cache and
Python's bytecode caches (a pip-installed package has its bytecode compiled).

Wall-clock times on a shared machine vary with the other jobs, so each run also records
the process's CPU time, the modules it imported and whether dask was imported; runs
alternate between the source trees compared (``--compare``), so both see the same load.
The table gives the minimum over the repeats.

Usage:
  python benchmarks/fast_path.py                          # this tree, 5 runs
  python benchmarks/fast_path.py --compare /tmp/old-tree  # and an older tree (git worktree / git archive)
  python benchmarks/fast_path.py --profile                # cProfile of one run: cumulative time by phase
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
from _revision import revision  # noqa: E402

FORMULA = "normexam ~ standLRT + (standLRT | school)"
SECTION = "## Fast path"

CHILD = r"""
import resource, sys, time
t0 = time.perf_counter()
import hierfit
t1 = time.perf_counter()
data = hierfit.datasets.load("exam")
fit = hierfit.fit(FORMULA, data, seed=1, progressbar=False)
t2 = time.perf_counter()
print(fit.summary())
t3 = time.perf_counter()
ru = resource.getrusage(resource.RUSAGE_SELF)
timing = {k: v for k, v in fit.timing.items() if isinstance(v, float)}
print("RESULT " + __import__("json").dumps(dict(
    import_s=t1 - t0, fit_s=t2 - t1, summary_s=t3 - t2, total_s=t3 - t0, cpu_s=ru.ru_utime + ru.ru_stime,
    modules=len(sys.modules), dask="dask" in sys.modules, timing=timing)), file=sys.stderr)
""".replace("FORMULA", repr(FORMULA))


def run_child(tree: Path, profile: str | None = None) -> dict:
    env = dict(os.environ, PYTHONPATH=str(tree), MPLBACKEND="Agg")
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # warm caches include the bytecode caches
    script = Path("/tmp/hierfit-fast-path-child.py")
    script.write_text(CHILD)
    cmd = [sys.executable] + (["-m", "cProfile", "-o", profile] if profile else []) + [str(script)]
    out = subprocess.run(cmd, cwd=tree, env=env, capture_output=True, text=True, timeout=600)
    line = [ln for ln in out.stderr.splitlines() if ln.startswith("RESULT ")]
    if out.returncode != 0 or not line:
        raise RuntimeError(f"run in {tree} failed:\n{out.stderr[-2000:]}")
    return json.loads(line[-1][len("RESULT "):])


def profile_phases(tree: Path) -> list[tuple[str, float]]:
    """Cumulative seconds (under cProfile) of the phases of one run."""
    import pstats

    path = "/tmp/hierfit-fast-path.prof"
    run_child(tree, profile=path)
    stats = pstats.Stats(path).stats
    wanted = [("import hierfit", "hierfit/__init__.py", "<module>"), ("hierfit.fit (all of it)", "pipeline.py", "fit"),
              ("  sample_spec", "kernel/driver.py", "sample_spec"), ("    kernel load", "kernel/__init__.py",
                                                                      "entry_point"),
              ("    sampler", "~", "<method 'wait' of 'builtins.PySampler' objects>"),
              ("    trace to DataTree", "kernel/driver.py", "trace_to_datatree"),
              ("  group effects", "group_draws.py", "draw_group_effects"),
              ("summary", "results/fit.py", "summary")]
    out = []
    for label, file, func in wanted:
        best = max((v[3] for k, v in stats.items() if k[0].endswith(file) and k[2] == func), default=float("nan"))
        out.append((label, best))
    return out


def section(trees: list[Path], labels: dict, results: dict, runs: int, command: str, phases, load: tuple) -> str:
    keys = [("total_s", "total s"), ("import_s", "import s"), ("fit_s", "fit s"), ("summary_s", "summary s"),
            ("cpu_s", "CPU s")]
    lines = [SECTION, "", f"Command: `{command}`", "",
             f"{FORMULA} on Exam (4059 rows), 4 chains x 1000 draws after 1000 tune, seed 1; each run a fresh "
             f"process with warm caches (kernel and bytecode), timed from the first import to the printed summary; "
             f"{runs} runs per tree, alternating; minimum over the runs; {time.strftime('%Y-%m-%d')}; "
             f"{os.cpu_count()} cores, load average {load[0]:.1f} at the start and {load[1]:.1f} at the end "
             "(the machine "
             "is shared with other jobs: CPU time and module counts are steadier than wall time).", "",
             "| tree | " + " | ".join(h for _, h in keys) + " | modules | dask imported |",
             "|---|" + "---|" * (len(keys) + 2)]
    for tree in trees:
        rs = results[str(tree)]
        lines.append(f"| {labels[str(tree)]} | " + " | ".join(f"{min(r[k] for r in rs):.2f}" for k, _ in keys)
                     + f" | {min(r['modules'] for r in rs)} | {any(r['dask'] for r in rs)} |")
    if phases:
        lines += ["", "cProfile of one run (this tree), cumulative seconds (profiling roughly doubles them):", "",
                  "| phase | s |", "|---|---|"] + [f"| {label} | {s:.3f} |" for label, s in phases]
    return "\n".join(lines) + "\n"


def write_section(text: str, path: Path) -> None:
    """Replace (or append) the fast-path section of speed.md, keeping the rest."""
    old = path.read_text() if path.exists() else "# Speed benchmark\n"
    head = re.split(r"^" + re.escape(SECTION) + r"$", old, maxsplit=1, flags=re.M)[0].rstrip()
    path.write_text(head + "\n\n" + text)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--compare", nargs="*", default=[],
                   help="other source trees (a folder holding hierfit/), as PATH or PATH=LABEL")
    p.add_argument("--profile", action="store_true", help="add a cProfile breakdown of one run")
    p.add_argument("--out", default=str(HERE / "results" / "speed.md"))
    args = p.parse_args()
    labels = {str(ROOT): "this tree (" + revision() + ")"}
    for item in args.compare:
        path, _, label = item.partition("=")
        labels[str(Path(path).resolve())] = label or path
    trees = [Path(t) for t in labels]
    load_start = os.getloadavg()[0]
    for tree in trees:  # warm the kernel and bytecode caches
        run_child(tree)
    results: dict = {str(t): [] for t in trees}
    for _ in range(args.runs):
        for tree in trees:
            r = run_child(tree)
            results[str(tree)].append(r)
            print(tree, json.dumps({k: (round(v, 3) if isinstance(v, float) else v) for k, v in r.items()
                                    if k != "timing"}), flush=True)
    phases = profile_phases(ROOT) if args.profile else None
    command = "python benchmarks/fast_path.py " + shlex.join(sys.argv[1:])
    text = section(trees, labels, results, args.runs, command, phases, (load_start, os.getloadavg()[0]))
    write_section(text, Path(args.out))
    print(text)


if __name__ == "__main__":
    main()

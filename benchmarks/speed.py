"""Speed benchmark: formula to converged summary, each fit in a fresh process.

Configurations (same data, draws and seed):
  hierfit           the default: hierfit's compiled kernel, collapsed sampler where eligible, nutpie
  hierfit-full      group effects sampled by NUTS, non-centred, compiled kernel, nutpie
  hierfit-pytensor  the default model with PyTensor's numba kernel (compiled per model structure)
  hierfit-pymc      the default model sampled by PyMC's own NUTS
  bambi             bambi 0.21 with nutpie (pip install hierfit[bench])
  bambi-pymc        bambi 0.21 with PyMC's NUTS (its default)
Each hierfit configuration is compared with the bambi run that uses the same sampler
(nutpie or PyMC's NUTS).

Data sets: Exam random intercept and random slope; synthetic Gaussian data with 1,000 groups
at n = 10^4, 10^5, 10^6 (y ~ x + (x | g)).

Caches (PyTensor's and numba's, in a folder of their own for each cache state):
  cold      empty: the first fit after installing
  new       warmed by fitting a *different* formula first (Exam: the other Exam model; synthetic:
            y ~ x + (1 | g)): a formula never fitted before, with the package already used
  warm      warmed by fitting the same formula first

Usage:
  python benchmarks/speed.py                       # Exam, every configuration and cache state
  python benchmarks/speed.py --data synth_1e4 synth_1e5 synth_1e6 --configs hierfit hierfit-full bambi \\
      --caches warm --out benchmarks/results/speed_synthetic.md
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _revision import revision  # noqa: E402

DRAWS = 1000
DATASETS = {
    "exam_ri": "normexam ~ standLRT + sex + (1 | school)",
    "exam_rs": "normexam ~ standLRT + sex + (standLRT | school)",
    "synth_1e4": "y ~ x + (x | g)",
    "synth_1e5": "y ~ x + (x | g)",
    "synth_1e6": "y ~ x + (x | g)",
}
#: the formula fitted first for the "new" cache state
OTHER = {"exam_ri": "exam_rs", "exam_rs": "exam_ri"}
CONFIGS = ("hierfit", "hierfit-full", "hierfit-pytensor", "hierfit-pymc", "bambi", "bambi-pymc")
#: which bambi run each configuration is compared with (same sampler)
BASELINE = {"hierfit": "bambi", "hierfit-full": "bambi", "hierfit-pytensor": "bambi", "hierfit-pymc": "bambi-pymc",
            "bambi": "bambi", "bambi-pymc": "bambi-pymc"}


def load_data(name: str):
    import numpy as np
    import pandas as pd

    if name.startswith("exam"):
        import hierfit

        return hierfit.datasets.load("exam")
    n = int(float(name.split("_")[1]))
    rng = np.random.default_rng(42)
    g = rng.integers(0, 1000, n)
    x = rng.normal(size=n)
    u = rng.multivariate_normal([0, 0], [[0.25, 0.05], [0.05, 0.09]], 1000)
    y = 1.0 + u[g, 0] + (0.5 + u[g, 1]) * x + rng.normal(0, 1.0, n)
    return pd.DataFrame({"y": y, "x": x, "g": g})


def child(config: str, data_name: str, draws: int, formula: str) -> dict:
    """One fit, timed in this (fresh) process, from the first import to the printed summary."""
    import resource

    t0 = time.perf_counter()
    if config.startswith("bambi"):
        import bambi
        import numpy as np
    else:
        import hierfit
        import numpy as np
    t_import = time.perf_counter() - t0
    data = load_data(data_name)
    t1 = time.perf_counter()
    if config.startswith("bambi"):
        import arviz as az

        model = bambi.Model(formula, data)
        method = "nutpie" if config == "bambi" else "pymc"
        idata = model.fit(draws=draws, tune=draws, chains=4, random_seed=1, inference_method=method,
                          progressbar=False)
        t2 = time.perf_counter()
        # the quantities hierfit's summary reports: fixed effects, group sds (and correlations), sigma
        keep = [v for v in idata.posterior.data_vars if ("|" not in v or v.endswith("_sigma")) and v != "mu"]
        print(az.summary(idata, var_names=keep), file=open(os.devnull, "w"))
        ess = az.ess(idata, var_names=keep, method="bulk")
        min_ess = min(float(np.min(ess[v].values)) for v in keep)
        compile_s, sampling_s, kernel = float("nan"), float("nan"), ""
    else:
        kw = dict(draws=draws, tune=draws, chains=4, seed=1, progressbar=False, warn=False)
        if config == "hierfit-full":
            kw.update(method="full", parametrization="noncentered")
        if config == "hierfit-pytensor":
            kw.update(kernel="pytensor")
        if config == "hierfit-pymc":
            kw.update(sampler="pymc")
        fit = hierfit.fit(formula, data, **kw)
        t2 = time.perf_counter()
        print(fit.summary(), file=open(os.devnull, "w"))
        min_ess = float(fit.diagnostics["Bulk_ESS"].min())
        compile_s, sampling_s, kernel = fit.timing["compile"], fit.timing["sampling"], fit.kernel or ""
    total = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return dict(config=config, data=data_name, n=len(data), kernel=kernel, import_s=t_import, compile_s=compile_s,
                sampling_s=sampling_s, fit_s=t2 - t1, total_s=total, min_bulk_ess=min_ess,
                ess_per_s=min_ess / total, peak_mb=peak)


def _run_child(config, data_name, draws, env, formula=None):
    formula = formula or DATASETS[data_name]
    cmd = [sys.executable, str(Path(__file__)), "--child", config, data_name, "--draws", str(draws),
           "--formula", formula]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=7200)


def run_one(config: str, data_name: str, cache: str, draws: int) -> dict:
    env = dict(os.environ)
    cache_dir = tempfile.mkdtemp(prefix="hfbench-")
    env["PYTENSOR_FLAGS"] = f"base_compiledir={cache_dir}/pytensor"
    env["NUMBA_CACHE_DIR"] = f"{cache_dir}/numba"
    try:
        if cache == "warm":
            _run_child(config, data_name, draws, env)
        elif cache == "new":
            other = OTHER.get(data_name)
            formula = DATASETS[other] if other else "y ~ x + (1 | g)"
            _run_child(config, other or data_name, draws, env, formula)
        out = _run_child(config, data_name, draws, env)
    finally:
        shutil.rmtree(cache_dir, ignore_errors=True)
    if out.returncode != 0:
        return dict(config=config, data=data_name, cache=cache, error=(out.stderr.strip().splitlines() or ["?"])[-1])
    res = json.loads(out.stdout.strip().splitlines()[-1])
    res["cache"] = cache
    return res


def table(rows: list[dict]) -> str:
    totals = {(r["data"], r["cache"], r["config"]): r for r in rows if "error" not in r}
    head = ("| data | n | config | kernel | cache | import s | compile s | sampling s | total s | min bulk ESS | "
            "ESS / total s | peak MB | total vs bambi | ESS/s vs bambi |")
    lines = [head, "|" + "---|" * 14]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['data']} | | {r['config']} | | {r['cache']} | error: {r['error'][:80]} |" + " |" * 8)
            continue
        base = totals.get((r["data"], r["cache"], BASELINE[r["config"]]))
        ratio = f"{r['total_s'] / base['total_s']:.2f}" if base else "–"
        ess_ratio = f"{r['ess_per_s'] / base['ess_per_s']:.1f}" if base else "–"
        compile_s, sampling_s = (f"{r[k]:.1f}" if r[k] == r[k] else "–" for k in ("compile_s", "sampling_s"))
        lines.append(f"| {r['data']} | {r['n']} | {r['config']} | {r['kernel']} | {r['cache']} | {r['import_s']:.1f} | "
                     f"{compile_s} | {sampling_s} | {r['total_s']:.1f} | {r['min_bulk_ess']:.0f} | "
                     f"{r['ess_per_s']:.1f} | {r['peak_mb']:.0f} | {ratio} | {ess_ratio} |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--child", nargs=2, metavar=("CONFIG", "DATA"))
    p.add_argument("--formula")
    p.add_argument("--data", nargs="*", default=["exam_ri", "exam_rs"])
    p.add_argument("--configs", nargs="*", default=list(CONFIGS))
    p.add_argument("--caches", nargs="*", default=["cold", "new", "warm"])
    p.add_argument("--draws", type=int, default=DRAWS)
    p.add_argument("--out", default=str(HERE / "results" / "speed.md"))
    args = p.parse_args()
    if args.child:
        print(json.dumps(child(args.child[0], args.child[1], args.draws, args.formula or DATASETS[args.child[1]])))
        return
    started = time.time()
    rows = []
    for data_name in args.data:
        for cache in args.caches:
            for config in args.configs:
                res = run_one(config, data_name, cache, args.draws)
                rows.append(res)
                print(json.dumps(res), flush=True)
    text = (f"# Speed benchmark\n\nCommand: `python benchmarks/speed.py {' '.join(sys.argv[1:])}`\n\n"
            f"hierfit {revision()}; {time.strftime('%Y-%m-%d')}; {os.cpu_count()} cores; "
            f"{args.draws} draws after {args.draws} tune, 4 chains, seed 1; each fit in a fresh process, timed "
            f"from the first import to the printed summary; {time.time() - started:.0f} s in all.\n"
            "Ratios compare with the bambi run that uses the same sampler and cache state "
            "(nutpie for hierfit's nutpie configurations, PyMC's NUTS for hierfit-pymc).\n\n"
            + table(rows) + "\n")
    out = Path(args.out)
    kept = out.read_text().split("\n## Fast path", 1) if out.exists() else [""]
    if len(kept) == 2:  # benchmarks/fast_path.py's section stays
        text += "\n## Fast path" + kept[1]
    out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()

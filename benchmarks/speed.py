"""Speed benchmark: formula to converged summary, each fit in a fresh process.

Configurations (same data, draws and seed):
  hierfit            the default (collapsed sampler where eligible, nutpie)
  hierfit-full       group effects sampled by NUTS, non-centred, nutpie
  hierfit-pymc       the default model sampled by PyMC's own NUTS
  bambi              bambi 0.21 with nutpie (optional: pip install bambi==0.21.0)
Data sets: Exam random intercept and random slope; synthetic Gaussian data with 1,000 groups
at n = 10^4, 10^5, 10^6 (y ~ x + (x | g)).
Caches: "cold" uses empty PyTensor/numba cache folders; "warm" runs the fit once first.

Usage:
  python benchmarks/speed.py                       # everything, writes benchmarks/results/speed.md
  python benchmarks/speed.py --data exam_rs --configs hierfit bambi --caches warm
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DRAWS = 1000
DATASETS = {
    "exam_ri": "normexam ~ standLRT + sex + (1 | school)",
    "exam_rs": "normexam ~ standLRT + sex + (standLRT | school)",
    "synth_1e4": "y ~ x + (x | g)",
    "synth_1e5": "y ~ x + (x | g)",
    "synth_1e6": "y ~ x + (x | g)",
}
CONFIGS = ("hierfit", "hierfit-full", "hierfit-pymc", "bambi")


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


def child(config: str, data_name: str, draws: int) -> dict:
    """One fit, timed in this (fresh) process."""
    import resource

    t0 = time.perf_counter()
    if config == "bambi":
        import bambi  # noqa: F401
        import numpy as np
    else:
        import hierfit  # noqa: F401
        import numpy as np
        import pymc  # noqa: F401  (hierfit imports PyMC lazily; count it here)
    t_import = time.perf_counter() - t0
    data = load_data(data_name)
    formula = DATASETS[data_name]
    t1 = time.perf_counter()
    if config == "bambi":
        import arviz as az

        model = bambi.Model(formula, data)
        idata = model.fit(draws=draws, tune=draws, chains=4, random_seed=1, inference_method="nutpie",
                          progressbar=False)
        t2 = time.perf_counter()
        ess = az.ess(idata, method="bulk")
        keep = [v for v in ess.data_vars if ("|" not in v or v.endswith("_sigma")) and v != "mu"]
        min_ess = min(float(np.min(ess[v].values)) for v in keep)  # fixed effects, group sds, sigma
        compile_s, sampling_s = float("nan"), float("nan")
    else:
        kw = dict(draws=draws, tune=draws, chains=4, seed=1, progressbar=False, warn=False)
        if config == "hierfit-full":
            kw.update(method="full", parametrization="noncentered")
        if config == "hierfit-pymc":
            kw.update(sampler="pymc")
        fit = hierfit.fit(formula, data, **kw)
        t2 = time.perf_counter()
        min_ess = float(fit.diagnostics["Bulk_ESS"].min())
        fit.summary()
        compile_s, sampling_s = fit.timing["compile"], fit.timing["sampling"]
    total = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return dict(config=config, data=data_name, n=len(data), import_s=t_import, compile_s=compile_s,
                sampling_s=sampling_s, fit_s=t2 - t1, total_s=total, min_bulk_ess=min_ess,
                ess_per_s=min_ess / total, peak_mb=peak)


def run_one(config: str, data_name: str, cache: str, draws: int) -> dict:
    env = dict(os.environ)
    cache_dir = tempfile.mkdtemp(prefix="hfbench-") if cache == "cold" else str(HERE / ".cache")
    env["PYTENSOR_FLAGS"] = f"base_compiledir={cache_dir}/pytensor"
    env["NUMBA_CACHE_DIR"] = f"{cache_dir}/numba"
    cmd = [sys.executable, str(Path(__file__)), "--child", config, data_name, "--draws", str(draws)]
    if cache == "warm":  # warm the caches with one run first
        subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=7200)
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=7200)
    if out.returncode != 0:
        return dict(config=config, data=data_name, cache=cache, error=out.stderr.strip().splitlines()[-1])
    res = json.loads(out.stdout.strip().splitlines()[-1])
    res["cache"] = cache
    return res


def table(rows: list[dict]) -> str:
    bambi = {(r["data"], r["cache"]): r["total_s"] for r in rows if r.get("config") == "bambi" and "error" not in r}
    head = ("| data | n | config | cache | import s | compile s | sampling s | total s | min bulk ESS | "
            "ESS / total s | peak MB | total vs bambi |")
    lines = [head, "|" + "---|" * 12]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['data']} | | {r['config']} | {r['cache']} | error: {r['error'][:80]} |" + " |" * 7)
            continue
        ratio = r["total_s"] / bambi[(r["data"], r["cache"])] if (r["data"], r["cache"]) in bambi else float("nan")
        lines.append(f"| {r['data']} | {r['n']} | {r['config']} | {r['cache']} | {r['import_s']:.1f} | "
                     f"{r['compile_s']:.1f} | {r['sampling_s']:.1f} | {r['total_s']:.1f} | {r['min_bulk_ess']:.0f} | "
                     f"{r['ess_per_s']:.1f} | {r['peak_mb']:.0f} | {ratio:.2f} |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--child", nargs=2, metavar=("CONFIG", "DATA"))
    p.add_argument("--data", nargs="*", default=list(DATASETS))
    p.add_argument("--configs", nargs="*", default=list(CONFIGS))
    p.add_argument("--caches", nargs="*", default=["cold", "warm"])
    p.add_argument("--draws", type=int, default=DRAWS)
    p.add_argument("--out", default=str(HERE / "results" / "speed.md"))
    args = p.parse_args()
    if args.child:
        print(json.dumps(child(args.child[0], args.child[1], args.draws)))
        return
    rows = []
    for data_name in args.data:
        for cache in args.caches:
            for config in args.configs:
                res = run_one(config, data_name, cache, args.draws)
                rows.append(res)
                print(json.dumps(res), flush=True)
    text = (f"# Speed benchmark\n\nCommand: `python benchmarks/speed.py {' '.join(sys.argv[1:])}`\n\n"
            f"4 chains x {args.draws} draws after {args.draws} tune, seed 1, each fit in a fresh process; "
            f"machine: {os.cpu_count()} cores.\n\n" + table(rows) + "\n")
    Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()

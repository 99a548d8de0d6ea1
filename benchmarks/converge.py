"""Converge by default on hard data, and non-Gaussian speed: hierfit's defaults vs bambi 0.21 + nutpie.

Models (simulated exactly as below, or the packaged Exam data):

  bernoulli     y ~ x + (x | g), 500 groups x 40 rows, Bernoulli (logit)
  exam_nested   normexam ~ standLRT + sex + (1 | school/student), Exam (4,055 student:school levels, 4,059 rows)
  ticks         TICKS ~ YEAR + scale(HEIGHT) + (1 | BROOD) + (1 | LOCATION), Poisson, a grouseticks-like
                simulation (~350 rows, broods with 1-3 rows in 63 locations)
  crossed_zipf  y ~ x + (1 | a) + (1 | b) + (1 | c), 73,421 rows, as benchmarks/crossed.py but with
                heavier imbalance (Zipf exponent 1.1 over 6,000 and 2,000 levels: many 1-row levels)

Every run is a fresh process, timed from the first import to the printed summary, with
hierfit's defaults (formula, data, family, seed only) or bambi's ``Model(...).fit(
inference_method="nutpie")`` (4 x 1000 after 1000 tune).  Reported: min bulk/tail ESS
and max R-hat over the summary's quantities (fixed effects, sds, correlations, sigma),
min bulk/tail ESS over the group effects, divergences, total and CPU seconds, peak
memory, and min bulk ESS per total second.

Usage:
  python benchmarks/converge.py                                   # all models, hierfit and bambi
  python benchmarks/converge.py --models exam_nested ticks --configs hierfit
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
MODELS = {
    "bernoulli": ("y ~ x + (x | g)", "bernoulli"),
    "exam_nested": ("normexam ~ standLRT + sex + (1 | school/student)", "gaussian"),
    "ticks": ("TICKS ~ YEAR + scale(HEIGHT) + (1 | BROOD) + (1 | LOCATION)", "poisson"),
    "crossed_zipf": ("y ~ x + (1 | a) + (1 | b) + (1 | c)", "gaussian"),
}
CONFIGS = ("hierfit", "bambi")


def simulate(name: str):
    import numpy as np
    import pandas as pd

    if name == "bernoulli":  # exactly as in the issue
        rng = np.random.default_rng(1)
        J, n = 500, 40
        g = np.repeat(np.arange(J), n)
        x = rng.normal(size=J * n)
        u0 = rng.normal(0, 0.8, J)
        u1 = rng.normal(0, 0.4, J)
        eta = -0.3 + 0.7 * x + u0[g] + u1[g] * x
        return pd.DataFrame({"y": rng.binomial(1, 1 / (1 + np.exp(-eta))), "x": x, "g": g.astype(str)})
    if name == "exam_nested":
        import hierfit

        return hierfit.datasets.load("exam")
    if name == "ticks":
        rng = np.random.default_rng(2024)
        n_loc, n_brood = 63, 180
        loc_of_brood = rng.integers(0, n_loc, n_brood)
        year_of_brood = rng.choice([95, 96, 97], n_brood, p=[0.3, 0.4, 0.3])
        brood = np.repeat(np.arange(n_brood), rng.integers(1, 4, n_brood))
        loc = loc_of_brood[brood]
        height = rng.normal(460, 35, n_loc)[loc]
        year = year_of_brood[brood]
        u_b, u_l = rng.normal(0, 0.8, n_brood), rng.normal(0, 0.6, n_loc)
        eta = (0.6 + np.select([year == 96, year == 97], [1.0, -0.8], 0.0)
               - 0.7 * (height - height.mean()) / height.std() + u_b[brood] + u_l[loc])
        return pd.DataFrame({"TICKS": rng.poisson(np.exp(eta)), "YEAR": year.astype(str), "HEIGHT": height,
                             "BROOD": brood.astype(str), "LOCATION": loc.astype(str)})
    if name == "crossed_zipf":
        rng = np.random.default_rng(2024)
        n = 73_421
        cols, effects = {}, np.zeros(n)
        for col, k, sd, s in (("a", 6000, 0.6, 1.1), ("b", 2000, 0.4, 1.1), ("c", 14, 0.8, 0.7)):
            w = 1.0 / np.arange(1, k + 1) ** s
            g = rng.choice(k, size=n, p=w / w.sum())
            cols[col] = g
            effects += rng.normal(0, sd, k)[g]
        x = rng.normal(size=n)
        return pd.DataFrame({"y": 2.0 + 0.5 * x + effects + rng.normal(0, 1.0, n), "x": x, **cols})
    raise SystemExit(f"unknown model {name}")


def _ess(arrays):
    """(max R-hat, min bulk ESS, min tail ESS) over (chain, draw, ...) arrays, hierfit's estimators."""
    import numpy as np

    from hierfit.results.diagnostics import convergence_stats

    flat = np.concatenate([np.asarray(a, dtype=float).reshape(a.shape[0], a.shape[1], -1) for a in arrays], axis=-1)
    r, bulk, tail = convergence_stats(np.moveaxis(flat, -1, 0))
    return float(np.nanmax(r)), float(np.nanmin(bulk)), float(np.nanmin(tail))


def child(model: str, config: str) -> dict:
    import resource

    t0 = time.perf_counter()
    c0 = time.process_time()
    formula, family = MODELS[model]
    if config == "bambi":
        import bambi
    else:
        import hierfit
    data = simulate(model)
    if config == "bambi":
        import numpy as np

        idata = bambi.Model(formula, data, family=family).fit(draws=1000, tune=1000, chains=4, random_seed=1,
                                                             inference_method="nutpie", progressbar=False)
        post = idata["posterior"] if "posterior" in idata.children else idata.posterior
        names = [str(v) for v in post.data_vars]
        groups = [n for n in names if "|" in n and not n.endswith("_sigma")]
        reported = [n for n in names if n not in groups and n != "mu" and not n.endswith("_mean")]
        div = int(np.asarray((idata["sample_stats"] if "sample_stats" in idata.children
                              else idata.sample_stats)["diverging"].values).sum())
        arrays = {n: np.asarray(post[n].values) for n in names}
        print(arrays.keys(), file=open(os.devnull, "w"))
        extra = ""
        phases = {}
    else:
        import numpy as np

        fit = hierfit.fit(formula, data, family=family, seed=1, progressbar=False, warn=False)
        print(fit.summary(), file=open(os.devnull, "w"))
        # fit.tree: the draws as sampled; fit.posterior would first add the pointwise log-likelihood group
        # (ArviZ's, for LOO), which the summary does not use and bambi's arm does not compute either
        post = fit.tree["posterior"]
        groups = [str(v) for v in post.data_vars if str(v).startswith("r_")]
        from hierfit.results.diagnostics import reported_parameters

        arrays = {label: arr for label, arr in reported_parameters(post.to_dataset(), fit.design)}
        reported = list(arrays)
        arrays.update({n: np.asarray(post[n].values) for n in groups})
        div = fit.n_divergent
        phases = {k: round(v, 3) for k, v in fit.timing.items() if isinstance(v, float)}
        extra = (f"{fit.method.name}; draws {fit.settings.draws}"
                 + (f" (extended from {fit.settings.requested_draws})" if fit.settings.requested_draws else ""))
    total = time.perf_counter() - t0
    rhat, bulk, tail = _ess([arrays[n] for n in reported])
    g_rhat, g_bulk, g_tail = _ess([arrays[n] for n in groups]) if groups else (float("nan"),) * 3
    return dict(model=model, config=config, n=len(data), total_s=total, cpu_s=time.process_time() - c0,
                peak_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, max_rhat=rhat, min_bulk=bulk,
                min_tail=tail, group_max_rhat=g_rhat, group_min_bulk=g_bulk, group_min_tail=g_tail, divergences=div,
                ess_per_s=bulk / total, note=extra, phases=phases)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="*", default=list(MODELS))
    p.add_argument("--configs", nargs="+", default=list(CONFIGS))
    p.add_argument("--child", nargs=2, metavar=("MODEL", "CONFIG"))
    p.add_argument("--timeout", type=float, default=1800)
    p.add_argument("--out", default=str(HERE / "results" / "converge.md"))
    p.add_argument("--rows", nargs="*", default=[], help="JSON lines of earlier child runs to include")
    args = p.parse_args()
    if args.child:
        print(json.dumps(child(*args.child)))
        return
    sys.path.insert(0, str(HERE))
    from _revision import revision

    rows = [json.loads(line) for f in args.rows for line in Path(f).read_text().splitlines() if line.startswith("{")]
    for model in args.models:
        for config in args.configs:
            if config == "bambi" and model in ("exam_nested", "crossed_zipf"):
                continue  # bambi has no collapsed sampler; these take it tens of minutes
            cmd = [sys.executable, str(Path(__file__)), "--child", model, config]
            try:
                out = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout)
                res = json.loads(out.stdout.strip().splitlines()[-1]) if out.returncode == 0 else \
                    dict(model=model, config=config, error=(out.stderr.strip().splitlines() or ["?"])[-1])
            except subprocess.TimeoutExpired:
                res = dict(model=model, config=config, error=f"timed out after {args.timeout:.0f} s")
            print(res, flush=True)
            rows.append(res)
    head = ("| model | config | rows | max R-hat | min bulk ESS | min tail ESS | group effects: max R-hat / min "
            "bulk / min tail ESS | divergences | total s | CPU s | peak MB | bulk ESS / total s | bulk ESS / CPU s | note |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['model']} | {r['config']} | | | | | | | | | | | | {r['error']} |")
            continue
        lines.append(f"| {r['model']} | {r['config']} | {r['n']} | {r['max_rhat']:.3f} | {r['min_bulk']:.0f} | "
                     f"{r['min_tail']:.0f} | {r['group_max_rhat']:.3f} / {r['group_min_bulk']:.0f} / "
                     f"{r['group_min_tail']:.0f} | {r['divergences']} | {r['total_s']:.1f} | {r['cpu_s']:.1f} | "
                     f"{r['peak_mb']:.0f} | {r['ess_per_s']:.1f} | {r['min_bulk'] / r['cpu_s']:.1f} | {r['note']} |")
    text = "\n".join([
        "# Convergence by default, and non-Gaussian speed", "",
        f"Command: `python benchmarks/converge.py {' '.join(sys.argv[1:])}`", "",
        f"hierfit {revision()}; {time.strftime('%Y-%m-%d %H:%M')}; {os.cpu_count()} cores. Each row is a fresh "
        "process (first import to printed summary) with caches warm from earlier runs. CPU s is the process's "
        "CPU time (all threads): on a machine shared with other jobs, total s overstates the time on an idle one.",
        "", *lines, ""])
    Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()

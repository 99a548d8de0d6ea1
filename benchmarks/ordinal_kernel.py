"""The cumulative (ordinal) family on hierfit's compiled kernel against the PyMC model's kernel.

Two measurements on ordinal models simulated like ``tests/test_ordinal.py`` (a covariate
with mean 1, a random intercept, 4 categories; logit and probit):

* **gradient evaluation**: one log density + gradient at the same unconstrained point,
  hierfit's kernel (``entry.logp_and_grad``) against PyTensor's numba kernel of the PyMC
  model (the function nutpie calls with ``kernel="pytensor"``, hierfit.engine.sampling.pytensor_kernel),
  both called from Python; the median of 7 repeats of 2,000 calls, after a warm-up
  (the two must agree on the value, checked);
* **end-to-end fit**: ``hierfit.fit`` in a fresh Python process, the default (now the
  compiled kernel) against ``kernel="pytensor"`` (the PyMC model, which the family
  used before it had a kernel), 4 chains x 1,000 draws (tune 1,000); wall time of the
  call, hierfit's own timing split, the smallest bulk ESS of the thresholds and the slope.
  Each configuration runs twice in fresh processes: the first may compile (PyTensor's cache
  for a new model structure), the second finds every cache warm.

Run (results go to ``benchmarks/results/ordinal_kernel.md``)::

    python benchmarks/ordinal_kernel.py

Example
-------
>>> import ordinal_kernel  # doctest: +SKIP
>>> ordinal_kernel.gradient_times("logit", n_groups=20)["ratio"] > 1  # doctest: +SKIP
True
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"

__all__ = ["simulate", "gradient_times", "fit_once", "main"]

THRESHOLDS = [-0.6, 0.3, 1.3]


def simulate(link: str, n_groups: int = 20, per: int = 15, seed: int = 5) -> pd.DataFrame:
    """An ordinal data set: thresholds (-0.6, 0.3, 1.3), slope 0.7 on x ~ N(1, 1), group sd 0.5.

    Example
    -------
    >>> simulate("logit", 4, 5).shape
    (20, 3)
    """
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(n_groups), per)
    x = rng.normal(1.0, 1.0, size=g.size)
    noise = rng.logistic(size=g.size) if link == "logit" else rng.normal(size=g.size)
    latent = 0.7 * x + rng.normal(0, 0.5, n_groups)[g] + noise
    codes = (latent[:, None] > np.array(THRESHOLDS)).sum(axis=1)
    rating = pd.Categorical.from_codes(codes, categories=["low", "mid", "high", "top"], ordered=True)
    return pd.DataFrame({"rating": rating, "x": x, "g": [f"s{k:02d}" for k in g]})


def _time_calls(fn, n: int = 2000, repeats: int = 7) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        times.append((time.perf_counter() - t0) / n)
    return float(np.median(times))


def gradient_times(link: str, n_groups: int = 20, per: int = 15) -> dict:
    """Microseconds per log density + gradient: hierfit's kernel and the PyMC model's numba kernel, same point.

    Example
    -------
    >>> gradient_times("probit")["kernel_us"] > 0  # doctest: +SKIP
    True
    """
    import hierfit
    from hierfit.engine.kernel import build_spec, load
    from hierfit.engine.model import build_model
    from hierfit.engine.sampling import stored_variables
    from hierfit.spec.design import build_design
    from hierfit.spec.priors import resolve_priors

    import pytensor
    from nutpie.compile_pymc import _make_functions  # what hierfit.engine.sampling.pytensor_kernel calls
    from pymc.initial_point import make_initial_point_fn

    d = build_design("rating ~ x + (1 | g)", simulate(link, n_groups, per), family=hierfit.families.cumulative(link))
    pri = resolve_priors(d)
    par = {b.key: "noncentered" for b in d.all_blocks}
    spec = build_spec(d, pri, par)
    model = build_model(d, pri, par)
    entry = load()
    x = spec.init_centre + np.random.default_rng(1).uniform(-0.5, 0.5, spec.n_dim)
    grad = np.zeros(spec.n_dim)
    with pytensor.config.change_flags(numba__fastmath=False):
        _, _, logp_pt, *_ = _make_functions(model, mode="NUMBA", compute_grad=True, join_expanded=False,
                                            pymc_initial_point_fn=make_initial_point_fn(
                                                model=model, return_transformed=True),
                                            var_names=stored_variables(model))
    shared = [v.get_value() for v in logp_pt.get_shared()]
    jit = logp_pt.vm.jit_fn
    lp_kernel = entry.logp_and_grad(x, grad, spec.ints, spec.floats)
    lp_pymc, grad_pymc = jit(x, *shared)
    assert abs(lp_kernel - float(lp_pymc)) < 1e-6 * abs(lp_kernel), (lp_kernel, lp_pymc)
    assert np.allclose(grad, grad_pymc, rtol=1e-5, atol=1e-5)
    t_kernel = _time_calls(lambda: entry.logp_and_grad(x, grad, spec.ints, spec.floats))
    t_pymc = _time_calls(lambda: jit(x, *shared))
    return {"link": link, "rows": d.nobs, "n_dim": spec.n_dim, "kernel_us": t_kernel * 1e6,
            "pymc_us": t_pymc * 1e6, "ratio": t_pymc / t_kernel}


_FIT = """
import json, sys, time, warnings
t0 = time.perf_counter()
sys.path.insert(0, {here!r})
import numpy as np, hierfit
from ordinal_kernel import simulate
from arviz_stats.base import array_stats
warnings.simplefilter("ignore")
link, kernel = {link!r}, {kernel!r}
data = simulate(link)
t1 = time.perf_counter()
fit = hierfit.fit("rating ~ x + (1 | g)", data, family=hierfit.families.cumulative(link), kernel=kernel,
                  seed=11, progressbar=False, chains=4, draws=1000, tune=1000)
t2 = time.perf_counter()
post = fit.posterior["posterior"]
ess = []
for name in ("b_Intercept", "b"):
    arr = np.asarray(post[name].values)
    for k in range(arr.shape[-1]):
        ess.append(float(array_stats.ess(arr[..., k], chain_axis=0, draw_axis=1, method="bulk")))
div = int(np.asarray(fit.posterior["sample_stats"]["diverging"].values).sum())
print(json.dumps(dict(link=link, kernel=fit.kernel, fit_s=t2 - t1, process_s=t2 - t0, min_ess=min(ess),
                      divergences=div, timing={{k: v for k, v in fit.timing.items() if isinstance(v, float)}},
                      estimates=fit.fixef()["Estimate"].round(3).to_dict())))
"""


def fit_once(link: str, kernel: str) -> dict:
    """One ``hierfit.fit`` in a fresh process; its wall time, hierfit's timing split, min ESS and estimates.

    Example
    -------
    >>> fit_once("logit", "auto")["kernel"]  # doctest: +SKIP
    'hierfit'
    """
    code = _FIT.format(here=str(HERE), link=link, kernel=kernel)
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    """Run both measurements and write results/ordinal_kernel.md.

    Example
    -------
    >>> main([])  # doctest: +SKIP
    0
    """
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=RESULTS / "ordinal_kernel.md")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(HERE))
    from _revision import revision

    grads = [gradient_times(link) for link in ("logit", "probit")]
    grads.append(gradient_times("logit", n_groups=200, per=50))
    print(json.dumps(grads, indent=1), flush=True)
    fits = []
    for link in ("logit", "probit"):
        for kernel in ("pytensor", "auto"):
            for attempt in (1, 2):
                r = fit_once(link, kernel)
                r["attempt"] = attempt
                print(json.dumps(r), flush=True)
                fits.append(r)
    lines = ["# The cumulative family: compiled kernel against the PyMC model", "",
             f"Generated by `python benchmarks/ordinal_kernel.py` on {time.strftime('%Y-%m-%d')} "
             f"(hierfit at {revision()}); 2 cores shared with other work, so timings vary by about ±20 %.",
             "Model `rating ~ x + (1 | g)`, 4 categories (3 thresholds), simulated as in tests/test_ordinal.py.", "",
             "## One log density + gradient (µs per call, median of 7 x 2,000 calls)", "",
             "| link | rows | parameters | hierfit kernel | PyMC model (pytensor numba) | ratio |",
             "|---|---|---|---|---|---|"]
    lines += [f"| {g['link']} | {g['rows']} | {g['n_dim']} | {g['kernel_us']:.1f} | {g['pymc_us']:.1f} | "
              f"{g['ratio']:.1f} |" for g in grads]
    lines += ["", "## hierfit.fit end to end (fresh process; 4 chains x 1,000 draws, tune 1,000)", "",
              "| link | kernel | run | fit (s) | compile (s) | sampling (s) | min bulk ESS (thresholds, slope) | "
              "ESS / s of sampling | divergences |", "|---|---|---|---|---|---|---|---|---|"]
    for r in fits:
        t = r["timing"]
        lines.append(f"| {r['link']} | {r['kernel']} | {r['attempt']} | {r['fit_s']:.1f} | "
                     f"{t.get('compile', float('nan')):.1f} | {t.get('sampling', float('nan')):.1f} | "
                     f"{r['min_ess']:.0f} | {r['min_ess'] / t.get('sampling', float('nan')):.0f} | "
                     f"{r['divergences']} |")
    lines += ["", "Estimates (posterior means) per fit:", ""]
    lines += [f"* {r['link']}, {r['kernel']} (run {r['attempt']}): {r['estimates']}" for r in fits]
    args.out.write_text("\n".join(lines) + "\n")
    print(args.out.read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Addition terms and smooths at larger draws: eight schools against posteriordb, curve recovery of s().

1. ``y | se(sei) ~ 1 + (1 | school)`` with posteriordb's priors against Stan's reference draws
   (mean and sd of mu and tau, in Monte Carlo standard errors).
2. ``y ~ f + s(x, by = f)`` on simulated data (level a: sin(x); level b: a straight line): RMSE of the
   posterior-mean curve against the truth per level, and the smoothness sds (small for the line).
3. A right-censored regression: posterior of the slope and sigma against the truth and the Tobit MLE.

Usage: python benchmarks/addition_terms.py [--draws 2000]
"""

from __future__ import annotations

import argparse
import json
import os
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
SHARED = Path(os.environ.get("HIERFIT_SHARED", HERE.parent.parent / "shared"))


def main() -> None:
    import hierfit
    from hierfit.results.diagnostics import ess_bulk

    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--draws", type=int, default=2000)
    p.add_argument("--out", default=str(HERE / "results" / "addition_terms.md"))
    args = p.parse_args()
    warnings.simplefilter("ignore")
    kw = dict(chains=4, draws=args.draws, tune=1000, seed=1, progressbar=False, warn=False)
    lines = ["# Addition terms and smooths", "", f"chains = 4, draws = {args.draws}, tune = 1000, seed = 1", ""]

    raw = json.loads(zipfile.ZipFile(SHARED / "posteriordb" / "data" / "eight_schools.json.zip")
                     .read("eight_schools.json"))
    ref = pd.read_csv(SHARED / "posteriordb" / "reference" / "summary.csv")
    ref = ref[ref["posterior"] == "eight_schools-eight_schools_noncentered"].set_index("parameter")
    df = pd.DataFrame({"y": raw["y"], "sei": raw["sigma"], "school": [f"s{i + 1}" for i in range(raw["J"])]})
    m = hierfit.fit("y | se(sei) ~ 1 + (1 | school)", df, target_accept=0.95,
                    priors=[hierfit.prior("normal(0, 5)", "Intercept"), hierfit.prior("cauchy(0, 5)", "sd")], **kw)
    lines += ["## Eight schools vs posteriordb (Stan, 10 x 1000 draws)", "",
              "| parameter | hierfit mean | reference mean | hierfit sd | reference sd | mean diff / MCSE |",
              "|---|---|---|---|---|---|"]
    for name, var in (("mu", "b"), ("tau", "sd_school")):
        d = np.asarray(m.draws[var]).reshape(4, -1)
        mcse = d.std() / np.sqrt(float(np.ravel(ess_bulk(d))[0]))
        lines.append(f"| {name} | {d.mean():.3f} | {ref.loc[name, 'mean']:.3f} | {d.std():.3f} | "
                     f"{ref.loc[name, 'sd']:.3f} | {(d.mean() - ref.loc[name, 'mean']) / mcse:+.2f} |")

    rng = np.random.default_rng(1)
    n = 400
    sim = pd.DataFrame({"x": rng.uniform(0, 10, n), "f": rng.choice(["a", "b"], n)})
    truth = np.where(sim["f"] == "a", np.sin(sim["x"]), 0.3 * sim["x"])
    sim["y"] = truth + rng.normal(0, 0.3, n)
    ms = hierfit.fit("y ~ f + s(x, by = f, k = 10)", sim, **kw)
    grid = pd.DataFrame({"x": np.tile(np.linspace(0.2, 9.8, 50), 2), "f": ["a"] * 50 + ["b"] * 50})
    est = ms.predict(grid)["Estimate"].to_numpy()
    true_grid = np.where(grid["f"] == "a", np.sin(grid["x"]), 0.3 * grid["x"])
    st = ms.summary().smooth_terms
    lines += ["", "## s(x, by = f): curve recovery (noise sd 0.3)", "",
              "| level | truth | RMSE of the posterior-mean curve | sds (posterior mean) |", "|---|---|---|---|"]
    for lev, what in (("a", "sin(x)"), ("b", "0.3 x")):
        rows = (grid["f"] == lev).to_numpy()
        rmse = float(np.sqrt(np.mean((est[rows] - true_grid[rows]) ** 2)))
        lines.append(f"| {lev} | {what} | {rmse:.3f} | {st.loc[f'sds(sx:f{lev}_1)', 'Estimate']:.3f} |")

    x = rng.normal(size=300)
    latent = 0.2 + 1.0 * x + rng.normal(0, 0.8, 300)
    cdf = pd.DataFrame({"x": x, "y": np.minimum(latent, 1.0), "c": np.where(latent > 1.0, "right", "none")})
    mc = hierfit.fit("y | cens(c) ~ x", cdf, **kw)
    b = np.asarray(mc.draws["b"]).reshape(-1, 2)[:, 1]
    naive = float(np.polyfit(x, cdf["y"], 1)[0])
    from scipy import optimize, stats

    cens = (cdf["c"] == "right").to_numpy()
    yv = cdf["y"].to_numpy()

    def nll(q):  # the Tobit likelihood, maximised independently of hierfit
        mu, sd = q[0] + q[1] * x, np.exp(q[2])
        return -(stats.norm.logpdf(yv[~cens], mu[~cens], sd).sum() + stats.norm.logsf(yv[cens], mu[cens], sd).sum())

    mle = optimize.minimize(nll, [0.0, 1.0, 0.0]).x
    lines += ["", "## Right-censored regression (truth: slope 1.0, sigma 0.8)", "",
              f"censored rows: {int((cdf['c'] == 'right').sum())} of 300; slope {b.mean():.3f} (sd {b.std():.3f}); "
              f"sigma {float(np.asarray(mc.draws['sigma']).mean()):.3f}; Tobit maximum likelihood (scipy): slope "
              f"{mle[1]:.3f}, sigma {np.exp(mle[2]):.3f}; least squares ignoring censoring: {naive:.3f}",
              ""]
    Path(args.out).write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()

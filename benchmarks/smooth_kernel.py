"""Smooths s() through hierfit's compiled kernel against the PyMC model's kernel: fit time and agreement.

A simulated growth curve (60 subjects x 10 ages, logistic mean, subject intercepts): ``y ~ s(age) +
(1 | id)`` and ``y ~ sex + s(age, by = sex) + (1 | id)``, each fitted twice with ``kernel="pytensor"``
(the PyMC model compiled by PyTensor: the first fit of a model structure compiles it, later ones load
it from the disk cache) and twice with hierfit's compiled kernel (the default).  Recorded: wall-clock
seconds of each fit (``hierfit.fit`` end to end, same process, 4 chains x 1000 draws), the fit's
sampling seconds, the posterior means of the smoothness sds under both kernels, and the RMSE of the
population curve against the truth (the mean of the two sexes' curves for the model without sex).

Usage: python benchmarks/smooth_kernel.py [--draws 1000]
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent


def simulate(seed: int = 7) -> tuple[pd.DataFrame, callable]:
    rng = np.random.default_rng(seed)
    n_sub, per = 60, 10
    sub = np.repeat(np.arange(n_sub), per)
    sex = np.where(np.arange(n_sub) % 2 == 0, "F", "M")[sub]
    age = rng.uniform(0, 10, sub.size)

    def truth(a, s):
        return np.where(s == "F", 10 / (1 + np.exp(-(a - 5))), 8 / (1 + np.exp(-1.5 * (a - 4))))

    u = rng.normal(0, 0.8, n_sub)
    y = truth(age, sex) + u[sub] + rng.normal(0, 0.5, sub.size)
    return pd.DataFrame({"age": age, "sex": sex, "id": sub, "y": y}), lambda a, s: truth(a, s) + u.mean()


def main() -> None:
    import hierfit
    from _revision import revision

    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--draws", type=int, default=1000)
    p.add_argument("--out", default=str(HERE / "results" / "smooth_kernel.md"))
    args = p.parse_args()
    warnings.simplefilter("ignore")
    df, target = simulate()
    kw = dict(chains=4, draws=args.draws, tune=1000, seed=1, progressbar=False, warn=False)
    grid = pd.DataFrame({"age": np.tile(np.linspace(0.2, 9.8, 25), 2), "sex": np.repeat(["F", "M"], 25)})
    lines = ["# Smooths through the compiled kernel", "", f"hierfit {revision()}; chains = 4, draws = {args.draws}, "
             "tune = 1000, seed = 1; 600 rows, 60 subjects", "",
             "| model | kernel | run | wall s | sampling s | divergences | max R-hat | sds means | curve RMSE |",
             "|---|---|---|---|---|---|---|---|---|"]
    for formula in ["y ~ s(age) + (1 | id)", "y ~ sex + s(age, by = sex) + (1 | id)"]:
        for kernel in ["pytensor", "auto"]:
            for run in (1, 2):
                t0 = time.perf_counter()
                m = hierfit.fit(formula, df, kernel=kernel, **kw)
                wall = time.perf_counter() - t0
                st = m.summary().smooth_terms
                curve = m.predict(grid, re_form=hierfit.NA)["Estimate"].to_numpy()
                a, sx = grid["age"].to_numpy(), grid["sex"].to_numpy()
                truth = target(a, sx) if "sex" in formula else (target(a, "F") + target(a, "M")) / 2  # sexes 1:1
                rmse = float(np.sqrt(np.mean((curve - truth) ** 2)))
                rhat = float(m.diagnostics["Rhat"].max())
                sds = ", ".join(f"{v:.2f}" for v in st["Estimate"])
                lines.append(f"| `{formula.replace('|', chr(92) + '|')}` | {m.kernel} | {run} | {wall:.1f} | {m.timing["sampling"]:.1f} "
                             f"| {m.n_divergent} | {rhat:.3f} | {sds} | {rmse:.3f} |")
                print(lines[-1], flush=True)
    Path(args.out).write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()

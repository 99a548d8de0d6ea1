"""Make docs/gallery/population_vs_conditional.png for docs/analysis.md.

A logistic random-intercept model on simulated data: the typical group's curve
(``re_form=hierfit.NA``), the population-averaged curve (``re_form="marginal"``)
and a few groups' curves.  Run from the repository root:

    python docs/make_analysis_figure.py
"""

from __future__ import annotations

import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

import hierfit  # noqa: E402

OUT = Path(__file__).resolve().parent / "gallery" / "population_vs_conditional.png"


def simulated(seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    J, n = 40, 30
    g = np.repeat(np.arange(J), n)
    x = rng.uniform(-3, 3, g.size)
    eta = 0.5 + 1.2 * x + rng.normal(0, 2.0, J)[g]
    return pd.DataFrame({"y": rng.binomial(1, 1 / (1 + np.exp(-eta))), "x": x, "g": g})


def main() -> None:
    df = simulated()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = hierfit.fit("y ~ x + (1 | g)", df, family="bernoulli", chains=2, draws=300, tune=300, seed=1,
                          progressbar=False)
    grid = hierfit.datagrid(fit, x=np.linspace(-3, 3, 41))
    typical = fit.predictions(grid, re_form=hierfit.NA)
    population = fit.predictions(grid, re_form="marginal", nsim=200, seed=1)
    groups = fit.predictions(pd.concat([grid.assign(g=j) for j in range(8)], ignore_index=True))
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    xs = grid["x"].to_numpy()
    for j in range(8):
        ax.plot(xs, groups["Estimate"].to_numpy()[j * len(xs):(j + 1) * len(xs)], color="0.6", lw=0.8,
                label="single groups (re_form=None)" if j == 0 else None)
    for tab, colour, label in [(typical, "C0", "typical group (re_form=hierfit.NA)"),
                               (population, "C3", 'population average (re_form="marginal")')]:
        ax.fill_between(xs, tab["l-95% CI"], tab["u-95% CI"], color=colour, alpha=0.2, lw=0)
        ax.plot(xs, tab["Estimate"], color=colour, lw=2.2, label=label)
    ax.set_xlabel("x")
    ax.set_ylabel("P(y = 1)")
    ax.set_title("Logistic random-intercept model: conditional vs population-averaged", fontsize=10)
    ax.legend(fontsize=8, frameon=False, loc="upper left")
    fig.tight_layout()
    OUT.parent.mkdir(exist_ok=True)
    fig.savefig(OUT, dpi=110)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()

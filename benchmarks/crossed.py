"""Large crossed model: 73,421 rows, three crossed random intercepts (about 3,000 x 1,100 x 14 levels).

A synthetic stand-in with known truth for the structure where always-non-centred group effects
fail (a 14-level factor with ~5,000 rows per level): the default fit (parametrization="auto")
must reach R-hat <= 1.01 and bulk ESS >= 400 for every parameter with 4 chains x 1000 draws,
recover the truth, and stay under 1 GB of memory.

Usage:
  python benchmarks/crossed.py                         # default fit, writes benchmarks/results/crossed.md
  python benchmarks/crossed.py --parametrization noncentered --draws 500
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _revision import revision  # noqa: E402

TRUTH = {"(Intercept)": 2.0, "x": 0.5, "sd_a": 0.6, "sd_b": 0.4, "sd_c": 0.8, "sigma": 1.0}
REALIZED: dict[str, float] = {}  # sd of the simulated effects of the levels present (14 levels: far from 0.8)


def simulate(n: int = 73_421, levels=(3_000, 1_100, 14), seed: int = 2024) -> pd.DataFrame:
    """Crossed data with realistic imbalance: Zipf-like level frequencies for each factor."""
    rng = np.random.default_rng(seed)
    cols = {}
    effects = np.zeros(n)
    for name, k, sd in zip("abc", levels, (TRUTH["sd_a"], TRUTH["sd_b"], TRUTH["sd_c"])):
        weights = 1.0 / np.arange(1, k + 1) ** 0.7
        g = rng.choice(k, size=n, p=weights / weights.sum())
        cols[name] = g
        u = rng.normal(0, sd, k)
        REALIZED[f"sd_{name}"] = float(np.std(u[np.unique(g)], ddof=1))
        effects += u[g]
    x = rng.normal(size=n)
    y = TRUTH["(Intercept)"] + TRUTH["x"] * x + effects + rng.normal(0, TRUTH["sigma"], n)
    return pd.DataFrame({"y": y, "x": x, **cols})


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--parametrization", default="auto")
    p.add_argument("--draws", type=int, default=1000)
    p.add_argument("--chains", type=int, default=4)
    p.add_argument("--out", default=str(HERE / "results" / "crossed.md"))
    args = p.parse_args()
    t0 = time.perf_counter()
    import hierfit

    data = simulate()
    fit = hierfit.fit("y ~ x + (1 | a) + (1 | b) + (1 | c)", data, draws=args.draws, tune=args.draws,
                      chains=args.chains, seed=1, parametrization=args.parametrization, progressbar=False,
                      warn=False)
    fit.summary().to_text()  # what a user looks at next (scaled residuals included)
    total = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    diag = fit.diagnostics
    vc = fit.VarCorr().set_index("grp")
    fe = fit.fixef()
    rows = []
    for name, est, lo, hi in [(k, fe.loc[k, "Estimate"], fe.loc[k, "l-95% CI"], fe.loc[k, "u-95% CI"])
                              for k in ("(Intercept)", "x")] + \
            [(f"sd_{g}", vc.loc[g, "sdcor"], vc.loc[g, "l-95% CI"], vc.loc[g, "u-95% CI"]) for g in "abc"] + \
            [("sigma", vc.loc["Residual", "sdcor"], vc.loc["Residual", "l-95% CI"], vc.loc["Residual", "u-95% CI"])]:
        real = REALIZED.get(name)
        rows.append(f"| {name} | {TRUTH[name]:g} | {'' if real is None else f'{real:.3f}'} | {est:.3f} | "
                    f"[{lo:.3f}, {hi:.3f}] | {'yes' if lo <= TRUTH[name] <= hi else 'NO'} | "
                    f"{'' if real is None else ('yes' if lo <= real <= hi else 'NO')} |")
    text = "\n".join([
        "# Large crossed model",
        "",
        f"Command: `python benchmarks/crossed.py {' '.join(sys.argv[1:])}`",
        "",
        f"hierfit {revision()}; {time.strftime('%Y-%m-%d')}; {len(data)} rows; levels a={data['a'].nunique()}, "
        f"b={data['b'].nunique()}, c={data['c'].nunique()}; {args.chains} chains x {args.draws} draws after "
        f"{args.draws} tune; kernel {fit.kernel}.",
        "",
        f"- total {total:.0f} s from the first import to the summary (design {fit.timing['design']:.1f} s, "
        f"compile {fit.timing['compile']:.1f} s, sampling {fit.timing['sampling']:.0f} s); "
        f"peak memory (resident set, whole process) {peak:.0f} MB",
        f"- max R-hat {diag['Rhat'].max():.3f}; min bulk ESS {diag['Bulk_ESS'].min():.0f}; "
        f"min tail ESS {diag['Tail_ESS'].min():.0f}; divergences {fit.n_divergent}; converged: {fit.converged}",
        "- parametrization:",
        *[f"  - {line}" for line in str(fit.parametrization).splitlines()],
        "",
        "| parameter | truth | sd of the simulated effects | posterior mean | 95% interval | covers truth | "
        "covers simulated sd |",
        "|---|---|---|---|---|---|---|",
        *rows,
        "",
        "Per-parameter diagnostics:",
        "",
        "```text",
        diag.round(3).to_string(),
        "```",
        "",
    ])
    Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()

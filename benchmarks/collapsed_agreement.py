"""Collapsed versus full (non-centred) sampler on the chapter's Exam models, at large draws.

For every summary quantity (fixed effects, group-level sds and correlation, sigma, and
every school's group effects) the difference of posterior means, in units of the full
sampler's posterior sd.  Target: all below 0.1.

Usage: python benchmarks/collapsed_agreement.py [--draws 4000]
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
MODELS = {
    "Exam random intercept": "normexam ~ standLRT + sex + (1 | school)",
    "Exam random slope": "normexam ~ standLRT + sex + (standLRT | school)",
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--draws", type=int, default=4000)
    p.add_argument("--out", default=str(HERE / "results" / "collapsed_agreement.md"))
    args = p.parse_args()
    import hierfit

    exam = hierfit.datasets.load("exam")
    lines = ["# Collapsed vs full sampler", "", f"Command: `python benchmarks/collapsed_agreement.py {' '.join(sys.argv[1:])}`",
             "", f"4 chains x {args.draws} draws after 1000 tune; |difference of posterior means| / posterior sd "
             "of the full (non-centred) sampler.", "",
             "| model | quantity | max abs diff / sd | mean abs diff / sd | n quantities | sampling s collapsed | sampling s full |",
             "|---|---|---|---|---|---|---|"]
    for label, formula in MODELS.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            col = hierfit.fit(formula, exam, draws=args.draws, tune=1000, seed=1, progressbar=False)
            full = hierfit.fit(formula, exam, draws=args.draws, tune=1000, seed=2, progressbar=False, method="full",
                               parametrization="noncentered")
        fa, fb = col.fixef(), full.fixef()
        va, vb = col.VarCorr(), full.VarCorr()
        vsd = (vb["u-95% CI"] - vb["l-95% CI"]) / 3.92
        groups = {
            "fixed effects": np.abs(fa["Estimate"] - fb["Estimate"]) / fb["Est.Error"],
            "sds, correlation, sigma": np.abs(va["sdcor"] - vb["sdcor"]) / vsd,
        }
        ra, rb = col.ranef()["school"], full.ranef()["school"]
        coefs = list(dict.fromkeys(ra.columns.get_level_values(0)))
        groups["school effects"] = np.concatenate(
            [np.abs(ra[(c, "Estimate")] - rb[(c, "Estimate")]) / rb[(c, "Est.Error")] for c in coefs])
        for name, d in groups.items():
            d = np.asarray(d)
            lines.append(f"| {label} | {name} | {d.max():.3f} | {d.mean():.3f} | {d.size} | "
                         f"{col.timing['sampling']:.1f} | {full.timing['sampling']:.1f} |")
    text = "\n".join(lines) + "\n"
    Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()

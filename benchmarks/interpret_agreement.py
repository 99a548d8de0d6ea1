"""hierfit's predictions / comparisons / slopes against bambi's ``interpret`` on the same model and priors.

Two models, fitted by both tools with the same priors:

* the Exam random intercept ``normexam ~ standLRT + sex + (1 | school)`` with hierfit's
  default priors given explicitly to both (the translation of :mod:`bambi_agreement`);
* a logistic random intercept ``y ~ x + trt + (1 | g)`` on simulated data, with
  ``normal(0, 2.5)`` on the (centred) intercept, ``normal(0, 1)`` on the coefficients
  and a half-normal(1) on the group sd in both tools.

Each question is asked of both on the same rows (for Exam: standLRT in {-1, 0, 1},
both sexes, the most frequent school, as bambi does for variables it is not told
about; for the logistic model: x in {-1, 0, 1}, group 0):

* predictions of the mean (bambi ``interpret.predictions``, hierfit ``fit.predictions``);
* the comparison M - F (``interpret.comparisons`` / ``fit.comparisons``);
* the slope of standLRT (``interpret.slopes`` / ``fit.slopes``).

The table gives both posterior means, their difference in units of hierfit's
posterior sd, and the verdict against ``TOLERANCE`` (the two posteriors are Monte
Carlo samples of the same posterior, so they differ by Monte Carlo error only).

Run (writes ``results/interpret_agreement.md``)::

    python benchmarks/interpret_agreement.py --draws 1000
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
sys.path.insert(0, str(HERE))
TOLERANCE = 0.15  # |difference of posterior means| / hierfit's posterior sd

from bambi_agreement import MODELS, bambi_model, fit_bambi, fit_hierfit, matched_priors  # noqa: E402


def _estimate(summary: pd.DataFrame) -> np.ndarray:
    col = next(c for c in summary.columns if c.lower() in ("estimate", "mean"))
    return summary[col].to_numpy(dtype=float)


def run(draws: int, tune: int, chains: int, seed: int) -> pd.DataFrame:
    import bambi as bmb
    import hierfit

    exam = hierfit.datasets.load("exam")
    formula, bambi_formula = MODELS["Exam random intercept"]
    hp, bp, _ = matched_priors(formula, bambi_formula, exam)
    fit = fit_hierfit(formula, exam, hp, draws, tune, chains, seed)
    model = bambi_model(bambi_formula, exam, bp)
    idata = fit_bambi(model, draws, tune, chains, seed)
    school = int(exam["school"].mode().iloc[0])
    xs, sexes = [-1.0, 0.0, 1.0], ["F", "M"]
    rows = []

    def add(question, labels, ours, theirs):
        for lab, (e, sd), t in zip(labels, ours, theirs):
            rows.append({"question": question, "row": lab, "hierfit": e, "bambi": t, "hierfit sd": sd,
                         "difference / sd": (t - e) / sd})

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = bmb.interpret.predictions(model, idata, conditional={"standLRT": xs, "sex": sexes, "school": [school]},
                                        use_hdi=False)
        grid = res.summary[["standLRT", "sex"]].copy()
        grid["school"] = school
        ours = fit.predictions(grid)
        add("predictions", [f"standLRT={a:g}, sex={b}" for a, b in zip(grid["standLRT"], grid["sex"])],
            zip(ours["Estimate"], ours["Est.Error"]), _estimate(res.summary))

        res = bmb.interpret.comparisons(model, idata, contrast={"sex": sexes},
                                        conditional={"standLRT": xs, "school": [school]}, use_hdi=False)
        grid = pd.DataFrame({"standLRT": res.summary["standLRT"].to_numpy(), "school": school})
        ours = fit.comparisons({"sex": sexes}, newdata=grid)
        add("comparisons M - F", [f"standLRT={a:g}" for a in grid["standLRT"]],
            zip(ours["Estimate"], ours["Est.Error"]), _estimate(res.summary))

        res = bmb.interpret.slopes(model, idata, wrt="standLRT", conditional={"sex": sexes, "school": [school]},
                                   use_hdi=False)
        grid = pd.DataFrame({"sex": res.summary["sex"].astype(str).to_numpy(),
                             "standLRT": float(exam["standLRT"].mean()), "school": school})
        ours = fit.slopes("standLRT", newdata=grid)
        add("slopes dy/dx", [f"sex={s}" for s in grid["sex"]], zip(ours["Estimate"], ours["Est.Error"]),
            _estimate(res.summary))
    rows += logistic_rows(draws, tune, chains, seed)
    out = pd.DataFrame(rows)
    out["agrees"] = out["difference / sd"].abs() < TOLERANCE
    return out


def logistic_data(seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    J, n = 30, 20
    g = np.repeat(np.arange(J), n)
    x = rng.normal(size=g.size)
    trt = rng.choice(["a", "b"], g.size)
    eta = 0.5 + 0.8 * x + 0.6 * (trt == "b") + rng.normal(0, 1.0, J)[g]
    return pd.DataFrame({"y": rng.binomial(1, 1 / (1 + np.exp(-eta))), "x": x, "trt": trt, "g": g})


def logistic_rows(draws: int, tune: int, chains: int, seed: int) -> list[dict]:
    import bambi as bmb
    import hierfit

    df = logistic_data()
    priors = [hierfit.prior("normal(0, 2.5)", class_="Intercept"), hierfit.prior("normal(0, 1)", class_="b"),
              hierfit.prior("normal(0, 1)", class_="sd")]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = hierfit.fit("y ~ x + trt + (1 | g)", df, family="bernoulli", priors=priors, draws=draws, tune=tune,
                          chains=chains, seed=seed, progressbar=False)
    model = bmb.Model("y ~ x + trt + (1|g)", df.assign(g=df["g"].astype("category"), trt=df["trt"].astype("category")),
                      family="bernoulli", auto_scale=False,
                      priors={"Intercept": bmb.Prior("Normal", mu=0, sigma=2.5), "x": bmb.Prior("Normal", mu=0, sigma=1),
                              "trt": bmb.Prior("Normal", mu=0, sigma=1),
                              "1|g": bmb.Prior("Normal", mu=0, sigma=bmb.Prior("HalfNormal", sigma=1))})
    idata = fit_bambi(model, draws, tune, chains, seed)
    rows = []
    xs = [-1.0, 0.0, 1.0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = bmb.interpret.predictions(model, idata, conditional={"x": xs, "trt": ["a", "b"], "g": [0]},
                                        use_hdi=False)
        grid = pd.DataFrame({"x": res.summary["x"].to_numpy(), "trt": res.summary["trt"].astype(str).to_numpy(),
                             "g": 0})
        ours = fit.predictions(grid)
        rows += [{"question": "logistic: P(y = 1)", "row": f"x={a:g}, trt={b}", "hierfit": e, "bambi": t,
                  "hierfit sd": sd, "difference / sd": (t - e) / sd}
                 for a, b, e, sd, t in zip(grid["x"], grid["trt"], ours["Estimate"], ours["Est.Error"],
                                           _estimate(res.summary))]
        res = bmb.interpret.comparisons(model, idata, contrast={"trt": ["a", "b"]}, conditional={"x": xs, "g": [0]},
                                        use_hdi=False)
        grid = pd.DataFrame({"x": res.summary["x"].to_numpy(), "g": 0})
        ours = fit.comparisons({"trt": ["a", "b"]}, newdata=grid)
        rows += [{"question": "logistic: comparison b - a", "row": f"x={a:g}", "hierfit": e, "bambi": t,
                  "hierfit sd": sd, "difference / sd": (t - e) / sd}
                 for a, e, sd, t in zip(grid["x"], ours["Estimate"], ours["Est.Error"], _estimate(res.summary))]
        res = bmb.interpret.slopes(model, idata, wrt={"x": 0.0}, conditional={"trt": ["a", "b"], "g": [0]},
                                   use_hdi=False)
        grid = pd.DataFrame({"trt": res.summary["trt"].astype(str).to_numpy(), "x": 0.0, "g": 0})
        ours = fit.slopes("x", newdata=grid)
        rows += [{"question": "logistic: slope dP/dx", "row": f"x=0, trt={b}", "hierfit": e, "bambi": t,
                  "hierfit sd": sd, "difference / sd": (t - e) / sd}
                 for b, e, sd, t in zip(grid["trt"], ours["Estimate"], ours["Est.Error"], _estimate(res.summary))]
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--draws", type=int, default=1000)
    ap.add_argument("--tune", type=int, default=1000)
    ap.add_argument("--chains", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    t0 = time.time()
    table = run(args.draws, args.tune, args.chains, args.seed)
    seconds = time.time() - t0
    RESULTS.mkdir(exist_ok=True)
    lines = ["# hierfit vs bambi `interpret`: predictions, comparisons, slopes", "",
             f"Models `{MODELS['Exam random intercept'][0]}` and a logistic `y ~ x + trt + (1 | g)` (simulated) "
             f"with matched priors; {args.chains} chains x "
             f"{args.draws} draws (tune {args.tune}), seed {args.seed}; {seconds:.0f} s.  Target: "
             f"|difference| < {TOLERANCE} posterior sd.", "",
             "Command: `python benchmarks/interpret_agreement.py " + " ".join(argv or sys.argv[1:]) + "`", "",
             "| question | row | hierfit | bambi | hierfit sd | difference / sd | agrees |",
             "|---|---|---|---|---|---|---|"]
    for r in table.itertuples(index=False):
        lines.append(f"| {r[0]} | {r[1]} | {r[2]:.4f} | {r[3]:.4f} | {r[4]:.4f} | {r[5]:+.3f} | "
                     f"{'yes' if r[6] else 'NO'} |")
    lines += ["", f"{int(table['agrees'].sum())} of {len(table)} rows agree."]
    (RESULTS / "interpret_agreement.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0 if table["agrees"].all() else 1


if __name__ == "__main__":
    raise SystemExit(main())

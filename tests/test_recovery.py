"""Parameter recovery: for every formula form, 95% intervals cover the known truth across seeds.

Each form is simulated on a fixed design (covariates and groups) with three response
seeds and fitted with ``hierfit.fit`` (its default method: the collapsed sampler for
Gaussian models with one grouping factor, NUTS on all parameters otherwise); the
intervals are those of ``fixef()`` and ``VarCorr()``.  With 3 seeds and about 45 intervals per seed, a correct
model misses about 7 intervals in all; the checks are that no parameter is missed
in all three seeds (chance about 1e-4 per parameter) and that the total number of
misses stays within the binomial 99.9% bound.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from conftest import quiet_fit

SEEDS = (1, 2, 3)
SIGMA = 0.7
FIXED = {"(Intercept)": 0.5, "x": 1.0, "z": -0.5}


def _cov(sds, cor):
    sds = np.asarray(sds)
    return np.asarray(cor) * np.outer(sds, sds)


def _effects(rng, levels, sds, cor=None):
    k = len(sds)
    cov = _cov(sds, np.eye(k) if cor is None else cor)
    return rng.multivariate_normal(np.zeros(k), cov, size=levels)


# Each form: formula, design builder (returns data without y), and a simulator of the response
# returning y and the truth as {("b", coef) | ("sd", grp, coef) | ("cor", grp, c1, c2) | ("sigma",): value}.

def _single_factor_design(rng):
    g = np.repeat(np.arange(30), 10)
    return pd.DataFrame({"g": g, "x": rng.normal(size=g.size), "z": rng.normal(size=g.size)})


def _sim_single(coefs, sds, cor, correlated=True, grp_names=None):
    def sim(d, rng):
        u = _effects(rng, 30, sds, cor)
        cols = {"(Intercept)": np.ones(len(d)), "x": d["x"].to_numpy(), "z": d["z"].to_numpy()}
        eta = FIXED["(Intercept)"] + FIXED["x"] * d["x"].to_numpy()
        for k, c in enumerate(coefs):
            eta = eta + cols[c] * u[d["g"].to_numpy(), k]
        truth = {("b", "(Intercept)"): FIXED["(Intercept)"], ("b", "x"): FIXED["x"], ("sigma",): SIGMA}
        for k, c in enumerate(coefs):
            truth[("sd", (grp_names or {}).get(c, "g"), c)] = sds[k]
        if correlated and len(coefs) > 1:
            for i in range(len(coefs)):
                for j in range(i + 1, len(coefs)):
                    truth[("cor", "g", coefs[i], coefs[j])] = cor[i][j]
        return eta + rng.normal(0, SIGMA, len(d)), truth
    return sim


def _sim_several(d, rng):
    sds, cor = [0.8, 0.5, 0.4], [[1, 0.3, -0.2], [0.3, 1, 0.1], [-0.2, 0.1, 1]]
    u = _effects(rng, 30, sds, cor)
    g, x, z = d["g"].to_numpy(), d["x"].to_numpy(), d["z"].to_numpy()
    eta = 0.5 + 1.0 * x - 0.5 * z + u[g, 0] + u[g, 1] * x + u[g, 2] * z
    coefs = ["(Intercept)", "x", "z"]
    truth = {("b", c): FIXED[c] for c in coefs} | {("sigma",): SIGMA}
    truth |= {("sd", "g", c): s for c, s in zip(coefs, sds)}
    truth |= {("cor", "g", coefs[i], coefs[j]): cor[i][j] for i in range(3) for j in range(i + 1, 3)}
    return eta + rng.normal(0, SIGMA, len(d)), truth


def _nested_design(rng):
    g = np.repeat(np.arange(15), 20)
    h = np.tile(np.repeat(np.arange(4), 5), 15)  # h labels repeat across g: only g/h makes them distinct
    return pd.DataFrame({"g": g, "h": h, "x": rng.normal(size=g.size)})


def _sim_nested(d, rng):
    ug, uh = rng.normal(0, 0.8, 15), rng.normal(0, 0.5, (15, 4))
    g, h, x = d["g"].to_numpy(), d["h"].to_numpy(), d["x"].to_numpy()
    y = 0.5 + x + ug[g] + uh[g, h] + rng.normal(0, SIGMA, len(d))
    return y, {("b", "(Intercept)"): 0.5, ("b", "x"): 1.0, ("sd", "g", "(Intercept)"): 0.8,
               ("sd", "h:g", "(Intercept)"): 0.5, ("sigma",): SIGMA}


def _interaction_design(rng):
    g = np.repeat(np.arange(6), 50)
    h = np.tile(np.repeat(np.arange(5), 10), 6)
    return pd.DataFrame({"g": g, "h": h, "x": rng.normal(size=g.size)})


def _sim_interaction(d, rng):
    u = rng.normal(0, 0.8, (6, 5))
    y = 0.5 + d["x"].to_numpy() + u[d["g"], d["h"]] + rng.normal(0, SIGMA, len(d))
    return y, {("b", "(Intercept)"): 0.5, ("b", "x"): 1.0, ("sd", "g:h", "(Intercept)"): 0.8, ("sigma",): SIGMA}


def _crossed_design(rng):
    g1 = np.repeat(np.arange(30), 10)
    g2 = np.tile(np.arange(10), 30)
    return pd.DataFrame({"g1": g1, "g2": g2, "x": rng.normal(size=g1.size)})


def _sim_crossed(d, rng):
    u1, u2 = rng.normal(0, 0.8, 30), rng.normal(0, 0.6, 10)
    y = 0.5 + d["x"].to_numpy() + u1[d["g1"]] + u2[d["g2"]] + rng.normal(0, SIGMA, len(d))
    return y, {("b", "(Intercept)"): 0.5, ("b", "x"): 1.0, ("sd", "g1", "(Intercept)"): 0.8,
               ("sd", "g2", "(Intercept)"): 0.6, ("sigma",): SIGMA}


FORMS = {
    "(1|g)": ("y ~ x + (1 | g)", _single_factor_design, _sim_single(["(Intercept)"], [0.8], None)),
    "(x|g)": ("y ~ x + (x | g)", _single_factor_design,
              _sim_single(["(Intercept)", "x"], [0.8, 0.5], [[1, 0.4], [0.4, 1]])),
    "(x||g)": ("y ~ x + (x || g)", _single_factor_design,
               _sim_single(["(Intercept)", "x"], [0.8, 0.5], None, correlated=False, grp_names={"x": "g.1"})),
    "(0+x|g)": ("y ~ x + (0 + x | g)", _single_factor_design, _sim_single(["x"], [0.5], None)),
    "(1|g/h)": ("y ~ x + (1 | g/h)", _nested_design, _sim_nested),
    "(1|g:h)": ("y ~ x + (1 | g:h)", _interaction_design, _sim_interaction),
    "(1|g1)+(1|g2)": ("y ~ x + (1 | g1) + (1 | g2)", _crossed_design, _sim_crossed),
    "(x+z|g)": ("y ~ x + z + (x + z | g)", _single_factor_design, _sim_several),
}


def _interval(fit, key):
    """(estimate, lower, upper) of one parameter of the truth dict, from fixef() and VarCorr()."""
    if key[0] == "b":
        row = fit.fixef().loc[key[1]]
        return row["Estimate"], row["l-95% CI"], row["u-95% CI"]
    vc = fit.VarCorr()
    if key[0] == "sigma":
        sel = vc["grp"] == "Residual"
    elif key[0] == "sd":
        sel = (vc["grp"] == key[1]) & (vc["var1"] == key[2]) & vc["var2"].isna()
    else:
        sel = (vc["grp"] == key[1]) & (vc["var1"] == key[2]) & (vc["var2"] == key[3])
    assert sel.sum() == 1, (key, vc)
    row = vc[sel].iloc[0]
    return row["sdcor"], row["l-95% CI"], row["u-95% CI"]


@pytest.fixture(scope="module")
def coverage():
    rows = []
    for form, (formula, make_design, simulate) in FORMS.items():
        base = make_design(np.random.default_rng(0))  # covariates and groups fixed; response varies by seed
        for seed in SEEDS:
            data = base.copy()
            data["y"], truth = simulate(base, np.random.default_rng(seed))
            fit = quiet_fit(formula, data, draws=500, tune=500, chains=2, seed=seed)
            for key, value in truth.items():
                est, lo, hi = _interval(fit, key)
                rows.append({"form": form, "seed": seed, "parameter": key, "truth": value, "lo": lo, "hi": hi,
                             "mean": est, "covered": bool(lo < value < hi), "method": fit.method.name})
    return pd.DataFrame(rows)


@pytest.mark.parametrize("form", list(FORMS))
def test_no_parameter_missed_in_every_seed(coverage, form):
    tab = coverage[coverage["form"] == form]
    assert len(tab) >= 3 * 4
    hits = tab.groupby("parameter")["covered"].sum()
    assert (hits > 0).all(), tab[~tab["covered"]].to_string()


def test_total_coverage_is_nominal(coverage):
    n = len(coverage)
    misses = int((~coverage["covered"]).sum())
    bound = stats.binom.ppf(0.999, n, 0.05)
    assert misses <= bound, coverage[~coverage["covered"]].to_string()
    assert n >= 120


def test_point_estimates_are_close(coverage):
    """Averaged over seeds, fixed effects are within 0.15 of the truth (a biased model fails this)."""
    assert set(coverage["method"]) == {"collapsed", "full"}  # both of hierfit's samplers were exercised
    fixed = coverage[coverage["parameter"].map(lambda k: k[0] == "b")]
    err = fixed.groupby(["form", "parameter"]).apply(lambda t: abs(t["mean"].mean() - t["truth"].iloc[0]))
    assert (err < 0.15).all(), err

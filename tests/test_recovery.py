"""Parameter recovery: for every formula form, 95% intervals cover the known truth across seeds.

Each form is simulated on a fixed design (covariates and groups) with three response
seeds.  The model of each form is built and compiled once, as ``hierfit.fit`` builds
it (collapsed sampler for Gaussian models with one grouping factor, NUTS on all
parameters otherwise), and each seed's response is swapped in; this keeps the test
to one compile per form.  With 3 seeds and about 45 intervals per seed, a correct
model misses about 7 intervals in all; the checks are that no parameter is missed
in all three seeds (chance about 1e-4 per parameter) and that the total number of
misses stays within the binomial 99.9% bound.
"""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from hierfit.design import build_design
from hierfit.draws import stack
from hierfit.priors import resolve_priors

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


def _draws_of(post, design, key):
    """Posterior draws of one parameter of the truth dict."""
    if key[0] == "b":
        return stack(post, "b")[:, design.fixed_names.index(key[1])]
    if key[0] == "sigma":
        return stack(post, "sigma")
    for blk in design.all_blocks:
        if blk.name == key[1] and key[2] in blk.coefs:
            i = blk.coefs.index(key[2])
            if key[0] == "sd":
                return stack(post, f"sd_{blk.key}")[:, i]
            if key[3] in blk.coefs:
                return stack(post, f"cor_{blk.key}")[:, i, blk.coefs.index(key[3])]
    raise KeyError(key)


def _fit_seeds(formula, make_design, simulate):
    """Posterior draws for each seed: one model build and compile, responses swapped in."""
    import nutpie

    from hierfit.collapsed import build_collapsed_model, collapsible, draw_group_effects, sufficient_stats
    from hierfit.model import build_model

    base = make_design(np.random.default_rng(0))
    runs = []
    for seed in SEEDS:
        data = base.copy()
        data["y"], truth = simulate(base, np.random.default_rng(seed))
        runs.append((data, truth))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        design0 = build_design(formula, runs[0][0])
        priors = resolve_priors(design0)
        collapsed = collapsible(design0)[0]
        model = build_collapsed_model(design0, priors) if collapsed else build_model(design0, priors)
        compiled = nutpie.compile_pymc_model(model, backend="numba")
    out = []
    for seed, (data, truth) in zip(SEEDS, runs):
        design = dataclasses.replace(design0, y=data["y"].to_numpy())
        if collapsed:
            st = sufficient_stats(design)
            run = compiled.with_data(ss_yy=st.yy, ss_Xy=st.Xy, ss_Zy=st.Zy)
        else:
            run = compiled.with_data(y_obs=design.y)
        dt = nutpie.sample(run, draws=500, tune=500, chains=2, seed=seed, progress_bar=False)
        post = dt["posterior"].to_dataset()
        if collapsed:
            post = draw_group_effects(post, design, seed)
        out.append((design, post, truth))
    return out


@pytest.fixture(scope="module")
def coverage():
    rows = []
    for form, (formula, make_design, simulate) in FORMS.items():
        for seed, (design, post, truth) in zip(SEEDS, _fit_seeds(formula, make_design, simulate)):
            for key, value in truth.items():
                draws = _draws_of(post, design, key)
                lo, hi = np.quantile(draws, [0.025, 0.975])
                rows.append({"form": form, "seed": seed, "parameter": key, "truth": value, "lo": lo, "hi": hi,
                             "mean": float(draws.mean()), "covered": bool(lo < value < hi)})
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
    fixed = coverage[coverage["parameter"].map(lambda k: k[0] == "b")]
    err = fixed.groupby(["form", "parameter"]).apply(lambda t: abs(t["mean"].mean() - t["truth"].iloc[0]))
    assert (err < 0.15).all(), err

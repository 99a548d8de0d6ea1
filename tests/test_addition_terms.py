"""brms's addition terms (weights, cens, se): parsing, the kernel against the PyMC model, LOO's log-likelihood.

The PyMC model is the specification; the kernel must equal its log density and gradient at random
points.  The pointwise log-likelihood is checked against scipy written out by hand.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import hierfit
from hierfit import families
from hierfit.engine.kernel import build_spec, load
from hierfit.engine.model import build_model
from hierfit.errors import DataError, FormulaError
from hierfit.spec.design import build_design
from hierfit.spec.parametrization import Parametrization
from hierfit.spec.priors import resolve_priors

ENTRY = load()


def _data():
    rng = np.random.default_rng(7)
    g = np.repeat(np.arange(10), 6)
    x = rng.normal(size=g.size)
    eta = 0.5 + 0.8 * x + rng.normal(0, 0.6, 10)[g]
    df = pd.DataFrame({"x": x, "g": g, "sei": rng.uniform(0.3, 2.0, g.size), "w": rng.uniform(0.2, 3.0, g.size)})
    df["y"] = eta + rng.normal(size=g.size)
    df["ypos"] = np.exp(0.3 * eta + 0.2 * rng.normal(size=g.size))
    df["cens"] = rng.choice(["none", "left", "right", "interval"], g.size, p=[0.4, 0.2, 0.2, 0.2])
    df["ccode"] = df["cens"].map({"left": -1, "none": 0, "right": 1, "interval": 2})
    df["y2"] = df["y"] + rng.uniform(0.1, 2.0, g.size)
    df["ypos2"] = df["ypos"] * 1.5
    df["yp"] = rng.poisson(np.exp(0.3 * eta))
    return df


DATA = _data()

CASES = {
    "weights": dict(formula="y | weights(w) ~ x + (1 | g)"),
    "weights, student with a sigma formula": dict(formula="y | weights(w) ~ x + (1 | g)", family="student",
                                                  dpars={"sigma": "~ x"}),
    "weights, poisson": dict(formula="yp | weights(w) ~ x + (1 | g)", family="poisson"),
    "weights, zero-inflated poisson with a zi formula": dict(formula="yp | weights(w) ~ x + (1 | g)",
                                                            family="zero_inflated_poisson", dpars={"zi": "~ x"}),
    "weights, hurdle negbinomial": dict(formula="yp | weights(w) ~ x + (1 | g)", family="hurdle_negbinomial"),
    "cens strings": dict(formula="y | cens(cens, y2) ~ x + (x | g)"),
    "cens codes + weights": dict(formula="y | cens(ccode, y2) + weights(w) ~ x + (1 | g)"),
    "cens, gaussian log link": dict(formula="ypos | cens(cens, ypos2) ~ x + (1 | g)",
                                    family=families.gaussian(link="log")),
    "cens with a sigma formula": dict(formula="y | cens(cens, y2) ~ x + (1 | g)", dpars={"sigma": "~ x"}),
    "se, no sigma": dict(formula="y | se(sei) ~ x + (1 | g)"),
    "se with sigma, cens": dict(formula="y | se(sei, sigma = TRUE) + cens(cens, y2) ~ x + (1 | g)"),
}


def _build(case, par="noncentered"):
    d = build_design(case["formula"], DATA, family=families.get(case.get("family", "gaussian")),
                     dpars=case.get("dpars"))
    pr = resolve_priors(d)
    p = Parametrization({b.key: par for b in d.all_blocks})
    return d, build_spec(d, pr, p), build_model(d, pr, p)


@pytest.mark.parametrize("name", list(CASES))
def test_kernel_equals_pymc_log_density_and_gradient(name):
    _, spec, model = _build(CASES[name])
    assert [v.name for v in spec.value_vars] == [model.rvs_to_values[v].name for v in model.free_RVs]
    logp = model.compile_logp(mode="FAST_COMPILE")
    dlogp = model.compile_dlogp(mode="FAST_COMPILE")
    rng = np.random.default_rng(1)
    for _ in range(3):
        x = spec.init_centre + rng.uniform(-0.7, 0.7, spec.n_dim)
        grad = np.zeros(spec.n_dim)
        lp = ENTRY.logp_and_grad(x, grad, spec.ints, spec.floats)
        point = spec.pymc_point(x)
        ref = float(logp(point))
        assert np.isfinite(ref)
        assert lp == pytest.approx(ref, rel=1e-9, abs=1e-6)  # PyMC's normal logcdf differs by ~1e-7 in tails
        np.testing.assert_allclose(grad, np.asarray(dlogp(point)), rtol=1e-6, atol=1e-7)


def test_weights_multiply_each_rows_log_likelihood():
    """Weighted model minus unweighted model = sum (w - 1) * log N(y | mu, sigma), computed with scipy."""
    case_w, case_1 = CASES["weights"], dict(formula="y ~ x + (1 | g)")
    _, sw, _ = _build(case_w)
    d1, s1, _ = _build(case_1)
    x = sw.init_centre + 0.3
    lw = ENTRY.logp_and_grad(x, np.zeros(sw.n_dim), sw.ints, sw.floats)
    l1 = ENTRY.logp_and_grad(x, np.zeros(s1.n_dim), s1.ints, s1.floats)
    pt = sw.stored_draws(x[None])
    mu = pt["b"][0] @ np.vstack([np.ones(len(DATA)), DATA["x"]]) + pt["r_g"][0][DATA["g"], 0]
    ll = stats.norm(mu, pt["sigma"][0]).logpdf(DATA["y"])
    assert lw - l1 == pytest.approx(float(((DATA["w"] - 1) * ll).sum()), rel=1e-9)


def test_se_without_sigma_has_no_residual_sd_and_collapses_to_full():
    s = hierfit.specify("y | se(sei) ~ x + (1 | g)", DATA)
    assert s.family.dpar_names == ()
    assert "sigma" not in list(s.priors.table()["class"])
    assert s.method.name == "full" and "se" in s.method.reason
    s2 = hierfit.specify("y | se(sei, sigma = TRUE) ~ x + (1 | g)", DATA)
    assert "sigma" in list(s2.priors.table()["class"])


def test_weights_keyword_is_the_formula_term():
    a = hierfit.specify("y | weights(w) ~ x + (1 | g)", DATA).design.addition.weights
    b = hierfit.specify("y ~ x + (1 | g)", DATA, weights="w").design.addition.weights
    c = hierfit.specify("y ~ x + (1 | g)", DATA, weights=DATA["w"].to_numpy()).design.addition.weights
    np.testing.assert_array_equal(a, DATA["w"])
    np.testing.assert_array_equal(b, a)
    np.testing.assert_array_equal(c, a)


@pytest.mark.parametrize("formula, error, match", [
    ("y | foo(w) ~ x", FormulaError, "addition terms"),
    ("y | weights(w, x) ~ x", FormulaError, "takes 1"),
    ("y | se(sei, sigma = maybe) ~ x", FormulaError, "TRUE or FALSE"),
    ("y | cens(cens) ~ x", DataError, "upper"),
    ("yp | se(sei) ~ x", FormulaError, "gaussian"),
])
def test_bad_addition_terms_raise(formula, error, match):
    fam = "poisson" if formula.startswith("yp") else "gaussian"
    with pytest.raises(error, match=match):
        hierfit.specify(formula, DATA, fam)


def test_bad_weights_and_censoring_values_raise():
    bad = DATA.assign(w=-DATA["w"], cens=DATA["cens"].replace("left", "lft"))
    with pytest.raises(DataError, match="non-negative"):
        hierfit.specify("y | weights(w) ~ x", bad)
    with pytest.raises(DataError, match="lft"):
        hierfit.specify("y | cens(cens, y2) ~ x", bad)
    with pytest.raises(DataError, match="3 values"):
        hierfit.specify("y ~ x", DATA, weights=[1.0, 2.0, 3.0])


def test_pointwise_log_likelihood_with_censoring_by_hand():
    from hierfit.spec.addition import Addition, row_logpdf

    y = np.array([0.3, -0.2, 1.0, 0.5])
    c = np.array([0, -1, 1, 2])
    y2 = np.array([0.0, 0.0, 0.0, 1.5])
    mu, sd = np.array([[0.1, 0.2, 0.3, 0.4]]), 1.3
    w = np.array([1.0, 2.0, 0.5, 1.5])
    got = row_logpdf(families.gaussian(), y, mu, {"sigma": np.full((1, 1), sd)}, None, Addition(w, c, y2))
    n = stats.norm(mu[0], sd)
    want = w * np.array([n.logpdf(y)[0], n.logcdf(y)[1], np.log(1 - n.cdf(y)[2]),
                         np.log(n.cdf(y2[3])[3] - n.cdf(y[3])[3])])
    np.testing.assert_allclose(got[0], want, rtol=1e-10)


def test_eight_schools_matches_posteriordb_reference():
    """posteriordb's eight_schools_noncentered (Stan, 10 x 1000 draws): mu and tau within Monte Carlo error."""
    import json
    import zipfile

    from conftest import shared_path
    from hierfit.results.diagnostics import ess_bulk

    raw = json.loads(zipfile.ZipFile(shared_path("posteriordb", "data", "eight_schools.json.zip"))
                     .read("eight_schools.json"))
    ref = pd.read_csv(shared_path("posteriordb", "reference", "summary.csv"))
    ref = ref[ref["posterior"] == "eight_schools-eight_schools_noncentered"].set_index("parameter")
    df = pd.DataFrame({"y": raw["y"], "sei": raw["sigma"], "school": [f"s{i + 1}" for i in range(raw["J"])]})
    # the posteriordb model: mu ~ normal(0, 5), tau ~ cauchy+(0, 5), theta_j = mu + tau eta_j, y_j ~ N(theta_j, sigma_j)
    m = hierfit.fit("y | se(sei) ~ 1 + (1 | school)", df, chains=4, draws=1000, tune=1000, seed=3,
                    progressbar=False, target_accept=0.95, warn=False,
                    priors=[hierfit.prior("normal(0, 5)", "Intercept"), hierfit.prior("cauchy(0, 5)", "sd")])
    assert "sigma" not in m.draws
    for name, var in (("mu", "b"), ("tau", "sd_school")):
        draws = np.asarray(m.draws[var]).reshape(m.draws.sizes["chain"], m.draws.sizes["draw"])
        ess = float(np.asarray(ess_bulk(draws)).ravel()[0])
        mcse = draws.std() / np.sqrt(ess)
        assert abs(draws.mean() - ref.loc[name, "mean"]) < 4 * mcse + 0.02, name
        assert abs(draws.std() - ref.loc[name, "sd"]) < 8 * mcse + 0.05, name


def test_weight_two_is_the_row_twice():
    """brms's semantics: an integer weight counts the row that many times (kernel log density, any point)."""
    df = DATA.assign(w2=np.where(np.arange(len(DATA)) % 3 == 0, 2.0, 1.0))
    dup = pd.concat([df, df[df["w2"] == 2.0]], ignore_index=True)
    pr = [hierfit.prior("normal(0, 2)", "Intercept"), hierfit.prior("exponential(1)", "sd"),
          hierfit.prior("exponential(1)", "sigma")]
    specs = []  # no slopes: the sampled intercept sits at the predictors' means, which duplication would move
    for formula, data in (("y | weights(w2) ~ 1 + (1 | g)", df), ("y ~ 1 + (1 | g)", dup)):
        d = build_design(formula, data)
        specs.append(build_spec(d, resolve_priors(d, pr), Parametrization({"g": "noncentered"})))
    x = specs[0].init_centre + np.random.default_rng(2).uniform(-0.5, 0.5, specs[0].n_dim)
    ga, gb = np.zeros(specs[0].n_dim), np.zeros(specs[0].n_dim)
    la = ENTRY.logp_and_grad(x, ga, specs[0].ints, specs[0].floats)
    lb = ENTRY.logp_and_grad(x, gb, specs[1].ints, specs[1].floats)
    assert la == pytest.approx(lb, rel=1e-12)
    np.testing.assert_allclose(ga, gb, rtol=1e-10, atol=1e-10)


def test_censored_regression_recovers_the_truth():
    """Right-censoring at 1.0 (40 % of rows): the censored model recovers the slope, ignoring it does not."""
    rng = np.random.default_rng(11)
    n = 300
    x = rng.normal(size=n)
    y_true = 0.2 + 1.0 * x + rng.normal(0, 0.8, n)
    df = pd.DataFrame({"x": x, "y": np.minimum(y_true, 1.0), "c": np.where(y_true > 1.0, "right", "none")})
    kw = dict(chains=2, draws=300, tune=300, seed=1, progressbar=False, warn=False)
    m = hierfit.fit("y | cens(c) ~ x", df, **kw)
    b = np.asarray(m.draws["b"]).reshape(-1, 2)
    sigma = np.asarray(m.draws["sigma"]).ravel()
    assert abs(b[:, 1].mean() - 1.0) < 3 * b[:, 1].std() + 0.02
    assert abs(sigma.mean() - 0.8) < 3 * sigma.std() + 0.02
    naive = np.polyfit(x, df["y"], 1)[0]
    assert naive < 0.85  # what ignoring the censoring gives
    from scipy import optimize

    cens, yv = (df["c"] == "right").to_numpy(), df["y"].to_numpy()

    def nll(q):  # the Tobit likelihood, maximised independently
        mu, sd = q[0] + q[1] * x, np.exp(q[2])
        return -(stats.norm.logpdf(yv[~cens], mu[~cens], sd).sum() + stats.norm.logsf(yv[cens], mu[cens], sd).sum())

    mle = optimize.minimize(nll, [0.0, 1.0, 0.0]).x
    assert abs(b[:, 1].mean() - mle[1]) < 0.3 * b[:, 1].std()
    assert abs(sigma.mean() - np.exp(mle[2])) < 0.3 * sigma.std() + 0.01


@pytest.mark.parametrize("family, formula", [
    ("poisson", "yp | cens(cens, y2p) ~ x + (1 | g)"),
    ("gamma", "ypos | cens(cens, ypos2) + weights(w) ~ x + (1 | g)"),
])
def test_pymc_censoring_of_other_families_equals_scipy(family, formula):
    """The model's censoring/weights correction equals scipy's logcdf/logsf rows (families without a kernel path)."""
    import copy

    df = DATA.assign(y2p=DATA["yp"] + 2)
    d = build_design(formula, df, family=family)
    pr = resolve_priors(d)
    plain = copy.copy(d)
    plain.addition = None
    p = Parametrization({b.key: "noncentered" for b in d.all_blocks})
    m_add, m_plain = build_model(d, pr, p), build_model(plain, pr, p)
    point = m_add.initial_point(0)
    diff = float(m_add.compile_logp(mode="FAST_COMPILE")(point)) - float(m_plain.compile_logp(mode="FAST_COMPILE")(point))
    x = df["x"].to_numpy()
    eta = (point["Intercept"] + (x - x.mean()) * point["beta"][0]
           + point["z_g"][:, 0][df["g"].to_numpy()] * np.exp(point["sd_g_log__"][0]))
    fam = families.get(family)
    from hierfit.spec.addition import row_logpdf

    dp = {} if family == "poisson" else {"shape": np.full((1, 1), float(np.exp(point["shape_log__"])))}
    mean = np.exp(eta)
    want = row_logpdf(fam, d.y, mean[None], dp, None, d.addition).sum() - fam.logpdf(d.y, mean[None], dp).sum()
    assert diff == pytest.approx(want, rel=1e-7, abs=1e-7)


def test_equation_shows_the_known_standard_errors():
    from hierfit.results.equation import build_equation

    d = build_design("y | se(sei) ~ x + (1 | g)", DATA)
    assert r"\text{se}^2_{i}" in str(build_equation(d)) and r"\sigma^2 \right)" not in str(build_equation(d))
    d = build_design("y | se(sei, sigma = TRUE) ~ x + (1 | g)", DATA)
    assert r"\sigma^2 + \text{se}^2_{i}" in str(build_equation(d))

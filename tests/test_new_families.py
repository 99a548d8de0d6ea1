"""The zero-inflated, hurdle, beta, lognormal, weibull and exponential families and the gamma links.

Each family's numpy/scipy side (log density for LOO, mean and variance for
predictions and R², simulator for pp_check and quantile residuals) is checked
against an independent computation: PyMC's log density of the family's own
likelihood (the specification), and Monte Carlo moments of the simulator.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import special

import hierfit
from hierfit import families
from hierfit.errors import FormulaError, HierfitError

RNG = np.random.default_rng(11)

# family -> (mu, dpars) at which it is checked
POINTS = {
    "zero_inflated_poisson": (np.array([0.4, 2.0, 6.5, 1.2]), {"zi": np.array([0.3, 0.05, 0.6, 0.2])}),
    "zero_inflated_negbinomial": (np.array([0.4, 2.0, 6.5, 1.2]), {"shape": np.array([1.5]),
                                                                   "zi": np.array([0.3, 0.05, 0.6, 0.2])}),
    "hurdle_poisson": (np.array([0.4, 2.0, 6.5, 1.2]), {"hu": np.array([0.3, 0.05, 0.6, 0.2])}),
    "hurdle_negbinomial": (np.array([0.4, 2.0, 6.5, 1.2]), {"shape": np.array([2.5]),
                                                            "hu": np.array([0.3, 0.05, 0.6, 0.2])}),
    "hurdle_lognormal": (np.array([-0.5, 0.3, 1.0, 0.0]), {"sigma": np.array([0.7]),
                                                          "hu": np.array([0.3, 0.05, 0.6, 0.2])}),
    "beta": (np.array([0.2, 0.5, 0.8, 0.35]), {"phi": np.array([4.0, 10.0, 30.0, 2.0])}),
    "lognormal": (np.array([-0.5, 0.3, 1.0, 0.0]), {"sigma": np.array([0.4, 0.8, 1.1, 0.3])}),
    "weibull": (np.array([0.5, 2.0, 4.0, 1.0]), {"shape": np.array([0.8, 1.5, 3.0, 1.1])}),
    "exponential": (np.array([0.5, 2.0, 4.0, 1.0]), {}),
}
Y = {
    "counts": np.array([0.0, 3.0, 0.0, 1.0]),
    "positive0": np.array([0.0, 1.7, 0.0, 0.4]),
    "unit": np.array([0.13, 0.61, 0.77, 0.42]),
    "positive": np.array([0.3, 2.2, 5.1, 0.8]),
}
RESPONSE = {"zero_inflated_poisson": "counts", "zero_inflated_negbinomial": "counts", "hurdle_poisson": "counts",
            "hurdle_negbinomial": "counts", "hurdle_lognormal": "positive0", "beta": "unit",
            "lognormal": "positive", "weibull": "positive", "exponential": "positive"}


def _pymc_logp(fam, y, mu, dpars):
    import pymc as pm

    with pm.Model() as model:
        fam.pymc_likelihood("y", pm.math.constant(mu), {k: pm.math.constant(v) for k, v in dpars.items()}, y, None)
    return float(model.compile_logp()({}))


@pytest.mark.parametrize("name", list(POINTS))
def test_logpdf_equals_pymc(name):
    fam = families.get(name)
    mu, dpars = POINTS[name]
    y = Y[RESPONSE[name]]
    ours = fam.logpdf(y, mu, dpars)
    assert ours.shape == (4,) and np.all(np.isfinite(ours))
    assert np.sum(ours) == pytest.approx(_pymc_logp(fam, y, mu, dpars), rel=1e-9, abs=1e-9)


@pytest.mark.parametrize("name", list(POINTS))
def test_moments_and_cdf_match_simulation(name):
    fam = families.get(name)
    mu, dpars = POINTS[name]
    n = 200_000
    sims = np.asarray(fam.simulate(np.random.default_rng(5), np.broadcast_to(mu, (n, 4)),
                                   {k: np.broadcast_to(v, (n, v.size)) for k, v in dpars.items()}), dtype=float)
    mean = np.asarray(fam.mean(mu, dpars), dtype=float)
    var = np.broadcast_to(np.asarray(fam.variance(mu, dpars), dtype=float), (4,))
    se_mean = np.sqrt(var / n)
    assert np.all(np.abs(sims.mean(axis=0) - mean) < 5 * se_mean + 1e-9)
    assert np.allclose(sims.var(axis=0), var, rtol=0.05)
    y = Y[RESPONSE[name]]
    emp = (sims <= y).mean(axis=0)
    assert np.allclose(fam.cdf(y, mu, dpars), emp, atol=0.005)
    if fam.discrete:  # the pmf sums the cdf's steps: P(y) from the density equals the simulated frequency
        freq = (sims == y).mean(axis=0)
        assert np.allclose(np.exp(fam.logpdf(y, mu, dpars)), freq, atol=0.005)


def test_gamma_links_r_and_brms_spellings():
    assert families.get("gamma").link_name == "log"  # brms's default
    assert families.get("Gamma").link_name == "inverse"  # R's Gamma()
    assert families.get(("gamma", "inverse")).link_name == "inverse"
    assert families.get("gamma", link="identity").link_name == "identity"
    with pytest.raises(HierfitError, match="disagree"):
        families.get(("gamma", "inverse"), link="log")
    with pytest.raises(HierfitError, match="no link"):
        families.get("gamma", link="logit")
    fam = families.get("Gamma")
    assert fam.link.inv(0.5) == 2.0 and fam.has_kernel


def _zip_data(n_groups=30, per=12, seed=2):
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(n_groups), per)
    x = rng.normal(size=g.size)
    w = rng.normal(size=g.size)
    eta = 0.8 + 0.5 * x + rng.normal(0, 0.4, n_groups)[g]
    zi = special.expit(-0.7 + 1.0 * w)
    y = np.where(rng.uniform(size=g.size) < zi, 0, rng.poisson(np.exp(eta)))
    return pd.DataFrame({"y": y, "x": x, "w": w, "g": g})


def test_ziformula_bf_and_dpars_agree_and_errors():
    df = _zip_data()
    a = hierfit.specify("y ~ x + (1 | g)", df, "zero_inflated_poisson", ziformula="~ w")
    b = hierfit.specify(hierfit.bf("y ~ x + (1 | g)", zi="~ w"), df, "zero_inflated_poisson")
    assert set(a.design.predictors) == set(b.design.predictors) == {"mu", "zi"}
    assert a.design.predictors["zi"].fixed_names == ["(Intercept)", "w"]
    assert "zi" in hierfit.specify("y ~ x", df, "zero_inflated_poisson", ziformula="~ 0").priors.dpars
    with pytest.raises(FormulaError, match="zero-inflated family"):
        hierfit.specify("y ~ x", df, "poisson", ziformula="~ 1")
    zinb = hierfit.specify("y ~ x", df, "zero_inflated_negbinomial", dispformula="~ w")
    assert set(zinb.design.predictors) == {"mu", "shape"}  # dispformula models the shape, not zi
    table = zinb.priors.table()
    assert list(table.loc[table["class"] == "zi", "prior"]) == ["beta(1, 1)"]


def test_bad_responses_are_named():
    df = pd.DataFrame({"y": [0.2, 1.0, 0.5], "x": [1.0, 2.0, 3.0]})
    with pytest.raises(hierfit.DataError, match="strictly between 0 and 1"):
        hierfit.specify("y ~ x", df, "beta")
    with pytest.raises(hierfit.DataError, match="'y' must be positive"):
        hierfit.specify("y ~ x", df.assign(y=[0.0, 1.0, 2.0]), "lognormal")
    with pytest.raises(hierfit.DataError, match="whole numbers"):
        hierfit.specify("y ~ x", df, "zero_inflated_poisson")


def test_equation_names_the_family_and_zi_formula():
    df = _zip_data()
    s = hierfit.specify("y ~ x + (1 | g)", df, "zero_inflated_poisson", ziformula="~ w")
    from hierfit.results.equation import build_equation

    text = str(build_equation(s.design, s.priors))
    assert r"\operatorname{Poisson}" in text and r"\operatorname{logit}(\operatorname{zi}_{i})" in text
    eq = str(build_equation(hierfit.specify("y ~ x", df.assign(y=df.y + 1.0), "Gamma").design))
    assert r"1 / \mu_{i}" in eq


def test_zero_inflated_poisson_recovers_parameters(tmp_path):
    """Simulation truth: b = (0.8, 0.5), zi = expit(-0.7 + w), sd(g) = 0.4."""
    df = _zip_data(n_groups=40, per=15)
    m = hierfit.fit("y ~ x + (1 | g)", df, "zero_inflated_poisson", ziformula="~ w", chains=2, draws=300,
                    tune=300, seed=3, progressbar=False, warn=False)
    fe = m.fixef()
    truth = {"(Intercept)": 0.8, "x": 0.5, "zi_(Intercept)": -0.7, "zi_w": 1.0}
    for name, value in truth.items():
        est, sd = fe.loc[name, "Estimate"], fe.loc[name, "Est.Error"]
        assert abs(est - value) < 3.5 * sd + 0.05, (name, est, sd)
    assert m.summary().header["family"] == "zero_inflated_poisson ( log )"
    # replicated data reproduce the observed share of zeros (the Poisson alone would not)
    from hierfit.analysis.prepare import prepare_draws

    sims = prepare_draws(m).simulate(np.random.default_rng(1))
    assert abs(np.mean(sims == 0) - np.mean(df["y"] == 0)) < 0.03
    expected = m.fitted()["Estimate"].to_numpy()
    assert abs(expected.mean() - df["y"].mean()) < 0.1 * df["y"].mean()
    assert np.isfinite(m.loo().elpd)
    r2 = m.r2()
    assert 0 < r2.loc["R2_marginal", "Estimate"] < r2.loc["R2_conditional", "Estimate"] < 1
    m.save(tmp_path / "zip.hfit")
    again = hierfit.load(tmp_path / "zip.hfit")
    assert again.family == m.family and again.design.predictors.keys() == m.design.predictors.keys()
    np.testing.assert_allclose(again.fitted()["Estimate"], m.fitted()["Estimate"])


def _laplace(name, mu, observed, scale):
    import pymc as pm

    return pm.Laplace(name, mu=mu, b=scale, observed=observed)


def _laplace_logpdf(y, mu, scale):
    from scipy import stats

    return stats.laplace(mu, scale).logpdf(y)


def test_custom_family_is_the_pymc_distribution_and_saves():
    import pickle

    from hierfit.engine.kernel.spec import kernel_support
    from hierfit.engine.model import build_model

    fam = families.custom_family("laplace", _laplace, dpars={"scale": "log"}, logpdf=_laplace_logpdf)
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"y": rng.laplace(1.0, 0.5, 40), "x": rng.normal(size=40)})
    s = hierfit.specify("y ~ x", df, fam)
    assert not kernel_support(s.design, s.priors)[0]  # sampled through the PyMC model
    model = build_model(s.design, s.priors)
    point = {"Intercept": 0.7, "beta": np.array([0.2]), "scale_log__": np.log(0.8)}
    lp = model.compile_logp(vars=[model["y"]])(point)
    x = df["x"].to_numpy()
    mu = 0.7 + 0.2 * (x - x.mean())
    assert lp == pytest.approx(np.sum(-np.log(2 * 0.8) - np.abs(df["y"].to_numpy() - mu) / 0.8), rel=1e-10)
    again = pickle.loads(pickle.dumps(fam))
    assert again.dpar_names == ("scale",) and again.logpdf(np.array([0.0]), np.array([0.0]), {"scale": 1.0}) == \
        pytest.approx(np.log(0.5))
    with pytest.raises(HierfitError, match="no simulate= function"):
        fam.simulate(rng, np.zeros(2), {"scale": 1.0})
    with pytest.raises(HierfitError, match="reserved"):
        families.custom_family("laplace", _laplace, dpars={"b": "log"})


def _recovery_data(family, seed=7):
    """Simulated data with known truth: Intercept 0.5, slope 0.4 (mu on the link scale), group sd 0.3."""
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(25), 16)
    x = rng.normal(size=g.size)
    eta = 0.5 + 0.4 * x + rng.normal(0, 0.3, 25)[g]
    n = g.size
    mu = np.exp(eta)
    sims = {
        "zero_inflated_negbinomial": lambda: np.where(rng.uniform(size=n) < 0.3, 0,
                                                      rng.poisson(rng.gamma(3.0, mu / 3.0))),
        "hurdle_poisson": lambda: np.where(rng.uniform(size=n) < 0.4, 0, _positive_poisson(rng, mu)),
        "hurdle_lognormal": lambda: np.where(rng.uniform(size=n) < 0.4, 0.0, np.exp(eta + 0.5 * rng.normal(size=n))),
        "beta": lambda: rng.beta(special.expit(eta) * 15, (1 - special.expit(eta)) * 15),
        "lognormal": lambda: np.exp(eta + 0.5 * rng.normal(size=n)),
        "weibull": lambda: mu / special.gamma(1 + 1 / 2.0) * rng.weibull(2.0, n),
        "exponential": lambda: rng.exponential(mu),
        "Gamma": lambda: rng.gamma(4.0, 1.0 / (0.6 + 0.1 * x) / 4.0),  # R's Gamma(): inverse link
    }
    return pd.DataFrame({"y": sims[family](), "x": x, "g": g})


def _positive_poisson(rng, mu):
    y = rng.poisson(mu)
    while (y == 0).any():
        y[y == 0] = rng.poisson(mu[y == 0])
    return y


# family -> (truth of the mean's coefficients, truth of the extra parameters)
RECOVERY = {
    "zero_inflated_negbinomial": ({"(Intercept)": 0.5, "x": 0.4}, {"zi": 0.3, "shape": 3.0}),
    "hurdle_poisson": ({"(Intercept)": 0.5, "x": 0.4}, {"hu": 0.4}),
    "hurdle_lognormal": ({"(Intercept)": 0.5, "x": 0.4}, {"hu": 0.4, "sigma": 0.5}),
    "beta": ({"(Intercept)": 0.5, "x": 0.4}, {"phi": 15.0}),
    "lognormal": ({"(Intercept)": 0.5, "x": 0.4}, {"sigma": 0.5}),
    "weibull": ({"(Intercept)": 0.5, "x": 0.4}, {"shape": 2.0}),
    "exponential": ({"(Intercept)": 0.5, "x": 0.4}, {}),
    "Gamma": ({"(Intercept)": 0.6, "x": 0.1}, {"shape": 4.0}),  # inverse link: 1 / mu = 0.6 + 0.1 x
}


@pytest.mark.parametrize("name", list(RECOVERY))
def test_parameter_recovery(name):
    df = _recovery_data(name)
    formula = "y ~ x + (1 | g)" if name != "Gamma" else "y ~ x"
    m = hierfit.fit(formula, df, name, chains=2, draws=250, tune=250, seed=4, progressbar=False, warn=False)
    assert m.kernel == "hierfit"  # every new family has the compiled kernel
    fe = m.fixef()
    b_truth, d_truth = RECOVERY[name]
    for coef, value in b_truth.items():
        est, sd = fe.loc[coef, "Estimate"], fe.loc[coef, "Est.Error"]
        assert abs(est - value) < 4 * sd + 0.05, (coef, est, sd)
    draws = m.draws
    for dp, value in d_truth.items():
        v = np.asarray(draws[dp]).ravel()
        assert np.quantile(v, 0.001) < value < np.quantile(v, 0.999), (dp, np.quantile(v, [0.001, 0.5, 0.999]))
    assert m.quantile_residuals(seed=1, nsim=200).ks_pvalue > 0.001  # the right family: uniform residuals

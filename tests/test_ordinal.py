"""The cumulative (ordinal) family: response coding, its probabilities against closed forms, and one probit fit.

The logit fit against ordinal::clmm is in test_r_reference_families.py.  Here a probit
model is simulated with known thresholds, slope and group sd (the covariate is not
centred, so the thresholds must come back on the uncentred scale) and fitted once,
through hierfit's compiled kernel; predictions, LOO, residuals, checks and save/load run
on that fit.  The kernel's log density and gradient equal the PyMC model's in
tests/test_kernel.py (the ``cumulative`` cases); here its category log-probabilities are
checked in the tails against high-precision values, and per-threshold priors against
scipy's densities.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import hierfit
from conftest import quiet_fit
from hierfit.errors import DataError, DataWarning, FormulaError, HierfitError, PriorError
from hierfit.families.ordinal import Cumulative
from hierfit.spec.design import build_design
from hierfit.spec.priors import resolve_priors

LEVELS = ["low", "mid", "high", "top"]
TRUTH = {"thresholds": [-0.6, 0.3, 1.3], "x": 0.7, "sd": 0.5}


def simulate(seed=5, groups=20, per=15):
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(groups), per)
    x = rng.normal(1.0, 1.0, size=g.size)  # mean 1: centring must not shift the reported thresholds
    eta = TRUTH["x"] * x + rng.normal(0, TRUTH["sd"], groups)[g]
    latent = eta + rng.normal(size=g.size)
    codes = (latent[:, None] > np.array(TRUTH["thresholds"])).sum(axis=1)
    rating = pd.Categorical.from_codes(codes, categories=LEVELS + ["unused"], ordered=True)
    return pd.DataFrame({"rating": rating, "x": x, "g": [f"s{k:02d}" for k in g]},
                        index=pd.Index(np.arange(g.size) * 10 + 7, name="row"))


@pytest.fixture(scope="module")
def data():
    return simulate()


@pytest.fixture(scope="module")
def fit(data):
    return quiet_fit("rating ~ x + (1 | g)", data, family=hierfit.families.cumulative("probit"), chains=2,
                     draws=300, tune=300, seed=7)


def test_ordered_categorical_response_is_coded_with_its_labels(data):
    d = build_design("rating ~ x + (1 | g)", data, family="cumulative")
    assert d.response_levels == LEVELS  # the unused category is dropped, like brms
    assert np.array_equal(d.y, data["rating"].cat.codes.to_numpy().astype(float))
    assert d.fixed_names == ["x"] and d.mu.threshold_names == ["Intercept[1]", "Intercept[2]", "Intercept[3]"]
    rows = resolve_priors(d).rows
    assert {"prior": "student_t(3, 0, 2.5)", "class": "Intercept"}.items() <= rows[0].items()
    ints = build_design("y ~ x", pd.DataFrame({"y": [3, 1, 2, 5, 3, 1], "x": np.arange(6.0)}), family="cumulative")
    assert ints.response_levels == [1, 2, 3, 5] and list(ints.y) == [2, 0, 1, 3, 2, 0]


def test_factor_predictors_keep_treatment_contrasts():
    df = pd.DataFrame({"y": [1, 2, 3] * 4, "f": list("abc") * 4})
    d = build_design("y ~ f", df, family="cumulative")
    assert d.fixed_names == ["fb", "fc"]  # not a full dummy set: the thresholds play the intercept


@pytest.mark.parametrize("values, match", [
    ([1, 2, 1, 2], "bernoulli"),
    (pd.Categorical(list("abcabc")), "unordered"),
    (list("abcabc"), "order is not known"),
    ([1.0, 2.5, 3.0, 1.0, 2.5, 3.0], "integers"),
])
def test_bad_responses_raise_naming_the_problem(values, match):
    df = pd.DataFrame({"y": values, "x": np.arange(len(values), dtype=float)})
    with pytest.raises(DataError, match=match):
        build_design("y ~ x", df, family="cumulative")


def test_missing_response_rows_are_dropped_with_a_warning_and_no_intercept_is_refused():
    df = pd.DataFrame({"y": [1, 2, 3, None, 2, 1], "x": np.arange(6.0)})
    with pytest.warns(DataWarning, match="dropped 1"):
        d = build_design("y ~ x", df, family="cumulative")
    assert d.nobs == 5
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(FormulaError, match="intercept"):
            build_design("y ~ 0 + x", df, family="cumulative")
    with pytest.raises(HierfitError, match="no link"):
        hierfit.families.cumulative("log")


@pytest.mark.parametrize("link, cdf", [("logit", stats.logistic.cdf), ("probit", stats.norm.cdf)])
def test_probabilities_and_log_density_match_the_closed_form(link, cdf):
    fam = Cumulative(link_name=link)
    eta = np.array([[-1.0, 0.2, 2.5]])
    thr = np.array([[-0.5, 0.4, 1.1]])
    cum = cdf(thr[0][None, :] - eta[0][:, None])  # P(y <= k), k = 1..3
    expected = np.diff(np.column_stack([np.zeros(3), cum, np.ones(3)]), axis=1)
    p = fam.mean(eta, {"thresholds": thr[:, None, :]})
    assert p.shape == (1, 3, 4) and np.allclose(p[0], expected)
    y = np.array([0, 2, 3])
    assert np.allclose(fam.logpdf(y, eta, {"thresholds": thr[:, None, :]})[0], np.log(expected[[0, 1, 2], y]))
    assert np.allclose(fam.cdf(y, eta, {"thresholds": thr[:, None, :]})[0], np.cumsum(expected, axis=1)[[0, 1, 2], y])
    sims = fam.simulate(np.random.default_rng(1), np.repeat(eta, 20000, axis=0), {"thresholds": thr[:, None, :]})
    freq = np.stack([(sims == k).mean(axis=0) for k in range(4)], axis=1)
    assert np.abs(freq - expected).max() < 0.015


@pytest.mark.parametrize("link, cdf", [("logit", stats.logistic.cdf), ("probit", stats.norm.cdf)])
def test_pymc_likelihood_matches_the_closed_form(link, cdf):
    import pymc as pm

    fam = Cumulative(link_name=link)
    eta = np.array([-3.0, 0.2, 2.5, 8.0])
    thr = np.array([-0.5, 0.4, 1.1])
    y = np.array([0, 1, 3, 2])
    with pm.Model():
        rv = fam.pymc_likelihood("y", pm.math.constant(eta), {"thresholds": pm.math.constant(thr)}, y, None)
    got = pm.logp(rv, y).eval()
    cum = np.column_stack([np.zeros(4), cdf(thr[None, :] - eta[:, None]), np.ones(4)])
    assert np.allclose(got, np.log(np.diff(cum, axis=1)[np.arange(4), y]), rtol=1e-6)  # PyMC's normal log-cdf: ~1e-7


def test_probit_fit_recovers_thresholds_slope_and_sd(fit):
    fe = fit.fixef()
    assert list(fe.index) == ["Intercept[1]", "Intercept[2]", "Intercept[3]", "x"]
    for name, truth in zip(fe.index, TRUTH["thresholds"] + [TRUTH["x"]]):
        assert fe.loc[name, "l-95% CI"] < truth < fe.loc[name, "u-95% CI"], (name, fe.loc[name].to_dict())
    vc = fit.VarCorr()
    row = vc.loc[vc["grp"] == "g"].iloc[0] if "grp" in vc.columns else vc.iloc[0]
    assert row["l-95% CI"] < TRUTH["sd"] < row["u-95% CI"]
    text = str(fit.summary())
    assert "cumulative ( probit )" in text and "Intercept[3]" in text and "full (group effects sampled by NUTS" in text
    assert fit.kernel == "hierfit" and "log density: the PyMC model" not in text  # the compiled kernel ran


def test_predictions_are_category_probabilities_on_the_callers_index(fit, data):
    p = fit.predict()
    assert list(p.columns) == LEVELS and p.index.equals(data.index)
    assert np.allclose(p.sum(axis=1), 1.0)
    new = pd.DataFrame({"x": [-1.0, 3.0]}, index=["a", "b"])
    pn = fit.predict(new, re_form=hierfit.NA)
    assert list(pn.index) == ["a", "b"] and np.allclose(pn.sum(axis=1), 1.0)
    assert pn.loc["b", "top"] > pn.loc["a", "top"]  # positive slope: higher x, higher categories
    fe = fit.fixef()["Estimate"]
    plug = stats.norm.cdf(fe["Intercept[1]"] - fe["x"] * -1.0)  # P(low | x = -1) at the posterior means
    assert abs(pn.loc["a", "low"] - plug) < 0.05
    draws = fit.predict(new, re_form=hierfit.NA, kind="response", summary=False, seed=1)
    assert set(np.unique(draws.values)) <= set(LEVELS)
    assert fit.predict(new, re_form=hierfit.NA, kind="mean", summary=False).dims == ("chain", "draw", "obs", "category")
    link = fit.predict(new, re_form=hierfit.NA, kind="link")
    assert abs(link.loc["b", "Estimate"] - 3.0 * fe["x"]) < 1e-8  # eta has no intercept


def test_loo_residuals_r2_and_checks(fit):
    loo = fit.loo()
    elpd = float(loo.elpd)
    y = fit.design.y.astype(int)
    base = np.log(np.bincount(y, minlength=4)[y] / len(y)).sum()  # the no-predictor multinomial fit
    assert base < elpd < 0
    qr = fit.quantile_residuals(seed=1, nsim=300)
    assert qr.residuals.between(0, 1).all() and qr.ks_pvalue > 0.001
    with pytest.raises(HierfitError, match="quantile"):
        fit.residuals(type="response")
    with pytest.raises(HierfitError, match="cumulative"):
        fit.r2(method="gelman")
    r2 = fit.r2()  # latent-scale (McKelvey-Zavoina): var(x b) / (var(x b) + sd^2 + 1)
    expected = TRUTH["x"] ** 2 / (TRUTH["x"] ** 2 + TRUTH["sd"] ** 2 + 1.0)
    assert abs(r2.loc["R2_marginal", "Estimate"] - expected) < 0.15
    fig = fit.pp_check("bars", ndraws=20)
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == LEVELS
    with pytest.raises(HierfitError, match="bars"):
        fit.pp_check("dens_overlay")
    eq = str(fit.equation())
    assert r"\Phi\left(\theta_{k} - \eta_{i}\right)" in eq


def test_save_load_round_trip(fit, tmp_path):
    path = tmp_path / "ordinal.hfit"
    fit.save(path)
    back = hierfit.HierFit.load(path)
    pd.testing.assert_frame_equal(back.fixef(), fit.fixef())
    assert back.design.response_levels == LEVELS and back.family.link_name == "probit"
    new = pd.DataFrame({"x": [0.5]})
    pd.testing.assert_frame_equal(back.predict(new, re_form=hierfit.NA), fit.predict(new, re_form=hierfit.NA))


def test_one_number_per_row_summaries_refuse_category_probabilities(fit):
    with pytest.raises(HierfitError, match="ordered category"):
        fit.avg_predictions()
    with pytest.raises(HierfitError, match="plot_effects"):
        fit.plot_effects()
    assert fit.avg_comparisons("x", kind="link")["Estimate"].iloc[0] == pytest.approx(fit.fixef().loc["x", "Estimate"])
    fig = fit.plot_quantile_residuals(nsim=100)  # fitted values: the expected category code
    assert fig.axes


def test_hypothesis_reads_thresholds_by_brms_names(fit):
    h = fit.hypothesis("Intercept[2] - Intercept[1] > 0")
    from hierfit.results.draws import stack

    th = stack(fit.draws, "b_Intercept")
    assert h["Estimate"].iloc[0] == pytest.approx(float((th[:, 1] - th[:, 0]).mean()))
    assert h["Post.Prob"].iloc[0] == 1.0  # ordered thresholds: every draw


# (link, a, b, log(F(b) - F(a)), d/da, d/db) computed with mpmath at 500 digits
CATEGORY_REFERENCE = [
    ("logit", -40, -39, -39.458675145387082, -0.58197670686932643, 1.5819767068693264),
    ("logit", 30, 30.001, -36.908255237314436, -1000.5000833321097, 999.5000833321099),
    ("logit", -3, 5, -0.055638218970936948, -0.047761448378408026, 0.0070284261251261005),
    ("logit", -0.001, 0.001, -7.6009025428754108, -499.99991666667638, 499.99991666667638),
    ("probit", -40, -39, -765.08315656437754, -2.7334909240424957e-16, 39.025607419930109),
    ("probit", 38, 38.5, -726.55721602370045, -38.026279652156426, 1.8801905751296409e-7),
    ("probit", -0.5, 0.7, -0.79962207457132446, -0.78323973206434277, 0.69467132521673635),
    ("probit", 5, 5.000001, -27.234451591028294, -1000002.499862472, 999997.49986197203),
    ("probit", -25, -3, -6.6077262215103495, -5.6700058501283591e-134, 3.2830986549304365),
]


def test_kernel_category_log_probabilities_in_the_tails():
    """The kernel's log P(y = k) and its derivatives: middle categories against 500-digit values, first and last
    categories against scipy's log_expit / log_ndtr, far into both tails."""
    from scipy import special

    from hierfit.engine.kernel import load
    from hierfit.engine.kernel.codes import LINKS

    load()
    from hierfit.engine.kernel.likelihood import category_loglik

    for link, a, b, lp, da, db in CATEGORY_REFERENCE:
        got = category_loglik(LINKS[link], float(a), float(b), False, False)
        np.testing.assert_allclose(got, [lp, da, db], rtol=1e-8, err_msg=f"{link} ({a}, {b})")
    t = np.linspace(-60.0, 60.0, 241)
    for link in ("logit", "probit"):
        log_cdf = special.log_expit if link == "logit" else special.log_ndtr
        log_pdf = (lambda v: special.log_expit(v) + special.log_expit(-v)) if link == "logit" else \
            (lambda v: stats.norm.logpdf(v))
        first = np.array([category_loglik(LINKS[link], 0.0, v, True, False) for v in t])
        last = np.array([category_loglik(LINKS[link], v, 0.0, False, True) for v in t])
        np.testing.assert_allclose(first[:, 0], log_cdf(t), rtol=1e-10, atol=1e-300)
        np.testing.assert_allclose(first[:, 2], np.exp(log_pdf(t) - log_cdf(t)), rtol=1e-8, atol=1e-300)
        np.testing.assert_allclose(last[:, 0], log_cdf(-t), rtol=1e-10, atol=1e-300)
        np.testing.assert_allclose(last[:, 1], -np.exp(log_pdf(t) - log_cdf(-t)), rtol=1e-8, atol=1e-300)


@pytest.mark.parametrize("link", ["logit", "probit"])
def test_kernel_gradient_is_the_derivative_of_its_log_density(data, link):
    """Independent of PyMC: central differences of the kernel's own log density (thresholds, slope, group terms)."""
    from hierfit.engine.kernel import build_spec, load

    d = build_design("rating ~ x + (1 | g)", data, family=hierfit.families.cumulative(link))
    spec = build_spec(d, resolve_priors(d, [hierfit.prior("normal(0, 1)", "Intercept", coef=2)]), {"g": "noncentered"})
    entry = load()
    x = spec.init_centre + np.random.default_rng(2).uniform(-0.5, 0.5, spec.n_dim)
    grad = np.zeros(spec.n_dim)
    entry.logp_and_grad(x, grad, spec.ints, spec.floats)
    h = 1e-6
    for i in list(range(5)) + [spec.n_dim - 1]:  # beta, the three thresholds, sd, one group effect
        e = np.zeros(spec.n_dim)
        e[i] = h
        up = entry.logp_and_grad(x + e, np.zeros(spec.n_dim), spec.ints, spec.floats)
        down = entry.logp_and_grad(x - e, np.zeros(spec.n_dim), spec.ints, spec.floats)
        assert grad[i] == pytest.approx((up - down) / (2 * h), rel=1e-6, abs=1e-6)


def test_per_threshold_priors_change_that_thresholds_density_only(data):
    """brms's prior(normal(0, 1), class = Intercept, coef = 2): the PyMC model's log density moves by exactly the
    difference of the two priors at theta_2, in the kernel as in PyMC; the table lists it."""
    from hierfit.engine.kernel import build_spec, load
    from hierfit.engine.model import build_model

    d = build_design("rating ~ x", data, family="cumulative")
    base = resolve_priors(d)
    own = resolve_priors(d, [hierfit.prior("normal(0, 1)", "Intercept", coef=2)])
    assert own.predictors["mu"].threshold_priors(3) == [base.intercept, own.intercept.__class__("normal", (0.0, 1.0)),
                                                        base.intercept]
    rows = own.table()
    assert rows.loc[(rows["class"] == "Intercept") & (rows["coef"] == "2"), "prior"].tolist() == ["normal(0, 1)"]
    entry = load()
    specs = [build_spec(d, p) for p in (base, own)]
    x = specs[0].init_centre + np.random.default_rng(4).uniform(-0.5, 0.5, specs[0].n_dim)
    point = specs[0].pymc_point(x)
    theta2 = point["Intercept_ordered__"][0] + np.exp(point["Intercept_ordered__"][1])
    expected = stats.norm.logpdf(theta2) - stats.t.logpdf(theta2, 3, 0, 2.5)
    pymc = [float(build_model(d, p).compile_logp(mode="FAST_COMPILE")(point)) for p in (base, own)]
    kernel = [entry.logp_and_grad(x, np.zeros(s.n_dim), s.ints, s.floats) for s in specs]
    assert pymc[1] - pymc[0] == pytest.approx(expected, rel=1e-9)
    assert kernel[1] - kernel[0] == pytest.approx(expected, rel=1e-9)
    from hierfit.results.equation import build_equation

    lines = str(build_equation(d, own)).splitlines()
    assert any(ln.startswith(r"\theta_{2}") and r"N \left(0, 1^2 \right)" in ln for ln in lines)


def test_unknown_threshold_in_a_prior_is_an_error_naming_the_valid_range(data):
    d = build_design("rating ~ x", data, family="cumulative")
    for coef in (0, 4, "x"):
        with pytest.raises(PriorError, match=rf"coef '{coef}'.*1\.\.3"):
            resolve_priors(d, [hierfit.prior("normal(0, 1)", "Intercept", coef=coef)])
    gauss = build_design("x ~ 1", data)
    with pytest.raises(PriorError, match="takes no coef"):  # no thresholds: class Intercept has no coef
        resolve_priors(gauss, [hierfit.prior("normal(0, 1)", "Intercept", coef=1)])


def test_prior_draws_follow_each_thresholds_own_prior(data):
    """hierfit.sample_prior with a per-threshold prior of another family (a CustomDist in the PyMC model): each
    threshold's prior draws follow its own distribution (KS against scipy's)."""
    pri = [hierfit.prior("cauchy(0, 2)", "Intercept"), hierfit.prior("normal(0.5, 1)", "Intercept", coef=2)]
    dt = hierfit.sample_prior("rating ~ 1", data.head(40), family="cumulative", priors=pri, draws=1500, seed=3)
    draws = np.asarray(dt["prior"]["Intercept"].values).reshape(-1, 3)
    for k, dist in enumerate([stats.cauchy(0, 2), stats.norm(0.5, 1), stats.cauchy(0, 2)]):
        assert stats.kstest(draws[:, k], dist.cdf).pvalue > 0.001, k


def test_per_threshold_priors_survive_save_load(data, tmp_path):
    """A fit with a per-threshold prior keeps it in its file: the prior table and a refit's density are the same."""
    m = quiet_fit("rating ~ x", data, family="cumulative", priors=[hierfit.prior("normal(0, 1)", "Intercept", coef=2)],
                  chains=1, draws=100, tune=100, seed=2)
    m.save(tmp_path / "thr.hfit")
    back = hierfit.HierFit.load(tmp_path / "thr.hfit")
    table = back.priors.table()
    row = table[(table["class"] == "Intercept") & (table["coef"] == "2")]
    assert row["prior"].tolist() == ["normal(0, 1)"]
    assert back.priors.predictors["mu"].threshold_priors(3)[1] == m.priors.predictors["mu"].threshold_priors(3)[1]
    assert back.priors.predictors["mu"].threshold_priors(3)[0] != back.priors.predictors["mu"].threshold_priors(3)[1]

"""Predictions, residuals, R² and LOO (issue: predictions, residuals, model comparison, Bayesian R²)."""

import warnings

import numpy as np
import pandas as pd
import pytest

import hierfit
from conftest import quiet_fit
from hierfit import DataError, FormulaError


@pytest.fixture(scope="module")
def crossed_data():
    rng = np.random.default_rng(21)
    n = 400
    a = rng.integers(0, 15, n)
    b = rng.integers(0, 10, n)
    x = rng.normal(size=n)
    y = 1.0 + 0.8 * x + rng.normal(0, 1.0, 15)[a] + rng.normal(0, 0.7, 10)[b] + rng.normal(0, 0.5, n)
    return pd.DataFrame({"y": y, "x": x, "a": a, "b": b})


@pytest.fixture(scope="module")
def fit_crossed(crossed_data):
    return quiet_fit("y ~ scale(x) + (1 | a) + (1 | b)", crossed_data, draws=500, tune=500, chains=2, seed=2)


def test_three_re_forms_differ_on_two_terms(fit_crossed):
    all_ = fit_crossed.fitted()["Estimate"].to_numpy()
    none = fit_crossed.fitted(re_form=hierfit.NA)["Estimate"].to_numpy()
    only_a = fit_crossed.fitted(re_form="~(1|a)")["Estimate"].to_numpy()
    assert not np.allclose(all_, none) and not np.allclose(all_, only_a) and not np.allclose(none, only_a)
    # "~0" is the same as NA; marginal predictions depend only on x
    np.testing.assert_allclose(fit_crossed.fitted(re_form="~0")["Estimate"], none)
    d = fit_crossed.design
    b = fit_crossed.fixef()["Estimate"].to_numpy()
    np.testing.assert_allclose(none, d.X @ b, rtol=1e-8)
    # only_a adds exactly a's group effects
    re_a = fit_crossed.ranef()["a"][("(Intercept)", "Estimate")].to_numpy()
    np.testing.assert_allclose(only_a - none, re_a[d.predictors["mu"].blocks[[bl.name for bl in d.blocks].index("a")].index],
                               atol=1e-8)


def test_single_term_re_form_formula_equals_default(fit_ri):
    np.testing.assert_allclose(fit_ri.fitted()["Estimate"], fit_ri.fitted(re_form="~(1|school)")["Estimate"])


def test_unknown_re_form_term(fit_ri):
    with pytest.raises(FormulaError, match="re_form names group term"):
        fit_ri.fitted(re_form="~(1|class)")


def test_kinds(fit_ri, exam):
    new = exam.iloc[:20]
    link = fit_ri.predict(new, kind="link")
    mean = fit_ri.predict(new, kind="mean")
    resp = fit_ri.predict(new, kind="response", seed=1)
    np.testing.assert_allclose(link["Estimate"], mean["Estimate"])  # identity link
    sigma = fit_ri.VarCorr().set_index("grp").loc["Residual", "sdcor"]
    assert (resp["Est.Error"] > mean["Est.Error"]).all()
    np.testing.assert_allclose(resp["Est.Error"], np.sqrt(mean["Est.Error"] ** 2 + sigma**2), rtol=0.1)
    with pytest.raises(hierfit.HierfitError, match="kind must be one of"):
        fit_ri.predict(new, kind="probability")


def test_newdata_equal_to_training_rows_reproduces_fitted(fit_crossed, crossed_data):
    # scale(x) must use the training mean/sd, not the new data's
    rows = crossed_data.iloc[[3, 50, 7]]
    pred = fit_crossed.predict(rows)["Estimate"].to_numpy()
    np.testing.assert_allclose(pred, fit_crossed.fitted()["Estimate"].to_numpy()[[3, 50, 7]], rtol=1e-10)


def test_summary_false_gives_draws(fit_ri, exam):
    da = fit_ri.predict(exam.iloc[:5], summary=False)
    assert da.dims == ("chain", "draw", "obs") and da.shape == (4, 1000, 5)


def test_new_levels(fit_ri):
    new = pd.DataFrame({"standLRT": [0.0, 0.0], "sex": ["F", "F"], "school": [1, 777]})
    with pytest.raises(DataError, match=r"level\(s\) '777' of 'school' not seen"):
        fit_ri.predict(new)
    p = fit_ri.predict(new, allow_new_levels=True, seed=3)
    sd_school = fit_ri.VarCorr()["sdcor"].iloc[0]
    assert p["Est.Error"].iloc[1] > 2 * p["Est.Error"].iloc[0]
    assert p["Est.Error"].iloc[1] == pytest.approx(sd_school, rel=0.2)
    # marginal predictions need no school at all
    marginal = fit_ri.predict(new.drop(columns="school"), re_form=hierfit.NA)
    assert marginal["Estimate"].iloc[0] == pytest.approx(fit_ri.fixef().loc["(Intercept)", "Estimate"])


def test_newdata_errors(fit_ri):
    with pytest.raises(DataError, match=r"lacks column\(s\) 'sex'"):
        fit_ri.predict(pd.DataFrame({"standLRT": [0.0], "school": [1]}))
    with pytest.raises(DataError, match=r"column 'sex' has level\(s\) 'X' not seen"):
        fit_ri.predict(pd.DataFrame({"standLRT": [0.0], "sex": ["X"], "school": [1]}))
    with pytest.raises(DataError, match="missing values"):
        fit_ri.predict(pd.DataFrame({"standLRT": [np.nan], "sex": ["F"], "school": [1]}))
    with pytest.raises(DataError, match="newdata column .standLRT. must be numeric"):
        fit_ri.predict(pd.DataFrame({"standLRT": ["high"], "sex": ["F"], "school": [1]}))


def test_residual_types(fit_ri):
    r = fit_ri.residuals()
    np.testing.assert_allclose(r, fit_ri.design.y - fit_ri.fitted()["Estimate"])
    rm = fit_ri.residuals(re_form=hierfit.NA)
    np.testing.assert_allclose(rm, fit_ri.design.y - fit_ri.fitted(re_form=hierfit.NA)["Estimate"])
    p = fit_ri.residuals("pearson")
    assert p.std() == pytest.approx(1.0, abs=0.05)
    with pytest.raises(hierfit.HierfitError, match="type must be"):
        fit_ri.residuals("deviance")


@pytest.fixture(scope="module")
def quadratic_data():
    rng = np.random.default_rng(5)
    g = np.repeat(np.arange(30), 20)
    x = rng.uniform(-2, 2, g.size)
    y = 0.5 + 1.0 * x + 1.5 * x**2 + rng.normal(0, 0.8, 30)[g] + rng.normal(0, 0.5, g.size)
    return pd.DataFrame({"y": y, "x": x, "g": g})


def test_quantile_residuals_uniform_under_true_model(quadratic_data):
    m = quiet_fit("y ~ x + I(x^2) + (1 | g)", quadratic_data, draws=500, tune=500, chains=2, seed=1)
    for re_form in (None, hierfit.NA):
        qr = m.quantile_residuals(seed=2, re_form=re_form)
        assert qr.uniform, qr
        assert ((qr.residuals >= 0) & (qr.residuals <= 1)).all()


def test_quantile_residuals_flag_missing_quadratic(quadratic_data):
    m = quiet_fit("y ~ x + (1 | g)", quadratic_data, draws=500, tune=500, chains=2, seed=1)
    qr = m.quantile_residuals(seed=2)
    assert not qr.uniform and qr.ks_pvalue < 1e-3
    assert "deviation from the model detected" in repr(qr)


def test_r2_matches_chapter(fit_ri, lme4_exam):
    ref = lme4_exam["exam_ri_reml"]["r2_nakagawa"]
    tab = fit_ri.r2()
    assert tab.loc["R2_marginal", "Estimate"] == pytest.approx(0.330, abs=0.02)  # chapter, MuMIn
    assert tab.loc["R2_conditional", "Estimate"] == pytest.approx(0.421, abs=0.02)
    for kind, key in (("R2_marginal", "R2_marginal"), ("R2_conditional", "R2_conditional")):
        assert tab.loc[kind, "l-95% CI"] < ref[key] < tab.loc[kind, "u-95% CI"]
    draws = fit_ri.r2(summary=False)
    assert list(draws.columns) == ["marginal", "conditional"] and len(draws) == 4000
    g = fit_ri.r2(method="gelman")
    assert g.loc["R2_marginal", "Estimate"] < g.loc["R2_conditional", "Estimate"]
    with pytest.raises(hierfit.HierfitError):
        fit_ri.r2(kind="adjusted")


def test_loo_and_compare(fit_ri, fit_rs):
    elpd = fit_ri.loo()
    assert np.isfinite(elpd.elpd) and elpd.n_data_points == 4059
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tab = hierfit.compare({"random intercept": fit_ri, "random slope": fit_rs})
    assert list(tab.index)[0] == "random slope"  # the chapter's random slope model fits better
    assert tab.loc["random slope", "elpd"] > tab.loc["random intercept", "elpd"]


def test_sample_prior(exam):
    pp = hierfit.sample_prior("normexam ~ standLRT + (1 | school)", exam, draws=50, seed=1)
    assert pp["prior_predictive"]["y"].shape == (1, 50, 4059)
    assert pp["prior"]["sd_school"].shape[:2] == (1, 50)

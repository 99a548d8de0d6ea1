"""fit.posterior works with ArviZ directly; flat draws; update(); hierfit.equation; compare's table."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy import stats

import hierfit
from tests.conftest import quiet_fit

FORMULA = "normexam ~ standLRT + sex + (standLRT | school)"


@pytest.fixture(scope="module")
def small_exam(exam):
    return exam[exam["school"].astype(int) <= 12].reset_index(drop=True)


@pytest.fixture(scope="module")
def fit_small(small_exam):
    return quiet_fit(FORMULA, small_exam, draws=300, tune=300, chains=2, seed=3)


def test_posterior_has_the_standard_groups(fit_small, small_exam):
    tree = fit_small.posterior
    assert {"posterior", "sample_stats", "log_likelihood", "observed_data"} <= set(tree.children)
    np.testing.assert_array_equal(tree["observed_data"]["normexam"].values, small_exam["normexam"].to_numpy())
    # the pointwise log-likelihood, computed independently from the draws of b, r and sigma
    post = fit_small.draws
    c, d = 1, 17
    b = post["b"].values[c, d]
    r = post["r_school"].values[c, d]                       # (level, coef)
    levels = list(post["school__level"].values)
    j = np.array([levels.index(str(s)) for s in small_exam["school"]])
    x = small_exam["standLRT"].to_numpy()
    mu = b[0] + b[1] * x + b[2] * (small_exam["sex"] == "M") + r[j, 0] + r[j, 1] * x
    expected = stats.norm.logpdf(small_exam["normexam"], mu, post["sigma"].values[c, d])
    np.testing.assert_allclose(tree["log_likelihood"]["normexam"].values[c, d], expected, rtol=1e-8)


def test_arviz_functions_take_fit_posterior(fit_small, small_exam):
    import arviz as az

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        elpd = az.loo(fit_small.posterior)
        other = quiet_fit("normexam ~ standLRT + sex + (1 | school)", small_exam, draws=300, tune=300, chains=2,
                          seed=3)
        table = az.compare({"slope": fit_small.posterior, "intercept": other.posterior})
    # PSIS-LOO's elpd is below the in-sample lppd, by about p_loo
    ll = fit_small.posterior["log_likelihood"]["normexam"].values.reshape(-1, fit_small.nobs)
    lppd = float(np.sum(np.log(np.mean(np.exp(ll), axis=0))))
    assert elpd.elpd < lppd and abs(lppd - elpd.elpd - elpd.p) < 1e-6 * abs(lppd)
    assert set(table.index) == {"slope", "intercept"}
    tree = fit_small.posterior_predictive(seed=1)
    sims = tree["posterior_predictive"]["normexam"].values
    assert sims.shape == (2, 300, fit_small.nobs)
    # replicated data have the observed data's spread (the model fits the data's variance)
    assert abs(sims.std() - small_exam["normexam"].std()) < 0.1 * small_exam["normexam"].std()
    import matplotlib.pyplot as plt

    for pc in (az.plot_ppc_dist(tree, num_samples=20), az.plot_forest(fit_small.posterior, var_names=["b"]),
               az.plot_trace_dist(fit_small.posterior, var_names=["sigma"])):
        assert pc.viz["figure"].item() is not None
    plt.close("all")


def test_to_dataframe_uses_the_summary_names(fit_small):
    df = fit_small.to_dataframe()
    assert list(df.columns) == ["chain", "draw", "b[(Intercept)]", "b[standLRT]", "b[sexM]",
                                "sd((Intercept) | school)", "sd(standLRT | school)",
                                "cor((Intercept),standLRT | school)", "sigma"]
    assert len(df) == 600
    np.testing.assert_allclose(df["sd(standLRT | school)"], fit_small.draws["sd_school"].values[:, :, 1].ravel())
    full = fit_small.to_dataframe(group_effects=True)
    np.testing.assert_allclose(full["r_school[3,standLRT]"],
                               fit_small.draws["r_school"].sel(school__level="3").values[:, :, 1].ravel())


def test_update_refits_with_changes(fit_small, small_exam):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        again = fit_small.update(". ~ . + schavg", draws=100, tune=100)
        same = fit_small.update(draws=300)
    assert again.formula == FORMULA + " + schavg" and again.settings.draws == 100
    assert "schavg" in again.fixef().index and again.settings.seed == fit_small.settings.seed
    # the same call again: the same seed, the same draws
    np.testing.assert_array_equal(same.draws["b"].values, fit_small.draws["b"].values)


def test_equation_is_exported_as_a_function(fit_small):
    text = str(hierfit.equation(fit_small))
    assert r"\beta_{1j[i]}" in text and text == str(fit_small.equation())


def test_compare_reuses_the_stored_loo_and_explains_its_columns(fit_small, small_exam, monkeypatch):
    from hierfit.analysis import loo as loo_module

    def recomputed(fit):
        raise AssertionError("the pointwise log-likelihood was computed again")

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        other = quiet_fit("normexam ~ standLRT + sex + (1 | school)", small_exam, draws=300, tune=300, chains=2,
                          seed=4)
        hierfit.compare({"slope": fit_small, "intercept": other})
        monkeypatch.setattr(loo_module, "log_likelihood_tree", recomputed)
        table = hierfit.compare({"slope": fit_small, "intercept": other})  # from each fit's stored PSIS-LOO
    text = repr(table)
    row, elpd = text.splitlines()[1], table["elpd"].iloc[0]
    assert f" {elpd:.1f} " in row and f"{elpd:.2f}" not in row          # one decimal
    assert "dse: standard error of elpd_diff" in text and "weight: stacking weight" in text
    assert table.loc["slope", "elpd"] == pytest.approx(fit_small.loo().elpd)


def test_saved_fit_drops_the_derived_groups_and_recomputes_them(fit_small, tmp_path):
    fit_small.posterior  # noqa: B018 - adds log_likelihood
    fit_small.save(tmp_path / "f.hfit")
    again = hierfit.load(tmp_path / "f.hfit")
    assert "log_likelihood" not in again.tree.children and "sample_stats" in again.tree.children
    np.testing.assert_allclose(again.posterior["log_likelihood"]["normexam"].values,
                               fit_small.posterior["log_likelihood"]["normexam"].values)


def test_pymc_chatter_does_not_reach_the_user(capfd, caplog, small_exam):
    import logging

    with warnings.catch_warnings(record=True) as caught, caplog.at_level(logging.INFO):
        warnings.simplefilter("always")
        pp = hierfit.sample_prior("normexam ~ standLRT + (1 | school)", small_exam, draws=20, seed=1)
    assert pp["prior_predictive"]["y"].shape == (1, 20, len(small_exam))
    err = capfd.readouterr().err
    assert "Sampling:" not in err and not any("Sampling:" in r.getMessage() for r in caplog.records)
    assert not [w for w in caught if issubclass(w.category, FutureWarning)]


def test_prior_groups_hold_draws_from_the_fits_priors(fit_small):
    import arviz_plots as azp

    tree = fit_small.sample_prior(draws=2000, seed=4)
    assert {"prior", "prior_predictive"} <= set(tree.children)
    prior, post = tree["prior"], tree["posterior"]
    assert {"b", "sigma", "sd_school", "r_school"} <= set(prior.data_vars) <= set(post.data_vars) | {"beta"}
    assert tree["prior_predictive"]["normexam"].shape == (1, 2000, fit_small.nobs)
    # sigma's prior is the half student_t(3, 0, s) of the prior table: the draws follow it (KS test)
    tab = fit_small.priors.table().set_index("class")
    s = float(str(tab.loc["sigma", "prior"]).split(",")[-1].rstrip(")"))
    draws = prior["sigma"].values.ravel()
    p = stats.kstest(draws, lambda v: 2 * stats.t(3, 0, s).cdf(v) - 1).pvalue  # a folded t
    assert p > 0.001, p
    fig = azp.plot_prior_posterior(tree, var_names=["sigma"])
    assert fig is not None

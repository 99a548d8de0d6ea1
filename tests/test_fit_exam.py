"""Posterior of the chapter's Exam models against lme4 (../shared/reference/lme4_exam.json)."""

import numpy as np
import pytest

from hierfit.results.draws import stack


def _check_against_lme4(fit, ref):
    fe = fit.fixef()
    for name, r in ref["fixed_effects"].items():
        est, err = fe.loc[name, "Estimate"], fe.loc[name, "Est.Error"]
        assert abs(est - r["estimate"]) < 0.5 * err, (name, est, r["estimate"], err)
    vc = fit.VarCorr()
    for r in ref["varcorr_table"]:
        if r["var2"] is not None:
            continue
        row = vc[(vc["grp"] == r["grp"]) & (vc["var1"].fillna("") == (r["var1"] or "")) & vc["var2"].isna()]
        assert len(row) == 1, r
        assert row["sdcor"].iloc[0] == pytest.approx(r["sdcor"], rel=0.10), r


def test_random_intercept_matches_lme4(fit_ri, lme4_exam):
    _check_against_lme4(fit_ri, lme4_exam["exam_ri_reml"])


def test_random_slope_matches_lme4(fit_rs, lme4_exam):
    ref = lme4_exam["exam_rs_reml"]
    _check_against_lme4(fit_rs, ref)
    cor_ref = next(r["sdcor"] for r in ref["varcorr_table"] if r["var2"] is not None)
    vc = fit_rs.VarCorr()
    cor = vc[vc["var2"].notna()].iloc[0]
    assert cor["l-95% CI"] < cor_ref < cor["u-95% CI"]


def test_varcorr_layout_like_lme4(fit_rs, lme4_exam):
    vc = fit_rs.VarCorr()
    assert list(vc.columns) == ["grp", "var1", "var2", "vcov", "sdcor", "l-95% CI", "u-95% CI"]
    ref = lme4_exam["exam_rs_reml"]["varcorr_table"]
    assert [(r["grp"], r["var1"], r["var2"]) for r in ref] == list(zip(vc["grp"], vc["var1"], vc["var2"]))
    # vcov of the sd rows is the posterior mean of the variance, not the square of the mean sd
    sd = stack(fit_rs.draws, "sd_school")[:, 0]
    assert vc["vcov"].iloc[0] == pytest.approx(np.mean(sd**2))


def test_fixef_names_and_columns(fit_rs):
    fe = fit_rs.fixef()
    assert list(fe.index) == ["(Intercept)", "standLRT", "sexM"]
    assert list(fe.columns) == ["Estimate", "Est.Error", "l-95% CI", "u-95% CI"]
    assert (fe["l-95% CI"] < fe["Estimate"]).all() and (fe["Estimate"] < fe["u-95% CI"]).all()


def test_coef_is_fixef_plus_ranef(fit_rs):
    fe = fit_rs.fixef()["Estimate"]
    re = fit_rs.ranef()["school"].xs("Estimate", axis=1, level=1)
    co = fit_rs.coef()["school"].xs("Estimate", axis=1, level=1)
    np.testing.assert_allclose(co["(Intercept)"], fe["(Intercept)"] + re["(Intercept)"], atol=1e-10)
    np.testing.assert_allclose(co["standLRT"], fe["standLRT"] + re["standLRT"], atol=1e-10)
    np.testing.assert_allclose(co["sexM"], fe["sexM"])  # no group effect for sex: the fixed effect
    assert list(co.index) == [str(i) for i in range(1, 66)]


def test_ranef_shrinks_towards_zero(fit_ri):
    """Partial pooling: group effects lie between 0 and the no-pooling deviations (chapter 4.5.2)."""
    import pandas as pd

    from conftest import shared_path

    ref = pd.read_csv(shared_path("reference", "exam_shrinkage.csv"))
    re = fit_ri.ranef()["school"].xs("Estimate", axis=1, level=1)["(Intercept)"]
    assert len(re) == 65
    # the Bayesian group effects have the spread of lme4's conditional modes (both shrunk, same model up to sex/LRT)
    assert np.std(re) < np.std(ref["fixed"] - ref["fixed"].mean())


def test_ranef_intervals(fit_ri):
    tab = fit_ri.ranef()["school"]
    assert list(tab.columns.get_level_values(1)[:4]) == ["Estimate", "Est.Error", "l-95% CI", "u-95% CI"]
    est = tab[("(Intercept)", "Estimate")]
    assert ((tab[("(Intercept)", "l-95% CI")] < est) & (est < tab[("(Intercept)", "u-95% CI")])).all()


def test_vcov_matches_fixef_errors(fit_rs):
    v = fit_rs.vcov()
    np.testing.assert_allclose(np.sqrt(np.diag(v)), fit_rs.fixef()["Est.Error"], rtol=1e-6)


def test_nobs_ngrps(fit_rs):
    assert fit_rs.nobs == 4059
    assert fit_rs.ngrps == {"school": 65}


def test_summary_blocks_in_lme4_order(fit_rs):
    text = str(fit_rs.summary())
    blocks = ["Formula: normexam ~ standLRT + sex + (standLRT | school)", "Scaled residuals:", "Random effects:",
              "Number of obs: 4059, groups:  school, 65", "Fixed effects:", "Correlation of Fixed Effects:"]
    positions = [text.index(b) for b in blocks]
    assert positions == sorted(positions)
    for col in ["Estimate", "Est.Error", "l-95% CI", "u-95% CI", "Rhat", "Bulk_ESS", "Tail_ESS"]:
        assert col in text
    assert "(Intr) stnLRT" in text  # lme4's abbreviated names
    lines = text.splitlines()
    re_line = next(ln for ln in lines if ln.strip().startswith("standLRT") and "Corr" not in ln and "0." in ln)
    assert re_line.rstrip().endswith(f"{fit_rs.VarCorr()['sdcor'].iloc[2]:.2f}")


def test_scaled_residuals_close_to_lme4(fit_rs):
    # lme4 (chapter): Min -3.8339, 1Q -0.6373, Median 0.0245, 3Q 0.6819, Max 3.4500
    lme4 = [-3.8339, -0.6373, 0.0245, 0.6819, 3.4500]
    np.testing.assert_allclose(fit_rs.summary().scaled_residuals.values, lme4, atol=0.05)


def test_summary_frames(fit_rs):
    s = fit_rs.summary()
    assert list(s.random_effects["Groups"]) == ["school", "", "Residual"]
    assert s.fixef_correlation.shape == (3, 3)
    assert np.allclose(np.diag(s.fixef_correlation), 1.0)
    assert set(s.diagnostics.index) >= {"sd((Intercept) | school)", "cor((Intercept),standLRT | school)", "sigma"}


def test_html_repr(fit_rs):
    html = fit_rs._repr_html_()
    assert "<table" in html and "Random effects" in html and "standLRT" in html


def test_posterior_is_labelled_datatree(fit_rs):
    import xarray as xr

    assert isinstance(fit_rs.posterior, xr.DataTree)
    post = fit_rs.draws
    assert list(post["b"].coords["coef"].values) == ["(Intercept)", "standLRT", "sexM"]
    assert post["r_school"].dims[2:] == ("school__level", "school__coef")


def test_timing_reported(fit_rs):
    assert {"design", "model", "compile", "sampling", "postprocess", "total"} <= set(fit_rs.timing)
    assert fit_rs.timing["total"] >= fit_rs.timing["sampling"] > 0

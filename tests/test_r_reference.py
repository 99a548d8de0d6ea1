"""Posterior analysis against R (lme4 + emmeans) on the Exam and Owls data.

The reference numbers are in ``tests/reference/r_analysis.json``, written by
``benchmarks/r_reference.R`` (R 4.2.2, lme4 1.1-31, emmeans 1.8.4); R is not needed to run
these tests.  With hierfit's weakly informative default priors and this much data the
posterior means sit close to the frequentist estimates: each is checked within
max(0.3 posterior sd, a small absolute tolerance) of R's value, and the posterior sd
within 30 % of R's standard error.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import hierfit
from conftest import quiet_fit

REF = json.loads((Path(__file__).parent / "reference" / "r_analysis.json").read_text())
FAST = dict(chains=2, draws=300, tune=300)


def close(estimate, sd, reference, abs_tol):
    """Posterior mean within max(0.3 posterior sd, abs_tol) of the reference value."""
    return abs(estimate - reference) <= max(0.3 * sd, abs_tol)


def check_table(tab, ref_estimates, ref_se, abs_tol, se_rtol=0.3, what=""):
    est, sd = tab["Estimate"].to_numpy(), tab["Est.Error"].to_numpy()
    for i, (r, s) in enumerate(zip(ref_estimates, ref_se)):
        assert close(est[i], sd[i], r, abs_tol), (what, i, est[i], sd[i], r)
        if s is not None:
            assert abs(sd[i] / s - 1) < se_rtol, (what, i, sd[i], s)


def in_r_order(tab, ref, keys):
    """The rows of a hierfit table in the order of R's table (matched on the label columns)."""
    index = {tuple(str(v) for v in row): i for i, row in enumerate(tab[keys].itertuples(index=False))}
    rows = [index[tuple(ref[k][j] for k in keys)] for j in range(len(ref[keys[0]]))]
    assert len(rows) == len(tab)
    return tab.iloc[rows].reset_index(drop=True)


@pytest.fixture(scope="module")
def exam_rs(exam):
    """normexam ~ standLRT * sex + (standLRT | school), as lmer's REML reference."""
    return quiet_fit(REF["exam"]["interaction"]["formula"], exam, seed=21, **FAST)


@pytest.fixture(scope="module")
def exam_ri(exam):
    return quiet_fit(REF["exam"]["random_intercept"]["formula"], exam, seed=22, **FAST)


@pytest.fixture(scope="module")
def owls():
    return hierfit.datasets.load("owls")


@pytest.fixture(scope="module")
def owls_poisson(owls):
    return quiet_fit(REF["owls_poisson"]["formula"], owls, family="poisson", seed=23, **FAST)


def test_exam_fixed_effects_match_lmer(exam_rs):
    ref = REF["exam"]["interaction"]["fixef"]
    fe = exam_rs.fixef().loc[ref["term"]]
    check_table(fe, ref["estimate"], ref["se"], 0.005, what="fixef")


def test_exam_emmeans_by_sex_match_r(exam_rs):
    ref = REF["exam"]["interaction"]["emmeans_sex"]
    tab = exam_rs.emmeans("sex")
    assert list(tab["sex"]) == ref["sex"] == ["F", "M"]
    check_table(tab, ref["emmean"], ref["SE"], 0.005, what="emmeans")


def test_exam_sex_contrast_matches_r_pairwise(exam_rs):
    ref = REF["exam"]["interaction"]["emmeans_sex_pairwise"]
    assert ref["contrast"] == "F - M"
    pw = exam_rs.emmeans("sex", contrasts="pairwise")
    assert list(pw["contrast"]) == ["F - M"]
    check_table(pw, [ref["estimate"]], [ref["SE"]], 0.005, what="pairwise")
    # the average comparison M - F over the fitted rows (identity link): minus R's F - M
    avg = exam_rs.avg_comparisons("sex", re_form=hierfit.NA)
    check_table(avg, [-ref["estimate"]], [ref["SE"]], 0.005, what="avg_comparisons")


def test_exam_slopes_match_emtrends(exam_rs):
    ref = REF["exam"]["interaction"]["emtrends_sex"]
    grid = hierfit.datagrid(exam_rs, sex=["F", "M"])
    tab = exam_rs.slopes("standLRT", newdata=grid, re_form=hierfit.NA)
    assert list(tab["sex"]) == ref["sex"]
    check_table(tab, ref["standLRT.trend"], ref["SE"], 0.005, what="slopes")


def test_exam_icc_matches_the_lmer_variance_ratio(exam_ri):
    ref = REF["exam"]["random_intercept"]
    tab = exam_ri.icc().set_index("ICC")
    # the ICC's posterior is right-skewed (65 schools): compare the posterior median as well
    adj = tab.loc["adjusted"]
    assert close(adj["Estimate"], adj["Est.Error"], ref["icc_adjusted"], 0.01), (adj, ref["icc_adjusted"])
    median = float(np.median(exam_ri.icc(summary=False).iloc[:, 0]))
    assert abs(median - ref["icc_adjusted"]) < 0.015, (median, ref["icc_adjusted"])
    cond = tab.loc["conditional"]
    assert close(cond["Estimate"], cond["Est.Error"], ref["icc_conditional"], 0.01), (cond, ref["icc_conditional"])


def test_owls_poisson_fixed_effects_match_glmer(owls_poisson):
    ref = REF["owls_poisson"]["fixef"]
    check_table(owls_poisson.fixef().loc[ref["term"]], ref["estimate"], ref["se"], 0.02, what="fixef")


def test_owls_response_scale_emmeans_match_r(owls_poisson, owls):
    """emmeans(m, ~ FoodTreatment | SexParent, type = "response"): the offset at mean(log(BroodSize))."""
    ref = REF["owls_poisson"]
    assert ref["offset_used"] == pytest.approx(np.log(owls["BroodSize"]).mean())
    r = ref["emmeans_response"]
    tab = in_r_order(owls_poisson.emmeans("FoodTreatment", by="SexParent"), r, ["FoodTreatment", "SexParent"])
    check_table(tab, r["rate"], r["SE"], 0.1, what="rate")
    # offset = log(mean(BroodSize)): BroodSize held at its mean
    r2 = ref["emmeans_response_offset_log_mean"]
    tab2 = in_r_order(owls_poisson.emmeans("FoodTreatment", by="SexParent", at={"BroodSize": ref["BroodSize_mean"]}),
                      r2, ["FoodTreatment", "SexParent"])
    check_table(tab2, r2["rate"], r2["SE"], 0.1, what="rate at mean BroodSize")


def test_owls_ratio_and_difference_contrasts_match_r(owls_poisson):
    ref = REF["owls_poisson"]
    # R's type = "response" pairwise contrast is the ratio Deprived / Satiated per SexParent
    log_ratio = owls_poisson.emmeans("FoodTreatment", by="SexParent", kind="link", contrasts="pairwise",
                                     summary=False)
    r = ref["pairwise_ratio"]
    assert list(log_ratio.columns) == [f"Deprived - Satiated | {sex}" for sex in r["SexParent"]]
    ratio = np.exp(log_ratio.to_numpy())
    for i in range(2):
        assert close(ratio[:, i].mean(), ratio[:, i].std(), r["ratio"][i], 0.02), (i, ratio[:, i].mean(), r)
        assert abs(ratio[:, i].std() / r["SE"][i] - 1) < 0.3, (i, ratio[:, i].std(), r["SE"][i])
    # differences of expected counts (emmeans' regrid, then pairwise)
    d = ref["pairwise_difference"]
    diff = owls_poisson.emmeans("FoodTreatment", by="SexParent", contrasts="pairwise")
    assert list(diff["contrast"]) == d["contrast"] == ["Deprived - Satiated"] * 2
    assert list(diff["SexParent"]) == d["SexParent"]
    check_table(diff, d["estimate"], d["SE"], 0.1, what="difference")

"""Zero-inflated counts and beta models against glmmTMB, the cumulative (ordinal) family against ordinal::clmm.

Reference numbers: ``tests/reference/r_analysis.json`` from ``benchmarks/r_reference.R``
(glmmTMB 1.1.5, ordinal 2022.11-16); the beta and ordinal data sets are simulated there and
stored beside it (``beta_sim.csv``, ``ordinal_sim.csv``).  R is not needed to run these tests.

The parametrizations are brms's, and the R fits map onto them one to one:

* glmmTMB's ``ziformula = ~1`` intercept is logit(zi); hierfit's ``ziformula="~ 1"`` reports
  the same quantity as ``zi_(Intercept)``.
* glmmTMB ``nbinom2``: Var = mu + mu^2 / theta and ``sigma(m)`` is theta; brms's (and
  hierfit's) negative-binomial ``shape`` is the same theta.
* glmmTMB ``beta_family()``: mean mu (logit link), Var = mu (1 - mu) / (1 + phi) and
  ``sigma(m)`` is phi; brms's ``phi`` is the same precision.
* ordinal::clmm (logit): P(y <= k) = plogis(theta_k - eta), no intercept in eta; brms's
  ``cumulative("logit")`` thresholds ``Intercept[k]`` have the same sign convention.

Fixed effects and thresholds: the posterior mean within max(0.3 posterior sd, a small
absolute tolerance) of the maximum-likelihood estimate and the posterior sd within 30 % of
its standard error.  Group sds and dispersion parameters have skewed posteriors and
maximum-likelihood estimates biased low with 20-27 groups: the posterior median within
0.6 posterior sd (plus a small absolute tolerance) of the estimate.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import hierfit
from conftest import quiet_fit
from hierfit.results.draws import stack

HERE = Path(__file__).parent / "reference"
REF = json.loads((HERE / "r_analysis.json").read_text())
FAST = dict(chains=2, draws=300, tune=300)


def check_fixef(fit, terms, estimates, ses, abs_tol, names=None):
    fe = fit.fixef()
    for term, name, est, se in zip(terms, names or terms, estimates, ses):
        m, s = fe.loc[name, "Estimate"], fe.loc[name, "Est.Error"]
        assert abs(m - est) <= max(0.3 * s, abs_tol), (term, m, s, est)
        assert abs(s / se - 1) < 0.3, (term, s, se)


def check_scale(draws, reference, abs_tol, what):
    draws = np.asarray(draws, dtype=float).ravel()
    median, sd = float(np.median(draws)), float(draws.std())
    assert abs(median - reference) <= 0.6 * sd + abs_tol, (what, median, sd, reference)


def group_sd(fit, group):
    return stack(fit.draws, f"sd_{group}")[:, 0]


@pytest.fixture(scope="module")
def owls():
    return hierfit.datasets.load("owls")


@pytest.mark.parametrize("family, key", [("zero_inflated_poisson", "owls_zip"),
                                         ("zero_inflated_negbinomial", "owls_zinb")])
def test_owls_zero_inflated_counts_match_glmmtmb(owls, family, key):
    ref = REF[key]
    fit = quiet_fit(ref["formula"], owls, family=hierfit.families.get(family), ziformula="~ 1", seed=31, **FAST)
    cond = ref["fixef_cond"]
    check_fixef(fit, cond["term"], cond["estimate"], cond["se"], 0.02)
    zi = ref["fixef_zi"]  # logit(zi), as brms's zi ~ 1 on its logit link
    check_fixef(fit, zi["term"], [zi["estimate"]], [zi["se"]], 0.02, names=["zi_(Intercept)"])
    check_scale(group_sd(fit, "Nest"), ref["sd"]["Nest"], 0.02, "sd(Nest)")
    if "theta" in ref:  # glmmTMB's nbinom2 theta is brms's shape
        check_scale(fit.draws["shape"], ref["theta"], 0.05, "shape")


def test_beta_regression_matches_glmmtmb():
    ref = REF["beta"]
    data = pd.read_csv(HERE / "beta_sim.csv")
    assert data.shape == (300, 3) and data["g"].nunique() == 20
    fit = quiet_fit(ref["formula"], data, family=hierfit.families.get("beta"), seed=32, **FAST)
    cond = ref["fixef_cond"]
    check_fixef(fit, cond["term"], cond["estimate"], cond["se"], 0.02)
    check_scale(fit.draws["phi"], ref["phi"], 0.2, "phi")  # beta_family's sigma() is brms's phi
    check_scale(group_sd(fit, "g"), ref["sd"]["g"], 0.02, "sd(g)")


def test_cumulative_logit_matches_clmm():
    ref = REF["ordinal"]
    data = pd.read_csv(HERE / "ordinal_sim.csv")
    assert data.shape == (400, 3) and sorted(data["rating"].unique()) == [1, 2, 3, 4, 5]
    fit = quiet_fit(ref["formula"], data, family=hierfit.families.cumulative(ref["link"]), seed=33, **FAST)
    th = ref["thresholds"]  # clmm's "1|2" ... "4|5" are brms's Intercept[1] ... Intercept[4]
    check_fixef(fit, th["term"], th["estimate"], th["se"], 0.02,
                names=[f"Intercept[{k}]" for k in range(1, len(th["term"]) + 1)])
    check_fixef(fit, [ref["beta"]["term"]], [ref["beta"]["estimate"]], [ref["beta"]["se"]], 0.02)
    check_scale(group_sd(fit, "g"), ref["sd_g"], 0.02, "sd(g)")  # clmm's sd is a (Laplace) ML estimate

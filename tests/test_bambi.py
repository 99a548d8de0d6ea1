"""hierfit agrees with bambi on the Exam random-intercept model when both get the same priors.

A small version of ``benchmarks/bambi_agreement.py`` (which runs 4 chains x 5000 draws of
two models and compares every school effect too): 2 chains x 500 draws of
``normexam ~ standLRT + sex + (1 | school)``.  The fixed effects, the school sd and sigma
must agree within max(0.25 posterior sd, 4 MCSE of the difference).  The same comparison
must flag the school sd when bambi is given a different prior for it, so the check can
fail.  Takes about 35-40 s on 2 cores (three compiles and fits).
"""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import pytest

from conftest import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))
import bambi_agreement as ba  # noqa: E402

DRAWS, TUNE, CHAINS, SEED = 500, 500, 2, 1
COMPARED = {"(Intercept)", "standLRT", "sexM", "sd((Intercept) | school)", "sigma"}
SCHOOL_SD = "sd((Intercept) | school)"


@pytest.fixture(scope="module")
def ri(exam):
    formula, bformula = ba.MODELS["Exam random intercept"]
    hierfit_priors, bambi_priors, table = ba.matched_priors(formula, bformula, exam)
    fit = ba.fit_hierfit(formula, exam, hierfit_priors, DRAWS, TUNE, CHAINS, SEED)
    return {"bformula": bformula, "bambi_priors": bambi_priors, "table": table, "hier": ba.hierfit_estimates(fit)}


def _compare_with_bambi(ri, exam, bambi_priors) -> pd.DataFrame:
    model = ba.bambi_model(ri["bformula"], exam, bambi_priors)
    return ba.compare(ri["hier"], ba.bambi_estimates(ba.fit_bambi(model, DRAWS, TUNE, CHAINS, SEED)))


def _disagreeing(tab: pd.DataFrame) -> set[str]:
    """Compared quantities whose means differ by more than max(0.25 sd, 4 MCSE of the difference)."""
    tab = tab[tab["label"].isin(COMPARED)]
    tol = np.maximum(0.25 * tab["sd"], 4 * tab["mcse_diff"])
    return set(tab.loc[tab["diff"].abs() > tol, "label"])


def test_priors_are_translated_term_by_term(ri):
    tab = ri["table"]
    assert list(tab["bambi term"]) == ["Intercept", "standLRT", "sex", "1|school", "sigma"]
    assert list(tab["class"]) == ["Intercept", "b", "b", "sd", "sigma"]
    assert tab.loc[tab["class"] == "sd", "bambi prior"].item().startswith("Normal(mu: 0.0, sigma: HalfStudentT(")
    assert tab.loc[tab["class"] == "sigma", "bambi prior"].item().startswith("HalfStudentT(nu: 3.0")


def test_truncated_prior_has_no_bambi_equivalent():
    import hierfit

    with pytest.raises(ValueError, match="truncated"):
        ba.bambi_prior(hierfit.prior("normal(1, 1)", "sd").dist, positive=True)


def test_same_priors_same_posterior(ri, exam):
    tab = _compare_with_bambi(ri, exam, ri["bambi_priors"])
    compared = tab[tab["label"].isin(COMPARED)]
    assert set(compared["label"]) == COMPARED  # names paired up
    assert (tab["kind"] == "group").sum() == 65  # every school paired by level
    # the tolerance stays informative: 4 MCSE of the difference is under 3/4 of a posterior sd (bambi's draws
    # differ between a cold and a warm PyTensor cache, and with them its ESS for the intercept)
    assert (4 * compared["mcse_diff"] < 0.75 * compared["sd"]).all(), compared
    assert _disagreeing(tab) == set(), compared
    # the posterior sds agree too (within 20 %)
    assert np.allclose(compared["sd_bambi"], compared["sd"], rtol=0.2), compared


def test_different_school_sd_prior_is_detected(ri, exam):
    import bambi as bmb

    priors = dict(ri["bambi_priors"], **{"1|school": bmb.Prior("Normal", mu=0, sigma=bmb.Prior("HalfNormal",
                                                                                                 sigma=0.05))})
    tab = _compare_with_bambi(ri, exam, priors)
    assert SCHOOL_SD in _disagreeing(tab), tab[tab["label"].isin(COMPARED)]


def test_unpaired_quantities_are_an_error(ri):
    with pytest.raises(ValueError, match="do not pair up"):
        ba.compare(ri["hier"], ri["hier"].iloc[1:].assign(**{"bambi name": "x"}))

"""A small simulation-based calibration that can fail.

The full benchmark is benchmarks/sbc.py (hundreds of replications of five models).
Here: 80 replications of a small Gaussian random-intercept model (8 groups x 5 rows).
Simulating with the prior that is also used for fitting gives uniform ranks; simulating
the group-level sd from a prior three times wider than the fitting prior must be detected.
"""

from __future__ import annotations

import sys

import pytest

from conftest import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))
import sbc  # noqa: E402

MODEL = sbc.MODELS["gauss_ri"].with_(n_groups=8, n_per_group=5)
SETTINGS = dict(n_reps=80, seed=11, processes=1, draws=200, tune=200, chains=1, n_keep=99, min_ess=None)


@pytest.fixture(scope="module")
def calibrated():
    return sbc.uniformity(sbc.run_sbc(MODEL, **SETTINGS))


@pytest.fixture(scope="module")
def miscalibrated():
    return sbc.uniformity(sbc.run_sbc(MODEL, wrong_scale={"sd": 3.0}, **SETTINGS))


def test_simulator_matches_priors():
    """The simulator's draws follow the priors handed to hierfit (checked on many draws)."""
    import numpy as np
    from scipy import stats

    rng = np.random.default_rng(0)
    draws = np.array([sbc.draw_prior("normal(0, 1)", rng, positive=True) for _ in range(4000)])
    assert stats.kstest(draws, stats.halfnorm().cdf).pvalue > 0.01
    draws = np.array([sbc.draw_prior("exponential(1)", rng) for _ in range(4000)])
    assert stats.kstest(draws, stats.expon().cdf).pvalue > 0.01
    r = np.array([sbc.draw_prior("lkj(2)", rng) for _ in range(4000)])  # density of r: (1 - r^2)^(eta - 1)
    assert stats.kstest((r + 1) / 2, stats.beta(2, 2).cdf).pvalue > 0.01


def test_correct_prior_gives_uniform_ranks(calibrated):
    assert list(calibrated["parameter"]) == list(MODEL.params)
    assert (calibrated["reps"] == 80).all()
    assert (calibrated["chi2_p"] > 0.001).all(), calibrated
    assert (calibrated["ecdf_ks_p"] > 0.001).all(), calibrated


def test_wrong_prior_scale_is_detected(miscalibrated):
    row = miscalibrated.set_index("parameter").loc["sd_g[(Intercept)]"]
    assert row["chi2_p"] < 1e-4 and row["ecdf_ks_p"] < 1e-4, miscalibrated
    # the other parameters' priors were not changed: only the sd is flagged
    others = miscalibrated[miscalibrated["parameter"] != "sd_g[(Intercept)]"]
    assert (others[["chi2_p", "ecdf_ks_p"]] > 0.001).all().all(), miscalibrated

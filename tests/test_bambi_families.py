"""The translation behind ``benchmarks/bambi_families.py``: bambi's psi is 1 - zi (1 - hu), kappa is phi.

No fits: PyMC's own densities anchor the reflection, the prior translation is read back from
built bambi models, and bambi's posterior names are mapped on a small hand-made posterior.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest
import xarray as xr

import hierfit

from conftest import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))
import bambi_families as bf  # noqa: E402


def test_psi_is_the_probability_of_the_count_part_in_pymc():
    import pymc as pm

    psi, mu = 0.7, 2.0
    zip0 = float(np.exp(pm.logp(pm.ZeroInflatedPoisson.dist(psi=psi, mu=mu), 0).eval()))
    assert zip0 == pytest.approx((1 - psi) + psi * np.exp(-mu))  # brms: zi + (1 - zi) e^-mu with zi = 1 - psi
    hurdle0 = float(np.exp(pm.logp(pm.HurdlePoisson.dist(psi=psi, mu=mu), 0).eval()))
    assert hurdle0 == pytest.approx(1 - psi)  # brms: P(y = 0) = hu


def test_priors_are_reflected_for_zi_and_kept_for_phi():
    owls = bf.load_data("owls")
    hp, bp, tab = bf.matched_priors(bf.MODELS["ZIP Owls"], owls)
    assert tab.set_index("class").loc["zi", "bambi term"] == "psi"
    assert repr(bp["psi"]) == "Beta(alpha: 1.0, beta: 1.0)"
    assert set(bp) == {"Intercept", "FoodTreatment", "SexParent", "FoodTreatment:SexParent", "1|Nest", "psi"}
    # an asymmetric prior on zi becomes the mirrored prior on psi = 1 - zi
    mirrored = bf._dpar_prior(hierfit.prior("beta(2, 5)", class_="zi").dist, bf.MODELS["ZIP Owls"])
    assert (mirrored.args["alpha"], mirrored.args["beta"]) == (5.0, 2.0)
    _, bp, _ = bf.matched_priors(bf.MODELS["beta"], bf.load_data("beta_sim"))
    assert repr(bp["kappa"]) == "Gamma(alpha: 0.01, beta: 0.01)"


def test_bambi_names_map_to_hierfit_labels():
    rng = np.random.default_rng(0)
    psi = rng.uniform(0.7, 0.8, (2, 50))
    post = xr.Dataset({
        "psi": (("chain", "draw"), psi),
        "FoodTreatment:SexParent": (("chain", "draw", "FoodTreatment:SexParent_dim"), rng.normal(size=(2, 50, 1))),
        "1|Nest_offset": (("chain", "draw", "Nest__factor_dim"), rng.normal(size=(2, 50, 3))),
    }, coords={"FoodTreatment:SexParent_dim": ["Satiated, Male"], "Nest__factor_dim": ["a", "b", "c"]})
    tab = bf.bambi_estimates({"posterior": xr.DataTree(post)}, bf.MODELS["ZIP Owls"]).set_index("label")
    assert tab.loc["zi", "mean"] == pytest.approx(1 - psi.mean())
    assert tab.loc["zi", "sd"] == pytest.approx(psi.std(ddof=1))
    assert tab.loc["FoodTreatmentSatiated:SexParentMale", "kind"] == "fixed"
    assert len(tab) == 2  # the non-centred offsets are not quantities of the model
    thr = xr.Dataset({"threshold": (("chain", "draw", "threshold_dim"), rng.normal(size=(2, 50, 2)))},
                     coords={"threshold_dim": [0, 1]})
    tab = bf.bambi_estimates({"posterior": xr.DataTree(thr)}, bf.MODELS["cumulative"])
    assert list(tab["label"]) == ["Intercept[1]", "Intercept[2]"]

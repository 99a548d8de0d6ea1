"""Owls with a zero-inflated negative binomial: check_residuals does not flag it.

Collected once the zero_inflated_negbinomial family exists: rename this file to test_checks_zinb.py.
"""

from __future__ import annotations

import hierfit

OWLS_FORMULA = "SiblingNegotiation ~ FoodTreatment * SexParent + offset(log(BroodSize)) + (1 | Nest)"


def test_owls_zero_inflated_negbinomial_is_not_flagged():
    m = hierfit.fit(OWLS_FORMULA, hierfit.datasets.load("owls"), family="zero_inflated_negbinomial",
                    chains=2, draws=300, tune=300, seed=1, progressbar=False, warn=False)
    tab = m.check_residuals(nsim=200).set_index("test")
    assert tab.loc["zero-inflation", "p_value"] > 0.05, tab
    # not overdispersed as the Poisson model is (ratio about 5): the ratio stays near 1
    assert 0.5 < tab.loc["dispersion", "statistic"] < 1.5, tab

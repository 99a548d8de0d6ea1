"""The non-convergence warnings name the parameter, the reason and a remedy, and the remedy works.

A Poisson model with eight data-rich groups and no group variation at all: hierfit's
automatic choice centres the term (40 rows per level), and the centred funnel at sd near 0
gives divergent transitions and R-hat > 1.01 by default.  The warning must name
sd((Intercept) | g), say why, and print a remedy that, pasted as written, gives a fit with
no divergences and R-hat <= 1.01.
"""

import ast
import re

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import hierfit
from hierfit import ConvergenceWarning
from hierfit.results.diagnosis import diagnose_mixing, remedy_code
from conftest import grouped_data

REMEDY = re.compile(r"Remedy: (fit\.update\(.*\))\.$")


def _remedy_arguments(message: str) -> dict:
    """The keyword arguments of the ``fit.update(...)`` a warning prints, read as Python literals."""
    m = REMEDY.search(message)
    assert m, f"no remedy in: {message}"
    call = ast.parse(m.group(1), mode="eval").body
    assert isinstance(call, ast.Call) and not call.args
    return {k.arg: ast.literal_eval(k.value) for k in call.keywords}


def test_the_printed_remedy_makes_an_unsampleable_default_fit_converge():
    df = grouped_data(8, 40, intercept=0.5, slope=0.3, sd=0.0, family="poisson", seed=1)
    with pytest.warns(ConvergenceWarning) as rec:  # 4 x 1000 draws: under a second once compiled
        bad = hierfit.fit("y ~ x + (1 | g)", df, "poisson", seed=1, progressbar=False)
    assert bad.n_divergent > 0 and not bad.converged  # the default fails on this posterior
    msgs = [str(w.message) for w in rec if issubclass(w.category, ConvergenceWarning)]
    div = next(m for m in msgs if "divergent transition(s)" in m)
    assert "(around sd((Intercept) | g))" in div  # the parameter, by its summary name
    assert "Likely reason:" in div and "is near zero" in div and "funnel of a centred group term" in div
    remedy = _remedy_arguments(div)
    assert remedy == {"parametrization": {"g": "noncentered"}, "target_accept": 0.99}
    rhat = next(m for m in msgs if m.startswith("R-hat"))
    assert _remedy_arguments(rhat) == remedy  # one cause, one remedy
    good = bad.update(**remedy)
    assert good.n_divergent == 0
    assert float(good.diagnostics["Rhat"].max()) <= 1.01
    assert good.converged
    # what is left is information, not a sampling problem: the true sd is 0, lme4's singular fit
    assert [m.split(":")[0] for m in good.warnings] == ["boundary (singular) fit"]


def test_too_few_draws_gets_the_draws_that_reach_the_target():
    df = grouped_data(20, 10, intercept=0.0, slope=0.5, sd=0.7, seed=2)
    short = hierfit.fit("y ~ x + (1 | g)", df, draws=100, tune=300, chains=2, seed=2, progressbar=False, warn=False)
    ess = [m for m in short.warnings if m.startswith("bulk or tail ESS")]
    assert ess and "too few draws for their autocorrelation" in ess[0]
    remedy = _remedy_arguments(ess[0])
    assert set(remedy) == {"draws"} and remedy["draws"] > 100
    longer = short.update(**remedy)
    assert longer.converged, longer.warnings


def test_a_ridge_between_sd_and_sigma_is_named():
    """sd and sigma trading off (negatively correlated logs) is reported as a ridge between them."""
    from hierfit.spec.design import build_design

    d = build_design("y ~ x + (1 | g)", grouped_data(10, 5, intercept=0.0, slope=0.5, sd=0.5, seed=3))
    rng = np.random.default_rng(3)
    t = rng.normal(size=(2, 200))
    sd = np.exp(-1 + 0.5 * t + 0.1 * rng.normal(size=t.shape))
    sigma = np.exp(0 - 0.5 * t + 0.1 * rng.normal(size=t.shape))
    post = xr.Dataset({"sd_g": (("chain", "draw", "g__coef"), sd[..., None]), "sigma": (("chain", "draw"), sigma)},
                      coords={"g__coef": ["(Intercept)"]})
    diag = pd.DataFrame({"Rhat": [1.03, 1.03], "Bulk_ESS": [50.0, 60.0], "Tail_ESS": [80.0, 90.0]},
                        index=["sd((Intercept) | g)", "sigma"])
    out = diagnose_mixing(post, d, diag, ["sd((Intercept) | g)", "sigma"], None, rhat_bad=True, ess_min=400,
                          other_parametrization=lambda labels: {})
    assert out.parameters == ("sd((Intercept) | g)", "sigma") and "ridge" in out.reason
    assert out.remedy["draws"] >= 2000 and out.code.startswith("fit.update(draws=")
    assert remedy_code({"target_accept": 0.99}) == "fit.update(target_accept=0.99)"

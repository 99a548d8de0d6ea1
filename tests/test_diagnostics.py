"""Convergence problems become warnings that say what to do."""

import numpy as np
import pandas as pd
import pytest

import hierfit
from hierfit import ConvergenceWarning
from hierfit.results.diagnostics import piles_at_zero


def test_piles_at_zero():
    rng = np.random.default_rng(1)
    assert piles_at_zero(np.abs(rng.standard_t(3, 4000)) * 0.05)
    assert piles_at_zero(np.abs(rng.normal(0, 0.2, 300)))  # few draws: still decreasing from 0
    assert not piles_at_zero(rng.gamma(20, 0.015, 4000))
    assert not piles_at_zero(rng.gamma(3, 0.1, 300))  # mode away from 0, near it


def _groups(sd, seed=7):
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(30), 5)
    y = rng.normal(size=g.size) + rng.normal(0, sd, 30)[g]
    return pd.DataFrame({"y": y, "x": rng.normal(size=g.size), "g": g})


def test_singular_fit_and_unconverged_are_reported():
    df = _groups(0.0)  # no group variance: the REML estimate of the sd is 0, lme4 reports a singular fit
    with pytest.warns(ConvergenceWarning) as rec:
        m = hierfit.fit("y ~ x + (1 | g)", df, draws=400, tune=400, chains=2, seed=3, progressbar=False)
    msgs = [str(w.message) for w in rec]
    assert any("boundary (singular) fit" in s and "sd((Intercept) | g)" in s for s in msgs)
    text = m.summary().to_text()
    assert "Warnings:" in text and "boundary (singular) fit" in text
    with pytest.warns(ConvergenceWarning) as rec:
        short = hierfit.fit("y ~ x + (1 | g)", df, draws=60, tune=60, chains=2, seed=3, progressbar=False)
    assert any("ESS < 400" in str(w.message) for w in rec)  # 120 draws cannot give 400 effective draws
    assert short.converged is False


def test_a_clear_group_variance_is_not_called_singular():
    m = hierfit.fit("y ~ x + (1 | g)", _groups(0.8), draws=400, tune=400, chains=2, seed=3, progressbar=False,
                    warn=False)
    assert not any("singular" in w for w in m.warnings)


def test_divergence_remedy_fits_how_the_effects_were_sampled():
    """Divergences where an sd is small: a centred term is switched to non-centred; a collapsed or
    non-centred one (no parametrization to switch) gets a higher target_accept; divergences spread
    over the sd's draws name no parameter."""
    import xarray as xr

    from hierfit.spec.design import build_design
    from hierfit.results.diagnostics import convergence_messages
    from hierfit.spec.parametrization import Parametrization

    d = build_design("y ~ x + (1 | g)", _groups(0.5))
    diag = pd.DataFrame({"Rhat": [1.0], "Bulk_ESS": [1000.0], "Tail_ESS": [1000.0]}, index=["sigma"])
    sd = np.random.default_rng(1).gamma(20, 0.03, (2, 50, 1))
    post = xr.Dataset({"sd_g": (("chain", "draw", "g__coef"), sd)}, coords={"g__coef": ["(Intercept)"]})
    low = sd[..., 0] <= np.quantile(sd, 0.05)  # divergences at the smallest sds: a funnel
    stats = xr.Dataset({"diverging": (("chain", "draw"), low)})
    collapsed = convergence_messages(post, stats, d, diag, Parametrization({"g": "collapsed"}))
    noncentered = convergence_messages(post, stats, d, diag, Parametrization({"g": "noncentered"}))
    centered = convergence_messages(post, stats, d, diag, Parametrization({"g": "centered"}))
    assert collapsed[0].startswith(f"{low.sum()} divergent transition(s) after warm-up (around sd((Intercept) | g))")
    assert collapsed[0].endswith("Remedy: fit.update(target_accept=0.95).")
    assert noncentered[0].endswith("Remedy: fit.update(target_accept=0.95).")
    assert "near zero" in centered[0] and "funnel of a centred group term" in centered[0]
    assert centered[0].endswith("Remedy: fit.update(parametrization={'g': 'noncentered'}, target_accept=0.99).")
    spread = np.zeros((2, 50), dtype=bool)
    spread[:, ::10] = True  # every tenth draw: all over the sd's distribution
    msg = convergence_messages(post, xr.Dataset({"diverging": (("chain", "draw"), spread)}), d, diag,
                               Parametrization({"g": "centered"}))[0]
    assert "(around" not in msg and "no group-level sd explains them" in msg
    assert msg.endswith("Remedy: fit.update(target_accept=0.95).")

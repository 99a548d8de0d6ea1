"""Convergence problems become warnings that say what to do."""

import numpy as np
import pandas as pd
import pytest

import hierfit
from hierfit import ConvergenceWarning
from hierfit.diagnostics import piles_at_zero


def test_piles_at_zero():
    rng = np.random.default_rng(1)
    assert piles_at_zero(np.abs(rng.standard_t(3, 4000)) * 0.05)
    assert not piles_at_zero(rng.gamma(20, 0.015, 4000))


def test_singular_fit_and_unconverged_are_reported():
    rng = np.random.default_rng(7)
    g = np.repeat(np.arange(30), 5)
    df = pd.DataFrame({"y": rng.normal(size=g.size), "x": rng.normal(size=g.size), "g": g})  # no group variance
    with pytest.warns(ConvergenceWarning) as rec:
        m = hierfit.fit("y ~ x + (1 | g)", df, draws=60, tune=60, chains=2, seed=3, progressbar=False)
    msgs = [str(w.message) for w in rec]
    assert any("boundary (singular) fit" in s and "sd((Intercept) | g)" in s for s in msgs)
    assert any("ESS < 400" in s for s in msgs)  # 120 draws cannot give 400 effective draws
    assert m.converged is False
    text = m.summary().to_text()
    assert "Warnings:" in text and "boundary (singular) fit" in text

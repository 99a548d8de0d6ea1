"""Run length that adapts (ess_target): when a run falls short of the ESS target it is repeated with more draws."""

import numpy as np
import pandas as pd
import pytest

import hierfit
from hierfit.engine.run_length import MAX_FACTOR, extended_draws


def _diag(ess, rhat=1.0):
    return pd.DataFrame({"Rhat": [rhat, 1.0], "Bulk_ESS": [ess, 2000.0], "Tail_ESS": [2000.0, ess]})


def test_draws_grow_with_the_shortfall_within_the_bound():
    assert extended_draws(_diag(500), 0, 1000, 1000, 10.0, 400) is None  # target met
    assert extended_draws(_diag(300), 0, 1000, 1000, 10.0, 400) == 2000  # 1.2 * 400 / 300 = 1.6 -> 2000
    assert extended_draws(_diag(150), 0, 1000, 1000, 10.0, 400) == 3500  # 3.2 -> 3500
    assert extended_draws(_diag(100), 0, 1000, 1000, 10.0, 400) is None  # 4.8 x > MAX_FACTOR
    assert MAX_FACTOR == 4
    assert extended_draws(_diag(900, rhat=1.03), 0, 1000, 1000, 10.0, 400) == 2000  # R-hat alone: twice
    assert extended_draws(_diag(300), 0, 1000, 1000, 300.0, 400) == 2000  # 450 s <= twice the first run's
    assert extended_draws(_diag(150), 0, 1000, 1000, 300.0, 400) is None  # 675 s: too long
    assert extended_draws(_diag(300), 2, 1000, 1000, 10.0, 400) is None  # divergences: not cured by draws
    assert extended_draws(_diag(300), 0, 1000, 1000, 10.0, None) is None  # turned off


def test_short_run_is_extended_reproducibly_and_only_when_asked():
    exam = hierfit.datasets.load("exam")
    kw = dict(formula="normexam ~ standLRT + (1 | school)", data=exam, chains=2, tune=200, seed=3,
              progressbar=False, warn=False)
    short = hierfit.fit(**kw, draws=100)  # an explicit draws= is honoured: "auto" is then off
    assert short.settings.draws == 100 and short.settings.ess_target is None
    assert "extended" not in str(short)
    ess = float(short.diagnostics[["Bulk_ESS", "Tail_ESS"]].min().min())
    assert ess < 350  # 200 draws in all: the target below is out of reach
    m = hierfit.fit(**kw, draws=100, ess_target=350)
    assert m.settings.requested_draws == 100 and 100 < m.settings.draws <= 400
    assert f"extended to 2 x {m.settings.draws} draws (from 100 per chain) to reach ESS 350" in str(m)
    # the extended run is the fit asked for with that many draws: same draws, reproducible from the seed
    same = hierfit.fit(**kw, draws=m.settings.draws, ess_target=None)
    np.testing.assert_array_equal(m.posterior["posterior"]["b"].values, same.posterior["posterior"]["b"].values)
    assert m.diagnostics["Bulk_ESS"].min() > ess


def test_ess_target_is_validated():
    with pytest.raises(hierfit.HierfitError, match="ess_target"):
        hierfit.fit("normexam ~ standLRT + (1 | school)", hierfit.datasets.load("exam"), ess_target=-1)

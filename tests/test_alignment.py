"""Rows never shift: after rows with missing values are dropped, fitted values, residuals and
predictions come back on the caller's index (dropped rows as NaN), so assigning them back to
the data frame puts each value on its own row.  Checked against a computation by hand from
the caller's own rows (fixed effects + the row's group effect), not against prepare_draws.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from conftest import quiet_fit


def _frame(index) -> pd.DataFrame:
    rng = np.random.default_rng(17)
    n = len(index)
    g = rng.integers(0, 8, n)
    x = rng.normal(size=n)
    y = 1.0 + 2.0 * x + rng.normal(0, 1.5, 8)[g] + rng.normal(0, 0.3, n)
    df = pd.DataFrame({"y": y, "x": x, "g": [f"grp{k}" for k in g]}, index=index)
    df.iloc[[3, 17, 40], df.columns.get_loc("x")] = np.nan  # dropped rows in the middle
    df.iloc[25, df.columns.get_loc("y")] = np.nan
    return df


def _by_hand(fit, df: pd.DataFrame) -> pd.Series:
    """Posterior-mean E[y] of each complete row from the fixed- and group-effect tables (linear model)."""
    b = fit.fixef()["Estimate"]
    r = fit.ranef()["g"].xs("Estimate", axis=1, level=1)["(Intercept)"]
    used = df.dropna()
    return b["(Intercept)"] + b["x"] * used["x"] + r.loc[used["g"]].to_numpy()


INDEXES = {
    "shuffled strings": pd.Index([f"row{k}" for k in np.random.default_rng(1).permutation(60)], name="id"),
    "multiindex": pd.MultiIndex.from_product([["north", "south", "east"], [2019, 2020, 2021, 2022], range(5)],
                                             names=["region", "year", "k"]),
}


@pytest.fixture(scope="module", params=list(INDEXES))
def fitted_case(request):
    df = _frame(INDEXES[request.param])
    fit = quiet_fit("y ~ x + (1 | g)", df, draws=200, tune=200, chains=2, seed=4)
    return df, fit


def test_fitted_and_residuals_assign_back_to_the_right_rows(fitted_case):
    df, fit = fitted_case
    dropped = df.index[df[["y", "x"]].isna().any(axis=1)]
    est = fit.fitted()["Estimate"]
    assert est.index.equals(df.index)
    assert est.loc[dropped].isna().all() and est.drop(dropped).notna().all()
    out = df.assign(fitted=est, resid=fit.residuals(), pearson=fit.residuals("pearson"))
    hand = _by_hand(fit, df)
    np.testing.assert_allclose(out.loc[hand.index, "fitted"], hand, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(out.loc[hand.index, "resid"], df.loc[hand.index, "y"] - hand, rtol=1e-9, atol=1e-9)
    assert out.loc[dropped, ["fitted", "resid", "pearson"]].isna().all().all()
    # the values really depend on the row: a shift by one row would be far off
    assert np.abs(np.diff(hand.to_numpy())).max() > 1.0


def test_quantile_residuals_on_the_callers_index(fitted_case):
    df, fit = fitted_case
    qr = fit.quantile_residuals(seed=1, nsim=200)
    assert qr.residuals.index.equals(df.index)
    dropped = df[["y", "x"]].isna().any(axis=1).to_numpy()
    assert qr.residuals[dropped].isna().all()
    u = qr.residuals[~dropped]
    assert ((u >= 0) & (u <= 1)).all() and len(u) == fit.nobs
    # the largest residuals y - E[y] of the used rows have the largest quantile residuals
    resid = fit.residuals()[~dropped]
    top = resid.nlargest(3).index
    assert (qr.residuals.loc[top] > 0.5).all()


def test_predict_newdata_keeps_its_index(fitted_case):
    df, fit = fitted_case
    new = df.dropna().iloc[[9, 2, 30]]
    new = new.set_axis(pd.Index(["c", "a", "b"], name="mine"))
    pred = fit.predict(new)
    assert list(pred.index) == ["c", "a", "b"]
    hand = _by_hand(fit, new.assign(y=0.0))
    np.testing.assert_allclose(pred["Estimate"].to_numpy(), hand.to_numpy(), rtol=1e-9, atol=1e-9)


def test_alignment_survives_save_and_load(fitted_case, tmp_path):
    import hierfit

    df, fit = fitted_case
    fit.save(tmp_path / "m.hfit")
    back = hierfit.load(tmp_path / "m.hfit")
    pd.testing.assert_frame_equal(back.fitted(), fit.fitted())
    pd.testing.assert_series_equal(back.residuals(), fit.residuals())
    assert back.design.row_index.equals(df.dropna().index)


def test_plots_take_the_rows_the_design_kept(fitted_case):
    from hierfit.plots.common import column_values

    df, fit = fitted_case
    extra = df.assign(z=np.arange(len(df), dtype=float) * 10)  # a column the model does not use
    kept = extra.loc[extra[["y", "x"]].notna().all(axis=1), "z"].to_numpy()
    np.testing.assert_array_equal(column_values(fit, "z", extra), kept)

"""Plot helpers on count models fitted from a data engine (rows aggregated exactly into count patterns).

Each fit from Dask holds one row per pattern; every number a plot computes must equal
the row-level fit's (from pandas), up to Monte Carlo error where posterior draws enter.
"""

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest

import hierfit
from hierfit.data.counts import aggregation
from hierfit.plots.checks import _group_summary
from hierfit.plots.common import column_values, group_sizes, resolve_term, typical_values, variable_range
from hierfit.plots.conditional import condition_grid
from hierfit.plots.effects import effect_table, plot_effects, plot_group_lines
from hierfit.plots.pooling import complete_pooling, no_pooling

dd = pytest.importorskip("dask.dataframe")

KW = dict(chains=2, draws=200, tune=200, seed=1, progressbar=False, warn=False)
BERN = "y ~ a + scale(k) + (1 | g)"
POIS = "c ~ a + k + (1 | g)"


@pytest.fixture(scope="module")
def df():
    rng = np.random.default_rng(3)
    n = 3000
    out = pd.DataFrame({"a": rng.choice(["p", "q", "r"], n),
                        "k": rng.choice([0, 1, 2, 4], n, p=[0.6, 0.2, 0.15, 0.05]),
                        "g": rng.integers(0, 25, n).astype(str)})
    eta = -0.3 + 0.4 * (out.a == "q") + 0.3 * out.k + rng.normal(0, 0.5, 25)[out.g.astype(int)]
    out["y"] = rng.binomial(1, 1 / (1 + np.exp(-eta)))
    out["c"] = rng.poisson(np.exp(eta))
    out["x"] = rng.normal(size=n)
    return out


@pytest.fixture(scope="module")
def fits(df):
    ddf = dd.from_pandas(df, npartitions=3)
    out = {}
    for name, formula, family in (("bern", BERN, "bernoulli"), ("pois", POIS, "poisson")):
        eng = hierfit.fit(formula, ddf, family=family, **KW)
        pdf = hierfit.fit(formula, df, family=family, **KW)
        assert aggregation(eng.design) is not None and eng.design.nobs < len(df)
        out[name] = (eng, pdf)
    return out


@pytest.mark.parametrize("name", ["bern", "pois"])
def test_typical_values_and_range(fits, df, name):
    eng, pdf = fits[name]
    te = typical_values(eng)  # scale(k) needs no data: the patterns keep the raw column
    tp = typical_values(pdf, df if name == "bern" else None)
    assert te["a"] == tp["a"] == "p"
    assert te["k"] == pytest.approx(df.k.mean(), rel=1e-12) == tp["k"]
    assert variable_range(eng, "k") == variable_range(pdf, "k", df if name == "bern" else None) == (0.0, 4.0)


@pytest.mark.parametrize("name,var", [("bern", "a"), ("pois", "a"), ("bern", "k")])  # other predictors at typical
def test_effect_table_matches_row_level_fit(fits, df, name, var):
    eng, pdf = fits[name]
    te = effect_table(eng, var, ngrid=5)
    tp = effect_table(pdf, var, ngrid=5, data=df if name == "bern" else None)
    assert te[var].tolist() == tp[var].tolist()
    width = (tp["upper"] - tp["lower"]).to_numpy()
    assert np.all(np.abs(te["Estimate"].to_numpy() - tp["Estimate"].to_numpy()) < 0.2 * width)


def test_condition_values_weighted_by_rows(fits, df):
    eng, pdf = fits["pois"]
    ge, names = condition_grid(eng, ["a", "k"])
    gp, _ = condition_grid(pdf, ["a", "k"])
    m, s = df.k.mean(), df.k.std(ddof=1)
    np.testing.assert_allclose(sorted(ge["k"].unique()), [m - s, m, m + s], rtol=1e-9)
    np.testing.assert_allclose(sorted(ge["k"].unique()), sorted(gp["k"].unique()), rtol=1e-9)


def test_group_sizes_and_pooling(fits, df):
    counts = df.groupby("g").size()
    for name in ("bern", "pois"):
        eng, pdf = fits[name]
        info = resolve_term(eng, "g")
        np.testing.assert_array_equal(group_sizes(info), counts.loc[info.levels].to_numpy())
        pd.testing.assert_frame_equal(no_pooling(eng, "g"), no_pooling(pdf, "g").loc[info.levels],
                                      check_exact=False, atol=1e-5, check_index_type=False)
        pd.testing.assert_series_equal(complete_pooling(eng, "g"), complete_pooling(pdf, "g"),
                                       check_exact=False, atol=1e-5)
    hierfit.plots.pooling.shrinkage_path(eng, "g", n=5)


def test_ranef_vs_group_means_weighted(fits, df):
    eng, _ = fits["pois"]
    info = resolve_term(eng, "g")
    gx, kind, _ = _group_summary(info, column_values(eng, "k"))
    assert kind == "mean"
    np.testing.assert_allclose(gx, df.groupby("g").k.mean().loc[info.levels].to_numpy(), rtol=1e-12)
    fig = eng.plot_ranef_vs(term="g", x="k")
    matplotlib.pyplot.close(fig)


@pytest.mark.parametrize("name,col", [("bern", "y"), ("pois", "c")])
def test_data_points_are_means_per_row(fits, df, name, col):
    eng, _ = fits[name]
    rows = np.asarray(aggregation(eng.design)["rows"], dtype=float)
    for fig in (plot_effects(eng, "k", points=True, ndraws=50), plot_group_lines(eng, x="k", term="g")):
        pts = [c for ax in fig.axes for c in ax.collections if c.get_gid() == "data"]
        assert pts
        y = pts[0].get_offsets()[:, 1]
        assert len(y) == len(rows) and np.all(y <= (1.0 if name == "bern" else df[col].max()))
        assert np.average(y, weights=rows) == pytest.approx(df[col].mean(), rel=1e-9)
        matplotlib.pyplot.close(fig)


def test_plot_note_and_group_lines_run(fits, df):
    eng, _ = fits["bern"]
    fig = plot_effects(eng, ndraws=50)
    assert f"k = {df.k.mean():.3g}" in fig._suptitle.get_text()
    matplotlib.pyplot.close(fig)


def test_pooling_refuses_gaussian_engine_fit(df):
    fit = hierfit.fit("x ~ k + (1 | g)", dd.from_pandas(df, npartitions=3), **KW)
    assert not fit.design.rows_held
    with pytest.raises(hierfit.HierfitError, match="in-memory data"):
        no_pooling(fit, "g")
    with pytest.raises(hierfit.HierfitError, match="in-memory data"):
        complete_pooling(fit, "g")

"""Fits from data held by Dask after sampling: what needs the rows says so, what the engine measured is used,
predictions of Dask frames take the same arguments as pandas ones, and values that are not finite are counted
on the real rows."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import hierfit
from hierfit.data.specify import specify_engine
from hierfit.errors import DataError, HierfitError
from hierfit.spec.layout import sufficient_stats

dd = pytest.importorskip("dask.dataframe")

SAMPLE = dict(chains=2, draws=300, tune=300, seed=5, progressbar=False, warn=False)
FORMULA = "y ~ x * sex + (x | g)"


def _data(n: int = 2000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"g": rng.integers(0, 20, n), "x": rng.exponential(1.0, n) ** 2,  # skewed: mean far
                       "sex": rng.choice(["F", "M"], n), "o": rng.normal(size=n)})     # from mid-range
    df["y"] = 1 + df.x + 2 * (df.sex == "M") * df.x + rng.normal(0, 0.7, 20)[df.g] + rng.normal(size=n)
    df.index = df.index * 10 + 7  # not a RangeIndex: results must come back on it
    return df


@pytest.fixture(scope="module")
def data():
    df = _data()
    df.loc[[17, 417], "x"] = np.nan  # left out of the fit, like na.omit
    return df


@pytest.fixture(scope="module")
def fits(data):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        engine = hierfit.fit(FORMULA, dd.from_pandas(data, npartitions=3), **SAMPLE)
        memory = hierfit.fit(FORMULA, data, **SAMPLE)
    return engine, memory


@pytest.mark.parametrize("formula, kwargs, message", [
    ("y ~ x + (1 | g)", dict(parametrization="centered"), "parametrization='centered'"),
    ("y | cens(c) ~ x + (1 | g)", {}, "addition term"),
    ("y | weights(w) ~ x + (1 | g)", {}, "addition term"),
    ("y | se(w) ~ x + (1 | g)", {}, "addition term"),
])
def test_gaussian_models_that_would_sample_the_rows_are_refused(formula, kwargs, message):
    df = _data(400).assign(c=0, w=1.0)
    with pytest.raises(HierfitError, match=message + ".*in-memory data"):
        specify_engine(formula, dd.from_pandas(df, npartitions=2), **kwargs)


def test_reference_grids_use_the_engines_means(fits, data):
    engine, memory = fits
    complete = data.dropna()
    grid = hierfit.datagrid(engine, sex=["F", "M"])
    assert grid["x"].tolist() == pytest.approx([complete.x.mean()] * 2, rel=1e-12)
    assert hierfit.datagrid(memory, sex=["F", "M"])["x"].tolist() == pytest.approx(grid["x"].tolist(), rel=1e-12)
    e, m = engine.emmeans("sex"), memory.emmeans("sex")
    assert np.allclose(e.Estimate, m.Estimate, atol=4 * np.hypot(e["Est.Error"], m["Est.Error"]).max() / 3)


@pytest.mark.parametrize("call", ["predictions", "avg_predictions", "comparisons", "avg_slopes"])
def test_averages_over_the_rows_ask_for_newdata(fits, call):
    engine, _ = fits
    args = () if "predictions" in call else ("x",)
    with pytest.raises(DataError, match=r"1998 rows are not held in memory; pass newdata="):
        getattr(engine, call)(*args)
    grid = hierfit.datagrid(engine, sex=["F", "M"], x=[0.0, 1.0])
    assert len(getattr(engine, call)(*args, newdata=grid, re_form=hierfit.NA)) >= 1  # with rows given, they work


def test_plots_use_the_engines_range_and_never_the_placeholder_rows(fits, data):
    import matplotlib

    matplotlib.use("Agg")
    from hierfit.plots.conditional import condition_grid

    engine, memory = fits
    complete = data.dropna()
    grid, _ = condition_grid(engine, ["x", "sex"])
    assert grid["x"].min() == complete.x.min() and grid["x"].max() == pytest.approx(complete.x.max(), rel=1e-12)
    fig = engine.plot_group_lines(x="x")
    ax = fig.axes[0]
    assert not [c for c in ax.collections if c.get_gid() == "data"]  # no rows to draw
    lines = [c for c in ax.collections if c.get_gid() != "data"][0].get_segments()
    assert all(seg[0, 0] == complete.x.min() and seg[-1, 0] == pytest.approx(complete.x.max()) for seg in lines)
    with pytest.raises(HierfitError, match="needs every row's value of 'x'.*1998 rows not held in memory"):
        engine.plot_ranef_vs(x="x")
    with pytest.raises(HierfitError, match="sample_prior draws replicated data for every row"):
        engine.sample_prior(draws=10)
    matplotlib.pyplot.close("all")


def test_fitted_and_residuals_on_the_callers_index_with_nan_for_rows_left_out(fits, data):
    engine, memory = fits
    fe, fm = engine.fitted().compute(), memory.fitted()
    assert fe.index.equals(data.index) and fe.index.equals(fm.index)
    assert fe.loc[[17, 417]].isna().all().all() and fe.drop(index=[17, 417]).notna().all().all()
    assert np.allclose(fe.Estimate, fm.Estimate, atol=0.05, equal_nan=True)
    re_, rm = engine.residuals().compute(), memory.residuals()
    assert re_.index.equals(data.index) and re_.isna().sum() == 2
    assert np.allclose(re_.to_numpy(), np.asarray(rm, dtype=float).ravel(), atol=0.05, equal_nan=True)


def test_predicting_dask_frames_takes_the_pandas_arguments(fits, data):
    engine, _ = fits
    new = data.dropna().head(6).assign(g=999)  # a level the fit has not seen
    lazy = dd.from_pandas(new, npartitions=2)
    with_new = engine.predict(lazy, allow_new_levels=True, seed=2).compute()
    assert with_new.index.equals(new.index)
    assert np.allclose(with_new.Estimate, engine.predict(new, allow_new_levels=True, seed=2).Estimate, atol=1e-9)
    with pytest.raises(DataError, match="allow_new_levels=True"):
        engine.predict(lazy).compute()
    twins = pd.concat([new, new]).assign(g=data.g.iloc[0])
    sims = engine.predict(dd.from_pandas(twins, npartitions=2, sort=False), kind="response", seed=3).compute()
    assert not np.allclose(sims.Estimate.iloc[:6], sims.Estimate.iloc[6:])  # one random stream per partition
    for bad, message in [(dict(kind="bogus"), "kind must be one of"), (dict(ndraws=-3), "ndraws"),
                         (dict(summary=False), "summary=False"), (dict(re_form="~ (1 | nope)"), "nope")]:
        with pytest.raises(HierfitError, match=message):
            engine.predict(lazy, **bad)  # before anything is computed
    with pytest.raises(DataError, match="newdata lacks column.*'x'"):
        engine.predict(dd.from_pandas(new.drop(columns="x"), npartitions=1))


def test_offset_argument_columns_are_read_after_sampling():
    df = _data(1500)
    df["y"] = df.y + df.o
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = hierfit.fit("y ~ x + (1 | g)", dd.from_pandas(df, npartitions=2), offset="o", **SAMPLE)
        memory = hierfit.fit("y ~ x + (1 | g)", df, offset="o", **SAMPLE)
    quartiles = np.quantile(memory.residuals("pearson"), [0.25, 0.5, 0.75])
    engine_q = [fit.design.summary.residual_quantiles[k] for k in ("1Q", "Median", "3Q")]
    assert np.allclose(engine_q, quartiles, atol=0.05)


@pytest.mark.parametrize("formula, change, message", [
    ("y ~ log(x) + (1 | g)", lambda d: d.assign(x=d.x - 0.5), r"'log\(x\)' \((\d+) rows\)"),
    ("log(y - 5) ~ x + (1 | g)", lambda d: d, r"'log\(y - 5\)' \((\d+) rows\)"),
    ("y ~ x + (1 | g)", lambda d: d.assign(x=np.where(np.arange(len(d)) % 97 == 0, np.inf, d.x)), r"'x' \((\d+) rows\)"),
])
def test_values_that_are_not_finite_are_counted_on_the_rows(formula, change, message):
    df = change(_data(3000))
    with pytest.raises(DataError, match=message) as memory:
        hierfit.specify(formula, df)
    with pytest.raises(DataError, match=message) as engine:
        specify_engine(formula, dd.from_pandas(df, npartitions=3))
    import re

    counts = [int(re.search(message, str(e.value)).group(1)) for e in (memory, engine)]
    assert counts[0] == counts[1] > 20  # the real rows, not the placeholder rows the design is built from


def test_transformed_response_and_huge_ids_as_in_memory():
    df = _data(3000)
    df["g"] = df.g.astype(np.uint64) + np.uint64(2**63)  # ids beyond int64
    for formula in ("I(y * 2) ~ x + (1 | g)", "y ~ x + (1 | g)"):
        engine, _ = specify_engine(formula, dd.from_pandas(df, npartitions=3))
        memory = hierfit.specify(formula, df)
        assert engine.priors.table().prior.tolist() == memory.priors.table().prior.tolist()
        ref = sufficient_stats(memory.design)
        for f in ("n", "XX", "Xy", "ZZ", "yy"):
            a, b = getattr(engine.design.summary.stats, f), getattr(ref, f)
            assert np.max(np.abs(a - b)) <= 1e-10 * max(np.max(np.abs(b)), 1.0)


def _counts(n: int = 4000, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"a": rng.choice(["u", "v", "w"], n), "k": rng.choice([0, 1, 2, 4], n),
                       "g": rng.integers(0, 25, n), "n": rng.integers(1, 6, n)})
    eta = -0.5 + 0.6 * (df.a == "v") + 0.3 * df.k + rng.normal(0, 0.8, 25)[df.g]
    df["y"] = rng.binomial(1, 1 / (1 + np.exp(-eta)))
    df["c"] = rng.poisson(np.exp(eta))
    df["s"] = rng.binomial(df.n, 1 / (1 + np.exp(-eta)))
    return df


@pytest.mark.parametrize("formula, family", [("c ~ a + k + (1 | g)", "poisson"), ("y ~ a + k + (1 | g)", "bernoulli")])
def test_r2_and_icc_of_aggregated_counts_are_those_of_the_rows(formula, family):
    df = _counts()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        engine = hierfit.fit(formula, dd.from_pandas(df, npartitions=3), family=family, **SAMPLE)
        memory = hierfit.fit(formula, df, family=family, **SAMPLE)
    assert engine.design.nobs < 400 < len(df)  # patterns, not rows
    for e, m in [(engine.r2(), memory.r2()), (engine.icc(), memory.icc())]:
        tol = 3 * np.hypot(e["Est.Error"].to_numpy(), m["Est.Error"].to_numpy())
        assert np.all(np.abs(e.Estimate.to_numpy() - m.Estimate.to_numpy()) < tol), (e, m)
    with pytest.raises(HierfitError, match=r"aggregated its 4000 rows into \d+ count patterns"):
        engine.loo()


def test_plots_of_a_binomial_count_fit_use_the_patterns_rows():
    import matplotlib

    matplotlib.use("Agg")
    df = _counts(3000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        engine = hierfit.fit("s | trials(n) ~ a + k + (1 | g)", dd.from_pandas(df, npartitions=3),
                             family="binomial", **SAMPLE)
    frame = hierfit.analysis.grid.model_frame(engine)
    assert len(frame) == engine.design.nobs and (frame["n"] * engine.design.summary.aggregation["rows"]).sum() \
        == pytest.approx(df.n.sum())  # each pattern's rows' mean trials
    fig = engine.plot_predictions(condition="k")
    assert fig.axes[0].get_xlim()[0] < 0 < 4 < fig.axes[0].get_xlim()[1]
    matplotlib.pyplot.close("all")


def test_saved_gaussian_engine_fit_keeps_the_rows_moments_for_scale(tmp_path, exam):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = hierfit.fit("normexam ~ scale(standLRT) + (1 | school)", dd.from_pandas(exam, npartitions=3),
                          **SAMPLE)
    fit.save(tmp_path / "scaled.hfit")
    loaded = hierfit.load(tmp_path / "scaled.hfit")
    state = loaded.design.mu.fixed_spec.transform_state["scale(standLRT)"]
    assert float(state["center"]) == pytest.approx(exam.standLRT.mean(), rel=1e-9)
    assert float(state["scale"]) == pytest.approx(exam.standLRT.std(), rel=1e-9)
    assert np.allclose(loaded.predict(exam.head(5)).Estimate, fit.predict(exam.head(5)).Estimate, rtol=1e-12)


def test_icc_and_steps_from_the_engines_sums_and_moments(fits, data):
    engine, memory = fits
    e, m = engine.icc(), memory.icc()
    assert np.all(np.abs(e.Estimate - m.Estimate) < 3 * np.hypot(e["Est.Error"], m["Est.Error"]))
    grid = hierfit.datagrid(engine, sex=["F", "M"])
    complete = data.dropna()
    for spec, width in [("sd", complete.x.std()), ("minmax", complete.x.max() - complete.x.min())]:
        a = engine.comparisons({"x": spec}, newdata=grid, re_form=hierfit.NA)
        b = memory.comparisons({"x": spec}, newdata=grid, re_form=hierfit.NA)
        assert np.allclose(a.Estimate, b.Estimate, atol=0.1 * width)  # the rows' sd and range, not the grid's
    with pytest.raises(HierfitError, match="'iqr' needs the quartiles of every fitted row"):
        engine.comparisons({"x": "iqr"}, newdata=grid, re_form=hierfit.NA)
    with pytest.raises(HierfitError, match="summary=False"):
        engine.fitted(summary=False)


def test_offset_held_at_its_mean_over_the_rows():
    from hierfit.plots.effects import effect_table

    df = _data(2000)
    df["e"] = np.exp(df.o)  # offset log(e): its mean is mean(o), not log(mean(e))
    df["y"] = df.y + df.o
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        engine = hierfit.fit("y ~ x + (1 | g)", dd.from_pandas(df, npartitions=3), offset="log(e)", **SAMPLE)
        memory = hierfit.fit("y ~ x + (1 | g)", df, offset="log(e)", **SAMPLE)
    assert engine.design.summary.offset_mean == pytest.approx(df.o.mean(), rel=1e-9)
    a, b = effect_table(engine, "x"), effect_table(memory, "x")
    # within Monte Carlo error of the lines; the placeholder rows' mean offset would shift them by about 1
    assert np.all(np.abs(a.Estimate - b.Estimate) < 0.25 * (b.upper - b.lower))


def test_aggregated_fit_has_no_pointwise_log_likelihood_to_bypass_the_loo_refusal():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = hierfit.fit("y ~ a + k + (1 | g)", dd.from_pandas(_counts(1500), npartitions=2), family="bernoulli",
                          **SAMPLE)
    assert "log_likelihood" not in fit.posterior.children


@pytest.mark.parametrize("values", [[0, 5, 10], [1, 2, 3, 4], [0.5, 2.0, 7.25]], ids=["gaps", "consecutive", "floats"])
def test_numeric_columns_coded_as_factors_have_the_rows_levels(values):
    rng = np.random.default_rng(2)
    df = pd.DataFrame({"g": rng.integers(0, 20, 3000), "dose": rng.choice(values, 3000)})
    df["y"] = 3.0 * (df.dose == values[1]) + rng.normal(0, 1, 20)[df.g] + rng.normal(size=3000)
    engine, _ = specify_engine("y ~ C(dose) + (1 | g)", dd.from_pandas(df, npartitions=3))
    memory = hierfit.specify("y ~ C(dose) + (1 | g)", df)
    assert engine.design.fixed_names == memory.design.fixed_names  # C(dose)5, not placeholder values
    ref = sufficient_stats(memory.design)
    for f in ("n", "XX", "Xy", "ZX"):
        a, b = getattr(engine.design.summary.stats, f), getattr(ref, f)
        assert np.max(np.abs(a - b)) <= 1e-10 * max(np.max(np.abs(b)), 1.0)


def test_prior_median_and_residual_quartiles_are_rs_type_7(exam):
    df = pd.DataFrame({"g": np.arange(200) % 10, "y": 10.0 * np.repeat(np.arange(10), 20)})  # ties, even count
    df["y"] = df.y + 1e-3 * np.arange(200) % 7  # not constant within a group
    engine, _ = specify_engine("y ~ 1 + (1 | g)", dd.from_pandas(df, npartitions=2))
    memory = hierfit.specify("y ~ 1 + (1 | g)", df)
    assert engine.priors.table().prior.tolist() == memory.priors.table().prior.tolist()  # median 45, not 40
    small = exam.head(168)  # a few rows: the order statistics are far apart
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = hierfit.fit("normexam ~ standLRT + (1 | school)", dd.from_pandas(small, npartitions=2), **SAMPLE)
    got = [fit.design.summary.residual_quantiles[k] for k in ("1Q", "Median", "3Q")]
    from hierfit.data.predict import residuals_frame

    want = np.quantile(residuals_frame(fit, "pearson").compute(), [0.25, 0.5, 0.75])  # numpy's default: type 7
    assert np.allclose(got, want, atol=2e-4)


def test_nullable_integer_factor_and_an_offset_column_in_grids(fits):
    df = _data(2000)
    df["k"] = pd.array(np.arange(2000) % 3 + 1, dtype="Int64")
    df.loc[[7, 17], "k"] = pd.NA
    engine, _ = specify_engine("y ~ x + C(k) + (1 | g)", dd.from_pandas(df, npartitions=3))
    assert engine.design.fixed_names == hierfit.specify("y ~ x + C(k) + (1 | g)", df).design.fixed_names
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        e = hierfit.fit("y ~ x + offset(o) + (1 | g)", dd.from_pandas(df, npartitions=3), **SAMPLE)
        m = hierfit.fit("y ~ x + offset(o) + (1 | g)", df, **SAMPLE)
    ge, gm = hierfit.datagrid(e), hierfit.datagrid(m)
    assert list(ge.columns) == list(gm.columns) and np.allclose(ge.to_numpy(float), gm.to_numpy(float), rtol=1e-12)
    assert len(e.predictions(ge, re_form=hierfit.NA)) == 1

"""Fitting from data held by Dask: exact statistics, posteriors that agree with pandas, errors, distributed passes."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import warnings

import numpy as np
import pandas as pd
import pytest

import hierfit
from hierfit.analysis.predict import predict
from hierfit.analysis.prepare import prepare_draws
from hierfit.analysis.r2 import r2_draws
from hierfit.results.fit import HierFit
from hierfit.spec.layout import sufficient_stats

dd = pytest.importorskip("dask.dataframe")

FIELDS = ("n", "yy", "Xy", "XX", "Zy", "ZX", "ZZ")
SAMPLE = dict(chains=2, draws=300, tune=300, seed=11, progressbar=False, warn=False)


def _rel_err(a, b) -> float:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


@pytest.fixture(scope="module")
def exam_na(exam):
    """exam with missing values in two used columns (dropped like na.omit)."""
    df = exam.copy()
    df.loc[[3, 50, 700], "standLRT"] = np.nan
    df.loc[[10, 50], "normexam"] = np.nan
    return df


def test_import_hierfit_does_not_import_dask():
    code = "import sys, hierfit; print(any(m == 'dask' or m.startswith('dask.') for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": os.getcwd()})
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("formula", ["normexam ~ scale(standLRT) + sex + (standLRT | school)",
                                     "normexam ~ standLRT + (1 | school/student)"])
def test_engine_statistics_equal_in_memory(exam_na, formula):
    from hierfit.data.specify import specify_engine

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", hierfit.DataWarning)
        ref = hierfit.specify(formula, exam_na)
        spec, _ = specify_engine(formula, dd.from_pandas(exam_na, npartitions=5))
    mine, theirs = spec.design.summary.stats, sufficient_stats(ref.design)
    for name in FIELDS:
        assert _rel_err(getattr(mine, name), getattr(theirs, name)) <= 1e-10, name
    assert spec.design.nobs == ref.design.nobs == len(exam_na) - 4
    assert spec.design.n_dropped == ref.design.n_dropped == 4
    assert spec.design.dropped_by_column == ref.design.dropped_by_column
    assert spec.design.fixed_names == ref.design.fixed_names
    assert [b.levels for b in spec.design.blocks] == [b.levels for b in ref.design.blocks]
    pd.testing.assert_frame_equal(spec.priors.table(), ref.priors.table())
    # scale() re-codes new data with the moments of all complete rows, as in memory
    new = exam_na.dropna(subset=["standLRT", "normexam"]).head(6)
    a = spec.design.mu.recode(spec.design.prepare(new))["X"]
    b = ref.design.mu.recode(ref.design.prepare(new))["X"]
    assert _rel_err(a, b) <= 1e-12


def test_engine_posterior_agrees_with_pandas(exam, tmp_path):
    formula = "normexam ~ standLRT + sex + (standLRT | school)"
    ddf = dd.from_pandas(exam, npartitions=4)
    m_dask = hierfit.fit(formula, ddf, **SAMPLE)
    m_mem = hierfit.fit(formula, exam, **{**SAMPLE, "seed": 12})
    assert m_dask.method.name == "collapsed" and m_dask.nobs == 4059
    a, b = m_dask.fixef(), m_mem.fixef()
    ess = m_dask.diagnostics.loc[[f"b[{n}]" for n in a.index], "Bulk_ESS"].to_numpy()
    mcse = np.hypot(a["Est.Error"].to_numpy(), b["Est.Error"].to_numpy()) / np.sqrt(np.minimum(ess, 400))
    assert np.all(np.abs(a["Estimate"] - b["Estimate"]).to_numpy() < 5 * mcse)
    sa, sb = (float(m.draws["sigma"].mean()) for m in (m_dask, m_mem))
    assert abs(sa - sb) < 0.01
    # lazy fitted values and residuals through prepare_draws agree with the in-memory ones
    fitted = m_dask.fitted()
    assert type(fitted).__module__.startswith("dask")
    res = m_dask.residuals().compute()
    y = exam["normexam"].to_numpy()
    np.testing.assert_allclose(res.to_numpy(), y - fitted.compute()["Estimate"].to_numpy(), atol=1e-10)
    ref_res = m_mem.residuals().to_numpy()
    assert np.corrcoef(res.to_numpy(), ref_res)[0, 1] > 0.999
    # R² from the engine's sums equals R² from the rows at the same draws
    m_rows = HierFit(hierfit.specify(formula, exam), m_dask.settings, m_dask.posterior, {})
    r_sums, r_rows = r2_draws(m_dask), r2_draws(m_rows)
    for kind in ("marginal", "conditional"):
        np.testing.assert_allclose(r_sums[kind], r_rows[kind], rtol=1e-8)
    with pytest.raises(hierfit.HierfitError, match="keeps statistics, not rows"):
        prepare_draws(m_dask)  # never the placeholder rows of the design
    # the summary says its residual quartiles come from the engine; min/max are exact
    text = str(m_dask)
    assert "quartiles approximate" in text
    q = m_dask.design.summary.residual_quantiles
    point = prepare_draws(m_rows, point=True)
    scaled = (y - point.expected()[0]) / np.sqrt(point.variance()[0])
    assert abs(q["Min"] - scaled.min()) < 1e-9 and abs(q["Max"] - scaled.max()) < 1e-9
    np.testing.assert_allclose([q["1Q"], q["Median"], q["3Q"]], np.quantile(scaled, [0.25, 0.5, 0.75]), atol=5e-3)
    # predictions for a new Dask frame are lazy and equal the in-memory ones for the same draws
    new = exam.head(9)
    lazy = m_dask.predict(dd.from_pandas(new, npartitions=2))
    np.testing.assert_allclose(lazy.compute()["Estimate"].to_numpy(),
                               predict(m_rows, new)["Estimate"].to_numpy(), rtol=1e-10)
    # save/load keep the statistics (not the rows): the summary survives, fitted() asks for the data again
    m_dask.save(tmp_path / "engine.hfit")
    again = hierfit.load(tmp_path / "engine.hfit")
    assert str(again) == text
    assert _rel_err(again.design.summary.stats.ZZ, m_dask.design.summary.stats.ZZ) == 0
    from hierfit.spec.summaries import DataSummary

    plain = m_dask.design.summary.to_dict()  # plain data, for data-only file formats
    assert _rel_err(DataSummary.from_dict(plain).stats.XX, m_dask.design.summary.stats.XX) == 0
    with pytest.raises(hierfit.HierfitError, match="keeps statistics, not rows"):
        again.fitted()
    np.testing.assert_allclose(again.predict(dd.from_pandas(new, npartitions=1)).compute()["Estimate"],
                               lazy.compute()["Estimate"], rtol=1e-12)


def test_parquet_and_csv_paths(exam, tmp_path):
    from hierfit.data.specify import specify_engine

    formula = "normexam ~ standLRT + (1 | school)"
    for i, part in enumerate(np.array_split(np.arange(len(exam)), 3)):
        exam.iloc[part].to_parquet(tmp_path / f"part{i}.parquet")
        exam.iloc[part].to_csv(tmp_path / f"part{i}.csv", index=False)
    ref = sufficient_stats(hierfit.specify(formula, exam).design)
    for source in (str(tmp_path / "*.parquet"), [str(tmp_path / f"part{i}.csv") for i in range(3)]):
        spec, _ = specify_engine(formula, source)
        for name in FIELDS:
            assert _rel_err(getattr(spec.design.summary.stats, name), getattr(ref, name)) <= 1e-10


def test_engine_errors_match_in_memory(exam):
    ddf = dd.from_pandas(exam, npartitions=2)
    with pytest.raises(hierfit.FormulaError, match="unknown column 'standLTR'.*did you mean 'standLRT'"):
        hierfit.fit("normexam ~ standLTR + (1 | school)", ddf)
    df = exam.assign(when=pd.Timestamp("2020-01-01"))
    with pytest.raises(hierfit.DataError, match="column 'when' holds dates/times"):
        hierfit.fit("normexam ~ when + (1 | school)", dd.from_pandas(df, npartitions=2))
    df = exam.assign(standLRT=np.nan)
    with pytest.raises(hierfit.DataError, match="all 4059 rows have a missing value.*standLRT: 4059 NA"):
        hierfit.fit("normexam ~ standLRT + (1 | school)", dd.from_pandas(df, npartitions=2))
    with pytest.raises(hierfit.HierfitError, match="student family.*in-memory data"):
        hierfit.fit("normexam ~ standLRT + (1 | school)", ddf, family="student")
    with pytest.raises(hierfit.HierfitError, match="crossed, not nested.*in-memory data"):
        hierfit.fit("normexam ~ standLRT + (1 | school) + (1 | student)", ddf)
    df = exam.assign(pos=exam.normexam > 0, x=np.random.default_rng(1).normal(size=len(exam)))
    with pytest.raises(hierfit.HierfitError, match="'x' \\(about \\d+ distinct values\\) is continuous"):
        hierfit.fit("pos ~ x + (1 | school)", dd.from_pandas(df, npartitions=2), family="bernoulli")
    with pytest.raises(hierfit.HierfitError, match="scale\\(exp\\(standLRT\\)\\) learns its coding from all rows"):
        hierfit.fit("normexam ~ scale(exp(standLRT)) + (1 | school)", ddf)


def test_counts_aggregated_exactly():
    from hierfit.data.counts import specify_counts
    from hierfit.spec.formula import parse_formula

    rng = np.random.default_rng(3)
    n = 2000
    df = pd.DataFrame({"a": rng.choice(["u", "v", "w"], n), "k": rng.integers(0, 3, n), "g": rng.integers(0, 15, n)})
    eta = -0.3 + 0.5 * (df.a == "v") + 0.2 * df.k + rng.normal(0, 0.5, 15)[df.g]
    df["y"] = rng.binomial(1, 1 / (1 + np.exp(-eta)))
    df["c"] = rng.poisson(np.exp(eta))
    ddf = dd.from_pandas(df, npartitions=4)
    spec, _ = specify_counts(parse_formula("y ~ a + k + (1 | g)"), ddf, hierfit.families.get("bernoulli"))
    ref = df.groupby(["a", "k", "g"]).agg(s=("y", "sum"), t=("y", "size")).reset_index()
    assert spec.family.name == "binomial"
    assert spec.design.nobs == len(ref) and spec.design.summary.aggregated_from == n
    np.testing.assert_array_equal(np.sort(spec.design.y), np.sort(ref["s"].to_numpy(float)))
    assert spec.design.trials.sum() == n
    # same default priors as the row-level fit (slopes scaled by the rows' predictor sds)
    pd.testing.assert_frame_equal(spec.priors.table(), hierfit.specify("y ~ a + k + (1 | g)", df,
                                                                        "bernoulli").priors.table())
    # the Poisson sum over m rows with a shared eta is Poisson(m * mu): offset log(m), exact
    m_agg = hierfit.fit("c ~ a + k + (1 | g)", ddf, family="poisson", **SAMPLE)
    m_mem = hierfit.fit("c ~ a + k + (1 | g)", df, family="poisson", **{**SAMPLE, "seed": 12})
    a, b = m_agg.fixef(), m_mem.fixef()
    assert np.all(np.abs(a["Estimate"] - b["Estimate"]) < 0.5 * np.hypot(a["Est.Error"], b["Est.Error"]) + 0.02)


def test_pass_runs_in_distributed_workers(exam):
    distributed = pytest.importorskip("distributed")
    from hierfit.data.specify import specify_engine

    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                                  silence_logs=40) as cluster, distributed.Client(cluster) as client:
        workers = set(client.scheduler_info()["workers"])
        ddf = dd.from_pandas(exam, npartitions=6)
        spec, _ = specify_engine("normexam ~ standLRT + (standLRT | school)", ddf)
        summary = spec.design.summary
        assert summary.workers and set(summary.workers) <= workers  # every partition summed in a worker
        assert not any(w.startswith("local:") for w in summary.workers)
        # only statistics reach the client: O(levels * (p + q)^2) numbers, not O(rows)
        stats = summary.stats
        size = sum(getattr(stats, f).size for f in FIELDS)
        assert size == 65 * (1 + 1 + 2 + 4 + 2 + 4 + 4)
        ref = sufficient_stats(hierfit.specify("normexam ~ standLRT + (standLRT | school)", exam).design)
        assert _rel_err(stats.ZZ, ref.ZZ) <= 1e-10


def test_columns_kept_in_workers_between_passes(exam, monkeypatch):
    """Small enough data stay in the workers' memory from the grouped pass to the residual pass, then go."""
    distributed = pytest.importorskip("distributed")
    import gc

    from hierfit.data import resident
    from hierfit.data.specify import specify_engine

    formula = "normexam ~ standLRT + sex + (1 | school)"
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                                  silence_logs=40) as cluster, distributed.Client(cluster) as client:
        ddf = dd.from_pandas(exam, npartitions=4)
        spec, frames = specify_engine(formula, ddf)
        assert frames.resident is not None and frames.lazy is ddf
        keys = {str(k) for k in frames.resident.dask.keys()}  # the persisted partitions (and their aliases)

        def held():
            return keys & {str(k) for ks in client.has_what().values() for k in ks}

        assert len(held()) == 4  # every partition of the formula's columns is in a worker
        ref = sufficient_stats(hierfit.specify(formula, exam).design)
        assert _rel_err(spec.design.summary.stats.XX, ref.XX) <= 1e-10
        frames.release()
        del frames
        gc.collect()
        for _ in range(100):
            if not held():
                break
            time.sleep(0.1)
        assert not held()
        # a whole fit: same residual quartiles as without keeping them, and nothing left in the workers afterwards
        kept = hierfit.fit(formula, ddf, chains=2, draws=200, tune=200, seed=3, progressbar=False, warn=False)
        monkeypatch.setattr(resident, "RESIDENT_SHARE", 1e-12)
        spec2, frames2 = specify_engine(formula, ddf)
        assert frames2.resident is None  # too large for the (tiny) share: every pass reads again
        again = hierfit.fit(formula, ddf, chains=2, draws=200, tune=200, seed=3, progressbar=False, warn=False)
        assert kept.design.summary.residual_quantiles == again.design.summary.residual_quantiles
        gc.collect()

        def resident_left():
            return any(str(k).startswith(("getitem", "operation", "frompandas", "from_pandas"))
                       for ks in client.has_what().values() for k in ks)
        for _ in range(100):  # the scheduler forgets released keys a moment later
            if not resident_left():
                break
            time.sleep(0.1)
        assert not resident_left()  # the fit released its resident columns


def test_parquet_read_once_when_it_fits(exam, tmp_path):
    """Parquet columns that fit in the workers are read once: the passes then run without the files."""
    distributed = pytest.importorskip("distributed")
    from hierfit.data.metadata import scan_metadata
    from hierfit.data.predict import residual_quantiles
    from hierfit.data.specify import specify_engine
    from hierfit.data.stats import grouped_stats
    from hierfit.spec.formula import parse_formula
    from hierfit.spec.layout import collapsed_layout

    for i, part in enumerate(np.array_split(np.arange(len(exam)), 3)):
        exam.iloc[part].to_parquet(tmp_path / f"part{i}.parquet")
    formula = "normexam ~ standLRT + (1 | school)"
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                                  silence_logs=40) as cluster, distributed.Client(cluster):
        spec, frames = specify_engine(formula, str(tmp_path / "*.parquet"))
        assert frames.resident is not None
        fit = hierfit.fit(formula, str(tmp_path / "*.parquet"), chains=2, draws=200, tune=200, seed=1,
                          progressbar=False, warn=False)
        for f in tmp_path.glob("*.parquet"):
            f.unlink()
        md = scan_metadata(frames.passes, [parse_formula(formula)], {"normexam"})
        assert md.nrows == len(exam)
        stats = grouped_stats(frames.passes, spec.design, collapsed_layout(spec.design), md.used, None)[0]
        assert _rel_err(stats.ZZ, spec.design.summary.stats.ZZ) == 0
        assert residual_quantiles(fit, frames.passes) == fit.design.summary.residual_quantiles
        with pytest.raises(Exception):  # other columns would be read from the (deleted) files
            frames.lazy[["schavg"]].sum().compute()


def test_pass_tasks_run_where_their_partition_is(exam):
    """Over columns kept in the workers, a pass's task runs in the worker holding its partition: no copies."""
    distributed = pytest.importorskip("distributed")
    from dask.utils import key_split

    from hierfit.data.passes import run_pass

    def where(part):
        return [(distributed.get_worker().address, len(part))]

    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                                  silence_logs=40) as cluster, distributed.Client(cluster) as client:
        kept = dd.from_pandas(exam, npartitions=12)[["normexam", "standLRT"]].persist()
        distributed.wait(kept)
        holders = client.who_has(distributed.futures_of(kept))
        order = sorted(distributed.futures_of(kept), key=lambda f: f.key[1])
        with distributed.get_task_stream(client) as ts:
            ran = run_pass(where, kept, ["normexam", "standLRT"], (), lambda *parts: sum(parts, []), split_every=4)
        assert len(ran) == 12 and sum(n for _, n in ran) == len(exam)
        assert [w for w, _ in ran] == [holders[f.key][0] for f in order]  # each task where its partition is
        moved = [t for t in ts.data if "where" in str(t["key"])
                 and any(s["action"] == "transfer" for s in t["startstops"])]
        assert not moved
        # the tasks read the kept partitions themselves: no per-partition tasks in between that Dask could place
        # elsewhere (to_delayed() adds one per partition)
        assert sorted({key_split(t["key"]) for t in ts.data}) == ["lambda", "where"]
        # a pass whose partials add exactly in any order: a worker's partitions split_every at a time in one task
        counts = {}
        for w, _ in ran:
            counts[w] = counts.get(w, 0) + 1
        with distributed.get_task_stream(client) as ts:
            batched = run_pass(where, kept, ["normexam", "standLRT"], (), lambda *parts: sum(parts, []),
                               split_every=4, exact=True)
        assert sorted(batched) == sorted(ran)
        tasks = [t for t in ts.data if key_split(t["key"]) == "batch"]
        assert len(tasks) == sum(-(-n // 4) for n in counts.values()) < 12
        assert not [t for t in tasks if any(s["action"] == "transfer" for s in t["startstops"])]

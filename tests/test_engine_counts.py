"""Count models fitted from Dask through exact aggregation (hierfit.data.counts): the same checks, coding and
answers as the in-memory fit of the same rows.

Most checks are on the specification (no sampling); the fits are small and shared by the module.
"""

import numpy as np
import pandas as pd
import pytest

import hierfit

dd = pytest.importorskip("dask.dataframe")

from hierfit.data.specify import specify_engine  # noqa: E402
from hierfit.spec.formula import parse_formula  # noqa: E402

SAMPLE = dict(chains=2, draws=200, tune=200, progressbar=False, warn=False)


def _data(n=1500, seed=0):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"a": rng.choice(["u", "v", "w"], n), "k": rng.choice([0, 1, 2, 10], n, p=[.6, .2, .1, .1]),
                       "g": rng.integers(0, 12, n), "expo": rng.choice([1.0, 2.0, 4.0], n),
                       "n": rng.integers(1, 6, n)})
    eta = -0.3 + 0.5 * (df.a == "v") + 0.1 * df.k + rng.normal(0, 0.3, 12)[df.g]
    p = 1 / (1 + np.exp(-eta))
    df["y"] = rng.binomial(1, p)
    df["s"] = rng.binomial(df.n, p)
    df["c"] = rng.poisson(df.expo * np.exp(eta))
    return df


@pytest.fixture(scope="module")
def df():
    return _data()


def _ddf(frame):
    return dd.from_pandas(frame, npartitions=3)


def _message(run):
    with pytest.raises(hierfit.HierfitError) as info:
        run()
    return type(info.value), str(info.value)


# -- the response checks -------------------------------------------------------------------------------------------

def _bad(df, case):
    d = df.copy()
    if case == "bernoulli 2":
        d.loc[3, "y"] = 2
        return d, "y ~ a + (1 | g)", "bernoulli"
    if case == "bernoulli labels":
        d["y"] = d.y.map({0: "no", 1: "yes"})
        return d, "y ~ a + (1 | g)", "bernoulli"
    if case == "poisson half":
        d["c"] = d.c.astype(float)
        d.loc[3, "c"] = 0.5
        return d, "c ~ a + (1 | g)", "poisson"
    if case == "poisson two halves in one pattern":  # they sum to 1: only the rows tell
        d["c"] = d.c.astype(float)
        d.loc[d.index[(d.a == "u") & (d.g == 0)][:2], "c"] = 0.5
        return d, "c ~ a + (1 | g)", "poisson"
    if case == "poisson negative":
        d.loc[[3, 4, 5], "c"] = -1
        return d, "c ~ a + (1 | g)", "poisson"
    if case == "poisson infinite":
        d["c"] = d.c.astype(float)
        d.loc[7, "c"] = np.inf
        return d, "c ~ a + (1 | g)", "poisson"
    if case == "binomial successes > trials":
        d.loc[[3, 9], "s"] = d.loc[[3, 9], "n"] + 1
        return d, "s | trials(n) ~ a + (1 | g)", "binomial"
    if case == "binomial trials 0":
        d.loc[3, ["s", "n"]] = 0
        return d, "s | trials(n) ~ a + (1 | g)", "binomial"
    if case == "cbind negative":
        d["f"] = d.n - d.s
        d.loc[5, "s"] = -2
        return d, "cbind(s, f) ~ a + (1 | g)", "binomial"
    raise AssertionError(case)


@pytest.mark.parametrize("case", ["bernoulli 2", "bernoulli labels", "poisson half",
                                  "poisson two halves in one pattern", "poisson negative", "poisson infinite",
                                  "binomial successes > trials", "binomial trials 0", "cbind negative"])
def test_bad_responses_refused_as_in_memory(df, case):
    data, formula, family = _bad(df, case)
    memory = _message(lambda: hierfit.specify(formula, data, family))
    engine = _message(lambda: specify_engine(formula, _ddf(data), family))
    assert engine == memory  # same class, same words: the user's column and the number of ROWS
    assert issubclass(engine[0], hierfit.DataError)


@pytest.mark.parametrize("formula,family", [("y | weights(n) ~ a + (1 | g)", "bernoulli"),
                                            ("c | weights(n) ~ a + (1 | g)", "poisson"),
                                            ("s | trials(n) + weights(expo) ~ a + (1 | g)", "binomial")])
def test_addition_terms_refused(df, formula, family):
    with pytest.raises(hierfit.HierfitError, match=r"weights\(\).*cannot keep.*needs in-memory data"):
        specify_engine(formula, _ddf(df), family)


def test_poisson_needs_the_log_link(df):
    with pytest.raises(hierfit.HierfitError, match="exact only with the log link.*'identity'.*in-memory data"):
        specify_engine("c ~ a + k + (1 | g)", _ddf(df), hierfit.families.poisson(link="identity"))


def _eta(design, b, r):
    eta = design.X @ b
    for blk in design.blocks:
        eta = eta + (blk.Z * r[blk.index]).sum(axis=1)
    return eta + (design.mu.offset if design.mu.offset is not None else 0.0)


@pytest.mark.parametrize("formula,family", [
    ("y ~ a + k + (1 | g)", hierfit.families.bernoulli(link="probit")),
    ("y ~ a + k + (1 | g)", hierfit.families.bernoulli(link="cloglog")),
    ("s | trials(n) ~ a + k + (1 | g)", hierfit.families.binomial(link="probit")),
    ("c ~ a + k + (1 | g)", hierfit.families.poisson()),
])
def test_aggregated_likelihood_is_the_rows_up_to_a_constant(df, formula, family):
    """The patterns' log-likelihood minus the rows' does not depend on the parameters, for any binomial link."""
    rows = hierfit.specify(formula, df, family).design
    pats = specify_engine(formula, _ddf(df), family)[0].design
    assert pats.nobs < rows.nobs and pats.fixed_names == rows.fixed_names
    assert pats.blocks[0].levels == rows.blocks[0].levels
    rng = np.random.default_rng(1)
    diffs = []
    for _ in range(3):
        b, r = rng.normal(0, 0.3, rows.X.shape[1]), rng.normal(0, 0.3, (len(rows.blocks[0].levels), 1))
        ll = [d.family.logpdf(d.y, d.family.mean_parameter(_eta(d, b, r)), {}, d.trials).sum() for d in (rows, pats)]
        diffs.append(ll[1] - ll[0])
    assert np.ptp(diffs) < 1e-8 * abs(np.mean(diffs)) + 1e-8


# -- what the aggregation reads ------------------------------------------------------------------------------------

def test_integer_group_ids_with_many_levels(df):
    rng = np.random.default_rng(2)
    big = pd.DataFrame({"a": rng.choice(["u", "v"], 8000), "uid": rng.integers(0, 3000, 8000),
                        "y": rng.integers(0, 2, 8000)})
    as_int = specify_engine("y ~ a + (1 | uid)", _ddf(big), "bernoulli")[0].design
    as_str = specify_engine("y ~ a + (1 | suid)", _ddf(big.assign(suid="u" + big.uid.astype(str))), "bernoulli")[0]
    assert as_int.nobs == as_str.design.nobs and as_int.ngrps["uid"] == big.uid.nunique()
    # a column that is also a numeric predictor is still a continuous predictor
    with pytest.raises(hierfit.HierfitError, match="'uid' \\(about \\d+ distinct values\\) is continuous"):
        specify_engine("y ~ a + uid + (1 | uid)", _ddf(big), "bernoulli")


def test_scale_uses_the_rows_moments(df):
    formula = "c ~ scale(k) + a + (1 | g)"
    spec = specify_engine(formula, _ddf(df), "poisson")[0]
    state = spec.design.mu.fixed_spec.transform_state["scale(k)"]
    assert state["center"] == pytest.approx(df.k.mean(), rel=1e-12)
    assert state["scale"] == pytest.approx(df.k.std(), rel=1e-12)
    pats = spec.design.frame.reset_index(drop=True)
    col = spec.design.fixed_names.index("scale(k)")
    np.testing.assert_allclose(spec.design.X[:, col], (pats.k - df.k.mean()) / df.k.std(), rtol=1e-12)
    memory = hierfit.specify(formula, df, "poisson")
    pd.testing.assert_frame_equal(spec.priors.table(), memory.priors.table())
    # other stateful transforms would learn their coding from the patterns: refused
    with pytest.raises(hierfit.HierfitError, match="poly\\(k, 2\\) learns its coding from all rows"):
        specify_engine("c ~ poly(k, 2) + a + (1 | g)", _ddf(df), "poisson")


# -- fits: predictions on the rows' scale --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def bern(df):
    formula = "y ~ a + k + (1 | g)"
    return (hierfit.fit(formula, _ddf(df), family="bernoulli", seed=1, **SAMPLE),
            hierfit.fit(formula, df, family="bernoulli", seed=2, **SAMPLE))


@pytest.fixture(scope="module")
def pois(df):
    formula = "c ~ a + k + (1 | g)"
    return (hierfit.fit(formula, _ddf(df), family="poisson", offset="log(expo)", seed=3, **SAMPLE),
            hierfit.fit(formula, df, family="poisson", offset="log(expo)", seed=4, **SAMPLE))


@pytest.fixture(scope="module")
def binom(df):
    return hierfit.fit("s | trials(n) ~ a + k + (1 | g)", _ddf(df), family="binomial", seed=5, **SAMPLE)


def _pattern_of(fit, rows):
    """Position of each row's pattern among the fit's patterns, and the patterns' expected counts and rows."""
    design = fit.design
    pats = design.frame.reset_index(drop=True)
    keys = [c for c in pats.columns if not c.startswith("hierfit_")]
    key = lambda v: tuple(x if isinstance(x, str) else float(x) for x in v)  # noqa: E731 - 0 and 0.0 alike
    lookup = {key(v): i for i, v in enumerate(pats[keys].itertuples(index=False))}
    pos = np.array([lookup[key(v)] for v in rows[keys].itertuples(index=False)])
    return pos, fit.fitted()["Estimate"].to_numpy(), np.asarray(design.summary.aggregation["rows"])


def test_bernoulli_predicts_one_row_as_one_trial(df, bern, tmp_path):
    fit, _ = bern
    new = df.head(8)
    pred = fit.predict(new)["Estimate"].to_numpy()
    pos, fitted, rows = _pattern_of(fit, new)
    # the pattern's expected successes over its trials: the probability of one row
    np.testing.assert_allclose(pred, fitted[pos] / fit.design.trials[pos], rtol=1e-10)
    lazy = fit.predict(_ddf(new)).compute()["Estimate"].to_numpy()
    np.testing.assert_allclose(lazy, pred, rtol=1e-12)
    fit.save(tmp_path / "bern.hfit")
    loaded = hierfit.load(tmp_path / "bern.hfit")
    np.testing.assert_allclose(loaded.predict(new)["Estimate"].to_numpy(), pred, rtol=1e-12)


def test_poisson_predicts_one_row_with_its_offset(df, pois, tmp_path):
    fit, memory = pois
    new = df.head(8)
    pred = fit.predict(new)["Estimate"].to_numpy()
    pos, fitted, rows = _pattern_of(fit, new)
    np.testing.assert_allclose(pred, fitted[pos] / rows[pos], rtol=1e-10)  # one row of the pattern's rows
    ref = memory.predict(new)
    assert np.all(np.abs(pred - ref["Estimate"]) < 3 * ref["Est.Error"] + 0.02)


def test_scale_survives_save_and_load(df, tmp_path):
    fit = hierfit.fit("c ~ scale(k) + a + (1 | g)", _ddf(df), family="poisson", seed=6, **SAMPLE)
    fit.save(tmp_path / "scaled.hfit")
    loaded = hierfit.load(tmp_path / "scaled.hfit")  # its design is rebuilt from the patterns: the rows' moments again
    state = loaded.design.mu.fixed_spec.transform_state["scale(k)"]
    assert state["center"] == pytest.approx(df.k.mean(), rel=1e-12)
    np.testing.assert_allclose(loaded.predict(df.head(6))["Estimate"], fit.predict(df.head(6))["Estimate"],
                               rtol=1e-12)


def test_binomial_predicts_with_each_rows_trials(df, binom):
    new = df.head(8)
    pred = binom.predict(new)["Estimate"].to_numpy()
    pos, fitted, _ = _pattern_of(binom, new)
    np.testing.assert_allclose(pred, new.n.to_numpy() * fitted[pos] / binom.design.trials[pos], rtol=1e-10)
    with pytest.raises(hierfit.DataError, match="newdata lacks column\\(s\\) 'n'"):
        binom.predict(new.drop(columns="n"))
    with pytest.raises(hierfit.HierfitError, match="by='n'.*not each row's 'n'"):
        binom.avg_predictions(by="n")
    grid = hierfit.datagrid(binom)
    assert grid["n"].iloc[0] == pytest.approx(df.n.mean(), rel=1e-12)  # trials at their mean over the rows
    assert grid["k"].iloc[0] == pytest.approx(df.k.mean(), rel=1e-12)


def test_reference_grid_on_the_rows_scale(df, bern, pois):
    from hierfit.data.counts import row_mean_offset

    fit, memory = bern
    grid = hierfit.datagrid(fit)
    assert list(grid.columns) == ["a", "k"] and grid["k"].iloc[0] == pytest.approx(df.k.mean(), rel=1e-12)
    em, ref = fit.emmeans("a"), memory.emmeans("a")
    assert em["Estimate"].between(0, 1).all()  # probabilities, not expected successes of a pattern
    assert np.all(np.abs(em["Estimate"] - ref["Estimate"]) < 3 * np.hypot(em["Est.Error"], ref["Est.Error"]))
    pfit, pmemory = pois
    assert row_mean_offset(pfit.design) == pytest.approx(np.log(df.expo).mean(), rel=1e-12)
    em, ref = pfit.emmeans("a"), pmemory.emmeans("a")
    assert np.all(np.abs(em["Estimate"] - ref["Estimate"]) < 3 * np.hypot(em["Est.Error"], ref["Est.Error"]))


def test_averages_weight_the_patterns_by_their_rows(df, bern, pois):
    for fit in (bern[0], pois[0]):
        avg = fit.avg_predictions(by="a")
        pos, fitted, rows = _pattern_of(fit, df)
        # the average over the rows of each row's expected value: the patterns' expected totals over their rows
        per_row = fitted[pos] / rows[pos]
        expect = pd.Series(per_row).groupby(df.a.to_numpy()).mean()
        np.testing.assert_allclose(avg["Estimate"].to_numpy(), expect.loc[avg["a"]].to_numpy(), rtol=1e-9)
        assert fit.avg_predictions()["Estimate"].iloc[0] == pytest.approx(per_row.mean(), rel=1e-9)
    fit, memory = bern
    # on the link scale a step h in k changes every row by b_k * h: the steps are the rows' sd and quartiles
    b_k = fit.fixef().loc["k", "Estimate"]
    step = fit.avg_comparisons({"k": "sd"}, kind="link")["Estimate"].iloc[0] / b_k
    assert step == pytest.approx(df.k.std(), rel=1e-9)
    step = fit.avg_comparisons({"k": "iqr"}, kind="link")["Estimate"].iloc[0] / b_k
    assert step == pytest.approx(np.subtract(*np.quantile(df.k, [0.75, 0.25])), rel=1e-9)
    for got, ref in [(fit.avg_comparisons({"k": "sd"}), memory.avg_comparisons({"k": "sd"})),
                     (fit.avg_comparisons({"k": "iqr"}), memory.avg_comparisons({"k": "iqr"})),
                     (fit.avg_slopes("k"), memory.avg_slopes("k")),
                     (fit.avg_comparisons("a", comparison="ratio"), memory.avg_comparisons("a", comparison="ratio"))]:
        assert np.all(np.abs(got["Estimate"] - ref["Estimate"]) < 3 * np.hypot(got["Est.Error"], ref["Est.Error"]))


def test_weighted_quantile_is_the_rows_quantile():
    from hierfit.analysis.marginal import _quantile

    rng = np.random.default_rng(3)
    values, weights = rng.normal(size=40), rng.integers(1, 30, 40).astype(float)
    q = [0.0, 0.1, 0.25, 0.5, 0.75, 0.93, 1.0]
    np.testing.assert_allclose(_quantile(values, weights, q), np.quantile(np.repeat(values, weights.astype(int)), q),
                               rtol=1e-12)


def test_per_row_answers_need_the_rows(df, bern):
    fit, _ = bern
    with pytest.raises(hierfit.HierfitError, match="predictions per row of a fit whose 1500 rows were aggregated"):
        fit.predictions()
    with pytest.raises(hierfit.HierfitError, match="kind='response' averages simulated responses"):
        fit.avg_predictions(kind="response")
    with pytest.raises(hierfit.HierfitError, match="slopes per row"):
        fit.slopes("k")
    assert len(fit.predictions(df.head(5))) == 5  # with the rows, per row as in memory


def test_summary_shows_the_formula_as_written(bern):
    text = str(bern[0].summary())
    assert "Formula: y ~ a + k + (1 | g)" in text and "hierfit_successes" not in text
    assert "1500 rows aggregated exactly into" in text


@pytest.mark.parametrize("ids", [lambda s: s, lambda s: s.astype(str)], ids=["integer", "string"])
def test_too_many_group_levels_refused_before_the_group_by(monkeypatch, ids):
    import hierfit.data.counts as counts

    monkeypatch.setattr(counts, "MAX_PATTERNS", 100)
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"y": rng.integers(0, 2, 2000), "a": rng.choice(["u", "v"], 2000),
                       "uid": ids(pd.Series(rng.integers(0, 500, 2000)))})
    with pytest.raises(hierfit.HierfitError, match=r"'uid' \(about \d+ levels\) alone make more than 100 count"):
        counts.specify_counts(parse_formula("y ~ a + (1 | uid)"), dd.from_pandas(df, npartitions=2),
                              hierfit.families.get("bernoulli"))


def test_binomial_without_trials_and_bernoulli_with_trials_are_refused():
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"y": rng.integers(0, 2, 400), "n": 3, "a": rng.choice(["u", "v"], 400),
                       "g": rng.integers(0, 8, 400)})
    ddf = dd.from_pandas(df, npartitions=2)
    with pytest.raises(hierfit.DataError, match="binomial response 'y' needs trials"):
        hierfit.specify("y ~ a + (1 | g)", df, family="binomial")  # as in memory
    with pytest.raises(hierfit.DataError, match="binomial response 'y' needs trials"):
        specify_engine("y ~ a + (1 | g)", ddf, family="binomial")
    with pytest.raises(hierfit.HierfitError, match="one trial per row"):
        specify_engine("y | trials(n) ~ a + (1 | g)", ddf, family="bernoulli")
    with pytest.raises(hierfit.HierfitError, match="method must be one of"):
        specify_engine("y ~ a + (1 | g)", ddf, family="bernoulli", method="fll")

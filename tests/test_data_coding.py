"""The grouped pass's numpy coding gives formulaic's columns exactly, and leaves what it cannot code to formulaic."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import hierfit
from hierfit.data.coding import CHECK_ROWS, fast_coder
from hierfit.data.metadata import _combine, _partition_metadata, _PassSpec
from hierfit.data.stats import formulaic_code
from hierfit.spec.design import build_design


def _frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "y": rng.normal(size=n).astype(np.float32), "x": rng.normal(size=n), "z": rng.integers(-3, 9, n),
        "w": rng.normal(size=n).astype(np.float32), "sex": rng.choice(["F", "M"], n),
        "c": pd.Categorical(rng.choice(["lo", "mid", "hi"], n), categories=["lo", "mid", "hi"]),
        "g": rng.integers(0, 40, n).astype(np.int32), "h": rng.choice(list("abcde"), n)})


CODED = ["y ~ x + sex + (x | g)", "y ~ x * sex + c + (1 | g)", "y ~ x:c + z:sex + c:sex + (x + c | g)",
         "y ~ 0 + c + x:c + (0 + sex | g)", "y ~ scale(x) + center(z) + scale(w):sex + (scale(x) | g)",
         "y ~ x + w + (x || g)", "y ~ x + (1 | g/h)", "y ~ x + (x | g:h)"]
NOT_CODED = ["y ~ log(w + 10) + (1 | g)", "y ~ poly(x, 2) + (1 | g)", "y ~ x:z:w + (1 | g)",
             "y ~ C(c, contr.sum) + (1 | g)", "y ~ x + offset(z) + (1 | g)", "log(y + 10) ~ x + (1 | g)"]


def _used(design) -> list[str]:
    return list(dict.fromkeys(t.text for t in design.formula.variables))


@pytest.mark.parametrize("formula", CODED)
def test_numpy_coding_equals_formulaic(formula):
    train = _frame(400, 1)
    d = build_design(formula, train)
    used = _used(d)
    coder = fast_coder(d, used)
    assert coder is not None
    for seed in (2, 3):  # new partitions: other rows, a categorical column with its categories in another order
        part = _frame(3000, seed)[used].copy()
        if "c" in used:
            part["c"] = part["c"].cat.reorder_categories(["hi", "lo", "mid"])
        calls = []

        def fallback(p):
            calls.append(len(p))
            return formulaic_code(p, d, used)

        mine = coder.code(part, fallback)
        ref = formulaic_code(part, d, used)
        assert calls == ([CHECK_ROWS] if seed == 2 else [])  # formulaic checks the first rows of new dtypes only
        assert np.array_equal(mine[0], ref[0]) and np.array_equal(mine[1], ref[1])
        assert all(np.array_equal(a, b) for a, b in zip(mine[2], ref[2]))
        assert all(np.array_equal(a, b) for a, b in zip(mine[3], ref[3]))
        assert not coder.broken


@pytest.mark.parametrize("formula", NOT_CODED)
def test_other_terms_are_left_to_formulaic(formula):
    d = build_design(formula, _frame(400, 1))
    assert fast_coder(d, _used(d)) is None


def test_unseen_levels_and_wrong_types_go_to_formulaic_and_its_errors():
    d = build_design("y ~ x * sex + (1 | g)", _frame(400, 1))
    used = _used(d)
    coder = fast_coder(d, used)
    part = _frame(50, 4)[used].copy()
    part.loc[7, "sex"] = "X"
    with pytest.raises(hierfit.DataError, match="'X'"):
        coder.code(part, lambda p: formulaic_code(p, d, used))
    part = _frame(50, 4)[used].copy()
    part["x"] = part["x"].astype(str)  # numpy would not see the problem; formulaic's path names it
    with pytest.raises(hierfit.HierfitError):
        coder.code(part, lambda p: formulaic_code(p, d, used))


def test_a_column_that_differs_turns_numpy_off():
    d = build_design("y ~ x + sex + (1 | g)", _frame(400, 1))
    used = _used(d)
    coder = fast_coder(d, used)
    part = _frame(300, 5)[used]

    def shifted(p):  # a reference that disagrees: the coder must give formulaic's answer and stop using numpy
        y, X, Z, idx = formulaic_code(p, d, used)
        return y, X + 1.0, Z, idx

    out = coder.code(part, shifted)
    assert coder.broken
    assert np.array_equal(out[1], formulaic_code(part, d, used)[1] + 1.0)


def test_metadata_partials_add_up_to_the_whole():
    df = _frame(5000, 6)
    df.loc[[3, 99, 4000], "x"] = np.nan
    df.loc[[99, 17], "sex"] = None
    used = ["y", "x", "sex", "c", "g"]
    spec = _PassSpec(used, ["y", "x", "g"], ["sex", "c"], [], ["g"])
    parts = [_partition_metadata(df.iloc[i:i + 700], spec) for i in range(0, len(df), 700)]
    tot = _combine(_combine(*parts[:3]), _combine(*parts[3:]))
    clean = df[used].dropna()
    assert tot["nrows"] == 5000 and tot["dropped"] == 4 and tot["na"]["x"] == 3 and tot["na"]["sex"] == 2
    for c in ("y", "x", "g"):
        n, lo, hi, mean, m2 = tot["moments"][c]
        v = clean[c].astype(float)
        assert n == len(v) and lo == v.min() and hi == v.max()
        assert mean == pytest.approx(v.mean(), rel=1e-13, abs=1e-13)
        assert np.sqrt(m2 / (n - 1)) == pytest.approx(v.std(ddof=1), rel=1e-12)
    assert tot["present"]["sex"] == {"F", "M"} and tot["categories"]["c"] == ["lo", "mid", "hi"]
    assert sorted(tot["combos"]["g"].tolist()) == sorted(clean["g"].drop_duplicates().tolist())


def test_prepare_recodes_categorical_partitions_like_object_values():
    """Categorical columns are converted category by category; the result equals converting every value."""
    d = build_design("y ~ x + c + (1 | g)", _frame(400, 1))
    part = _frame(500, 7)
    part.loc[[4, 9], "c"] = np.nan
    cats = d.categories["c"]
    for order in (["hi", "lo", "mid"], ["mid", "zz", "lo", "hi"]):  # another order; an unused unseen category
        p = part.copy()
        p["c"] = p["c"].cat.set_categories(order)
        got = d.prepare(p)["c"]
        expected = pd.Categorical(p["c"].astype(object), categories=cats)
        assert got.dtype == expected.dtype and np.array_equal(got.cat.codes.to_numpy(), expected.codes)
    p = part.copy()
    p["c"] = p["c"].cat.add_categories(["zz"])
    p.loc[11, "c"] = "zz"
    with pytest.raises(hierfit.DataError, match="'zz'"):
        d.prepare(p)


def test_group_index_of_integer_levels():
    from hierfit.spec.columns import level_label
    from hierfit.spec.predictor import group_index

    g = pd.DataFrame({"g": np.array([5, -2, 40, 5, 7, 40], dtype=np.int32)})
    levels = ["-2", "5", "7", "9"]
    idx, labels = group_index(g, ("g",), levels)
    expected = [levels.index(level_label(v)) if level_label(v) in levels else -1 for v in g["g"]]
    assert idx.tolist() == expected and labels == [level_label(v) for v in g["g"]]
    assert group_index(g, ("g",), levels, labels=False)[1] is None


@pytest.mark.parametrize("ids", [np.arange(40), np.arange(40) * 7 - 100, np.array([3, 10**6, 5, 9, 2])])
def test_integer_group_ids_by_table_equal_formulaic(ids):
    """Integer group ids are looked up in a table (dense ids) or by label (sparse ids): the same level index."""
    rng = np.random.default_rng(5)
    train = _frame(400, 1)
    train["g"] = rng.choice(ids, len(train))
    d = build_design("y ~ x + (x | g)", train)
    used = ["y", "x", "g"]
    coder = fast_coder(d, used)
    dense = ids.max() - ids.min() < 10**5
    assert (coder.luts[0] is not None) == dense
    part = train.sample(frac=1.0, random_state=2)[used]
    mine = coder.code(part, lambda p: formulaic_code(p, d, used))
    np.testing.assert_array_equal(mine[3][0], formulaic_code(part, d, used)[3][0])
    # an id the training data did not have, inside and outside the table's range: -1, as formulaic codes it
    for new_id in (int(ids.min()) + 1, int(ids.max()) + 10**7):
        if new_id in set(ids.tolist()):
            continue
        bad = part.copy()
        bad.iloc[5, bad.columns.get_loc("g")] = new_id
        got = coder.code(bad, lambda p: formulaic_code(p, d, used))[3][0]
        np.testing.assert_array_equal(got, formulaic_code(bad, d, used)[3][0])
        assert got[5] == -1 and (np.delete(got, 5) >= 0).all()


def test_integer_lut_refuses_labels_that_are_not_plain_integers():
    from hierfit.data.coding import _integer_lut

    class Blk:
        factors = ("g",)
        levels = ["007", "8"]

    assert _integer_lut(Blk()) is None
    Blk.levels = ["-2", "5", "3"]
    lo, table = _integer_lut(Blk())
    assert lo == -2 and table[[0, 7, 5]].tolist() == [0, 1, 2] and table[1] == -1


def test_compiled_histogram_bins_like_numpy():
    """The grouped pass's response histogram (compiled, no temporaries) bins exactly as numpy's expression did."""
    from hierfit.data.accumulate import add_histogram

    rng = np.random.default_rng(0)
    y = rng.normal(size=100_003) * 3
    y[:6] = [-100.0, 100.0, 2.5, -2.5, 0.0, 7.5]  # out of range both sides, the top edge
    bins = 1 << 12
    for lo, hi in ((-7.0, 7.5), (0.0, 1e-9), (-3.0, 3.0)):
        span = max(hi - lo, 1e-300)
        ref = np.bincount(np.clip(((y - lo) / span * bins).astype(np.int64), 0, bins - 1), minlength=bins)
        hist = np.zeros(bins)
        add_histogram(y, lo, span, hist)
        np.testing.assert_array_equal(hist, ref)


@pytest.mark.parametrize("formula", CODED)
def test_compiled_sweep_sums_what_the_materialised_columns_sum(formula):
    """The grouped pass's sweep over raw columns gives the statistics of formulaic's design matrices, bit for bit."""
    from hierfit.data.stats import StatsPlan, partition_stats
    from hierfit.spec.layout import collapsed_layout, collapsible

    d = build_design(formula, _frame(5000, 4))  # the metadata pass has seen every level of the partition
    if not collapsible(d)[0]:
        pytest.skip("not a collapsed-sampler design")  # the grouped pass never sees it
    used = _used(d)
    plan = StatsPlan(d, collapsed_layout(d), used, (-5.0, 5.0))
    slow = StatsPlan(d, collapsed_layout(d), used, (-5.0, 5.0))
    slow.coder = None  # formulaic's columns, materialised
    assert plan.fused is not None
    part = _frame(5000, 4)[used]
    part.iloc[7, 0] = np.nan  # a row with a missing value is left out by both
    fast, ref = partition_stats(part, plan), partition_stats(part, slow)
    assert fast["rows"] == ref["rows"] == 4999
    assert np.array_equal(plan.cross(fast["packed"]), slow.cross(ref["packed"]))
    assert np.array_equal(fast["hist"], ref["hist"])
    assert np.array_equal(fast["sums"], ref["sums"])


def test_compiled_sweep_counts_nonfinite_columns():
    from hierfit.data.stats import StatsPlan, partition_stats
    from hierfit.spec.layout import collapsed_layout

    d = build_design("y ~ x + sex + (x | g)", _frame(400, 1))
    used = _used(d)
    part = _frame(300, 5)[used]
    part.loc[[260, 270, 280], "x"] = np.inf  # after the first rows, which formulaic checks (and would refuse)
    plan = StatsPlan(d, collapsed_layout(d), used, None)
    out = partition_stats(part, plan)
    # W = [1, (Intercept), x, sexM, Z (Intercept), Z x, y]: x appears twice
    assert out["bad"] == {2: 3, 5: 3}


@pytest.mark.parametrize("formula", CODED)
def test_raw_rows_linear_predictor_equals_the_design_matrices(formula):
    """prepare_draws' linear predictor from raw columns (compiled) equals X b + sum Z r[index] from coded matrices."""
    from hierfit.data.coding import RawRows
    from hierfit.results.draws import linear_predictor

    d = build_design(formula, _frame(400, 1))
    used = _used(d)
    coder = fast_coder(d, used)
    part = _frame(3000, 7)[used]
    fallback = lambda p: formulaic_code(p, d, used)  # noqa: E731
    y, X, Z, index = coder.code(part, fallback)
    V, C, index_raw = coder.raw_columns(part, fallback)
    assert all(np.array_equal(a, b) for a, b in zip(index, index_raw)) and np.array_equal(V[0], y)
    rng = np.random.default_rng(3)
    S = 3
    b = rng.normal(size=(S, X.shape[1]))
    r = [rng.normal(size=(S, blk.n_levels, blk.n_coefs)) for blk in d.mu.blocks]
    ref = linear_predictor(b, X, [(rj, Zj, ij) for rj, Zj, ij in zip(r, Z, index)])
    got = linear_predictor(b, RawRows(V, C, coder), [(rj, j, ij) for j, (rj, ij) in enumerate(zip(r, index_raw))])
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("ids", [np.array([10**17 + 3, 10**17 - 5, 10**17 + 3, 10**17], dtype=np.int64),
                                 np.array([2**63 + 7, 2**63 + 1, 5], dtype=np.uint64),
                                 np.array([-40, 7, -40, 2**31 - 1], dtype=np.int32),
                                 pd.array([4, 2, 4, 9], dtype="Int64")])
def test_metadata_group_ids_exact_for_any_integers(ids):
    """Distinct integer group ids are exact however large (float moments would round them), nullable ints too."""
    df = pd.DataFrame({"y": np.arange(len(ids), dtype=float), "g": ids})
    out = _partition_metadata(df, _PassSpec(["y", "g"], ["y", "g"], [], [], ["g"]))
    assert sorted(out["combos"]["g"].tolist()) == sorted(set(pd.Series(ids).tolist()))


@pytest.mark.parametrize("formula", CODED)
def test_simple_sweeps_equal_the_general_ones(formula):
    """Columns with at most one numeric factor and one indicator go through the unrolled sweeps: same sums, bit for
    bit, and the same linear predictor; other designs keep the general sweeps."""
    from hierfit.data.accumulate import (add_coded_cross, add_coded_products, add_simple_cross, add_simple_products,
                                         simple_refs)

    d = build_design(formula, _frame(400, 1))
    used = _used(d)
    coder = fast_coder(d, used)
    V, C, index = coder.raw_columns(_frame(3000, 9)[used], lambda p: formulaic_code(p, d, used))
    V[1, 5] = np.nan  # a non-finite value is counted alike
    recipes = [(), *coder.x_recipes, *(r for z in coder.z_recipes for r in z)]
    num_ref, ind_ref = coder.encode(list(dict.fromkeys(recipes)))
    ref = simple_refs(num_ref, ind_ref)
    simple = all(sum(p[0] != "ind" for p in r) <= 1 and sum(p[0] == "ind" for p in r) <= 1 for r in recipes)
    assert (ref is not None) == simple
    if ref is None:
        return
    k, K = len(ref), d.mu.blocks[0].n_levels
    out_a, bad_a = np.zeros((K, k * (k + 1) // 2)), np.zeros(k, dtype=np.int64)
    out_b, bad_b = np.zeros((K, k * (k + 1) // 2)), np.zeros(k, dtype=np.int64)
    add_coded_cross(V, C, index[0], num_ref, ind_ref, out_a, bad_a)
    add_simple_cross(V, C, index[0], ref, out_b, bad_b, (0,) * k)
    assert np.array_equal(out_a, out_b, equal_nan=True) and np.array_equal(bad_a, bad_b) and bad_a.any()
    coef = np.random.default_rng(2).normal(size=(K, k))
    idx = index[0].copy()
    idx[::7] = -1  # rows without a level get nothing
    eta_a, eta_b = np.zeros(len(idx)), np.zeros(len(idx))
    add_coded_products(V, C, idx, num_ref, ind_ref, coef, eta_a)
    add_simple_products(V, C, idx, ref, coef, eta_b, (0,) * k)
    assert np.array_equal(eta_a, eta_b, equal_nan=True)


def test_simple_refs_refuse_products_of_two_numbers_or_two_indicators():
    from hierfit.data.accumulate import simple_refs

    d = build_design("y ~ x:z + c:sex + (1 | g)", _frame(400, 1))
    coder = fast_coder(d, _used(d))
    assert simple_refs(*coder.encode(coder.x_recipes)) is None
    d = build_design("y ~ x + sex + (x | g)", _frame(400, 1))
    coder = fast_coder(d, _used(d))
    # the intercept, x (numeric row 1: row 0 is the response) and sex == M (factor 0, level 1)
    assert simple_refs(*coder.encode(coder.x_recipes)).tolist() == [[-1, -1, 0], [1, -1, 0], [-1, 0, 1]]


def test_integer_ids_outside_the_levels_go_to_the_labelled_lookup():
    """The compiled table lookup gives up at an id outside the table or without a level; the labelled lookup then
    gives -1 there (an unseen level), which the grouped pass refuses."""
    from hierfit.data.accumulate import lookup_levels

    out = np.empty(4, dtype=np.int64)
    table = np.array([0, -1, 1, 2])
    assert lookup_levels(np.array([3, 5, 6, 3], dtype=np.int16), 3, table, out) and out.tolist() == [0, 1, 2, 0]
    assert not lookup_levels(np.array([3, 4], dtype=np.int16), 3, table, out)  # 4: in the table, not a level
    assert not lookup_levels(np.array([3, 7], dtype=np.int64), 3, table, out)  # beyond the table
    assert not lookup_levels(np.array([2], dtype=np.int64), 3, table, out)  # below it
    d = build_design("y ~ x + (1 | g)", _frame(400, 1))
    coder = fast_coder(d, _used(d))
    part = _frame(50, 2)[_used(d)]
    part.loc[10, "g"] = 977
    _, _, (index,) = coder.raw_columns(part, lambda p: formulaic_code(p, d, _used(d)))
    assert index[10] == -1 and (np.delete(index, 10) >= 0).all()
    from hierfit.data.stats import StatsPlan, partition_stats
    from hierfit.spec.layout import collapsed_layout

    with pytest.raises(hierfit.DataError, match=r"1 row\(s\) .*'g'.* not seen"):
        partition_stats(part, StatsPlan(d, collapsed_layout(d), _used(d), None))


@pytest.mark.parametrize("column, missing", [("y", np.nan), ("c", None), ("sex", None), ("h", None)])
def test_complete_rows_is_dropna(column, missing):
    from hierfit.data.coding import complete_rows

    part = _frame(200, 3)
    assert complete_rows(part) is part  # complete: the frame itself, not a copy
    part.loc[[3, 150], column] = missing
    got = complete_rows(part)
    pd.testing.assert_frame_equal(got, part.dropna())
    assert len(got) == 198
    nat = pd.DataFrame({"t": pd.to_datetime(["2020-01-01", None, "2020-01-03"]), "v": [1, 2, 3]})
    pd.testing.assert_frame_equal(complete_rows(nat), nat.dropna())


def test_residual_quartiles_by_blocks_equal_one_block(monkeypatch):
    """A residual task codes BLOCK_ROWS rows at a time: the histogram, min and max of its scaled residuals are
    those of the whole partition at once."""
    from hierfit.data import passes
    from hierfit.data import predict as engine_predict
    from hierfit.data.predict import _point_fit

    df = _frame(3000, 6)
    fit = hierfit.fit("y ~ x + sex + (x | g)", df, chains=1, draws=30, tune=60, seed=2, progressbar=False, warn=False)
    point = _point_fit(fit)
    used = ["y", "x", "sex", "g"]
    part = df[used].copy()
    part.loc[17, "x"] = np.nan  # dropped before the blocks
    coder = fast_coder(point.design, used)
    whole = engine_predict._residual_hist_part(part, point, coder, used)
    monkeypatch.setattr(passes, "BLOCK_ROWS", 256)
    blocks = engine_predict._residual_hist_part(part, point, coder, used)
    assert np.array_equal(whole["hist"], blocks["hist"]) and whole["hist"].sum() == 2999
    assert (whole["min"], whole["max"]) == (blocks["min"], blocks["max"])


def test_grouped_pass_by_blocks_equals_one_sweep(monkeypatch):
    """A grouped-pass task codes BLOCK_ROWS rows at a time into the same sums: those of one sweep, bit for bit; if
    numpy gives up on a later block, the partition is coded again by formulaic from the start (nothing counted
    twice)."""
    from hierfit.data import passes
    from hierfit.data.stats import StatsPlan, partition_stats
    from hierfit.spec.layout import collapsed_layout

    d = build_design("y ~ x + sex + (x | g)", _frame(4000, 3))
    used = _used(d)
    part = _frame(3000, 4)[used]
    part.loc[17, "x"] = np.nan
    plan = StatsPlan(d, collapsed_layout(d), used, (-5.0, 5.0))
    whole = partition_stats(part, plan)
    monkeypatch.setattr(passes, "BLOCK_ROWS", 256)
    blocks = partition_stats(part, plan)
    assert whole["rows"] == blocks["rows"] == 2999
    assert np.array_equal(whole["packed"], blocks["packed"]) and np.array_equal(whole["hist"], blocks["hist"])
    assert np.array_equal(blocks["sums"], whole["sums"])
    calls = []
    real = plan.coder.raw_columns

    def gives_up_on_the_third_block(rows, fallback):
        calls.append(len(rows))
        return None if len(calls) == 3 else real(rows, fallback)

    monkeypatch.setattr(plan.coder, "raw_columns", gives_up_on_the_third_block)
    again = partition_stats(part, plan)
    assert len(calls) == 3 and again["rows"] == 2999
    np.testing.assert_allclose(plan.cross(again["packed"]), plan.cross(whole["packed"]), rtol=1e-12)
    assert np.array_equal(again["hist"], whole["hist"]) and np.array_equal(again["sums"], whole["sums"])


def test_categorical_codes_used_as_they_are_only_in_the_training_order():
    """A partition whose categories are the training ones in their order gives its codes as they are (no copy); other
    orders and extra categories are re-mapped to the training order, with the same sums."""
    from hierfit.data.accumulate import coded_cross

    d = build_design("y ~ x + c + (1 | g)", _frame(400, 1))
    used = _used(d)
    coder = fast_coder(d, used)
    part = _frame(2000, 3)[used]
    fallback = lambda p: formulaic_code(p, d, used)  # noqa: E731
    V, C, index = coder.raw_columns(part, fallback)
    assert C.dtype == np.int8 and np.shares_memory(C, part["c"].array.codes)
    recipes = list(dict.fromkeys([(), *coder.x_recipes, *(r for z in coder.z_recipes for r in z)]))
    num_ref, ind_ref = coder.encode(recipes)
    k = len(recipes)

    def sums(frame):
        V, C, index = coder.raw_columns(frame, fallback)
        packed = np.zeros((d.mu.blocks[0].n_levels, k * (k + 1) // 2))
        coded_cross(V, C, index[0], num_ref, ind_ref, packed, np.zeros(k, dtype=np.int64))
        return C, packed

    C0, ref = sums(part)
    for cats in (["hi", "lo", "mid"], ["lo", "mid", "hi", "zz"]):
        other = part.assign(c=part["c"].cat.set_categories(cats) if len(cats) > 3 else
                            part["c"].cat.reorder_categories(cats))
        C1, got = sums(other)
        assert C1.dtype == np.int64 and np.array_equal(C1, C0.astype(np.int64)) and np.array_equal(got, ref)
    # levels equal as values but not as labels (True == 1): not the training levels, so not coded by numpy
    d = build_design("y ~ x + b + (1 | g)", _frame(400, 1).assign(b=lambda f: pd.Categorical((f["z"] > 3).astype(int))))
    used = _used(d)
    part = _frame(300, 3).assign(b=lambda f: pd.Categorical(f["z"] > 3))[used]
    assert list(part["b"].cat.categories) == list(d.categories["b"])
    assert fast_coder(d, used).raw_columns(part, lambda p: formulaic_code(p, d, used)) is None


def test_histogram_leaves_out_values_that_are_not_finite():
    """NaN and infinite values get no bin (their bin would be undefined); the passes refuse them separately."""
    from hierfit.data.accumulate import add_histogram

    hist = np.zeros(4)
    add_histogram(np.array([np.nan, np.inf, -np.inf, 0.6, 0.1]), 0.0, 1.0, hist)
    assert hist.tolist() == [1.0, 0.0, 1.0, 0.0]

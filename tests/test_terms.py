"""poly(), bs(), ns() and contrasts in formulas: R's values (computed independently here) and frozen for new data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.interpolate import BSpline

from hierfit.spec.design import build_design

rng = np.random.default_rng(5)
DATA = pd.DataFrame({"x": rng.uniform(0, 10, 40), "f": rng.choice(["a", "b", "c"], 40)})
DATA["y"] = np.sin(DATA["x"]) + rng.normal(size=40)
NEW = pd.DataFrame({"x": [-1.0, 0.5, 3.3, 9.9, 12.0], "f": ["a", "b", "c", "a", "b"]})


def _r_poly(x: np.ndarray, degree: int):
    """R's poly(): QR of the centred Vandermonde matrix, Z = Q diag(R), normalised; alpha and norm2 kept."""
    xbar = x.mean()
    xc = x - xbar
    X = np.vander(xc, degree + 1, increasing=True)
    q, r = np.linalg.qr(X)
    Z = q * np.diag(r)
    norm2 = (Z ** 2).sum(axis=0)
    alpha = ((xc[:, None] * Z ** 2).sum(axis=0) / norm2 + xbar)[:degree]
    return Z[:, 1:] / np.sqrt(norm2[1:]), alpha, np.concatenate([[1.0], norm2])


def _r_poly_predict(x: np.ndarray, alpha, norm2, degree: int) -> np.ndarray:
    """R's predict.poly: the three-term recurrence with the training alpha and norm2."""
    Z = np.ones((len(x), degree + 1))
    Z[:, 1] = x - alpha[0]
    for i in range(1, degree):
        Z[:, i + 1] = (x - alpha[i]) * Z[:, i] - (norm2[i + 1] / norm2[i]) * Z[:, i - 1]
    return Z[:, 1:] / np.sqrt(norm2[2:])


def _matrix(design, names):
    return design.X[:, [design.fixed_names.index(n) for n in names]]


def test_poly_equals_rs_poly_and_its_recurrence_on_new_data():
    d = build_design("y ~ poly(x, 3)", DATA)
    names = ["poly(x, 3)1", "poly(x, 3)2", "poly(x, 3)3"]
    Z, alpha, norm2 = _r_poly(DATA["x"].to_numpy(), 3)
    np.testing.assert_allclose(_matrix(d, names), Z, atol=1e-12)
    new = d.mu.recode(d.prepare(NEW))["X"][:, 1:]
    np.testing.assert_allclose(new, _r_poly_predict(NEW["x"].to_numpy(), alpha, norm2, 3), atol=1e-10)


def test_poly_published_values():
    """R: poly(1:10, 2)[1, ] = -0.49543369, 0.52223297."""
    d = build_design("y ~ poly(x, 2)", pd.DataFrame({"x": np.arange(1.0, 11.0), "y": np.arange(10.0) ** 0.5}))
    np.testing.assert_allclose(d.X[0, 1:], [-0.49543369, 0.52223297], atol=1e-8)


def _r_bs(x, knots, lo, hi, degree=3):
    t = np.concatenate([[lo] * (degree + 1), knots, [hi] * (degree + 1)])
    return BSpline.design_matrix(np.clip(x, lo, hi), t, degree).toarray()[:, 1:]


def test_bs_equals_rs_bs_with_frozen_knots():
    x = DATA["x"].to_numpy()
    d = build_design("y ~ bs(x, df = 5)", DATA)
    knots = np.quantile(x, [1 / 3, 2 / 3])  # R: df - degree = 2 interior knots at quantiles
    np.testing.assert_allclose(d.X[:, 1:], _r_bs(x, knots, x.min(), x.max()), atol=1e-12)
    inside = NEW[(NEW["x"] >= x.min()) & (NEW["x"] <= x.max())]
    new = d.mu.recode(d.prepare(inside))["X"][:, 1:]
    np.testing.assert_allclose(new, _r_bs(inside["x"].to_numpy(), knots, x.min(), x.max()), atol=1e-12)


def test_bs_published_values():
    """R: bs(1:10, df = 4)[2, ] = 0.46364883 0.06310014 0.00274348 0."""
    d = build_design("y ~ bs(x, df = 4)", pd.DataFrame({"x": np.arange(1.0, 11.0), "y": np.arange(10.0) ** 0.5}))
    np.testing.assert_allclose(d.X[1, 1:], [0.46364883, 0.06310014, 0.00274348, 0.0], atol=1e-7)


def test_ns_is_the_natural_spline_space_linear_outside():
    """ns(x, df = 4) spans the natural cubic splines with R's knots (truncated-power basis, ESL eq. 5.4-5.5)."""
    x = DATA["x"].to_numpy()
    d = build_design("y ~ ns(x, df = 4)", DATA)
    N = d.X[:, 1:]
    k = np.concatenate([[x.min()], np.quantile(x, [0.25, 0.5, 0.75]), [x.max()]])

    def dk(j, v):
        return (np.maximum(v - k[j], 0) ** 3 - np.maximum(v - k[-1], 0) ** 3) / (k[-1] - k[j])

    esl = np.column_stack([np.ones_like(x), x] + [dk(j, x) - dk(len(k) - 2, x) for j in range(len(k) - 2)])
    both = np.column_stack([np.ones_like(x), N])
    proj = both @ np.linalg.lstsq(both, esl, rcond=None)[0]
    np.testing.assert_allclose(proj, esl, atol=1e-8)
    assert np.allclose(N[np.argmin(x)], 0.0)  # the intercept-free basis is 0 at the left boundary (as R)
    far = d.mu.recode(d.prepare(pd.DataFrame({"x": [x.max() + 1, x.max() + 2, x.max() + 3], "f": "a"})))["X"][:, 1:]
    np.testing.assert_allclose(far[2] - far[1], far[1] - far[0], atol=1e-10)  # linear beyond the boundary


@pytest.mark.parametrize("term, names", [
    ("C(f, Sum)", ["f1", "f2"]),
    ("C(f, contr.sum)", ["f1", "f2"]),
    ("C(f, Helmert)", ["f1", "f2"]),
    ("C(f, Treatment('b'))", ["fa", "fc"]),
    ("C(f, Poly)", ["f.L", "f.Q"]),
])
def test_contrasts_are_rs(term, names):
    d = build_design(f"y ~ {term}", DATA)
    assert d.fixed_names == ["(Intercept)"] + names
    levels = np.array(["a", "b", "c"])
    X = d.X[:, 1:]
    first = {lev: X[DATA["f"].to_numpy() == lev][0] for lev in levels}
    R = {  # R's contr.sum(3), contr.helmert(3), contr.treatment(3, base = 2), contr.poly(3)
        "C(f, Sum)": [[1, 0], [0, 1], [-1, -1]], "C(f, contr.sum)": [[1, 0], [0, 1], [-1, -1]],
        "C(f, Helmert)": [[-1, -1], [1, -1], [0, 2]], "C(f, Treatment('b'))": [[1, 0], [0, 0], [0, 1]],
        "C(f, Poly)": [[-0.7071068, 0.4082483], [0, -0.8164966], [0.7071068, 0.4082483]],
    }[term]
    np.testing.assert_allclose(np.stack([first[lev] for lev in levels]), R, atol=1e-6)


def test_ps_smooth_is_a_penalised_spline_with_an_identity_penalty():
    """s(x, k = 8, bs = "ps"): the wiggly coefficients c give P-spline coefficients whose difference penalty is |c|^2."""
    from hierfit.spec.smooths import s
    from hierfit.spec.splines import spline_design

    x = DATA["x"].to_numpy()
    state: dict = {}
    basis = np.asarray(s(x, k=8, bs="ps", _state=state))
    assert basis.shape == (len(x), 7)
    np.testing.assert_array_equal(basis[:, 0], x)  # the unpenalised linear part, brms's sx_1
    B = spline_design(np.asarray(state["knots"]), x, 4)  # 8 cubic B-splines on equally spaced knots
    D = np.diff(np.eye(8), n=2, axis=0)
    rng = np.random.default_rng(0)
    for _ in range(3):
        c = rng.normal(size=6)
        f = basis[:, 1:] @ c
        # the B-spline coefficients of f (plus a line, which the penalty ignores): least squares on [B]
        beta = np.linalg.lstsq(B, f, rcond=None)[0]
        assert float(np.sum((D @ beta) ** 2)) == pytest.approx(float(c @ c), rel=1e-8)
    # orthogonal to the constant and linear functions in the training data
    np.testing.assert_allclose(np.column_stack([np.ones_like(x), x]).T @ basis[:, 1:], 0.0, atol=1e-8)


def _mgcv(kind: str) -> np.ndarray:
    """A matrix of tests/reference/mgcv_tp.csv (written by benchmarks/mgcv_tp_reference.R)."""
    from pathlib import Path

    ref = pd.read_csv(Path(__file__).parent / "reference" / "mgcv_tp.csv")
    r = ref[ref["kind"] == kind]
    out = np.zeros((r["i"].max(), r["j"].max()))
    out[r["i"] - 1, r["j"] - 1] = r["value"]
    return out


def test_thin_plate_smooth_is_mgcvs_basis_and_penalty():
    """s(x, k = 10) (bs = "tp") spans mgcv's thin-plate basis, with mgcv's penalty as |c|^2 of its wiggly
    coefficients; a penalised fit at mgcv's smoothing parameter gives mgcv's fitted values and predictions."""
    from hierfit.spec.smooths import s

    x, y, X0, S0 = _mgcv("x")[:, 0], _mgcv("y")[:, 0], _mgcv("X0"), _mgcv("S0")
    state: dict = {}
    basis = np.column_stack([np.ones_like(x), np.asarray(s(x, k=10, _state=state))])
    assert basis.shape == (40, 10)
    C = np.linalg.lstsq(basis, X0, rcond=None)[0]  # mgcv's basis functions in hierfit's basis
    np.testing.assert_allclose(basis @ C, X0, atol=1e-9)  # the same functions
    # the same penalty: mgcv's J(f) = a' S0 a for f = X0 a is |c_wiggly|^2, on x standardised (J scales by sd^3)
    sd3 = x.std() ** 3
    np.testing.assert_allclose(C[2:].T @ C[2:], sd3 * S0, atol=1e-9 * np.abs(sd3 * S0).max())
    # gam(y ~ s(x), sp = sp) penalises sp / S.scale * J(f)
    lam = _mgcv("sp")[0, 0] / _mgcv("S_scale")[0, 0] / sd3
    coef = np.linalg.solve(basis.T @ basis + lam * np.diag([0.0, 0.0] + [1.0] * 8), basis.T @ y)
    np.testing.assert_allclose(basis @ coef, _mgcv("fitted")[:, 0], atol=1e-8)
    xnew = _mgcv("xnew")[:, 0]  # frozen knots: mgcv's predictions at new x, outside the range too
    new = np.column_stack([np.ones_like(xnew), np.asarray(s(xnew, k=10, _state=state))])
    np.testing.assert_allclose(new @ coef, _mgcv("pred_new")[:, 0], atol=1e-8)
    # 120 distinct x: the leading eigenvectors by Lanczos (as mgcv), same functions and penalty
    x2 = _mgcv("x2")[:, 0]
    basis = np.column_stack([np.ones_like(x2), np.asarray(s(x2, k=10, _state={}))])
    C = np.linalg.lstsq(basis, _mgcv("X02"), rcond=None)[0]
    np.testing.assert_allclose(basis @ C, _mgcv("X02"), atol=1e-8)
    S2 = x2.std() ** 3 * _mgcv("S02")
    np.testing.assert_allclose(C[2:].T @ C[2:], S2, atol=1e-8 * np.abs(S2).max())


def test_thin_plate_smooth_properties():
    """Penalised directions orthogonal to [1, x]; with k = the number of distinct x the smooth interpolates
    with the natural cubic spline; more than 2000 distinct x use 2000 knots; too few distinct x is an error."""
    from scipy.interpolate import CubicSpline

    from hierfit.errors import DataError
    from hierfit.spec.smooths import s, thin_plate_knots

    x = np.array([0.3, 1.1, 1.7, 2.9, 4.2, 4.4, 6.0, 7.5])
    y = np.array([1.0, -0.5, 0.2, 2.0, 1.1, 0.7, -1.0, 0.4])
    state: dict = {}
    basis = np.column_stack([np.ones_like(x), np.asarray(s(x, k=8, _state=state))])
    np.testing.assert_allclose(basis[:, :2].T @ basis[:, 2:], 0.0, atol=1e-9)
    coef = np.linalg.solve(basis, y)  # k = n: the thin-plate interpolant
    grid = np.linspace(0.3, 7.5, 57)
    new = np.column_stack([np.ones_like(grid), np.asarray(s(grid, k=8, _state=state))])
    np.testing.assert_allclose(new @ coef, CubicSpline(x, y, bc_type="natural")(grid), atol=1e-9)
    big = np.random.default_rng(3).uniform(0, 1, 2500)
    knots = thin_plate_knots(big)
    assert len(knots) == 2000 and knots[0] == big.min() and knots[-1] == big.max()
    with pytest.raises(DataError, match="distinct values"):
        s(np.repeat(x[:4], 3), k=6, _state={})
    # s(x, bs = "ps") keeps the P-spline
    assert np.asarray(s(x, k=5, bs="ps", _state={})).shape == (8, 4)
    with pytest.raises(DataError, match="bs must be"):
        s(x, bs="cr", _state={})


def test_smooth_terms_in_the_design_priors_and_model():
    import hierfit
    from hierfit.engine.model import build_model

    s = hierfit.specify("y ~ s(x, k = 6) + f", DATA)
    d = s.design
    assert d.fixed_names[:2] == ["(Intercept)", "sx_1"] and d.fixed_names[2:6] == [f"s_sx_1[{j}]" for j in range(1, 5)]
    assert d.mu.smooths == {"sx_1": [2, 3, 4, 5]}
    tab = s.priors.table()
    assert list(tab.loc[tab["class"] == "sds", "coef"]) == ["sx_1"]
    assert not tab["coef"].str.startswith("s_sx_1").any()  # penalised coefficients have no b prior
    assert s.method.name == "full"
    m = build_model(d, s.priors, s.parametrization)
    assert {"sds_sx_1", "zs_sx_1"} <= {v.name for v in m.free_RVs}
    import pytensor

    fn = pytensor.function(m.value_vars, m.replace_rvs_by_values([m["b"]]), mode="FAST_COMPILE",
                           on_unused_input="ignore")
    point = m.initial_point(0)
    point["zs_sx_1"] = np.array([0.5, -1.0, 2.0, 0.1])
    point["sds_sx_1_log__"] = np.asarray(np.log(0.7))
    b = np.asarray(fn(*[point[v.name] for v in m.value_vars])[0])
    np.testing.assert_allclose(b[2:6], 0.7 * point["zs_sx_1"], rtol=1e-10)  # coefficient = zs * sds
    new = d.mu.recode(d.prepare(DATA.head(5)))["X"]
    np.testing.assert_allclose(new, d.X[:5], atol=1e-10)  # frozen basis on new data


def test_smooth_by_factor_is_one_smooth_per_level():
    import hierfit

    s = hierfit.specify("y ~ f + s(x, by = f, k = 5)", DATA)
    names = s.design.fixed_names
    assert names[:3] == ["(Intercept)", "fb", "fc"]
    assert [n for n in names if not n.startswith("s_")][3:] == ["sx:fa_1", "sx:fb_1", "sx:fc_1"]
    assert list(s.design.mu.smooths) == ["sx:fa_1", "sx:fb_1", "sx:fc_1"]
    X, f = s.design.X, DATA["f"].to_numpy()
    for lev in "abc":
        cols = [j for j, n in enumerate(names) if f"sx:f{lev}_1" in n]
        assert len(cols) == 4  # the linear part and k - 2 = 3 penalised columns
        assert np.all(X[f != lev][:, cols] == 0.0)  # zero on the other levels' rows
        np.testing.assert_allclose(X[f == lev][:, cols[0]], DATA["x"].to_numpy()[f == lev])
    assert list(s.priors.table().query("`class` == 'sds'")["coef"]) == ["sx:fa_1", "sx:fb_1", "sx:fc_1"]


def test_smooth_basis_keyword_in_formulas():
    """bs = "tp" / "ps" are the only quoted words a formula takes; thin plate is the default."""
    import hierfit
    from hierfit.errors import FormulaError

    tp = hierfit.specify("y ~ s(x, k = 6)", DATA).design.X
    np.testing.assert_allclose(hierfit.specify("y ~ s(x, k = 6, bs = 'tp')", DATA).design.X, tp)
    ps = hierfit.specify('y ~ s(x, k = 6, bs = "ps")', DATA).design.X
    assert ps.shape == tp.shape and np.abs(ps - tp).max() > 0.1
    for bad in ['y ~ s(x, bs = "cr")', 'y ~ s(x, k = "tp")', 'y ~ x + "tp"', 'y ~ log(x, base = "ps")']:
        with pytest.raises(FormulaError):
            hierfit.specify(bad, DATA)
    few = pd.DataFrame({"x": np.r_[np.linspace(0, 1, 30), [1, 2, 3, 1, 2, 3]], "f": ["a"] * 30 + ["b"] * 6,
                        "y": np.arange(36.0)})
    with pytest.raises(FormulaError, match="3 distinct values within a level of by, fewer than k = 10"):
        hierfit.specify("y ~ f + s(x, by = f)", few)


def test_smooth_fit_through_the_kernel_recovers_a_growth_curve():
    """y ~ s(age) + (1 | id) on a simulated logistic growth curve: sampled by hierfit's compiled kernel, the
    population curve (re_form = NA) follows the truth at the subjects' mean intercept (a straight line misses it by up to 1.5), and new ages use
    the frozen basis (predictions at training ages equal the fitted values there)."""
    import hierfit

    rng = np.random.default_rng(4)
    sub = np.repeat(np.arange(30), 8)
    age = rng.uniform(0, 10, sub.size)

    def truth(a):
        return 10 / (1 + np.exp(-(a - 5)))

    u = rng.normal(0, 0.8, 30)
    df = pd.DataFrame({"age": age, "id": sub, "y": truth(age) + u[sub] + rng.normal(0, 0.5, sub.size)})
    m = hierfit.fit("y ~ s(age) + (1 | id)", df, chains=2, draws=500, tune=500, seed=1, progressbar=False,
                    warn=False)
    assert m.kernel == "hierfit" and m.method.name == "full"
    grid = pd.DataFrame({"age": np.linspace(0.2, 9.8, 25)})
    curve = m.predict(grid, re_form=hierfit.NA)
    target = truth(grid["age"].to_numpy()) + u.mean()  # the curve at these subjects' mean intercept
    err = curve["Estimate"].to_numpy() - target
    assert np.sqrt(np.mean(err ** 2)) < 0.3 and np.abs(err).max() < 0.6
    inside = (curve["l-95% CI"] <= target) & (target <= curve["u-95% CI"])
    assert inside.mean() >= 0.8
    st = m.summary().smooth_terms
    assert list(st.index) == ["sds(sage_1)"] and st["Estimate"].iloc[0] > 0.5  # clearly wiggly
    text = str(m.summary()).splitlines()  # brms's block, between the group-level and the fixed effects
    at = text.index("Smooth Terms:")
    assert text[at + 2].split()[0] == "sds(sage_1)" and at < text.index("Fixed effects:")
    new = m.predict(df.head(5)[["age"]], re_form=hierfit.NA)["Estimate"].to_numpy()
    np.testing.assert_allclose(new, m.fitted(re_form=hierfit.NA)["Estimate"].to_numpy()[:5], rtol=1e-10)


def test_fitted_smooth_state_keeps_its_basis():
    """A smooth's frozen state decides its basis: a P-spline state (a model saved when P-splines were the
    default) still predicts with the P-spline, whatever bs= says."""
    from hierfit.spec.smooths import s

    x = DATA["x"].to_numpy()
    ps_state: dict = {}
    ps = np.asarray(s(x, k=6, bs="ps", _state=ps_state))
    np.testing.assert_allclose(np.asarray(s(x[:5], k=6, _state=ps_state)), ps[:5], atol=1e-12)
    tp_state: dict = {}
    tp = np.asarray(s(x, k=6, _state=tp_state))
    np.testing.assert_allclose(np.asarray(s(x[:5], k=6, bs="ps", _state=tp_state)), tp[:5], atol=1e-12)
    assert np.abs(ps - tp).max() > 0.1

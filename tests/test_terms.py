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

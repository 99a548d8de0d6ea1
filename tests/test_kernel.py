"""hierfit's compiled kernel against the PyMC model, which stays the specification.

At random points of the unconstrained space the kernel's log density and gradient
must equal PyMC's (same variables, same transforms, constants included), and its
stored draws (b, sd, cor, r, sigma, ...) must equal PyMC's deterministics.  The model
structures below cover every family, link, prior family, transform and group-term
form the kernel handles.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import special

import hierfit
from hierfit import families
from hierfit.spec.design import build_design
from hierfit.engine.kernel import build_spec, load
from hierfit.engine.kernel.spec import spiral_positions
from hierfit.spec.parametrization import Parametrization
from hierfit.spec.priors import resolve_priors

ENTRY = load()


def _data():
    rng = np.random.default_rng(3)
    g = np.repeat(np.arange(12), 8)
    h = np.tile(np.arange(8), 12)
    x = rng.normal(size=g.size)
    eta = 0.3 + 0.5 * x + rng.normal(0, 0.5, 12)[g]
    df = pd.DataFrame({"x": x, "w": rng.normal(size=g.size), "gl": rng.normal(size=12)[g], "g": g, "h": h,
                       "h2": h % 4, "h3": h % 2, "n": rng.integers(3, 9, g.size), "expo": rng.uniform(0.5, 2, g.size)})
    df["f"] = np.array(["a", "b", "c"])[h % 3]  # a factor (smooths by level)
    df["yg"] = eta + rng.normal(size=g.size)
    df["ypos"] = np.exp(eta + 0.3 * rng.normal(size=g.size))
    df["yp"] = rng.poisson(np.exp(eta))
    df["yb"] = rng.binomial(df["n"], special.expit(eta))
    df["y1"] = rng.binomial(1, special.expit(eta))
    df["ya"] = rng.gamma(3, np.exp(eta) / 3)
    df["yz"] = np.where(rng.uniform(size=g.size) < 0.3, 0, rng.poisson(np.exp(eta)))
    df["yunit"] = rng.beta(5 * special.expit(eta), 5 * (1 - special.expit(eta)))
    df["yhl"] = np.where(rng.uniform(size=g.size) < 0.25, 0.0, df["ypos"])
    df["yo"] = ((eta + rng.logistic(size=g.size))[:, None] > np.array([-0.8, 0.2, 1.0])).sum(axis=1)  # 4 categories
    return df


DATA = _data()
P = hierfit.prior

CASES = {
    "lkj3 + mixed and truncated priors": dict(
        formula="yg ~ x + w + (x + w | g)",
        priors=[P("student_t(4, 0, 1)", "b", coef="x"), P("normal(1, 0.5)", "sd", coef="x", group="g"),
                P("lkj(2)", "cor")]),
    "centred, group-level predictor, crossed": dict(formula="yg ~ x + gl + (x | g) + (1 | h)", par="centered"),
    "centred ||, no intercept, nested": dict(formula="yg ~ 0 + x + (x || g) + (1 | g:h2)", par="centered"),
    "collapsed q=3": dict(formula="yg ~ x + w + (x + w | g)", collapsed=True,
                          priors=[P("exponential(1)", "sigma"), P("cauchy(0, 2)", "b", coef="w")]),
    "collapsed ||, positive-only priors": dict(
        formula="yg ~ x + (x || g)", collapsed=True,
        priors=[P("gamma(2, 2)", "sd", coef="(Intercept)"), P("lognormal(0, 1)", "sd", coef="x"),
                P("inv_gamma(3, 2)", "sigma"), P("normal(0, 5)", "Intercept")]),
    "collapsed nested, correlated inner": dict(formula="yg ~ x + (x | g) + (x | g:h3)", collapsed=True),
    "collapsed nested, || outer, inner listed first": dict(formula="yg ~ x + w + (1 | g:h2) + (x || g)",
                                                            collapsed=True),
    "student, sigma formula with a group term, nu truncated": dict(
        formula="yg ~ x + (1 | g)", family="student", dpars={"sigma": "~ w + (1 | h)"}),
    "gaussian log link": dict(formula="ypos ~ x + (1 | g)", family=families.gaussian(link="log")),
    "poisson offset": dict(formula="yp ~ x + offset(log(expo)) + (x | g)", family="poisson"),
    "negbinomial": dict(formula="yp ~ x + (1 | g)", family="negbinomial"),
    "binomial logit": dict(formula="yb | trials(n) ~ x + (x | g)", family="binomial"),
    "bernoulli logit": dict(formula="y1 ~ x + (x | g)", family="bernoulli"),
    "binomial probit": dict(formula="yb | trials(n) ~ x + (1 | g)", family=families.binomial(link="probit")),
    "bernoulli cloglog centred": dict(formula="y1 ~ x + (1 | g)", family=families.bernoulli(link="cloglog"),
                                      par="centered"),
    "gamma with a shape formula": dict(formula="ya ~ x + (1 | g)", family="gamma", dpars={"shape": "~ x"}),
    "gamma inverse link (R's Gamma)": dict(formula="ya ~ 1 + (1 | g)", family="Gamma",
                                           priors=[P("normal(3, 0.5)", "Intercept"), P("normal(0, 0.1)", "sd")]),
    "zero-inflated poisson, zi parameter": dict(formula="yz ~ x + (1 | g)", family="zero_inflated_poisson"),
    "zero-inflated negbinomial, zi formula": dict(formula="yz ~ x + (1 | g)", family="zero_inflated_negbinomial",
                                                  dpars={"zi": "~ w"}),
    "hurdle poisson, beta(2, 3) prior on hu": dict(formula="yz ~ x + (1 | g)", family="hurdle_poisson",
                                                   priors=[P("beta(2, 3)", "hu")]),
    "hurdle negbinomial, hu formula with a group term": dict(
        formula="yz ~ x + (1 | g)", family="hurdle_negbinomial", dpars={"hu": "~ w + (1 | h)"}),
    "hurdle lognormal": dict(formula="yhl ~ x + (1 | g)", family="hurdle_lognormal"),
    "beta with a phi formula": dict(formula="yunit ~ x + (1 | g)", family="beta", dpars={"phi": "~ w"}),
    "lognormal, sigma formula": dict(formula="ypos ~ x + (1 | g)", family="lognormal", dpars={"sigma": "~ w"}),
    "weibull": dict(formula="ypos ~ x + (1 | g)", family="weibull"),
    "gaussian thin-plate smooth": dict(formula="yg ~ s(x, k = 6) + (1 | g)"),
    "poisson P-spline smooths by a factor, centred": dict(
        formula='yp ~ w + f + s(x, by = f, k = 5, bs = "ps") + (1 | g)', family="poisson", par="centered"),
    "bernoulli smooth, correlated centred block": dict(formula="y1 ~ x + s(w, k = 5) + (x | g)",
                                                       family="bernoulli", par="centered",
                                                       priors=[P("exponential(2)", "sds")]),
    "gamma, smooths by a factor in mu and shape": dict(formula="ya ~ f + s(x, by = f, k = 5) + (1 | g)", family="gamma",
                                                       dpars={"shape": "~ s(w, k = 4)"}),
    "exponential": dict(formula="ypos ~ x + (1 | g)", family="exponential"),
    "cumulative logit, correlated group slopes": dict(formula="yo ~ x + (x | g)", family=families.cumulative("logit")),
    "cumulative logit centred, weights, mixed threshold priors": dict(
        formula="yo | weights(expo) ~ x + w + (1 | g) + (0 + x | h)", family="cumulative", par="centered",
        priors=[P("cauchy(0, 2)", "Intercept"), P("normal(0.5, 1)", "Intercept", coef=1)]),
    # PyMC's normal log-cdfs (erfcx) are off by up to ~3e-8 relative (the kernel's: 1e-11, tests/test_ordinal.py)
    "cumulative probit, per-threshold prior, no group term": dict(
        formula="yo ~ x + w", family=families.cumulative("probit"), priors=[P("normal(0, 1)", "Intercept", coef=2)],
        tol=(1e-7, 1e-5)),
    "cumulative probit, group intercepts": dict(formula="yo ~ x + (1 | g)", family=families.cumulative("probit"),
                                                tol=(1e-7, 1e-5)),
}


def _build(case):
    fam = families.get(case.get("family", "gaussian"))
    d = build_design(case["formula"], DATA, family=fam, dpars=case.get("dpars"))
    pr = resolve_priors(d, case.get("priors"))
    par = Parametrization({b.key: case.get("par", "noncentered") for b in d.all_blocks})
    collapsed = case.get("collapsed", False)
    spec = build_spec(d, pr, par, collapsed=collapsed)
    if collapsed:
        from hierfit.engine.collapsed import build_collapsed_model

        model = build_collapsed_model(d, pr)
    else:
        from hierfit.engine.model import build_model

        model = build_model(d, pr, par)
    return spec, model


def _points(spec, k=4):
    rng = np.random.default_rng(len(spec.value_vars))
    return [spec.init_centre + rng.uniform(-0.7, 0.7, spec.n_dim) for _ in range(k)]


@pytest.fixture(scope="module", params=list(CASES), ids=list(CASES))
def built(request):
    return _build(CASES[request.param]) + (CASES[request.param].get("tol", (1e-9, 1e-8)),)


def test_same_variables_and_log_density_as_pymc(built):
    spec, model, (rel, atol) = built
    assert [v.name for v in spec.value_vars] == [model.rvs_to_values[v].name for v in model.free_RVs]
    logp = model.compile_logp(mode="FAST_COMPILE")
    dlogp = model.compile_dlogp(mode="FAST_COMPILE")
    for x in _points(spec):
        grad = np.zeros(spec.n_dim)
        lp = ENTRY.logp_and_grad(x, grad, spec.ints, spec.floats)
        point = spec.pymc_point(x)
        ref_lp, ref_grad = float(logp(point)), np.asarray(dlogp(point))
        assert np.isfinite(ref_lp)
        assert lp == pytest.approx(ref_lp, rel=rel, abs=1e-9)
        np.testing.assert_allclose(grad, ref_grad, rtol=1e-6, atol=atol)


def test_stored_draws_equal_pymcs_variables(built):
    spec, model, _ = built
    import pytensor

    names = [v.name for v in spec.stored]
    outs = model.replace_rvs_by_values([model[n] for n in names])
    fn = pytensor.function(model.value_vars, outs, mode="FAST_COMPILE", on_unused_input="ignore")
    xs = np.stack(_points(spec, 3))  # the steps work on many draws at once
    stored = spec.stored_draws(xs)
    assert set(stored) == set(names)
    for k, x in enumerate(xs):
        ours = {name: v[k] for name, v in stored.items()}
        point = spec.pymc_point(x)
        for name, ref in zip(names, fn(*[point[v.name] for v in model.value_vars])):
            np.testing.assert_allclose(ours[name], ref, rtol=1e-10, atol=1e-12, err_msg=name)


@pytest.mark.parametrize("k", [2, 3, 4, 5])
def test_lkj_element_order_is_pymcs(k):
    from pymc.distributions.transforms import CholeskyCorrTransform

    m = k * (k - 1) // 2
    y = np.random.default_rng(k).normal(size=m)
    ref = CholeskyCorrTransform(n=k).backward(y).eval()
    W = np.eye(k)
    for t, (a, b) in enumerate(spiral_positions(k)):
        W[a, b] = y[t]
    np.testing.assert_allclose(W / np.linalg.norm(W, axis=1, keepdims=True), ref, rtol=1e-12)


def test_gradient_is_the_derivative_of_the_log_density():
    """Independent of PyMC: central differences of the kernel's own log density."""
    spec, _ = _build(CASES["student, sigma formula with a group term, nu truncated"])
    x = _points(spec, 1)[0]
    grad = np.zeros(spec.n_dim)
    ENTRY.logp_and_grad(x, grad, spec.ints, spec.floats)
    h = 1e-6
    for i in range(0, spec.n_dim, max(1, spec.n_dim // 15)):
        e = np.zeros(spec.n_dim)
        e[i] = h
        up = ENTRY.logp_and_grad(x + e, np.zeros(spec.n_dim), spec.ints, spec.floats)
        down = ENTRY.logp_and_grad(x - e, np.zeros(spec.n_dim), spec.ints, spec.floats)
        assert grad[i] == pytest.approx((up - down) / (2 * h), rel=1e-5, abs=1e-5)


def test_outside_the_support_is_minus_infinity():
    spec, _ = _build({"formula": "ya ~ x + (1 | g)", "family": families.gamma(link="identity")})
    x = spec.init_centre.copy()
    x[[v.name for v in spec.value_vars].index("Intercept")] = -50.0  # mean < 0 for every row
    assert ENTRY.logp_and_grad(x, np.zeros(spec.n_dim), spec.ints, spec.floats) == -np.inf


def test_vector_exp_and_log1p_match_numpy_to_a_few_ulp():
    """The row loops' polynomial exp (x <= 0) and log1p (0 <= t <= 1) against numpy on dense grids."""
    from hierfit.engine.kernel.vecmath import exp_nonpos_array, log1p_unit_array

    rng = np.random.default_rng(0)
    x = -np.concatenate([np.linspace(0.0, 708.0, 100_001), rng.uniform(0.0, 40.0, 100_000), [1e-300, 5e-324]])
    e = exp_nonpos_array(x)
    assert np.max(np.abs(e - np.exp(x)) / np.exp(x)) < 2 * np.finfo(float).eps
    t = np.concatenate([np.linspace(0.0, 1.0, 200_001)[1:], np.exp(-rng.uniform(0.0, 700.0, 100_000))])
    ref = np.log1p(t)
    assert np.max(np.abs(log1p_unit_array(t) - ref) / ref) < 4 * np.finfo(float).eps
    assert log1p_unit_array(np.zeros(1))[0] == 0.0


def test_logit_rows_extreme_linear_predictors():
    """Bernoulli/binomial logit rows at |eta| up to 800: log-likelihood and d/d eta against scipy's closed forms."""
    from hierfit.engine.kernel.rows import logit_rows

    eta = np.concatenate([np.linspace(-800.0, 800.0, 2001), [-1e-12, 0.0, 1e-12]])
    n = np.tile([1.0, 7.0, 3.0], eta.size)[:eta.size]
    y = np.floor(n * np.linspace(0, 1, eta.size) + 0.5) % (n + 1)
    deta = np.zeros(eta.size)
    lp = logit_rows(y, n, True, np.zeros(eta.size), eta, deta)
    ref = y * special.log_expit(eta) + (n - y) * special.log_expit(-eta)
    assert lp == pytest.approx(ref.sum(), rel=1e-13)
    np.testing.assert_allclose(deta, y - n * special.expit(eta), rtol=1e-13, atol=1e-300)

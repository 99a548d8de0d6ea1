"""hierfit's own R-hat and bulk/tail ESS give ArviZ's numbers, and the summary path stays light.

The reference is ``arviz_stats.base.array_stats`` (installed with arviz), which hierfit
used before it computed these statistics itself.
"""

import os
import subprocess
import sys
import textwrap
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest

from hierfit.results.diagnostics import (
    _fast_fft_length,
    convergence_stats,
    ess_bulk,
    ess_tail,
    normal_quantile,
    parameter_diagnostics,
    reported_parameters,
    rhat,
)

RTOL = 1e-8
ROOT = Path(__file__).resolve().parents[1]


def run_python(code: str) -> subprocess.CompletedProcess:
    """Run code in a fresh interpreter that imports this checkout's hierfit."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT, env=env)


def arviz_reference(a: np.ndarray) -> tuple[float, float, float]:
    """R-hat, bulk ESS and tail ESS of one (chain, draw) array, as hierfit called ArviZ before."""
    from arviz_stats.base import array_stats

    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = float(array_stats.rhat(a, chain_axis=0, draw_axis=1)) if a.shape[0] > 1 else np.nan
        bulk = float(array_stats.ess(a, chain_axis=0, draw_axis=1, method="bulk"))
        tail = float(array_stats.ess(a, chain_axis=0, draw_axis=1, method="tail", prob=(0.05, 0.95)))
    return r, bulk, tail


def ours(a: np.ndarray) -> tuple[float, float, float]:
    r = float(rhat(a)) if a.shape[0] > 1 else np.nan
    return r, float(ess_bulk(a)), float(ess_tail(a, prob=(0.05, 0.95)))


def rel_dev(ref, got) -> float:
    """Largest relative deviation; NaN must match NaN and inf must match inf exactly."""
    ref, got = np.asarray(ref, dtype=float), np.asarray(got, dtype=float)
    assert np.array_equal(np.isnan(ref), np.isnan(got)), (ref, got)
    assert np.array_equal(ref[np.isinf(ref)], got[np.isinf(ref)]), (ref, got)
    ok = np.isfinite(ref)
    return float(np.max(np.abs(got[ok] - ref[ok]) / np.abs(ref[ok]), initial=0.0))


def ar1(rng, chains, draws, phi):
    e = rng.normal(size=(chains, draws))
    x = np.empty_like(e)
    x[:, 0] = e[:, 0] / np.sqrt(1 - phi**2)
    for t in range(1, draws):
        x[:, t] = phi * x[:, t - 1] + e[:, t]
    return x


GENERATORS = {
    "iid normal": lambda rng, m, n: rng.normal(size=(m, n)),
    "AR(1) 0.9": lambda rng, m, n: ar1(rng, m, n, 0.9),
    "AR(1) 0.99": lambda rng, m, n: ar1(rng, m, n, 0.99),
    "AR(1) -0.7 (antithetic)": lambda rng, m, n: ar1(rng, m, n, -0.7),
    "random walk": lambda rng, m, n: np.cumsum(rng.normal(size=(m, n)), axis=1),
    "shifted chains": lambda rng, m, n: rng.normal(size=(m, n)) + 0.7 * np.arange(m)[:, None],
    "different scales": lambda rng, m, n: rng.normal(size=(m, n)) * (1 + 2 * np.arange(m))[:, None],
    "cauchy": lambda rng, m, n: rng.standard_cauchy(size=(m, n)),
    "lognormal": lambda rng, m, n: np.exp(3 * rng.normal(size=(m, n))),
    "poisson counts": lambda rng, m, n: rng.poisson(1.5, size=(m, n)).astype(float),
    "three values": lambda rng, m, n: rng.integers(0, 3, size=(m, n)),
    "mostly one value": lambda rng, m, n: (rng.uniform(size=(m, n)) < 0.03).astype(float),
    "rounded normal": lambda rng, m, n: np.round(rng.normal(size=(m, n)), 1),
}
SHAPES = [(4, 1000), (4, 1001), (2, 7), (3, 4), (3, 5), (1, 500), (1, 333), (8, 64), (2, 2001)]


@pytest.mark.parametrize("kind", list(GENERATORS))
def test_rhat_and_ess_agree_with_arviz(kind):
    rng = np.random.default_rng(zlib.crc32(kind.encode()))
    worst = 0.0
    for rep in range(3):
        for m, n in SHAPES:
            a = GENERATORS[kind](rng, m, n)
            worst = max(worst, rel_dev(arviz_reference(a), ours(a)))
    assert worst < RTOL, worst


def test_short_chains_agree_with_arviz():
    # with few draws Geyer's sequence often runs to the end of the chain, where the
    # last pair's handling matters
    rng = np.random.default_rng(10)
    kinds = list(GENERATORS)
    worst = 0.0
    for i in range(240):
        m, n = int(rng.integers(1, 5)), int(rng.integers(4, 41))
        a = GENERATORS[kinds[i % len(kinds)]](rng, m, n)
        worst = max(worst, rel_dev(arviz_reference(a), ours(a)))
    assert worst < RTOL, worst


def test_chains_that_disagree_have_large_rhat_in_both():
    rng = np.random.default_rng(3)
    a = rng.normal(size=(4, 1000)) + np.array([0.0, 0.0, 0.0, 1.0])[:, None]
    ref, got = arviz_reference(a), ours(a)
    assert ref[0] > 1.01 and got[0] > 1.01
    assert rel_dev(ref, got) < RTOL


def test_chains_that_differ_only_in_spread_are_caught_by_folded_rhat():
    rng = np.random.default_rng(4)
    a = rng.normal(size=(4, 1000)) * np.array([1.0, 1.0, 1.0, 4.0])[:, None]
    split = np.concatenate([a[:, :500], a[:, 500:]])
    from hierfit.results.diagnostics import _normal_scores, _rhat_basic

    bulk_only = float(_rhat_basic(_normal_scores(split)))
    assert float(rhat(a)) > 1.01 > bulk_only  # the tail (folded) R-hat is what flags it
    assert rel_dev(arviz_reference(a), ours(a)) < RTOL


def test_constant_chains():
    for a in (np.full((4, 100), 2.5), np.full((1, 37), -1.0), np.zeros((3, 1001))):
        ref, got = arviz_reference(a), ours(a)
        split_size = a.shape[0] * 2 * (a.shape[1] // 2)
        assert got[1] == got[2] == split_size == ref[1] == ref[2]
        assert np.isnan(got[0]) and np.isnan(ref[0])
    # each chain constant but at a different value: R-hat is infinite, ESS is the draw count
    a = np.repeat(np.arange(4.0), 50).reshape(4, 50)
    assert rel_dev(arviz_reference(a), ours(a)) == 0.0


def test_too_few_draws_or_nan_give_nan():
    rng = np.random.default_rng(5)
    for a in (rng.normal(size=(4, 3)), rng.normal(size=(4, 1))):
        assert np.isnan(ours(a)).all() and np.isnan(arviz_reference(a)).all()
    a = rng.normal(size=(4, 100))
    a[2, 17] = np.nan
    assert np.isnan(ours(a)).all() and np.isnan(arviz_reference(a)).all()
    assert np.isnan(rhat(rng.normal(size=(1, 100))))  # one chain: no R-hat


def test_infinite_draws_match_arviz():
    rng = np.random.default_rng(6)
    a = rng.standard_cauchy(size=(4, 200))
    a[0, 3], a[2, 150] = np.inf, -np.inf
    assert rel_dev(arviz_reference(a), ours(a)) < RTOL


def test_batched_equals_one_at_a_time():
    rng = np.random.default_rng(7)
    batch = np.stack([GENERATORS[k](rng, 4, 301) for k in GENERATORS] + [np.full((4, 301), 1.0)])
    batch[3, 1, 1] = np.nan
    together = convergence_stats(batch)
    assert together[0].shape == (len(batch),)
    for i, a in enumerate(batch):
        assert rel_dev(ours(a), [t[i] for t in together]) == 0.0
    assert np.array_equal(rhat(batch), together[0], equal_nan=True)
    assert np.array_equal(ess_bulk(batch), together[1], equal_nan=True)
    assert np.array_equal(ess_tail(batch), together[2], equal_nan=True)
    # leading axes of any shape
    grid = convergence_stats(batch[:12].reshape(3, 4, 4, 301))
    for g, t in zip(grid, together):
        assert g.shape == (3, 4) and np.array_equal(g.ravel(), t[:12], equal_nan=True)


def test_other_tail_probabilities_agree_with_arviz():
    from arviz_stats.base import array_stats

    rng = np.random.default_rng(8)
    a = ar1(rng, 4, 800, 0.8)
    for prob in [(0.1, 0.9), (0.025, 0.975), 0.2]:
        ref = float(array_stats.ess(a, chain_axis=0, draw_axis=1, method="tail", prob=prob))
        assert rel_dev(ref, ess_tail(a, prob=prob)) < RTOL


def test_normal_quantile_matches_scipy():
    from scipy.special import ndtri

    rng = np.random.default_rng(9)
    p = np.concatenate([rng.uniform(size=20000), np.logspace(-300, -1, 500), 1 - np.logspace(-16, -1, 500),
                        [0.075, 0.425, 0.5, 0.575, 0.925, 1e-300, 5e-324]])
    got, ref = normal_quantile(p), ndtri(p)
    nonzero = ref != 0
    assert np.max(np.abs(got[nonzero] - ref[nonzero]) / np.abs(ref[nonzero])) < 1e-14
    assert normal_quantile(0.0) == -np.inf and normal_quantile(1.0) == np.inf
    assert np.isnan(normal_quantile([-0.1, 1.1, np.nan])).all()


def test_fft_length_is_the_next_5_smooth_number():
    from scipy.fftpack import next_fast_len

    assert [_fast_fft_length(n) for n in range(1, 3000)] == [next_fast_len(n) for n in range(1, 3000)]


def test_links_give_scipy_values():
    from scipy import special, stats

    from hierfit.families import LINKS, get

    p = np.linspace(0.001, 0.999, 501)
    eta = np.linspace(-8, 8, 501)
    assert np.array_equal(LINKS["probit"].fun(p), stats.norm.ppf(p))
    assert np.array_equal(LINKS["probit"].inv(eta), stats.norm.cdf(eta))
    assert np.array_equal(LINKS["logit"].fun(p), special.logit(p))
    assert np.array_equal(LINKS["logit"].inv(eta), special.expit(eta))
    shape = np.array([[2.0]])
    assert get("gamma").link_scale_variance(1.0, {"shape": shape}) == float(special.polygamma(1, 2.0))
    d = get("poisson").scipy_dist(np.array([1.0, 4.0]), {})
    assert np.array_equal(d.pmf([0, 3]), stats.poisson([1.0, 4.0]).pmf([0, 3]))


def test_parameter_diagnostics_of_a_fit_agree_with_arviz(fit_rs):
    diag = parameter_diagnostics(fit_rs.draws, fit_rs.design)
    params = reported_parameters(fit_rs.draws, fit_rs.design)
    assert list(diag.index) == [label for label, _ in params]
    assert list(diag.columns) == ["Rhat", "Bulk_ESS", "Tail_ESS"]
    ref = np.array([arviz_reference(np.asarray(arr)) for _, arr in params])
    assert rel_dev(ref, diag.to_numpy()) < RTOL


def test_import_loads_neither_scipy_stats_nor_arviz():
    code = "import sys, hierfit; print(sorted(m for m in ('scipy.stats', 'arviz', 'arviz_stats') if m in sys.modules))"
    out = run_python(code)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_summary_of_a_saved_fit_loads_neither_scipy_stats_nor_arviz(fit_rs, tmp_path):
    path = tmp_path / "rs.hfit"
    fit_rs.save(path)
    code = textwrap.dedent(f"""
        import sys, hierfit
        from hierfit.results.diagnostics import parameter_diagnostics
        fit = hierfit.load({str(path)!r})
        parameter_diagnostics(fit.draws, fit.design)
        text = fit.summary(ci=0.9).to_text()
        assert "Fixed effects:" in text
        print(sorted(m for m in ('scipy.stats', 'arviz', 'arviz_stats') if m in sys.modules))
    """)
    out = run_python(code)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout + out.stderr

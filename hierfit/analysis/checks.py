"""DHARMa-style tests on simulated quantile residuals, each with a verdict in plain words.

:func:`check_residuals` simulates the response from the posterior (group effects at
their fitted values by default, as DHARMa's conditional simulations) and runs four
tests, as R's DHARMa does:

uniformity
    Kolmogorov-Smirnov test of the scaled (quantile) residuals against uniform(0, 1).
dispersion
    variance of the observed residuals y - E[y_sim] over the mean variance of simulated
    residuals y_sim - E[y_sim] (DHARMa's ``testDispersion``); 1 when the model's variance fits.
zero-inflation
    observed number of zeros over the simulated mean (``testZeroInflation``); counts only.
outliers
    observations outside every simulation, against the binomial expectation 2 / (nsim + 1)
    (``testOutliers``; one-sided: only too many outliers are a problem).

p-values of dispersion and zero-inflation are two-sided, from the simulated distribution
of the statistic.  Each verdict says what to fit instead when the test rejects at 5 %.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from hierfit.analysis.predict import quantile_residuals

__all__ = ["check_residuals", "ResidualChecks", "dispersion_test", "zero_inflation_test", "outlier_test"]

ALPHA = 0.05


def _two_sided(observed: float, simulated: np.ndarray) -> float:
    """DHARMa's two-sided simulation p-value: 2 min(P(T >= t), P(T <= t)), at most 1."""
    n = len(simulated)
    hi = (np.sum(simulated >= observed) + 1) / (n + 1)
    lo = (np.sum(simulated <= observed) + 1) / (n + 1)
    return float(min(1.0, 2 * min(hi, lo)))


def dispersion_test(y: np.ndarray, sims: np.ndarray) -> tuple[float, float, np.ndarray]:
    """(ratio, p-value, simulated statistics): var(y - mean) over the mean var(sim - mean).

    Example
    -------
    >>> rng = np.random.default_rng(0)
    >>> sims = rng.poisson(3.0, (500, 200)).astype(float)
    >>> ratio, p, _ = dispersion_test(rng.negative_binomial(1, 0.25, 200).astype(float), sims)
    >>> ratio > 2 and p < 0.05
    True
    """
    expected = sims.mean(axis=0)
    observed = float(np.var(y - expected))
    simulated = np.var(sims - expected, axis=1)
    return observed / float(simulated.mean()), _two_sided(observed, simulated), simulated


def zero_inflation_test(y: np.ndarray, sims: np.ndarray) -> tuple[float, float, np.ndarray]:
    """(observed zeros / expected zeros, p-value, simulated zero counts).

    Example
    -------
    >>> rng = np.random.default_rng(0)
    >>> y = np.where(rng.uniform(size=200) < 0.3, 0, rng.poisson(3.0, 200)).astype(float)
    >>> zero_inflation_test(y, rng.poisson(2.1, (500, 200)).astype(float))[1] < 0.05
    True
    """
    observed = float(np.sum(y == 0))
    simulated = np.sum(sims == 0, axis=1).astype(float)
    expected = float(simulated.mean())
    ratio = observed / expected if expected > 0 else (np.inf if observed > 0 else 1.0)
    return ratio, _two_sided(observed, simulated), simulated


def outlier_test(y: np.ndarray, sims: np.ndarray) -> tuple[float, float, int]:
    """(outlier frequency, one-sided binomial p-value, count): y below every or above every simulation.

    Example
    -------
    >>> rng = np.random.default_rng(0)
    >>> outlier_test(rng.normal(size=300), rng.normal(size=(250, 300)))[1] > 0.05
    True
    """
    from scipy import stats

    nsim, n = sims.shape
    count = int(np.sum((y < sims.min(axis=0)) | (y > sims.max(axis=0))))
    expected = 2.0 / (nsim + 1)
    p = float(stats.binomtest(count, n, expected, alternative="greater").pvalue)
    return count / n, p, count


def _fmt(p: float) -> str:
    return f"p = {p:.3g}" if p >= 1e-4 else "p < 0.0001"


@dataclass
class ResidualChecks:
    """The table of :func:`check_residuals` plus what its plots need."""

    table: pd.DataFrame
    residuals: np.ndarray
    simulated_dispersion: np.ndarray
    simulated_zeros: np.ndarray | None
    observed_zeros: int
    discrete: bool

    def __repr__(self) -> str:
        with pd.option_context("display.width", 200, "display.max_colwidth", 120):
            return self.table.to_string(index=False)


def residual_checks(fit, re_form=None, nsim: int = 500, seed: int | None = 1) -> ResidualChecks:
    """The tests of :func:`check_residuals` with the simulated statistics (for ``check_model``)."""
    qr = quantile_residuals(fit, re_form=re_form, seed=seed, nsim=nsim)
    y = np.asarray(fit.design.y, dtype=float)
    sims = qr.simulated
    discrete = bool(fit.family.discrete)
    rows = []
    ok = qr.ks_pvalue >= ALPHA
    rows.append(("uniformity (KS)", qr.ks_statistic, qr.ks_pvalue,
                 f"residuals look uniform ({_fmt(qr.ks_pvalue)}): no sign that the family is wrong" if ok else
                 f"residuals are not uniform ({_fmt(qr.ks_pvalue)}): the family or the mean model misfits; "
                 "see the dispersion and zero-inflation rows and fit.plot_quantile_residuals()"))
    ratio, p, sim_disp = dispersion_test(y, sims)
    if p >= ALPHA:
        verdict = f"dispersion fits (ratio {ratio:.2f}, {_fmt(p)})"
    elif ratio > 1:
        verdict = (f"overdispersion: the data vary {ratio:.1f} times more than the model predicts ({_fmt(p)}); "
                   + ("fit family='negbinomial', or add an observation-level effect (1 | obs)" if discrete else
                      "fit a heavier-tailed family (student) or model sigma (dpars={'sigma': '~ x'})"))
    else:
        verdict = (f"underdispersion: the data vary less than the model predicts (ratio {ratio:.2f}, {_fmt(p)}); "
                   "check for overfitting (observation-level effects) or a family with smaller variance; when "
                   "there are also excess zeros, a zero-inflated family often fixes both")
    rows.append(("dispersion", ratio, p, verdict))
    sim_zero, zeros = None, int(np.sum(y == 0))
    if discrete:
        zratio, zp, sim_zero = zero_inflation_test(y, sims)
        if zp >= ALPHA:
            verdict = f"zeros as expected ({zeros} observed, {sim_zero.mean():.1f} expected, {_fmt(zp)})"
        elif zratio > 1:
            verdict = (f"zero-inflation: {zeros} zeros observed, {sim_zero.mean():.1f} expected ({_fmt(zp)}); "
                       "fit a zero-inflated or hurdle family (zero_inflated_negbinomial, hurdle_poisson), "
                       "or negbinomial if the data are also overdispersed")
        else:
            verdict = (f"fewer zeros than expected ({zeros} observed, {sim_zero.mean():.1f} expected, {_fmt(zp)}); "
                       "consider a hurdle model or a different family")
        rows.append(("zero-inflation", zratio, zp, verdict))
    else:
        rows.append(("zero-inflation", np.nan, np.nan, "not applicable: the response is continuous"))
    freq, op, count = outlier_test(y, sims)
    rows.append(("outliers", freq, op,
                 f"{count} observation(s) outside every simulation, as many as expected ({_fmt(op)})" if op >= ALPHA
                 else f"{count} observation(s) outside every simulation, more than expected ({_fmt(op)}): look at "
                 "them (fit.plot_quantile_residuals()); a heavier-tailed family may fit better"))
    table = pd.DataFrame(rows, columns=["test", "statistic", "p_value", "verdict"])
    return ResidualChecks(table, qr.residuals.to_numpy(), sim_disp, sim_zero, zeros, discrete)


def check_residuals(fit, re_form=None, nsim: int = 500, seed: int | None = 1) -> pd.DataFrame:
    """DHARMa-style residual tests (uniformity, dispersion, zero-inflation, outliers) with verdicts.

    Parameters
    ----------
    fit : HierFit
    re_form : None or hierfit.NA
        None simulates with the fitted group effects (DHARMa's conditional simulation);
        ``hierfit.NA`` re-simulates them.
    nsim : int
        Number of simulated data sets (posterior draws).
    seed : int, optional

    Returns
    -------
    pandas.DataFrame
        Columns ``test``, ``statistic``, ``p_value``, ``verdict``.

    Example
    -------
    >>> fit.check_residuals()  # doctest: +SKIP
    """
    return residual_checks(fit, re_form=re_form, nsim=nsim, seed=seed).table

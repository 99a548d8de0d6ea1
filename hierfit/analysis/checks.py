"""DHARMa-style tests on simulated quantile residuals, each with a verdict in plain words.

:func:`check_residuals` simulates the response from the posterior (group effects at
their fitted values by default, as DHARMa's conditional simulations) and runs four
tests, as R's DHARMa does:

uniformity
    Kolmogorov-Smirnov test of the scaled (quantile) residuals against uniform(0, 1).
dispersion
    variance of the observed residuals y - fitted over the mean variance of the simulated
    residuals y_sim - fitted, where fitted is the posterior mean of the expected response
    (DHARMa's ``testDispersion(type = "DHARMa")`` with ``refit = FALSE``: ``spread(x) =
    var(x - fittedPredictedResponse)``, statistic ``observed / mean(simulated)``); 1 when the
    model's variance fits, above 1 overdispersion, below 1 underdispersion.  The
    simulations are conditional on the fitted group effects by default, which DHARMa's
    documentation of ``testDispersion`` recommends for dispersion tests of mixed models
    (unconditional simulations, DHARMa's general default, add the group-effect variance to
    every simulated data set and make the test much less sensitive).
zero-inflation
    observed number of zeros over the simulated mean (``testZeroInflation``); counts only.
outliers
    observations outside every simulation, against the binomial expectation 2 / (nsim + 1)
    (``testOutliers``; one-sided: only too many outliers are a problem).

p-values of dispersion and zero-inflation are two-sided, from the simulated distribution
of the statistic, as DHARMa's ``getP``: ``min(2 min(mean(sim <= obs), mean(sim >= obs)), 1)``.  Each verdict says what to fit instead when the test rejects at 5 %.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from hierfit.analysis.predict import quantile_residuals

__all__ = ["check_residuals", "ResidualChecks", "dispersion_test", "dispersion_verdict", "zero_inflation_test",
           "outlier_test", "two_sided_p"]

ALPHA = 0.05


def two_sided_p(observed: float, simulated: np.ndarray) -> float:
    """DHARMa's two-sided simulation p-value (``getP``): 2 min(mean(T_sim >= t), mean(T_sim <= t)), at most 1.

    Example
    -------
    >>> two_sided_p(3.0, np.arange(1.0, 10.0))  # 2 min(7/9, 3/9)
    0.6666666666666666
    """
    simulated = np.asarray(simulated, dtype=float)
    hi = float(np.mean(simulated >= observed))
    lo = float(np.mean(simulated <= observed))
    return float(min(1.0, 2 * min(hi, lo)))


def dispersion_test(y: np.ndarray, sims: np.ndarray,
                    fitted: np.ndarray | None = None) -> tuple[float, float, np.ndarray]:
    """(ratio, p-value, simulated statistics): var(y - fitted) over the mean of var(sim - fitted).

    ``sims`` holds one simulated data set per row.  ``fitted`` is the model's expected
    response per observation (DHARMa's ``fittedPredictedResponse``); without it, the mean
    of the simulations (what DHARMa's ``createDHARMa`` uses when given none).

    Example
    -------
    >>> rng = np.random.default_rng(0)
    >>> sims = rng.poisson(3.0, (500, 200)).astype(float)
    >>> ratio, p, _ = dispersion_test(rng.negative_binomial(1, 0.25, 200).astype(float), sims)
    >>> ratio > 2 and p < 0.05
    True
    """
    expected = sims.mean(axis=0) if fitted is None else np.asarray(fitted, dtype=float)
    observed = float(np.var(y - expected))
    simulated = np.var(sims - expected, axis=1)
    return observed / float(simulated.mean()), two_sided_p(observed, simulated), simulated


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
    return ratio, two_sided_p(observed, simulated), simulated


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


def dispersion_verdict(ratio: float, p: float, discrete: bool) -> str:
    """The plain-words verdict of the dispersion test: fits, overdispersion (ratio > 1) or underdispersion (< 1).

    Example
    -------
    >>> dispersion_verdict(0.75, 0.03, discrete=True)[:15]
    'underdispersion'
    """
    if p >= ALPHA or ratio == 1:
        return f"dispersion fits (ratio {ratio:.2f}, {_fmt(p)})"
    if ratio > 1:
        return (f"overdispersion: the data vary {ratio:.1f} times more than the model predicts ({_fmt(p)}); "
                + ("fit family='negbinomial', or add an observation-level effect (1 | obs)" if discrete else
                   "fit a heavier-tailed family (student) or model sigma (dpars={'sigma': '~ x'})"))
    return (f"underdispersion: the data vary less than the model predicts (ratio {ratio:.2f}, {_fmt(p)}); "
            "check for overfitting (observation-level effects) or a family with smaller variance (for counts "
            "with a negbinomial, the quadratic variance may be too large at high means); when there are also "
            "excess zeros, a zero-inflated family often fixes both")


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
    ratio, p, sim_disp = dispersion_test(y, sims, qr.fitted)
    rows.append(("dispersion", ratio, p, dispersion_verdict(ratio, p, discrete)))
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

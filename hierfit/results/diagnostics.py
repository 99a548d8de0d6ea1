"""Convergence diagnostics turned into plain-language warnings.

Checks (thresholds as in Vehtari et al. 2021 and brms):

* divergent transitions after warm-up,
* R-hat > 1.01 for any reported parameter,
* bulk or tail ESS < 400,
* the Bayesian analogue of lme4's "boundary (singular) fit": a group-level sd
  whose posterior piles up at zero (its density at zero, estimated by a kernel
  density reflected at the boundary, is at least 3/4 of its highest density).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from hierfit.results.diagnosis import diagnose_divergences, diagnose_mixing
from hierfit.results.draws import stack

__all__ = ["parameter_diagnostics", "convergence_messages", "other_parametrization", "rhat", "ess_bulk", "ess_tail",
           "convergence_stats", "normal_quantile",
           "RHAT_MAX", "ESS_MIN"]

RHAT_MAX = 1.01
ESS_MIN = 400


# -- rank-normalised R-hat and ESS (Vehtari, Gelman, Simpson, Carpenter & Bürkner 2021) --------
#
# Conventions (those of ArviZ, so the numbers are the same as az.rhat / az.ess):
# * arrays are (..., chain, draw); statistics are computed per leading index;
# * chains are split in halves of n // 2 draws (the middle draw of an odd chain is dropped);
# * ranks are averaged over ties and mapped to normal scores with Blom's offset 3/8,
#   Phi^-1((r - 3/8) / (N + 1/4)) with N the number of split draws;
# * any NaN, or fewer than 4 draws (R-hat: fewer than 2 chains), gives NaN;
# * an ESS input that is constant (range below float resolution) gives N, the number of draws;
# * the autocorrelation is estimated via FFT and truncated with Geyer's initial positive
#   sequence, made monotone; tau is bounded below by 1 / log10(N).

_BLOM = 3.0 / 8.0

# Wichura (1988), Algorithm AS 241 (PPND16): the normal quantile to about 1e-16 relative.
_AS241_CENTRAL = (
    (3.3871328727963666080e0, 1.3314166789178437745e2, 1.9715909503065514427e3, 1.3731693765509461125e4,
     4.5921953931549871457e4, 6.7265770927008700853e4, 3.3430575583588128105e4, 2.5090809287301226727e3),
    (1.0, 4.2313330701600911252e1, 6.8718700749205790830e2, 5.3941960214247511077e3, 2.1213794301586595867e4,
     3.9307895800092710610e4, 2.8729085735721942674e4, 5.2264952788528545610e3),
)
_AS241_INNER = (
    (1.42343711074968357734e0, 4.63033784615654529590e0, 5.76949722146069140550e0, 3.64784832476320460504e0,
     1.27045825245236838258e0, 2.41780725177450611770e-1, 2.27238449892691845833e-2, 7.74545014278341407640e-4),
    (1.0, 2.05319162663775882187e0, 1.67638483018380384940e0, 6.89767334985100004550e-1,
     1.48103976427480074590e-1, 1.51986665636164571966e-2, 5.47593808499534494600e-4, 1.05075007164441684324e-9),
)
_AS241_OUTER = (
    (6.65790464350110377720e0, 5.46378491116411436990e0, 1.78482653991729133580e0, 2.96560571828504891230e-1,
     2.65321895265761230930e-2, 1.24266094738807843860e-3, 2.71155556874348757815e-5, 2.01033439929228813265e-7),
    (1.0, 5.99832206555887937690e-1, 1.36929880922735805310e-1, 1.48753612908506148525e-2,
     7.86869131145613259100e-4, 1.84631831751005468180e-5, 1.42151175831644588870e-7, 2.04426310338993978564e-15),
)


def _rational(coefs, x):
    num, den = coefs
    p = np.full_like(x, num[-1])
    q = np.full_like(x, den[-1])
    for a, b in zip(num[-2::-1], den[-2::-1]):
        p = p * x + a
        q = q * x + b
    return p / q


def normal_quantile(p) -> np.ndarray:
    """The standard normal quantile function Phi^-1(p) (Wichura's AS 241), elementwise.

    Agrees with ``scipy.special.ndtri`` to about 1e-15 relative without importing scipy;
    0 and 1 give -inf and inf, values outside [0, 1] and NaN give NaN.

    Example
    -------
    >>> normal_quantile([0.025, 0.5, 0.975]).round(6)
    array([-1.959964,  0.      ,  1.959964])
    """
    p = np.asarray(p, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return _as241(p)


def _as241(p: np.ndarray) -> np.ndarray:
    q = p - 0.5
    out = np.full(p.shape, np.nan)
    central = np.abs(q) <= 0.425
    if central.any():
        qc = q[central]
        out[central] = qc * _rational(_AS241_CENTRAL, 0.180625 - qc * qc)
    tails = ~central & (p >= 0) & (p <= 1)
    if tails.any():
        pt = p[tails]
        r = np.sqrt(-np.log(np.minimum(pt, 1.0 - pt)))
        z = np.where(r <= 5.0, _rational(_AS241_INNER, r - 1.6), _rational(_AS241_OUTER, r - 5.0))
        z = np.where(np.isinf(r), np.inf, z)
        out[tails] = np.where(pt < 0.5, -z, z)
    return out if out.ndim else out[()]


def _fast_fft_length(n: int) -> int:
    """The smallest 2^a 3^b 5^c >= n (a length numpy's FFT handles quickly)."""
    best = 1 << max(0, (n - 1).bit_length())
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            m = p35
            while m < n:
                m *= 2
            best = min(best, m)
            p35 *= 3
        p5 *= 5
    return best


def _prepare(ary, min_chains: int) -> tuple[np.ndarray, np.ndarray]:
    """(..., chain, draw) draws and the mask of leading indices whose statistic is NaN.

    NaN for any NaN draw, fewer than 4 draws or fewer than ``min_chains`` chains; those
    arrays are replaced by zeros so that the arithmetic on them stays quiet.
    """
    x = np.asarray(ary)
    if x.ndim < 2:
        x = x[None, :]
    bad = np.asarray(np.isnan(x).any(axis=(-2, -1)))
    if x.shape[-1] < 4 or x.shape[-2] < min_chains:
        bad = np.ones(bad.shape, dtype=bool)
    if bad.any():
        x = np.where(bad[..., None, None], 0, x)
    return x, bad


def _split(x: np.ndarray) -> np.ndarray:
    """(..., m, n) -> (..., 2m, n // 2): first halves of the chains, then second halves."""
    half = x.shape[-1] // 2
    return np.concatenate([x[..., :half], x[..., x.shape[-1] - half:]], axis=-2)


def _average_ranks(flat: np.ndarray, scores_of=None) -> np.ndarray:
    """Ranks 1..N along the last axis, ties given their average rank, NaN kept as NaN.

    ``scores_of(ranks)``, when given, maps the ranks to scores elementwise; without ties the
    ranks are a permutation of 1..N, so it is evaluated once on 1..N and scattered.
    """
    order = np.argsort(flat, axis=-1)  # tie order does not matter: ties share their mean rank
    xs = np.take_along_axis(flat, order, axis=-1)
    n = xs.shape[-1]
    differs = xs[..., 1:] != xs[..., :-1]
    scores_of = scores_of or (lambda r: r)
    if differs.all() and not np.isnan(xs[..., -1]).any():  # no ties, no NaN (NaN sorts last)
        out = np.empty(xs.shape)
        np.put_along_axis(out, order, np.broadcast_to(scores_of(np.arange(1.0, n + 1.0)), xs.shape), axis=-1)
        return out
    pos = np.broadcast_to(np.arange(n), xs.shape)
    edge = np.ones(xs.shape[:-1] + (1,), dtype=bool)
    starts = np.concatenate([edge, differs], axis=-1)  # first element of a run of equal values
    ends = np.concatenate([differs, edge], axis=-1)  # last element of a run
    first = np.maximum.accumulate(np.where(starts, pos, 0), axis=-1)
    last = np.flip(np.minimum.accumulate(np.flip(np.where(ends, pos, n), axis=-1), axis=-1), axis=-1)
    ranks = np.empty(xs.shape)
    np.put_along_axis(ranks, order, (first + last) / 2.0 + 1.0, axis=-1)
    return scores_of(np.where(np.isnan(flat), np.nan, ranks))


def _normal_scores(x: np.ndarray) -> np.ndarray:
    """Rank-normalise each (..., m, n) array over all its m * n draws."""
    flat = x.reshape(x.shape[:-2] + (-1,))
    size = flat.shape[-1]
    return _average_ranks(flat, lambda r: normal_quantile((r - _BLOM) / (size - 2 * _BLOM + 1))).reshape(x.shape)


def _rhat_basic(x: np.ndarray) -> np.ndarray:
    """Gelman-Rubin R-hat of (..., m, n) arrays: sqrt(((n - 1) / n W + B / n) / W)."""
    n = x.shape[-1]
    between = n * np.var(np.mean(x, axis=-1), axis=-1, ddof=1)
    within = np.mean(np.var(x, axis=-1, ddof=1), axis=-1)
    return np.sqrt((between / within + n - 1) / n)


def _autocov(x: np.ndarray) -> np.ndarray:
    """Autocovariance at lags 0..n-1 of each chain (the biased estimate, divided by n), via FFT."""
    n = x.shape[-1]
    length = _fast_fft_length(2 * n)
    spec = np.fft.rfft(x - x.mean(axis=-1, keepdims=True), n=length, axis=-1)
    spec *= np.conjugate(spec)
    return np.fft.irfft(spec, n=length, axis=-1)[..., :n] / n


def _ess_basic(x: np.ndarray) -> np.ndarray:
    """ESS of (..., m, n) arrays with Geyer's initial monotone sequence estimator."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return _geyer_ess(np.asarray(x, dtype=float))


def _geyer_ess(x: np.ndarray) -> np.ndarray:
    m, n = x.shape[-2:]
    size = m * n
    lead = x.shape[:-2]
    acov = _autocov(x)
    mean_var = acov[..., 0].mean(axis=-1) * n / (n - 1.0)
    var_plus = mean_var * (n - 1.0) / n
    if m > 1:
        var_plus = var_plus + np.var(x.mean(axis=-1), axis=-1, ddof=1)
    rho = 1.0 - (mean_var[..., None] - acov.mean(axis=-2)) / var_plus[..., None]  # (..., n)
    rho[..., 0] = 1.0

    # Geyer's initial positive sequence.  Pair k holds lags 2k and 2k+1, P_k their sum.
    # Pairs 1, 2, ... are examined while the previous pair is positive and 2k + 1 < n - 1;
    # J is the last pair examined (0: none), and it is kept when P_J >= 0.
    n_more = max(0, (n - 3) // 2)
    lag = np.arange(n)
    pair_of_lag = lag // 2
    pairs = rho[..., 0:2 * n_more + 2:2] + rho[..., 1:2 * n_more + 2:2]  # P_0 .. P_n_more
    stops = np.concatenate([~(pairs[..., :n_more] > 0), np.ones(lead + (1,), dtype=bool)], axis=-1)
    J = np.argmax(stops, axis=-1)[..., None]
    last_ok = (np.take_along_axis(pairs, J, axis=-1) >= 0) & (J >= 1)
    rho_t = np.where((pair_of_lag < np.maximum(J, 1)) | ((pair_of_lag == J) & last_ok), rho, 0.0)
    # the even lag of pair J counts (once) when positive
    even = np.take_along_axis(rho, 2 * J, axis=-1)
    rho_t = np.where((lag == 2 * J) & (even > 0) & (J >= 1), even, rho_t)

    # initial monotone sequence: a pair 1 .. J-1 larger than the (lowered) pair before it
    # is lowered to it, i.e. pair sums become their running minimum
    psum = rho_t[..., 0:2 * n_more + 2:2] + rho_t[..., 1:2 * n_more + 2:2]
    prev_min = np.concatenate([psum[..., :1], np.minimum.accumulate(psum, axis=-1)[..., :-1]], axis=-1)
    k = np.arange(n_more + 1)
    lower = (k >= 1) & (k <= J - 1) & (psum > prev_min)
    at = np.minimum(pair_of_lag, n_more)  # lags past the last pair are never lowered (J <= n_more)
    rho_t = np.where(np.take(lower, at, axis=-1), np.take(prev_min, at, axis=-1) / 2.0, rho_t)

    tau = -1.0 + 2.0 * np.sum(np.where(lag < 2 * J, rho_t, 0.0), axis=-1) + \
        np.take_along_axis(rho_t, 2 * J, axis=-1)[..., 0]
    bound = 1.0 / np.log10(size)
    tau = np.where(bound > tau, bound, tau)
    ess = size / tau
    ess = np.where(np.isnan(rho_t).any(axis=-1), np.nan, ess)
    constant = (x.max(axis=(-2, -1)) - x.min(axis=(-2, -1))) < np.finfo(float).resolution
    return np.where(constant, float(size), ess)


def _rhat_of(split: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """max(bulk, folded) split R-hat from split chains and their normal scores."""
    with np.errstate(invalid="ignore", divide="ignore"):
        bulk = _rhat_basic(scores)
        centre = np.median(split, axis=(-2, -1), keepdims=True)
        folded = _rhat_basic(_normal_scores(np.abs(split - centre)))
    return np.where(folded > bulk, folded, bulk)  # NaN bulk stays NaN, NaN folded gives bulk


def _tail_of(x: np.ndarray, prob) -> np.ndarray:
    """min over the two tail probabilities of the ESS of the indicator draw <= quantile."""
    if np.ndim(prob) == 0:
        prob = sorted((float(prob), 1.0 - float(prob)))
    lo, hi = prob
    with np.errstate(invalid="ignore"):
        q = np.quantile(x, [lo, hi], axis=(-2, -1))  # (2, ...)
    low = _ess_basic(_split(x <= q[0][..., None, None]))
    high = _ess_basic(_split(x <= q[1][..., None, None]))
    return np.where(high < low, high, low)  # NaN low stays NaN, NaN high gives low


def rhat(ary) -> np.ndarray:
    """Rank-normalised split R-hat (Vehtari et al. 2021): the larger of bulk and folded R-hat.

    ``ary`` has shape (..., chain, draw); the result has shape (...).  NaN for fewer than
    two chains or four draws, or when the draws contain NaN.  The same numbers as
    ``arviz.rhat(..., method="rank")``.

    Example
    -------
    >>> rng = np.random.default_rng(1)
    >>> bool(rhat(rng.normal(size=(4, 1000))) < 1.01)
    True
    >>> bool(rhat(rng.normal(size=(4, 1000)) + np.arange(4)[:, None]) > 1.01)  # chains disagree
    True
    """
    x, bad = _prepare(ary, min_chains=2)
    if bad.all():
        return np.full(bad.shape, np.nan)[()]
    split = _split(x)
    return np.where(bad, np.nan, _rhat_of(split, _normal_scores(split)))[()]


def ess_bulk(ary) -> np.ndarray:
    """Bulk effective sample size: ESS of the rank-normalised split chains.

    ``ary`` has shape (..., chain, draw) (or (draw,) for one chain); the result has
    shape (...).  NaN for fewer than four draws or draws with NaN.  The same numbers as
    ``arviz.ess(..., method="bulk")``.

    Example
    -------
    >>> rng = np.random.default_rng(1)
    >>> iid = rng.normal(size=(4, 1000))
    >>> bool(3000 < ess_bulk(iid) < 5000)
    True
    >>> sticky = np.cumsum(rng.normal(size=(4, 1000)), axis=1)  # random walks
    >>> bool(ess_bulk(sticky) < 100)
    True
    """
    x, bad = _prepare(ary, min_chains=1)
    if bad.all():
        return np.full(bad.shape, np.nan)[()]
    return np.where(bad, np.nan, _ess_basic(_normal_scores(_split(x))))[()]


def ess_tail(ary, prob=(0.05, 0.95)) -> np.ndarray:
    """Tail effective sample size: the smaller ESS of the indicators draw <= q_low and draw <= q_high.

    ``prob`` is the pair of tail probabilities (a single p means (min(p, 1-p), max(p, 1-p))).
    Shapes and NaN rules as :func:`ess_bulk`; the same numbers as
    ``arviz.ess(..., method="tail", prob=prob)``.

    Example
    -------
    >>> rng = np.random.default_rng(1)
    >>> bool(2000 < ess_tail(rng.standard_cauchy(size=(4, 1000))) < 6000)
    True
    """
    x, bad = _prepare(ary, min_chains=1)
    if bad.all():
        return np.full(bad.shape, np.nan)[()]
    return np.where(bad, np.nan, _tail_of(x, prob))[()]


def convergence_stats(ary, prob=(0.05, 0.95)) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(rhat(ary), ess_bulk(ary), ess_tail(ary, prob))``, sharing the rank normalisation.

    Example
    -------
    >>> rng = np.random.default_rng(2)
    >>> r, bulk, tail = convergence_stats(rng.normal(size=(3, 4, 500)))  # 3 parameters
    >>> r.shape, bool(np.all(r < 1.01))
    ((3,), True)
    """
    x, bad = _prepare(ary, min_chains=1)
    nan = np.full(bad.shape, np.nan)
    if bad.all():
        return nan[()], nan[()], nan[()]
    split = _split(x)
    scores = _normal_scores(split)
    r = _rhat_of(split, scores) if x.shape[-2] > 1 else nan
    bulk = _ess_basic(scores)
    tail = _tail_of(x, prob)
    return tuple(np.where(bad, np.nan, v)[()] for v in (r, bulk, tail))


def reported_parameters(posterior, design) -> list[tuple[str, np.ndarray]]:
    """The parameters the summary reports, as (label, (chain, draw) array) pairs.

    Labels use lme4/brms spelling: ``b[standLRT]``, ``b[sigma_(Intercept)]``,
    ``sd(standLRT | school)``, ``cor((Intercept),standLRT | school)``, ``sigma``, ``shape``.
    """
    out: list[tuple[str, np.ndarray]] = []
    for pred in design.predictors.values():
        if pred.n_thresholds:
            arr = np.asarray(posterior[pred.var("b_Intercept")].values)
            for k, n in enumerate(pred.threshold_names):
                out.append((f"b[{pred.label(n)}]", arr[:, :, k]))
        if pred.fixed_names:
            arr = np.asarray(posterior[pred.var("b")].values)
            for k, n in enumerate(pred.fixed_names):
                out.append((f"b[{pred.label(n)}]", arr[:, :, k]))
    for blk in design.all_blocks:
        label = design.predictors[blk.dpar].label
        arr = np.asarray(posterior[f"sd_{blk.key}"].values)
        for k, c in enumerate(blk.coefs):
            out.append((f"sd({label(c)} | {blk.name})", arr[:, :, k]))
        if blk.is_correlated:
            arr = np.asarray(posterior[f"cor_{blk.key}"].values)
            for i in range(blk.n_coefs):
                for j in range(i + 1, blk.n_coefs):
                    out.append((f"cor({label(blk.coefs[i])},{label(blk.coefs[j])} | {blk.name})", arr[:, :, i, j]))
    for d in design.family.dpars:
        if d.name not in design.predictors:
            out.append((d.name, np.asarray(posterior[d.name].values)))
    return out


def reported_sources(design) -> dict[str, str]:
    """The posterior variable each reported parameter comes from, label -> variable, in the summary's order.

    Example
    -------
    >>> reported_sources(fit.design)  # doctest: +SKIP
    {'b[(Intercept)]': 'b', ..., 'sd((Intercept) | school)': 'sd_school', 'sigma': 'sigma'}
    """
    out: dict[str, str] = {}
    for pred in design.predictors.values():
        for n in pred.threshold_names:
            out[f"b[{pred.label(n)}]"] = pred.var("b_Intercept")
        for n in pred.fixed_names:
            out[f"b[{pred.label(n)}]"] = pred.var("b")
    for blk in design.all_blocks:
        label = design.predictors[blk.dpar].label
        for c in blk.coefs:
            out[f"sd({label(c)} | {blk.name})"] = f"sd_{blk.key}"
        if blk.is_correlated:
            for i in range(blk.n_coefs):
                for j in range(i + 1, blk.n_coefs):
                    out[f"cor({label(blk.coefs[i])},{label(blk.coefs[j])} | {blk.name})"] = f"cor_{blk.key}"
    for d in design.family.dpars:
        if d.name not in design.predictors:
            out[d.name] = d.name
    return out


def parameter_diagnostics(posterior, design) -> pd.DataFrame:
    """R-hat (rank-normalised, split) and bulk/tail ESS of every reported parameter.

    The three statistics are those of :func:`rhat`, :func:`ess_bulk` and
    :func:`ess_tail` (tail probabilities 0.05 and 0.95), computed for all parameters at
    once; R-hat is NaN for a single chain.

    Example
    -------
    >>> import xarray as xr
    >>> from types import SimpleNamespace
    >>> from hierfit.families import gaussian
    >>> rng = np.random.default_rng(0)
    >>> post = xr.Dataset({"sigma": (("chain", "draw"), rng.gamma(50, 0.02, (4, 500)))})
    >>> design = SimpleNamespace(predictors={}, all_blocks=[], family=gaussian())
    >>> parameter_diagnostics(post, design).columns.tolist()
    ['Rhat', 'Bulk_ESS', 'Tail_ESS']
    """
    params = reported_parameters(posterior, design)
    labels = [label for label, _ in params]
    if not params:
        return pd.DataFrame({"Rhat": [], "Bulk_ESS": [], "Tail_ESS": []},
                            index=pd.Index([], name="parameter"), dtype=float)
    r, bulk, tail = convergence_stats(np.stack([np.asarray(arr, dtype=float) for _, arr in params]),
                                      prob=(0.05, 0.95))
    return pd.DataFrame({"Rhat": r, "Bulk_ESS": bulk, "Tail_ESS": tail},
                        index=pd.Index(labels, name="parameter"))


def piles_at_zero(sd_draws: np.ndarray, ratio: float = 0.75) -> bool:
    """True when the posterior density of an sd is highest at (or near the height it has at) zero.

    The density is a Gaussian kernel estimate (Silverman's bandwidth) with the draws
    reflected at 0, so it is not biased down at the boundary; it is evaluated from 0 to
    the 99% quantile.  A posterior that decreases from 0 — the REML estimate on the
    boundary, lme4's singular fit — has its density at 0 near the highest; one whose
    mode is away from 0 has it far below.

    Example
    -------
    >>> rng = np.random.default_rng(0)
    >>> piles_at_zero(rng.exponential(0.1, 4000)), piles_at_zero(rng.normal(1, 0.1, 4000))
    (True, False)
    """
    x = np.asarray(sd_draws, dtype=float).ravel()
    top = np.quantile(x, 0.99)
    spread = np.std(x)
    if top <= 0 or spread == 0:
        return bool(top <= 0)
    h = 1.06 * spread * x.size ** -0.2
    grid = np.linspace(0.0, top, 60)
    pts = np.concatenate([x, -x])
    dens = np.zeros(grid.size)
    for lo in range(0, pts.size, 4000):  # chunks keep the temporary small
        dens += np.exp(-0.5 * ((grid[:, None] - pts[None, lo:lo + 4000]) / h) ** 2).sum(axis=1)
    return bool(dens[0] >= ratio * dens.max())


def other_parametrization(labels: list[str], design, parametrization) -> dict:
    """The sampled terms named in ``labels`` switched to their other parametrization, by grouping factor.

    Example
    -------
    >>> # other_parametrization(["sd((Intercept) | school)"], fit.design, fit.parametrization)
    >>> # {'school': 'noncentered'}
    """
    out: dict[str, str] = {}
    if not parametrization:
        return out
    for blk in design.all_blocks:
        if any(lab.endswith(f"| {blk.name})") for lab in labels) and \
                parametrization.get(blk.key) in ("centered", "noncentered"):
            out[blk.factor] = "noncentered" if parametrization[blk.key] == "centered" else "centered"
    return out


def convergence_messages(posterior, sample_stats, design, diag: pd.DataFrame, parametrization=None,
                         settings=None) -> list[str]:
    """Warnings about the fit, each naming the parameters, the likely reason and a remedy to paste.

    ``settings`` (the fit's :class:`~hierfit.engine.sampling.SamplerSettings`) gives the
    target_accept, draws and tune the remedies start from (0.8, 1000, 1000 when None).
    The diagnoses are those of :mod:`hierfit.results.diagnosis`.
    """
    target_accept = float(getattr(settings, "target_accept", 0.8) or 0.8)
    msgs: list[str] = []
    divergence = None
    if sample_stats is not None and "diverging" in sample_stats:
        diverging = np.asarray(sample_stats["diverging"].values, dtype=bool)
        n_div = int(diverging.sum())
        if n_div:
            divergence = diagnose_divergences(posterior, diverging, design, parametrization, target_accept,
                                              piles_at_zero)
            about = f" (around {', '.join(divergence.parameters)})" if divergence.parameters else ""
            msgs.append(f"{n_div} divergent transition(s) after warm-up{about}: the posterior may be biased. "
                        f"{divergence.text()}.")
    bad_rhat = diag.index[diag["Rhat"] > RHAT_MAX].tolist()
    low = diag.index[(diag["Bulk_ESS"] < ESS_MIN) | (diag["Tail_ESS"] < ESS_MIN)].tolist()

    def why(labels, rhat_bad):
        if divergence is not None:
            return f"Likely reason: the divergent transitions above. Remedy: {divergence.code}"
        return diagnose_mixing(posterior, design, diag, labels, settings, rhat_bad=rhat_bad,
                               ess_min=ESS_MIN,
                               other_parametrization=lambda labs: other_parametrization(labs, design,
                                                                                        parametrization)).text()

    if bad_rhat:
        msgs.append(f"R-hat > {RHAT_MAX} for {', '.join(bad_rhat)}: the chains have not mixed. "
                    f"{why(bad_rhat, True)}.")
    if low:
        msgs.append(f"bulk or tail ESS < {ESS_MIN} for {', '.join(low)}: means and intervals are imprecise. "
                    f"{why(low, bool(bad_rhat))}.")
    for blk in design.all_blocks:
        sd = stack(posterior, f"sd_{blk.key}")
        label = design.predictors[blk.dpar].label
        for k, c in enumerate(blk.coefs):
            if piles_at_zero(sd[:, k]):
                msgs.append(
                    f"boundary (singular) fit: the posterior of sd({label(c)} | {blk.name}) piles up at zero, "
                    "so the data hold little information about this term (lme4 would report a singular fit). "
                    "Consider removing it, or '||' to drop correlations."
                )
    return msgs

"""PSIS-LOO and model comparison through ArviZ, with the log-likelihood hierfit computes.

nutpie does not store pointwise log-likelihoods; :func:`log_likelihood_tree` adds the
standard ArviZ groups ``log_likelihood`` and ``observed_data`` (one variable named
after the response, dimension ``obs``) to the fit's DataTree the first time they are
needed, so ``arviz.loo(fit.posterior)`` and ``arviz.compare`` work directly.  The
PSIS-LOO result is computed once per fit and reused by :func:`compare`.
"""

from __future__ import annotations

import warnings

import numpy as np
import xarray as xr

from hierfit.analysis.comparison import Comparison
from hierfit.analysis.prepare import prepare_draws
from hierfit.errors import HierfitError, HierfitWarning, warn

__all__ = ["pointwise_log_likelihood", "log_likelihood_tree", "posterior_predictive_tree", "loo", "compare"]


def _obs_coords(fit) -> dict:
    return {"obs": np.arange(fit.nobs)}


#: elements (draws x rows) of a block of the pointwise log-likelihood: its temporaries stay small
LOGLIK_BLOCK = 2_000_000


def pointwise_log_likelihood(fit, block: int = LOGLIK_BLOCK) -> np.ndarray:
    """Log-likelihood of every training row under every posterior draw, (draws, rows), chain-major.

    Computed for blocks of draws of about ``block`` elements each and written into the
    result, so that memory beyond the result stays bounded (prepare_draws' linear predictors,
    means and densities exist for one block at a time).

    Example
    -------
    >>> pointwise_log_likelihood(fit).shape  # doctest: +SKIP
    (4000, 4059)
    """
    total = fit.draws.sizes["chain"] * fit.draws.sizes["draw"]
    y = fit.design.y
    step = max(1, int(block // max(fit.design.nobs, 1)))
    out = None
    for lo in range(0, total, step):
        ids = np.arange(lo, min(total, lo + step))
        part = prepare_draws(fit, draw_ids=ids).logpdf(y)
        if out is None:
            out = np.empty((total,) + part.shape[1:])
        out[lo:lo + len(ids)] = part
    return out


def log_likelihood_tree(fit) -> xr.DataTree:
    """The fit's DataTree with ``log_likelihood`` and ``observed_data`` groups (added once, in place).

    The variable of both groups is named after the response (``normexam``).

    Example
    -------
    >>> tree = log_likelihood_tree(fit)  # doctest: +SKIP
    >>> tree["log_likelihood"]["normexam"].dims  # doctest: +SKIP
    ('chain', 'draw', 'obs')
    """
    tree = fit.tree
    if "log_likelihood" in tree.children:
        return tree
    name = fit.design.response
    chains, ndraw = fit.draws.sizes["chain"], fit.draws.sizes["draw"]
    ll = pointwise_log_likelihood(fit).reshape(chains, ndraw, -1)
    coords = {"chain": fit.draws["chain"].values, "draw": fit.draws["draw"].values, **_obs_coords(fit)}
    tree["log_likelihood"] = xr.DataTree(xr.Dataset({name: (("chain", "draw", "obs"), ll)}, coords=coords))
    if "observed_data" not in tree.children:
        tree["observed_data"] = xr.DataTree(
            xr.Dataset({name: (("obs",), np.asarray(fit.design.y, dtype=float))}, coords=_obs_coords(fit)))
    return tree


def posterior_predictive_tree(fit, seed: int | None = None) -> xr.DataTree:
    """The fit's DataTree with a ``posterior_predictive`` group: replicated data for every draw.

    Example
    -------
    >>> tree = posterior_predictive_tree(fit, seed=1)  # doctest: +SKIP
    >>> import arviz_plots as azp; azp.plot_ppc_dist(tree)  # doctest: +SKIP
    """
    from hierfit.analysis.predict import predict

    tree = log_likelihood_tree(fit)
    if "posterior_predictive" in tree.children and seed is None:
        return tree
    sims = predict(fit, kind="response", summary=False, seed=fit.settings.seed if seed is None else seed)
    name = fit.design.response
    coords = {"chain": fit.draws["chain"].values, "draw": fit.draws["draw"].values, **_obs_coords(fit)}
    values = np.asarray(sims.values, dtype=float).reshape(len(coords["chain"]), len(coords["draw"]), -1)
    tree["posterior_predictive"] = xr.DataTree(
        xr.Dataset({name: (("chain", "draw", "obs"), values)}, coords=coords))
    return tree


def _pareto_message(elpd) -> None:
    k = np.asarray(getattr(elpd, "pareto_k", np.array([])))
    threshold = float(getattr(elpd, "good_k", 0.7) or 0.7)
    bad = int(np.sum(k > threshold)) if k.size else 0
    if bad:
        warn(f"{bad} observation(s) have Pareto k > {threshold:.2f}: the PSIS-LOO estimate is unreliable for them "
            "(each is very influential). Consider K-fold cross-validation or a more robust model.", HierfitWarning)


def _elpd(fit):
    """PSIS-LOO of a fit, computed once (ArviZ's own Pareto-k warning is replaced by hierfit's)."""
    cached = fit.cache.get("loo")
    if cached is not None:
        return cached
    agg = fit.design.summary.aggregated_from if fit.design.summary is not None else None
    if agg is not None:
        raise HierfitError(f"PSIS-LOO leaves out one row at a time, but this fit aggregated its {agg} rows into "
                           f"{fit.design.nobs} count patterns: leaving out a pattern is not leaving out a row, and a "
                           "model with other predictors has other patterns, so the numbers would not compare; "
                           "compute LOO on an in-memory sample of the rows")
    import arviz as az

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*[Pp]areto.*")
        warnings.filterwarnings("ignore", message=".*k_psis.*")
        elpd = az.loo(log_likelihood_tree(fit), pointwise=True)
    fit.cache["loo"] = elpd
    return elpd


def loo(fit):
    """PSIS-LOO of a fit (ArviZ's ``loo``), warning in plain words about high Pareto k.

    Example
    -------
    >>> fit.loo().elpd  # doctest: +SKIP
    """
    elpd = _elpd(fit)
    _pareto_message(elpd)
    return elpd


def compare(fits: dict, **kwargs) -> Comparison:
    """Compare fits by PSIS-LOO (ArviZ's ``compare`` table, printed with its columns explained).

    Each fit's pointwise log-likelihood and PSIS-LOO are computed once and kept with the
    fit, so comparing again (or calling ``fit.loo()``) costs nothing.

    Example
    -------
    >>> hierfit.compare({"intercept": fit_ri, "slope": fit_rs})  # doctest: +SKIP
    """
    import arviz as az

    if not isinstance(fits, dict) or len(fits) < 2:
        raise HierfitError("compare needs a dict of at least two fits, e.g. {'ri': fit1, 'rs': fit2}")
    ns = {name: f.nobs for name, f in fits.items()}
    if len(set(ns.values())) > 1:
        raise HierfitError(f"fits were made on different numbers of observations ({ns}); LOO needs the same data")
    kwargs.setdefault("round_to", "none")
    results = {}
    for name, f in fits.items():
        results[name] = _elpd(f)
        _pareto_message(results[name])
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*[Pp]areto.*")
        table = az.compare(results, **kwargs)
    return Comparison(table)

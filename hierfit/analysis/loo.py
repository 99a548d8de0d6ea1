"""PSIS-LOO and model comparison through ArviZ, with the log-likelihood hierfit computes.

nutpie does not store pointwise log-likelihoods; :func:`log_likelihood_tree` adds them
(from the shared prepare-draws step) to a copy of the posterior DataTree.
"""

from __future__ import annotations


import numpy as np
import xarray as xr

from hierfit.errors import HierfitError, HierfitWarning, warn
from hierfit.analysis.prepare import prepare_draws

__all__ = ["log_likelihood_tree", "loo", "compare"]


def log_likelihood_tree(fit) -> xr.DataTree:
    """The fit's DataTree plus ``log_likelihood`` (chain, draw, obs) and ``observed_data`` groups."""
    cached = fit.cache.get("log_likelihood_tree")
    if cached is not None:
        return cached
    prepared = prepare_draws(fit)
    ll = prepared.logpdf(fit.design.y)
    chains, ndraw = fit.draws.sizes["chain"], fit.draws.sizes["draw"]
    ll = ll.reshape(chains, ndraw, -1)
    coords = {"chain": np.arange(chains), "draw": np.arange(ndraw), "obs": np.arange(ll.shape[2])}
    tree = xr.DataTree.from_dict({
        "posterior": fit.draws,
        "log_likelihood": xr.Dataset({"y": (("chain", "draw", "obs"), ll)}, coords=coords),
        "observed_data": xr.Dataset({"y": (("obs",), fit.design.y)}, coords={"obs": coords["obs"]}),
    })
    fit.cache["log_likelihood_tree"] = tree
    return tree


def _pareto_message(elpd) -> None:
    k = np.asarray(getattr(elpd, "pareto_k", np.array([])))
    threshold = float(getattr(elpd, "good_k", 0.7) or 0.7)
    bad = int(np.sum(k > threshold)) if k.size else 0
    if bad:
        warn(f"{bad} observation(s) have Pareto k > {threshold:.2f}: the PSIS-LOO estimate is unreliable for them "
            "(each is very influential). Consider K-fold cross-validation or a more robust model.", HierfitWarning)


def loo(fit):
    """PSIS-LOO of a fit (ArviZ's ``loo``), warning in plain words about high Pareto k."""
    import arviz as az

    elpd = az.loo(log_likelihood_tree(fit), pointwise=True)
    _pareto_message(elpd)
    return elpd


def compare(fits: dict, **kwargs):
    """Compare fits by PSIS-LOO (ArviZ's ``compare`` table).

    Example
    -------
    >>> # hierfit.compare({"intercept": fit_ri, "slope": fit_rs})
    """
    import arviz as az

    if not isinstance(fits, dict) or len(fits) < 2:
        raise HierfitError("compare needs a dict of at least two fits, e.g. {'ri': fit1, 'rs': fit2}")
    ns = {name: f.nobs for name, f in fits.items()}
    if len(set(ns.values())) > 1:
        raise HierfitError(f"fits were made on different numbers of observations ({ns}); LOO needs the same data")
    trees = {name: log_likelihood_tree(f) for name, f in fits.items()}
    for name, f in fits.items():
        _pareto_message(az.loo(trees[name], pointwise=True))
    return az.compare(trees, **kwargs)

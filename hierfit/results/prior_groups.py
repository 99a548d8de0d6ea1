"""Prior draws on the fit's DataTree: ArviZ's ``prior`` and ``prior_predictive`` groups.

brms keeps prior draws when asked (``sample_prior = "yes"``); here
:meth:`hierfit.HierFit.sample_prior` draws them from the fit's own PyMC model (the
specification, with the fit's priors) and stores them beside the posterior under the
posterior's variable names, and the replicated responses under the response's name with
the ``obs`` dimension of ``log_likelihood`` and ``observed_data``, so ArviZ's
prior-versus-posterior and prior predictive plots read ``fit.posterior`` directly.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from hierfit.engine.model import build_model
from hierfit.engine.quiet import quiet_pymc
from hierfit.engine.sampling import INTERNAL_PREFIXES
from hierfit.errors import HierfitError

__all__ = ["add_prior_groups"]


def add_prior_groups(fit, draws: int = 500, seed: int | None = None) -> xr.DataTree:
    """Draw ``draws`` times from the priors (parameters and replicated data) into ``fit.tree``; return it.

    Example
    -------
    >>> tree = add_prior_groups(fit, draws=200, seed=1)  # doctest: +SKIP
    >>> sorted(tree["prior"].data_vars)  # doctest: +SKIP
    ['b', 'sd_school', 'sigma', ...]
    """
    import pymc as pm

    if not fit.design.rows_held:
        raise HierfitError(f"sample_prior draws replicated data for every row, but the model was fitted to data read "
                           f"through a data engine ({fit.design.summary.source}; its {fit.design.nobs} rows are not "
                           "held in memory): use hierfit.sample_prior(formula, a pandas sample of the data)")
    model = build_model(fit.design, fit.priors)  # the full model: group effects drawn too
    with quiet_pymc(), model:
        pp = pm.sample_prior_predictive(draws=draws, random_seed=seed)
    prior = pp["prior"].to_dataset()
    prior = prior.drop_vars([v for v in prior.data_vars if str(v).startswith(INTERNAL_PREFIXES)])
    name = fit.design.response
    sims = pp["prior_predictive"].to_dataset()
    values = np.asarray(next(iter(sims.data_vars.values())).values, dtype=float)
    coords = {"chain": sims["chain"].values, "draw": sims["draw"].values, "obs": np.arange(values.shape[-1])}
    tree = fit.tree
    tree["prior"] = xr.DataTree(prior)
    tree["prior_predictive"] = xr.DataTree(xr.Dataset({name: (("chain", "draw", "obs"), values)}, coords=coords))
    return tree

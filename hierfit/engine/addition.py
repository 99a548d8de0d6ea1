"""The PyMC likelihood of brms's addition terms: weights, censoring, known standard errors.

The family's observed variable ``y`` is created as usual (so prior predictive draws
work); censoring and weights then correct its log density with one ``pm.Potential``:

* censored rows: log CDF (left), log survival (right) or log(CDF(y2) - CDF(y)) (interval)
  replace the density, through PyMC's ``logcdf`` of the family's distribution;
* weights: each row's log-likelihood times its weight.

Known standard errors change the family's sd: ``sigma_i = sqrt(sigma^2 + se_i^2)``, or
``se_i`` alone without a residual sd.
"""

from __future__ import annotations

import numpy as np

__all__ = ["observation_sd", "addition_likelihood"]


def observation_sd(dvals: dict, addition):
    """Put the per-row sd of ``y | se(s)`` into the distributional parameters (in the model context)."""
    import pymc as pm
    import pytensor.tensor as pt

    if addition is None or addition.se is None:
        return dvals
    se = pm.Data("se", addition.se)
    out = dict(dvals)
    out["sigma"] = pt.sqrt(pt.sqr(dvals["sigma"]) + pt.sqr(se)) if "sigma" in dvals else se
    return out


def addition_likelihood(fam, mu, dvals: dict, y, trials, addition):
    """The observed ``y`` plus the Potential that applies censoring and weights."""
    import pymc as pm
    import pytensor.tensor as pt

    rv = fam.pymc_likelihood("y", mu, dvals, y, trials)
    if addition is None or (addition.weights is None and addition.cens is None):
        return rv
    ll = pm.logp(rv, y)
    full = ll
    c = addition.cens
    if c is not None and (c != 0).any():
        # each kind of censoring on its own rows (indexing keeps the other rows' gradients out)
        lcdf = pm.logcdf(rv, y)
        left, right, interval = (np.flatnonzero(c == k) for k in (-1, 1, 2))
        if left.size:
            full = pt.set_subtensor(full[left], lcdf[left])
        if right.size:
            full = pt.set_subtensor(full[right], pt.log1mexp(lcdf[right]))  # log P(Y > y)
        if interval.size:
            y_obs = np.asarray(addition.y2 if addition.y2 is not None else 0.0)
            lcdf2 = pm.logcdf(rv, pm.Data("y2", np.where(c == 2, y_obs, 0.0)))
            full = pt.set_subtensor(full[interval], pm.math.logdiffexp(lcdf2[interval], lcdf[interval]))
    if addition.weights is not None:
        full = full * pm.Data("weights", addition.weights)
    pm.Potential("y_addition", pt.sum(full - ll))
    return rv

"""Per-draw predictions of new rows, conditional or population-averaged (``re_form="marginal"``).

Conditional predictions hold the group effects at their fitted values (``re_form=None``)
or at zero (``re_form=hierfit.NA``: the "typical group").  For a non-identity link the
typical group's mean is not the population's mean: a logistic random-intercept model
with intercept 0 predicts p = 0.5 for the typical school, but averaged over schools
the probability is pulled towards 0.5 whenever the fixed part is not 0.

``re_form="marginal"`` integrates the response-scale mean over the fitted
group-effect distribution, per posterior draw:

    E[y | x, draw] = integral of g^-1(x b + z u) N(u | 0, Sigma) du

by Monte Carlo with ``nsim`` new-group effects per draw (the same draws for every
row, so differences between rows have little simulation noise).  The new groups'
effects are drawn by :func:`hierfit.analysis.prepare.prepare_draws` itself (as for
``allow_new_levels=True``), so there is no second copy of the linear predictor.
For identity links the integral equals the ``re_form=NA`` answer exactly, which is
returned without simulation.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from hierfit.analysis.grid import group_columns
from hierfit.analysis.prepare import NA, prepare_draws
from hierfit.errors import HierfitError

__all__ = ["MARGINAL", "KINDS", "is_marginal", "response_draws"]

#: ``re_form`` value for population-averaged (marginal over group effects) predictions.
MARGINAL = "marginal"
KINDS = ("mean", "link", "response")
_CELLS = 4_000_000  # draws x rows x new groups evaluated at once


def is_marginal(re_form) -> bool:
    return isinstance(re_form, str) and re_form.strip().lower() == MARGINAL


def _linear_in_eta(fit) -> bool:
    return fit.family.link.name == "identity"


def _pick(prepared, kind: str, rng):
    if kind == "mean":
        return prepared.expected()
    if kind == "link":
        return prepared.eta["mu"]
    if kind == "response":
        return prepared.simulate(rng)
    raise HierfitError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")


def _population_mean(fit, newdata: pd.DataFrame, seed, ndraws, nsim: int, offset) -> np.ndarray:
    groups = group_columns(fit.design)
    n = len(newdata)
    base = newdata.drop(columns=[g for g in groups if g in newdata.columns]).reset_index(drop=True)
    total = fit.draws.sizes["chain"] * fit.draws.sizes["draw"]
    S = total if ndraws is None else min(ndraws, total)
    acc = None
    per_chunk = max(1, _CELLS // max(1, S * n))
    done = 0
    while done < nsim:
        k = min(per_chunk, nsim - done)
        reps = np.repeat(np.arange(done, done + k), n)
        frame = pd.concat([base] * k, ignore_index=True)
        for g in groups:
            frame[g] = [f"<new {g} {r}>" for r in reps]
        # one seed per chunk: a chunk's new levels get their own effects
        prepared = prepare_draws(fit, frame, re_form=None, allow_new_levels=True, ndraws=ndraws,
                                 seed=None if seed is None else seed + done, offset=offset)
        part = prepared.expected().reshape(-1, k, n).sum(axis=1)
        acc = part if acc is None else acc + part
        done += k
    return acc / nsim


def response_draws(fit, newdata: pd.DataFrame, re_form=None, kind: str = "mean", allow_new_levels: bool = False,
                   seed: int | None = None, ndraws: int | None = None, nsim: int = 200, offset=None) -> np.ndarray:
    """(S, n) draws of ``kind`` for the rows of ``newdata``.

    ``re_form="marginal"`` averages the mean over ``nsim`` new groups per draw
    (``kind="mean"`` only).

    Example
    -------
    >>> d = response_draws(fit, grid, re_form="marginal", seed=1)  # doctest: +SKIP
    """
    if kind not in KINDS:
        raise HierfitError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    if fit.design.response_levels is not None and kind != "link":
        raise HierfitError(f"the {fit.family.name} family's response is an ordered category: its expected value is a "
                           "probability per category, which these summaries of one number per row do not take; use "
                           "kind='link' (the latent linear predictor) or fit.predict(newdata) for the category "
                           "probabilities")
    if is_marginal(re_form):
        if kind != "mean":
            raise HierfitError(f"re_form='marginal' averages the mean over group effects; use kind='mean', "
                               f"not {kind!r} (the link-scale average is the re_form=hierfit.NA answer)")
        if not fit.design.all_blocks or _linear_in_eta(fit):
            return prepare_draws(fit, newdata, re_form=NA, ndraws=ndraws, offset=offset).expected()
        if int(nsim) < 1:
            raise HierfitError(f"nsim must be a positive integer, got {nsim!r}")
        return _population_mean(fit, newdata, seed, ndraws, int(nsim), offset)
    rng = np.random.default_rng(seed)
    prepared = prepare_draws(fit, newdata, re_form=re_form, allow_new_levels=allow_new_levels,
                             seed=None if seed is None else seed + 1, ndraws=ndraws, offset=offset)
    return _pick(prepared, kind, rng)

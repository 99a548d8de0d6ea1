"""Why a fit did not converge, and what to change: each warning names the parameter, the reason and a remedy.

The checks of :mod:`hierfit.results.diagnostics` say *that* something is wrong; this
module says *where* and *why*, and gives one change of the call that fixes it, written
as code to paste (``fit.update(...)`` repeats the fit with only that change):

* divergent transitions concentrated where a group-level sd is small (their median below
  the 25% quantile of its draws; a single divergence below the 10%): the funnel of a group term whose sd the data barely
  determine.  A centred term is switched to the non-centred parametrization (with
  ``target_accept=0.99``); a non-centred or collapsed term gets a higher ``target_accept``.
  When the sd's posterior piles up at zero the message says it is lme4's boundary
  (singular) fit.
* divergences that no sd explains: a region of high curvature, ``target_accept``.
* R-hat or ESS short for an sd and sigma (or another distributional parameter) that
  trade off against each other (posterior correlation below -0.5): a ridge between
  group and residual variation; more draws.
* R-hat above 1.01 for an sd of a sampled term: the other parametrization of the term.
* ESS short with R-hat fine: too few draws for the autocorrelation; the number of draws
  that reaches the target (ESS grows about linearly with the draws).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["Diagnosis", "diagnose_divergences", "diagnose_mixing", "remedy_code", "FUNNEL_QUANTILE",
           "RIDGE_CORRELATION"]

#: divergences whose median sits below this quantile of an sd's draws are "near zero"
FUNNEL_QUANTILE = 0.25
#: sd and sigma correlated below this: a ridge
RIDGE_CORRELATION = -0.5


@dataclass(frozen=True)
class Diagnosis:
    """The parameters concerned, the likely reason, and the remedy as keyword arguments of ``fit.update``.

    Example
    -------
    >>> Diagnosis(("sd((Intercept) | g)",), "a funnel", {"target_accept": 0.95}).text()
    'Likely reason: a funnel. Remedy: fit.update(target_accept=0.95)'
    """

    parameters: tuple[str, ...]
    reason: str
    remedy: dict

    @property
    def code(self) -> str:
        return remedy_code(self.remedy)

    def text(self) -> str:
        return f"Likely reason: {self.reason}. Remedy: {self.code}"


def remedy_code(remedy: dict) -> str:
    """The remedy as code to paste: ``fit.update(name=value, ...)`` (values as Python literals).

    Example
    -------
    >>> remedy_code({"parametrization": {"g": "noncentered"}, "target_accept": 0.95})
    "fit.update(parametrization={'g': 'noncentered'}, target_accept=0.95)"
    """
    return "fit.update(" + ", ".join(f"{k}={v!r}" for k, v in remedy.items()) + ")"


def _sd_draws(posterior, design):
    """(label, block, flat draws) of every group-level sd."""
    out = []
    for blk in design.all_blocks:
        arr = np.asarray(posterior[f"sd_{blk.key}"].values, dtype=float)
        label = design.predictors[blk.dpar].label
        for k, c in enumerate(blk.coefs):
            out.append((f"sd({label(c)} | {blk.name})", blk, arr[:, :, k].reshape(-1)))
    return out


def _quantile_of(x: np.ndarray, mask: np.ndarray) -> float:
    """Median, over the draws in ``mask``, of each draw's quantile among all draws of x."""
    ranks = np.empty(x.size)
    ranks[np.argsort(x, kind="stable")] = (np.arange(x.size) + 0.5) / x.size
    return float(np.median(ranks[mask]))


def _choice(parametrization, blk) -> str | None:
    return parametrization.get(blk.key) if parametrization else None


def _higher_accept(target_accept: float) -> float | None:
    for t in (0.95, 0.99):
        if target_accept < t - 1e-9:
            return t
    return None


def diagnose_divergences(posterior, diverging: np.ndarray, design, parametrization, target_accept: float,
                         singular) -> Diagnosis:
    """Where the divergent transitions are, why, and the change that removes them.

    ``diverging`` is the (chain, draw) boolean array of the sampler; ``singular(draws)``
    says whether an sd's posterior piles up at zero.

    Example
    -------
    >>> # diagnose_divergences(fit.draws, div, fit.design, fit.parametrization, 0.8, piles_at_zero).code
    >>> # "fit.update(parametrization={'g': 'noncentered'}, target_accept=0.99)"
    """
    mask = np.asarray(diverging, dtype=bool).reshape(-1)
    # one divergence anywhere below the 25% quantile happens by chance one time in four: ask more of it
    threshold = FUNNEL_QUANTILE if mask.sum() >= 2 else FUNNEL_QUANTILE / 2.5
    worst = None
    for label, blk, x in _sd_draws(posterior, design):
        if x.size != mask.size:
            continue
        q = _quantile_of(x, mask)
        if q <= threshold and (worst is None or q < worst[0]):
            worst = (q, label, blk, x)
    higher = _higher_accept(target_accept)
    if worst is None:
        reason = ("no group-level sd explains them (they are spread over its draws): the posterior has a region "
                  "of high curvature that the step size does not resolve")
        remedy = {"target_accept": higher or 0.99}
        if higher is None:
            remedy["tune"] = 2000
        return Diagnosis((), reason, remedy)
    q, label, blk, x = worst
    where = (f"the divergent transitions sit where {label} is near zero (their median is at the {q:.0%} "
             "quantile of its draws)")
    zero = singular(x)
    singular_note = ("; its posterior piles up at zero (lme4 would report a boundary (singular) fit)" if zero else "")
    choice = _choice(parametrization, blk)
    if choice == "centered":
        reason = (f"{where}: the funnel of a centred group term whose sd the data barely determine"
                  f"{singular_note}")
        remedy = {"parametrization": {blk.factor: "noncentered"}, "target_accept": max(0.99, target_accept)}
        return Diagnosis((label,), reason, remedy)
    kind = "non-centred" if choice == "noncentered" else "collapsed"
    reason = f"{where}: the neck of the funnel of a {kind} group term is too narrow for the step size{singular_note}"
    if higher is not None:
        return Diagnosis((label,), reason, {"target_accept": higher})
    if zero:
        term = getattr(getattr(blk, "term", None), "text", blk.name)
        reason += f"; the data hold no information about this term (lme4 users would drop {term} from the formula)"
    return Diagnosis((label,), reason, {"tune": 2000, "target_accept": 0.99})


def _ridge(posterior, design, labels: list[str]):
    """(sd label, dpar, correlation) of the most negatively correlated sd / distributional parameter pair."""
    dpars = [d.name for d in design.family.dpars if d.name not in design.predictors and d.name in posterior]
    best = None
    for label, _, x in _sd_draws(posterior, design):
        for d in dpars:
            if label not in labels and d not in labels:
                continue
            y = np.asarray(posterior[d].values, dtype=float).reshape(-1)
            if x.std() == 0 or y.std() == 0:
                continue
            r = float(np.corrcoef(np.log(np.maximum(x, 1e-300)), np.log(y))[0, 1])
            if r < RIDGE_CORRELATION and (best is None or r < best[2]):
                best = (label, d, r)
    return best


def _draws_for(diag, draws: int, target: float) -> int:
    ess = float(np.nanmin(np.minimum(diag["Bulk_ESS"].to_numpy(), diag["Tail_ESS"].to_numpy())))
    factor = 2.0 * target / max(ess, 1.0) if math.isfinite(ess) else 2.0  # a margin: R-hat settles too
    step = 500 if draws >= 1000 else max(50, draws // 2)
    return int(math.ceil(draws * max(factor, 2.0 if not math.isfinite(ess) else 1.0) / step) * step)


def diagnose_mixing(posterior, design, diag, labels: list[str], settings, *, rhat_bad: bool,
                    ess_min: float, other_parametrization) -> Diagnosis:
    """Why R-hat or ESS fall short for ``labels`` (no divergences), and the change that fixes it.

    ``other_parametrization(labels)`` gives the dict that switches the sampled terms named
    in ``labels`` to their other parametrization (empty when none is).

    Example
    -------
    >>> # diagnose_mixing(fit.draws, fit.design, fit.diagnostics, ["sd((Intercept) | g)"], ...).code
    """
    draws = int(getattr(settings, "draws", 1000) or 1000)
    tune = int(getattr(settings, "tune", 1000) or 1000)
    ridge = _ridge(posterior, design, labels)
    new_draws = _draws_for(diag.loc[labels], draws, ess_min)
    if ridge is not None:
        sd_label, d, r = ridge
        reason = (f"{sd_label} and {d} trade off against each other (posterior correlation of their logs {r:.2f}): "
                  "a ridge, the data hardly tell group from residual variation, so each draw moves little along it")
        return Diagnosis((sd_label, d), reason, {"draws": max(new_draws, 2 * draws)})
    smallest = float(np.nanmin(diag.loc[labels, ["Bulk_ESS", "Tail_ESS"]].to_numpy()))
    if rhat_bad:
        switch = other_parametrization(labels)
        if switch:
            reason = ("the chains disagree about a group-level sd: the parametrization of the term does not suit "
                      "how much the data say about it")
            return Diagnosis(tuple(labels), reason, {"parametrization": switch})
        if smallest >= ess_min:
            reason = "the chains disagree although each mixes (they have not yet explored the same region)"
            return Diagnosis(tuple(labels), reason, {"tune": 2 * tune, "draws": 2 * draws})
        new_draws = max(new_draws, 2 * draws)
    requested = getattr(settings, "requested_draws", None)
    extended = f", even after the run was extended to {draws} draws per chain" if requested else ""
    reason = f"too few draws for their autocorrelation (smallest ESS {smallest:.0f}){extended}"
    return Diagnosis(tuple(labels), reason, {"draws": new_draws})

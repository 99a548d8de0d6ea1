"""Convergence diagnostics turned into plain-language warnings.

Checks (thresholds as in Vehtari et al. 2021 and brms):

* divergent transitions after warm-up,
* R-hat > 1.01 for any reported parameter,
* bulk or tail ESS < 400,
* the Bayesian analogue of lme4's "boundary (singular) fit": a group-level sd
  whose posterior piles up at zero (its density is highest in the lowest tenth
  of its range, 0 to the 99% quantile).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from .draws import stack

__all__ = ["parameter_diagnostics", "convergence_messages", "RHAT_MAX", "ESS_MIN"]

RHAT_MAX = 1.01
ESS_MIN = 400


def reported_parameters(posterior, design) -> list[tuple[str, np.ndarray]]:
    """The parameters the summary reports, as (label, (chain, draw) array) pairs.

    Labels use lme4/brms spelling: ``b[standLRT]``, ``b[sigma_(Intercept)]``,
    ``sd(standLRT | school)``, ``cor((Intercept),standLRT | school)``, ``sigma``, ``shape``.
    """
    out: list[tuple[str, np.ndarray]] = []
    for pred in design.predictors.values():
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


def parameter_diagnostics(posterior, design) -> pd.DataFrame:
    """R-hat (rank-normalised, split) and bulk/tail ESS of every reported parameter.

    Example
    -------
    >>> # fit = hierfit.fit(...); parameter_diagnostics(fit.posterior.posterior, fit.design)
    """
    from arviz_stats.base import array_stats

    rows = []
    for label, arr in reported_parameters(posterior, design):
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            rhat = float(array_stats.rhat(arr, chain_axis=0, draw_axis=1)) if arr.shape[0] > 1 else np.nan
            bulk = float(array_stats.ess(arr, chain_axis=0, draw_axis=1, method="bulk"))
            tail = float(array_stats.ess(arr, chain_axis=0, draw_axis=1, method="tail", prob=(0.05, 0.95)))
        rows.append(dict(parameter=label, Rhat=rhat, Bulk_ESS=bulk, Tail_ESS=tail))
    return pd.DataFrame(rows).set_index("parameter")


def piles_at_zero(sd_draws: np.ndarray, bins: int = 10) -> bool:
    """True when the posterior density of an sd is highest right next to zero.

    Example
    -------
    >>> rng = np.random.default_rng(0)
    >>> piles_at_zero(np.abs(rng.normal(0, 0.1, 4000))), piles_at_zero(rng.normal(1, 0.1, 4000))
    (True, False)
    """
    x = np.asarray(sd_draws).ravel()
    top = np.quantile(x, 0.99)
    if top <= 0:
        return True
    counts, _ = np.histogram(x, bins=bins, range=(0.0, top))
    return int(np.argmax(counts)) == 0


def _remedy(labels: list[str], design, parametrization) -> str:
    """Suggest the other parametrization for the terms named in the labels."""
    if not parametrization:
        return ""
    terms = []
    for blk in design.all_blocks:
        if any(lab.endswith(f"| {blk.name})") for lab in labels) and \
                parametrization.get(blk.key) in ("centered", "noncentered"):
            other = "noncentered" if parametrization[blk.key] == "centered" else "centered"
            terms.append(f"'{blk.factor}': '{other}'")
    if not terms:
        return ""
    return f" or try the other parametrization: parametrization={{{', '.join(dict.fromkeys(terms))}}}"


def convergence_messages(posterior, sample_stats, design, diag: pd.DataFrame, parametrization=None) -> list[str]:
    """Warnings about the fit, each saying what to do."""
    msgs: list[str] = []
    if sample_stats is not None and "diverging" in sample_stats:
        n_div = int(np.asarray(sample_stats["diverging"].values).sum())
        if n_div:
            msgs.append(
                f"{n_div} divergent transition(s) after warm-up: the posterior may be biased. "
                "Increase target_accept (e.g. target_accept=0.95), or try the other parametrization "
                "(parametrization='centered' for groups with much data per level)."
            )
    bad_rhat = diag.index[diag["Rhat"] > RHAT_MAX].tolist()
    if bad_rhat:
        msgs.append(
            f"R-hat > {RHAT_MAX} for {', '.join(bad_rhat)}: the chains have not mixed. "
            "Run more tune and draws (e.g. tune=2000, draws=2000)" + _remedy(bad_rhat, design, parametrization) + "."
        )
    low = diag.index[(diag["Bulk_ESS"] < ESS_MIN) | (diag["Tail_ESS"] < ESS_MIN)].tolist()
    if low:
        msgs.append(
            f"bulk or tail ESS < {ESS_MIN} for {', '.join(low)}: means and intervals are imprecise. "
            "Run more draws (e.g. draws=2000)" + _remedy(low, design, parametrization) + "."
        )
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

"""Bayesian R², marginal and conditional.

Two methods, both computed per posterior draw so that R² has a posterior:

``method="nakagawa"`` (default)
    The variance-component R² of Nakagawa & Schielzeth (2013) and Nakagawa et al.
    (2017), which the chapter prints with MuMIn (R2m/R2c)::

        R2m = s2_f / (s2_f + s2_re + s2_e),   R2c = (s2_f + s2_re) / (s2_f + s2_re + s2_e)

    s2_f is the variance of the fixed-effect linear predictor, s2_re the group-level
    variance (for random slopes, the mean of z' Sigma z over rows; Johnson 2014) and
    s2_e the family's distribution-specific variance on the link scale (sigma² for
    gaussian; pi²/3 or 1 on the latent scale of the ``cumulative`` family, where it is
    McKelvey & Zavoina's R²).  It is the default because it describes the model's variance
    components and matches what lme4 users report.
``method="gelman"``
    Gelman, Goodrich, Gabry & Vehtari (2019), brms's ``bayes_R2``:
    Var(fitted) / (Var(fitted) + Var(y - fitted)), with fitted values that include all
    group effects (conditional) or none (marginal, re_form=NA).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from hierfit.results.draws import interval_table, stack
from hierfit.errors import HierfitError
from hierfit.analysis.icc import variance_components
from hierfit.analysis.prepare import NA, prepare_draws

__all__ = ["r2_draws", "r2_table"]


def _gelman(fit, re_form) -> np.ndarray:
    if fit.design.summary is not None:
        raise HierfitError("method='gelman' needs every row's fitted value; for engine data use the default "
                           "method='nakagawa' (computed from the engine's sums)")
    prepared = prepare_draws(fit, None, re_form=re_form)
    ypred = prepared.expected()
    if ypred.ndim != 2:
        raise HierfitError(f"method='gelman' (brms's bayes_R2) needs a numeric fitted value; the "
                           f"{fit.family.name} family predicts category probabilities. Use the default "
                           "method='nakagawa' (for ordinal models the latent-scale McKelvey-Zavoina R²) or "
                           "compare models with fit.loo()")
    var_fit = ypred.var(axis=1, ddof=1)
    var_res = (fit.design.y[None, :] - ypred).var(axis=1, ddof=1)
    return var_fit / (var_fit + var_res)


def _nakagawa(fit) -> tuple[np.ndarray, np.ndarray]:
    vc = variance_components(fit)  # for data that stayed with an engine, from its sums
    s2_f, s2_e = vc["fixed"], vc["residual"]
    s2_re = sum(vc["random"].values()) if vc["random"] else np.zeros_like(s2_f)
    total = s2_f + s2_re + s2_e
    return s2_f / total, (s2_f + s2_re) / total


def r2_draws(fit, kind: str = "both", method: str = "nakagawa") -> dict[str, np.ndarray]:
    """Posterior draws of R² by kind (``conditional``/``marginal``)."""
    kinds = {"both": ("marginal", "conditional"), "marginal": ("marginal",), "conditional": ("conditional",)}
    if kind not in kinds:
        raise HierfitError(f"kind must be 'conditional', 'marginal' or 'both', got {kind!r}")
    if method == "nakagawa":
        m, c = _nakagawa(fit)
        out = {"marginal": m, "conditional": c}
    elif method == "gelman":
        out = {}
        if kind in ("both", "marginal"):
            out["marginal"] = _gelman(fit, NA)
        if kind in ("both", "conditional"):
            out["conditional"] = _gelman(fit, None)
    else:
        raise HierfitError(f"method must be 'nakagawa' or 'gelman', got {method!r}")
    return {k: out[k] for k in kinds[kind]}


def r2_table(fit, kind: str = "both", method: str = "nakagawa", ci: float = 0.95, summary: bool = True):
    """R² as a table (Estimate, Est.Error, interval) or, with ``summary=False``, its draws."""
    draws = r2_draws(fit, kind, method)
    if not summary:
        return pd.DataFrame(draws)
    tab = interval_table(np.column_stack(list(draws.values())), [f"R2_{k}" for k in draws], ci)
    tab.attrs["method"] = method
    return tab

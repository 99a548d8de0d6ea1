"""Predictions, fitted values and residuals, all built on :func:`hierfit.analysis.prepare.prepare_draws`.

* ``kind="link"``: the linear predictor; ``"mean"``: E[y] on the response scale;
  ``"response"``: posterior predictive draws including observation noise.
* ``re_form``: ``None`` all group terms (lme4's default), ``hierfit.NA``/``"~0"`` none,
  ``"~(1|school)"`` only the named ones.
* Quantile residuals as DHARMa's ``simulateResiduals``: the rank of each observation
  among posterior predictive simulations (randomised for discrete families).

Rows never shift: fitted values and residuals come back on the caller's index (the
index of the data passed to :func:`hierfit.fit`, a MultiIndex included), with NaN on
the rows that were dropped for missing values, so ``data["fit"] = fit.fitted()["Estimate"]``
puts every value on its own row. ``predict(newdata)`` keeps ``newdata``'s index.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr

from hierfit.arguments import check_arguments
from hierfit.results.draws import interval_table
from hierfit.errors import HierfitError
from hierfit.analysis.prepare import prepare_draws

__all__ = ["predict", "fitted", "residuals", "quantile_residuals", "QuantileResiduals", "KINDS", "on_caller_index"]

KINDS = ("link", "mean", "response")


def _draws_of(prepared, kind: str, rng: np.random.Generator) -> np.ndarray:
    if kind == "link":
        return prepared.eta["mu"]
    if kind == "mean":
        return prepared.expected()
    if kind == "response":
        return prepared.simulate(rng)
    raise HierfitError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")


def _as_dataarray(fit, draws: np.ndarray, name: str) -> xr.DataArray:
    chains, ndraw = fit.draws.sizes["chain"], fit.draws.sizes["draw"]
    if draws.ndim == 3:  # category probabilities (S, n, K) of an ordinal response
        labels = list(fit.design.response_levels)
        arr = draws.reshape(chains, ndraw, draws.shape[1], draws.shape[2]) \
            if draws.shape[0] == chains * ndraw else draws[None]
        return xr.DataArray(arr, dims=("chain", "draw", "obs", "category"),
                            coords={"obs": np.arange(arr.shape[2]), "category": labels}, name=name)
    if draws.shape[0] == chains * ndraw:
        arr = draws.reshape(chains, ndraw, -1)
        return xr.DataArray(arr, dims=("chain", "draw", "obs"),
                            coords={"chain": np.arange(chains), "draw": np.arange(ndraw), "obs": np.arange(arr.shape[2])},
                            name=name)
    return xr.DataArray(draws[None], dims=("chain", "draw", "obs"), name=name)


def predict(fit, newdata: pd.DataFrame | None = None, re_form=None, kind: str = "mean", ci: float = 0.95,
            summary: bool = True, allow_new_levels: bool = False, seed: int | None = None,
            ndraws: int | None = None):
    """Posterior predictions (see :meth:`HierFit.predict`)."""
    if kind not in KINDS:
        raise HierfitError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    check_arguments(seed=seed, ndraws=ndraws, ci=ci if summary else None)
    rng = np.random.default_rng(seed)
    prepared = prepare_draws(fit, newdata, re_form=re_form, allow_new_levels=allow_new_levels,
                             seed=None if seed is None else seed + 1, ndraws=ndraws)
    draws = _draws_of(prepared, kind, rng)
    levels = fit.design.response_levels
    if levels is not None and kind != "link":
        if not summary:
            if kind == "response":  # the categories themselves, by their labels
                return _as_dataarray(fit, draws, f"predict_{kind}").copy(
                    data=np.asarray(levels, dtype=object)[_as_dataarray(fit, draws, "").values.astype(int)])
            return _as_dataarray(fit, draws, f"predict_{kind}")
        return _category_table(fit, draws, newdata, levels)
    if not summary:
        return _as_dataarray(fit, draws, f"predict_{kind}")
    if newdata is not None:
        return interval_table(draws, newdata.index, ci)
    return on_caller_index(fit, interval_table(draws, fit.design.row_index, ci))


def _category_table(fit, draws: np.ndarray, newdata, levels: list) -> pd.DataFrame:
    """One column per category (its label): the posterior mean probability (kind="mean", brms's
    posterior_epred) or the share of predictive draws in it (kind="response", brms's predict)."""
    if draws.ndim == 3:
        probs = draws.mean(axis=0)
    else:
        probs = np.stack([(draws == k).mean(axis=0) for k in range(len(levels))], axis=1)
    index = newdata.index if newdata is not None else fit.design.row_index
    table = pd.DataFrame(probs, index=index, columns=pd.Index(list(levels), name="category"))
    return table if newdata is not None else on_caller_index(fit, table)


def on_caller_index(fit, values):
    """A Series/DataFrame on the rows used, re-indexed to the caller's full index (dropped rows NaN).

    Example
    -------
    >>> on_caller_index(fit, pd.Series(fit.design.y, index=fit.design.row_index))  # doctest: +SKIP
    """
    d = fit.design
    if d.used_rows is None or d.used_rows.all():
        return values
    where = np.flatnonzero(d.used_rows)
    if isinstance(values, pd.DataFrame):
        out = pd.DataFrame(np.nan, index=d.data_index, columns=values.columns)
    else:
        out = pd.Series(np.nan, index=d.data_index, name=values.name)
    out.iloc[where] = values.to_numpy()
    return out


def fitted(fit, re_form=None, ci: float = 0.95, summary: bool = True):
    """E[y] for the training rows (see :meth:`HierFit.fitted`)."""
    return predict(fit, None, re_form=re_form, kind="mean", ci=ci, summary=summary)


def residuals(fit, type: str = "response", re_form=None, seed: int | None = None, nsim: int | None = None):  # noqa: A002
    """Residuals of the training rows (posterior means), see :meth:`HierFit.residuals`."""
    if type == "quantile":
        return quantile_residuals(fit, re_form=re_form, seed=seed, nsim=nsim).residuals
    prepared = prepare_draws(fit, None, re_form=re_form)
    expected = prepared.expected().mean(axis=0)
    if expected.ndim != 1:
        raise HierfitError(f"{type} residuals need a numeric expected response; the {fit.family.name} family "
                           "predicts category probabilities: use type='quantile'")
    y = fit.design.y
    rows = fit.design.row_index
    if type == "response":
        return on_caller_index(fit, pd.Series(y - expected, index=rows, name="response residuals"))
    if type == "pearson":
        sd = np.sqrt(prepared.variance().mean(axis=0))
        return on_caller_index(fit, pd.Series((y - expected) / sd, index=rows, name="pearson residuals"))
    raise HierfitError(f"type must be 'response', 'pearson' or 'quantile', got {type!r}")


@dataclass
class QuantileResiduals:
    """DHARMa-style scaled residuals in [0, 1] and their uniformity test.

    Attributes
    ----------
    residuals : pandas.Series   the scaled residuals (uniform under a correct model), on the caller's
        index with NaN for rows dropped for missing values
    simulated : ndarray (nsim, n)   the simulations they were computed from
    ks_statistic, ks_pvalue : float   Kolmogorov-Smirnov test against uniform(0, 1)
    conditional : bool   True when group effects were held at their fitted values
    fitted : ndarray (n,)   posterior mean fitted values (ordered categories: the expected category code)
    """

    residuals: pd.Series
    simulated: np.ndarray
    ks_statistic: float
    ks_pvalue: float
    conditional: bool
    fitted: np.ndarray

    @property
    def uniform(self) -> bool:
        """True unless the KS test rejects uniformity at the 5 % level."""
        return self.ks_pvalue >= 0.05

    def __repr__(self) -> str:
        kind = "conditional" if self.conditional else "unconditional (group effects re-simulated)"
        return (f"Quantile residuals ({kind}) from {self.simulated.shape[0]} simulations of "
                f"{self.simulated.shape[1]} observations\n"
                f"KS test against uniform: D = {self.ks_statistic:.4f}, p = {self.ks_pvalue:.4g}"
                f"{'' if self.uniform else '  <- deviation from the model detected'}")


def pit(y: np.ndarray, sims: np.ndarray, discrete: bool, rng: np.random.Generator) -> np.ndarray:
    """Randomised probability integral transform of y among simulations (nsim, n).

    Example
    -------
    >>> import numpy as np
    >>> pit(np.array([0.5]), np.array([[0.0], [1.0]]), False, np.random.default_rng(0))
    array([0.5])
    """
    less = (sims < y).mean(axis=0)
    if not discrete:
        return less
    equal = (sims == y).mean(axis=0)
    return less + rng.uniform(size=y.shape) * equal


def quantile_residuals(fit, re_form=None, seed: int | None = None, nsim: int | None = None) -> QuantileResiduals:
    """Simulated quantile residuals (see :meth:`HierFit.quantile_residuals`)."""
    from scipy import stats

    check_arguments(seed=seed, ndraws=nsim)
    rng = np.random.default_rng(seed)
    conditional = re_form is None
    prepared = prepare_draws(fit, None, re_form=re_form, ndraws=nsim, seed=None if seed is None else seed + 1,
                             resimulate_groups=True)
    sims = prepared.simulate(rng)
    u = pit(fit.design.y, sims, fit.family.has_point_masses, rng)
    ks = stats.kstest(u, "uniform")
    u = on_caller_index(fit, pd.Series(u, index=fit.design.row_index, name="quantile residuals"))
    return QuantileResiduals(residuals=u, simulated=sims,
                             ks_statistic=float(ks.statistic), ks_pvalue=float(ks.pvalue), conditional=conditional,
                             fitted=_one_fitted_value(prepared.expected().mean(axis=0)))


def _one_fitted_value(expected: np.ndarray) -> np.ndarray:
    """The fitted value per row; for category probabilities (n, K) the expected category code sum_k k p_k."""
    return expected if expected.ndim == 1 else expected @ np.arange(expected.shape[1], dtype=float)

"""brms's ``cumulative`` family for ordered categorical responses (``ordinal::clmm``'s model).

With K ordered categories and the linear predictor eta (which has no intercept: the
formula's intercept becomes K - 1 ordered thresholds theta_1 < ... < theta_{K-1}),

    P(y <= k) = F(theta_k - eta),     k = 1, ..., K - 1,

F the logistic cdf (``link="logit"``) or the standard normal cdf (``"probit"``).  The
thresholds are reported as ``Intercept[1]`` ... ``Intercept[K-1]`` (brms's names), on the
scale of the uncentred predictors (clmm's thresholds).  The response is an ordered pandas
Categorical (its categories in their order; categories no row uses are dropped, as brms
does) or integers (the sorted distinct values); hierfit stores the codes 0..K-1 and keeps
the labels for predictions.  The expected response is the vector of category
probabilities.  hierfit's compiled kernel evaluates both links (log density and exact
gradient, hierfit.engine.kernel.likelihood.cumulative_rows); each threshold may have its
own prior (``hierfit.prior("normal(0, 1)", "Intercept", coef=2)``, brms's ``coef = 2``).

Example
-------
>>> import numpy as np
>>> fam = Cumulative()
>>> p = fam.probabilities(np.array([0.0]), {"thresholds": np.array([[-1.0, 1.0]])})
>>> np.round(p, 4)
array([[0.2689, 0.4621, 0.2689]])
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd

from hierfit.errors import DataError, HierfitError
from hierfit.families.base import DPar, Family, LINKS
from hierfit.families.codes import CUMULATIVE
from hierfit.spec.priors import Dist

__all__ = ["Cumulative", "threshold_names"]

#: The latent error's variance on the link scale: logistic pi^2 / 3, standard normal 1
_LATENT_VARIANCE = {"logit": np.pi ** 2 / 3.0, "probit": 1.0}


def threshold_names(n: int) -> list[str]:
    """brms's names of the thresholds: ``Intercept[1]`` ... ``Intercept[n]``.

    Example
    -------
    >>> threshold_names(2)
    ['Intercept[1]', 'Intercept[2]']
    """
    return [f"Intercept[{k}]" for k in range(1, n + 1)]


def _codes_of(values: pd.Series, column: str) -> tuple[np.ndarray, list]:
    if isinstance(values.dtype, pd.CategoricalDtype):
        if not values.cat.ordered:
            raise DataError(f"cumulative response '{column}' is an unordered Categorical; make its order explicit, "
                            f"e.g. data['{column}'] = pd.Categorical(data['{column}'], categories=[...], "
                            "ordered=True)")
        present = set(values.dropna().unique())
        levels = [c for c in values.cat.categories if c in present]  # unused categories dropped (brms)
        codes = np.array([levels.index(v) for v in values], dtype=float)
        return codes, levels
    if pd.api.types.is_bool_dtype(values.dtype):
        raise DataError(f"cumulative response '{column}' is boolean: two categories are a bernoulli model "
                        "(family='bernoulli')")
    if not pd.api.types.is_numeric_dtype(values.dtype):
        example = next(iter(values.dropna()), None)
        raise DataError(f"cumulative response '{column}' must be an ordered pandas Categorical or integers; got "
                        f"{values.dtype} values such as {example!r} (their order is not known: use "
                        f"pd.Categorical(data['{column}'], categories=[...], ordered=True))")
    x = np.asarray(values, dtype=float)
    bad = ~np.isfinite(x) | (x != np.round(x))
    if bad.any():
        raise DataError(f"cumulative response '{column}' must hold integers (ordered categories); "
                        f"{int(bad.sum())} row(s) do not, e.g. {x[bad][0]!r}")
    levels = sorted(int(v) for v in np.unique(x))
    return np.searchsorted(np.array(levels, dtype=float), x).astype(float), levels


@dataclass(frozen=True, repr=False)
class Cumulative(Family):
    """brms's ``cumulative`` family: ordinal regression with ordered thresholds (logit or probit)."""

    kernel_code: ClassVar[int | None] = CUMULATIVE
    kernel_links: ClassVar[tuple[str, ...]] = ("logit", "probit")
    thresholds: ClassVar[bool] = True
    summary_residuals: ClassVar[str] = "mid-quantile (normal scores)"

    name: str = "cumulative"
    link_name: str = "logit"
    links: tuple[str, ...] = ("logit", "probit")
    dpars: tuple[DPar, ...] = ()
    discrete: bool = True

    # -- data ------------------------------------------------------------------------
    def response_codes(self, values: pd.Series, column: str) -> tuple[np.ndarray, list]:
        """(codes 0..K-1 as floats, category labels) of the response column; DataError for bad input."""
        codes, levels = _codes_of(values, column)
        if len(levels) < 3:
            raise DataError(f"cumulative response '{column}' has {len(levels)} categor{'y' if len(levels) == 1 else 'ies'}"
                            f" ({', '.join(map(repr, levels))}); an ordinal model needs at least 3 — for two "
                            "categories use family='bernoulli'")
        return codes, levels

    def validate(self, y, trials, column):
        pass  # response_codes checked the column

    def intercept_prior(self, y):
        """brms's default prior on each (centred) threshold: student_t(3, 0, 2.5)."""
        return Dist("student_t", (3.0, 0.0, 2.5))

    def effect_scale(self, y):
        return 1.0

    def sd_prior(self, y):
        return Dist("student_t", (3.0, 0.0, 2.5))

    def working_variance(self, y, trials):
        return float(_LATENT_VARIANCE[self.link_name])

    # -- linear predictor -----------------------------------------------------------------
    def mean_parameter(self, eta):
        """The family's location is the linear predictor itself (the link acts on the thresholds)."""
        return eta

    def mean_parameter_pt(self, eta):
        return eta

    # -- the distribution ----------------------------------------------------------------
    def _log_probs_pt(self, eta, cut):
        import pytensor.tensor as pt
        from pymc.distributions.dist_math import log_diff_normal_cdf, normal_lccdf, normal_lcdf

        e = pt.shape_padright(eta)

        def log_sigmoid(x):
            return -pt.softplus(-x)

        if self.link_name == "logit":
            lo = cut[:-1] - e
            hi = cut[1:] - e
            first = log_sigmoid(cut[:1] - e)
            middle = log_sigmoid(hi) + log_sigmoid(-lo) + pt.log1mexp(lo - hi)
            last = log_sigmoid(e - cut[-1:])
        else:
            z = e - cut  # P(y = k) = Phi(theta_k - eta) - Phi(theta_{k-1} - eta)
            first = pt.shape_padright(normal_lccdf(0.0, 1.0, z[..., 0]))
            middle = log_diff_normal_cdf(0.0, 1.0, z[..., :-1], z[..., 1:])
            last = pt.shape_padright(normal_lcdf(0.0, 1.0, z[..., -1]))
        return pt.concatenate([first, middle, last], axis=-1)

    def pymc_likelihood(self, name, mu, dpars, observed, trials):
        import pymc as pm

        log_p = self._log_probs_pt(mu, dpars["thresholds"])
        return pm.Categorical(name, logit_p=log_p, observed=observed)

    def probabilities(self, eta, dpars):
        """Category probabilities (..., n, K) from eta (..., n) and thresholds (..., K-1) or (..., 1, K-1)."""
        thr = np.asarray(dpars["thresholds"], dtype=float)
        eta = np.asarray(eta, dtype=float)
        if thr.ndim == eta.ndim:
            thr = np.expand_dims(thr, -2)
        cum = LINKS[self.link_name].inv(thr - eta[..., None])
        shape = cum.shape[:-1] + (1,)
        cum = np.concatenate([np.zeros(shape), cum, np.ones(shape)], axis=-1)
        return np.clip(np.diff(cum, axis=-1), 0.0, 1.0)

    def mean(self, mu, dpars, trials=None):
        """The expected response: category probabilities, shape (..., n, K)."""
        return self.probabilities(mu, dpars)

    def variance(self, mu, dpars, trials=None):
        raise HierfitError("the cumulative family's response is an ordered category, without a variance; use "
                           "quantile residuals (type='quantile') or fit.predict() for category probabilities")

    def logpdf(self, y, mu, dpars, trials=None):
        p = self.probabilities(mu, dpars)
        k = np.broadcast_to(np.asarray(y, dtype=int), p.shape[:-1])
        with np.errstate(divide="ignore"):
            return np.log(np.take_along_axis(p, k[..., None], axis=-1)[..., 0])

    def cdf(self, y, mu, dpars, trials=None):
        p = np.cumsum(self.probabilities(mu, dpars), axis=-1)
        k = np.broadcast_to(np.asarray(y, dtype=int), p.shape[:-1])
        out = np.take_along_axis(p, np.clip(k, 0, p.shape[-1] - 1)[..., None], axis=-1)[..., 0]
        return np.where(k < 0, 0.0, np.minimum(out, 1.0))

    def simulate(self, rng, mu, dpars, trials=None):
        cum = np.cumsum(self.probabilities(mu, dpars), axis=-1)
        u = rng.uniform(size=cum.shape[:-1])
        return (u[..., None] > cum[..., :-1]).sum(axis=-1).astype(float)

    def point_residuals(self, y, point):
        """Normal scores of the mid-quantiles P(Y < y) + P(Y = y) / 2 at the posterior means."""
        from scipy.special import ndtri

        p = self.probabilities(point.mu[0], {"thresholds": point.dpars["thresholds"][0]})
        k = np.asarray(y, dtype=int)[:, None]
        below = np.take_along_axis(np.cumsum(p, axis=-1) - p, k, axis=-1)[:, 0]
        return ndtri(np.clip(below + 0.5 * np.take_along_axis(p, k, axis=-1)[:, 0], 1e-12, 1 - 1e-12))

    def link_scale_variance(self, mu_mean, dpars):
        """The latent variable's residual variance (McKelvey-Zavoina): pi^2/3 (logit), 1 (probit)."""
        return float(_LATENT_VARIANCE[self.link_name])

    # -- presentation ------------------------------------------------------------------
    def equation_lines(self, y, eta, dsym, trials):
        F = r"\operatorname{logit}^{-1}" if self.link_name == "logit" else r"\Phi"
        return [(y, r"\sim \operatorname{Cumulative}\left(\eta_{i}, \theta_{1} < \dots < \theta_{K-1} \right)"),
                (r"P(" + y + r" \le k)", "= " + F + r"\left(\theta_{k} - \eta_{i}\right)"),
                (r"\eta_{i}", "= " + eta)]

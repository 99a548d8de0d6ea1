"""The stored variables of every draw, from the sampler's unconstrained draws (numpy, vectorised over draws).

nutpie keeps each draw's unconstrained vector; afterwards these steps turn all draws at
once into the posterior's variables — the ones the PyMC model names: ``Intercept``,
``beta``, ``b`` (lme4's fixed effects), ``sds_<label>`` and ``zs_<label>`` (smooths), ``sd_<key>``, ``cor_<key>``, ``r_<key>`` (group
effects; not for the collapsed model, whose effects hierfit.engine.collapsed draws) and the
distributional parameters without a formula.  :func:`hierfit.engine.kernel.spec.build_spec`
writes the steps; ``tests/test_kernel.py`` checks them against PyMC's variables.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["FixedStep", "ThresholdStep", "BlockStep", "SmoothStep", "DparStep", "stored_draws"]


@dataclass(frozen=True)
class FixedStep:
    """One predictor's fixed effects: the intercept at the predictor means, the slopes, and b."""

    intercept: str | None  # stored names (None when absent)
    beta: str | None
    b: str | None
    int_pos: int  # position of the intercept in x, or -1
    beta_pos: np.ndarray  # positions of the slopes
    xmean: np.ndarray  # means of the slope columns (zeros without an intercept)
    fixed_map: np.ndarray  # per coefficient in lme4's order: -1 for the intercept, -2 - t for the t-th penalised
    # smooth coefficient, else the slope's index
    smooth_z: np.ndarray = None  # per penalised smooth coefficient: position of its zs element
    smooth_sd: np.ndarray = None  # ... of its smooth's log sds
    smooth_mean: np.ndarray = None  # ... its column's mean

    def theta(self, x: np.ndarray) -> np.ndarray:
        """(Intercept or 0, beta_1, ..., beta_P): (..., 1 + P)."""
        c = x[..., self.int_pos] if self.int_pos >= 0 else np.zeros(x.shape[:-1])
        return np.concatenate([c[..., None], x[..., self.beta_pos]], axis=-1)

    def apply(self, x: np.ndarray, out: dict) -> None:
        theta = self.theta(x)
        beta = theta[..., 1:]
        if self.intercept:
            out[self.intercept] = theta[..., 0]
        if self.beta:
            out[self.beta] = beta
        if self.b:
            original = theta[..., 0] - beta @ self.xmean  # the intercept on the original scale
            smooth = np.zeros(x.shape[:-1] + (0,))
            if self.smooth_z is not None and len(self.smooth_z):  # penalised coefficients zs * sds
                smooth = x[..., self.smooth_z] * np.exp(x[..., self.smooth_sd])
                original = original - smooth @ self.smooth_mean
            out[self.b] = np.stack([original if m == -1 else smooth[..., -2 - m] if m < -1 else beta[..., m]
                                    for m in self.fixed_map], axis=-1)


@dataclass(frozen=True)
class ThresholdStep:
    """Ordered thresholds (ordinal families), PyMC's ordered transform: theta_1 = x_1, theta_k = theta_{k-1} + exp x_k.

    ``centred`` (``Intercept``) holds them at the predictor means, ``uncentred``
    (``b_Intercept``) on the scale of the uncentred predictors: theta + mean(X) beta.
    """

    centred: str
    uncentred: str
    pos: np.ndarray  # their n contiguous positions in x
    beta_pos: np.ndarray  # the slopes' positions
    xmean: np.ndarray  # the slope columns' means

    def apply(self, x: np.ndarray, out: dict) -> None:
        y = x[..., self.pos]
        theta = np.cumsum(np.concatenate([y[..., :1], np.exp(y[..., 1:])], axis=-1), axis=-1)
        out[self.centred] = theta
        out[self.uncentred] = theta + (x[..., self.beta_pos] @ self.xmean)[..., None]


@dataclass(frozen=True)
class BlockStep:
    """One group block: sds, the correlation matrix (LKJ) and, when sampled, the group effects r."""

    key: str
    sd_pos: np.ndarray  # (K,)
    l_pos: int  # first position of the unconstrained correlation elements, or -1
    spiral: np.ndarray | None  # (K(K-1)/2, 2) their (row, col) in the Cholesky factor
    param_pos: int  # first position of z (non-centred) or gamma (centred), or -1 (collapsed)
    n_levels: int
    n_coefs: int
    centred: bool
    mean: np.ndarray | None  # (J, K, 1 + P) level means of a centred block as a map of FixedStep.theta
    fixed: FixedStep

    def scales(self, x: np.ndarray):
        """(sd (..., K), Cholesky factor of the correlations (..., K, K) or None)."""
        sd = np.exp(x[..., self.sd_pos])
        if self.l_pos < 0:
            return sd, None
        K = self.n_coefs
        W = np.broadcast_to(np.eye(K), x.shape[:-1] + (K, K)).copy()
        for t, (a, b) in enumerate(self.spiral):
            W[..., a, b] = x[..., self.l_pos + t]
        return sd, W / np.linalg.norm(W, axis=-1, keepdims=True)

    def apply(self, x: np.ndarray, out: dict) -> None:
        sd, Lc = self.scales(x)
        out[f"sd_{self.key}"] = sd
        if Lc is not None:
            out[f"cor_{self.key}"] = Lc @ np.swapaxes(Lc, -1, -2)
        if self.param_pos < 0:
            return
        J, K = self.n_levels, self.n_coefs
        par = x[..., self.param_pos:self.param_pos + J * K].reshape(x.shape[:-1] + (J, K))
        if self.centred:
            r = par - np.einsum("jkt,...t->...jk", self.mean, self.fixed.theta(x))
        elif Lc is not None:
            r = np.einsum("...jc,...kc->...jk", par, sd[..., :, None] * Lc)  # r_j = diag(sd) Lc z_j
        else:
            r = par * sd[..., None, :]
        out[f"r_{self.key}"] = r


@dataclass(frozen=True)
class SmoothStep:
    """One penalised smooth: its sd ``sds_<label>`` and standardised coefficients ``zs_<label>``."""

    sds: str
    zs: str
    sd_pos: int
    z_pos: np.ndarray

    def apply(self, x: np.ndarray, out: dict) -> None:
        out[self.sds] = np.exp(x[..., self.sd_pos])
        out[self.zs] = x[..., self.z_pos]


@dataclass(frozen=True)
class DparStep:
    """A distributional parameter without a formula: lower + exp(x), or 1 / (1 + exp(-x)) for a probability."""

    name: str
    pos: int
    lower: float
    logit: bool = False

    def apply(self, x: np.ndarray, out: dict) -> None:
        v = x[..., self.pos]
        out[self.name] = 1.0 / (1.0 + np.exp(-v)) if self.logit else self.lower + np.exp(v)


def stored_draws(spec, x: np.ndarray) -> dict[str, np.ndarray]:
    """The stored variables of unconstrained draws ``x`` (..., n_dim), each (..., *shape).

    Example
    -------
    >>> import hierfit
    >>> from hierfit.spec.design import build_design
    >>> from hierfit.engine.kernel import build_spec
    >>> from hierfit.spec.priors import resolve_priors
    >>> d = build_design("normexam ~ standLRT + (1 | school)", hierfit.datasets.load("exam"))
    >>> spec = build_spec(d, resolve_priors(d), collapsed=True)
    >>> sorted(stored_draws(spec, spec.init_centre[None]))
    ['Intercept', 'b', 'beta', 'sd_school', 'sigma']
    """
    x = spec.to_pymc(x)
    out: dict[str, np.ndarray] = {}
    for step in spec.steps:
        step.apply(x, out)
    return out

"""No pooling, complete pooling, partial pooling, and the shrinkage path between them.

The three estimates of a group's coefficients that the shrinkage plots compare:

``no_pooling``
    A separate coefficient per group: the same formula with the group as a fixed
    factor, fitted by (iteratively reweighted) least squares.  Groups whose
    coefficients the data cannot determine (a slope from one row) are NaN.
``complete_pooling``
    One coefficient for all groups: the formula without the group term.
``partial_pooling``
    The posterior means of fixed + group effect (lme4's ``coef()``).

:func:`shrinkage_path` is the "random effect as an adaptive ridge" view: for a
given group-level sd τ the group effects have a normal prior with that sd, and
their conditional estimate is a ridge (penalised least squares) solution, with
the penalty 1/τ².  For Gaussian models this is the exact conditional posterior
mean given τ and σ (σ at its posterior mean, flat prior on the fixed effects), in
closed form: for a random intercept, group j's deviation is

    (n_j / σ² · ȳ_j) / (n_j / σ² + 1 / τ²),

ȳ_j being the group's mean residual from the fixed part.  τ → 0 gives complete
pooling, τ → ∞ no pooling.  For other families the same penalised problem is
solved by iteratively reweighted least squares (the conditional mode given τ).

Other grouping factors of the model are held at their posterior means (as an
offset) in all three estimates.

A Binomial/Bernoulli/Poisson fit whose rows were aggregated exactly into count
patterns (:mod:`hierfit.data.counts`) gives the same estimates as the row-level
fit: each pattern's likelihood (binomial with the rows as trials, Poisson with
``offset(log(rows))``) equals that of its rows up to a constant, so the (penalised)
IRLS solutions agree; group sizes count the original rows.  A Gaussian fit to data
left in a data engine has no rows to refit: these estimates raise
:class:`hierfit.HierfitError` for it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from hierfit.results.draws import stack
from hierfit.errors import HierfitError
from hierfit.analysis.prepare import NA, prepare_draws
from hierfit.plots.common import TermInfo, group_sizes, resolve_term

__all__ = ["no_pooling", "complete_pooling", "partial_pooling", "shrinkage_path", "ShrinkagePath"]


@dataclass
class _Problem:
    """The data of the penalised (weighted) least-squares problem for one group term."""

    y: np.ndarray
    X: np.ndarray
    fixed_names: list[str]
    offset: np.ndarray
    Z: np.ndarray
    index: np.ndarray
    n_levels: int
    family: object
    dpars: dict
    trials: np.ndarray | None
    eta_start: np.ndarray

    @property
    def linear(self) -> bool:
        """Gaussian/Student with identity link: one weighted least-squares solve is exact."""
        return self.family.link_name == "identity" and self.family.location_scale


def _problem(fit, info: TermInfo) -> _Problem:
    d = fit.design
    if not d.rows_held:  # a Gaussian fit to data left in a data engine: d.nobs counts rows that are not here
        raise HierfitError(f"the pooling and shrinkage estimates (no_pooling, complete_pooling, shrinkage_path, "
                           f"plot_shrinkage) refit the model to every row, but the model was fitted to data read "
                           f"through a data engine ({d.summary.source}, {d.summary.nobs} rows not held in memory); "
                           "fit the model to in-memory data (a pandas DataFrame, e.g. a sample) for them")
    # the offset and the other grouping factors' effects (held at their posterior means), from prepare-draws:
    # eta(other factors kept) - eta(none kept) + offset
    others = sorted({blk.factor for blk in d.blocks if blk.factor != info.factor})
    offset = np.zeros(d.nobs) if d.mu.offset is None else np.asarray(d.mu.offset, dtype=float).copy()
    if others:
        offset += (prepare_draws(fit, point=True, re_form=others).eta["mu"][0]
                   - prepare_draws(fit, point=True, re_form=NA).eta["mu"][0])
    point = prepare_draws(fit, point=True)
    dpars = {k: np.asarray(v)[0] for k, v in point.dpars.items()}
    return _Problem(y=np.asarray(d.y, dtype=float), X=np.asarray(d.X, dtype=float), fixed_names=list(d.fixed_names),
                    offset=offset, Z=info.Z, index=info.index, n_levels=info.n_levels, family=d.family, dpars=dpars,
                    trials=d.trials, eta_start=point.eta["mu"][0])


def _group_sums(prob: _Problem, w: np.ndarray, z: np.ndarray):
    Z, X, idx, J = prob.Z, prob.X, prob.index, prob.n_levels
    q, p = Z.shape[1], X.shape[1]
    wZ = Z * w[:, None]
    ZWZ = np.zeros((J, q, q))
    np.add.at(ZWZ, idx, wZ[:, :, None] * Z[:, None, :])
    ZWX = np.zeros((J, q, p))
    np.add.at(ZWX, idx, wZ[:, :, None] * X[:, None, :])
    ZWz = np.zeros((J, q))
    np.add.at(ZWz, idx, wZ * z[:, None])
    XWX = X.T @ (X * w[:, None])
    XWz = X.T @ (w * z)
    return ZWZ, ZWX, ZWz, XWX, XWz


def _lstsq_scaled(M: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Solve M b = v for a symmetric PSD M, dropping directions the data do not determine."""
    if M.shape[0] == 0:
        return np.zeros(0)
    dscale = np.sqrt(np.clip(np.diag(M), 0, None))
    dscale[dscale == 0] = 1.0
    Ms = M / dscale[:, None] / dscale[None, :]
    bs = np.linalg.lstsq(Ms, v / dscale, rcond=1e-9)[0]
    return bs / dscale


def _solve(prob: _Problem, w: np.ndarray, z: np.ndarray, prec):
    """Weighted penalised least squares: b (fixed) and u (J, q) group effects.

    ``prec`` None means complete pooling (u = 0); otherwise the (q, q) prior precision
    of the group effects (zeros = no pooling).  The group effects are eliminated
    group by group (Schur complement), so no dense n x (levels * q) matrix is built.
    """
    J, q = prob.n_levels, prob.Z.shape[1]
    if prec is None:
        b = _lstsq_scaled((prob.X * w[:, None]).T @ prob.X, prob.X.T @ (w * z)) if prob.X.shape[1] else np.zeros(0)
        return b, np.zeros((J, q))
    ZWZ, ZWX, ZWz, XWX, XWz = _group_sums(prob, w, z)
    A = ZWZ + prec
    Ainv = np.linalg.pinv(A, hermitian=True)
    M = XWX - np.einsum("gqp,gqr,grs->ps", ZWX, Ainv, ZWX)
    v = XWz - np.einsum("gqp,gqr,gr->p", ZWX, Ainv, ZWz)
    b = _lstsq_scaled(0.5 * (M + M.T), v)
    u = np.einsum("gqr,gr->gq", Ainv, ZWz - np.einsum("gqp,p->gq", ZWX, b))
    return b, u


def _working(prob: _Problem, eta: np.ndarray):
    """IRLS weights and working response at the linear predictor ``eta`` (offset included)."""
    fam = prob.family
    inv = fam.link.inv
    if prob.linear:
        var = np.broadcast_to(fam.variance(eta, prob.dpars, prob.trials), eta.shape)
        return 1.0 / np.maximum(var, 1e-300), prob.y - prob.offset
    h = 1e-6 * np.maximum(1.0, np.abs(eta))
    mu = inv(eta)
    mean = fam.mean(mu, prob.dpars, prob.trials)
    up = fam.mean(inv(eta + h), prob.dpars, prob.trials)
    down = fam.mean(inv(eta - h), prob.dpars, prob.trials)
    dmean = (up - down) / (2 * h)
    dmean = np.where(np.abs(dmean) < 1e-12, 1e-12, dmean)
    var = np.maximum(np.broadcast_to(fam.variance(mu, prob.dpars, prob.trials), eta.shape), 1e-12)
    w = dmean**2 / var
    z = eta - prob.offset + (prob.y - mean) / dmean
    return w, z


def _fit(prob: _Problem, prec, eta=None, maxit: int = 100, tol: float = 1e-9):
    """The (penalised) fit: b, u and the final IRLS weights."""
    eta = prob.eta_start.copy() if eta is None else eta
    for _ in range(1 if prob.linear else maxit):
        w, z = _working(prob, eta)
        b, u = _solve(prob, w, z, prec)
        new = prob.X @ b + np.einsum("nq,nq->n", prob.Z, u[prob.index]) + prob.offset
        if prob.family.link_name != "identity":
            new = np.clip(new, -40, 40)
        change = np.max(np.abs(new - eta))
        eta = new
        if change < tol * (1 + np.max(np.abs(eta))):
            break
    w, _ = _working(prob, eta)
    return b, u, w, eta


def _coefs(prob: _Problem, info: TermInfo, b: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Group coefficients on lme4's ``coef()`` scale: fixed (where the model has it) + deviation."""
    fixed = np.array([b[prob.fixed_names.index(c)] if c in prob.fixed_names else 0.0 for c in info.coefs])
    return fixed[None, :] + u


def _identified(prob: _Problem, w: np.ndarray) -> np.ndarray:
    """Levels whose own coefficients the data determine (full-rank information)."""
    ZWZ = np.zeros((prob.n_levels, prob.Z.shape[1], prob.Z.shape[1]))
    np.add.at(ZWZ, prob.index, (prob.Z * w[:, None])[:, :, None] * prob.Z[:, None, :])
    eig = np.linalg.eigvalsh(ZWZ)
    scale = np.maximum(np.abs(eig).max(axis=1), 1e-300)
    return (eig.min(axis=1) > 1e-8 * scale) & (eig.max(axis=1) > 1e-10)


def _frame(info: TermInfo, values: np.ndarray) -> pd.DataFrame:
    out = pd.DataFrame(values, index=pd.Index(info.levels, name=info.factor), columns=list(info.coefs))
    return out


def no_pooling(fit, term: str | None = None) -> pd.DataFrame:
    """A separate coefficient per group: the model's formula with the group as a fixed factor.

    Gaussian models are fitted by least squares, others as a GLM (IRLS).  Levels
    whose coefficients the data cannot determine (e.g. a slope from a single row, or
    a group whose binary outcomes are all 0) are NaN.

    Parameters
    ----------
    fit : HierFit
    term : str, optional
        Grouping factor, e.g. ``"school"``; needed when the model has several.

    Returns
    -------
    DataFrame
        Indexed by level, one column per coefficient of the term (lme4 names).

    Example
    -------
    >>> from hierfit.plots.pooling import no_pooling
    >>> no_pooling(fit, "school").head()  # doctest: +SKIP
    """
    info = resolve_term(fit, term)
    prob = _problem(fit, info)
    b, u, w, _ = _fit(prob, np.zeros((info.q, info.q)))
    coefs = _coefs(prob, info, b, u)
    ok = _identified(prob, w)
    if not prob.linear:  # separation: a coefficient runs off to +-infinity
        ok &= np.all(np.abs(u) < 25, axis=1)
    coefs[~ok] = np.nan
    return _frame(info, coefs)


def complete_pooling(fit, term: str | None = None) -> pd.Series:
    """One coefficient for all groups: the model without the group term (least squares / GLM).

    Example
    -------
    >>> from hierfit.plots.pooling import complete_pooling
    >>> complete_pooling(fit, "school")["(Intercept)"]  # doctest: +SKIP
    """
    info = resolve_term(fit, term)
    prob = _problem(fit, info)
    b, u, _, _ = _fit(prob, None)
    return pd.Series(_coefs(prob, info, b, u)[0], index=list(info.coefs), name="complete pooling")


def partial_pooling(fit, term: str | None = None) -> pd.DataFrame:
    """Posterior means of each group's coefficients (fixed + group effect, lme4's ``coef()``).

    Example
    -------
    >>> from hierfit.plots.pooling import partial_pooling
    >>> partial_pooling(fit, "school").head()  # doctest: +SKIP
    """
    info = resolve_term(fit, term)
    return _frame(info, partial_draws(fit, info).mean(axis=0))


def partial_draws(fit, info: TermInfo) -> np.ndarray:
    post = fit.draws
    d = fit.design
    b = stack(post, "b") if d.fixed_names else np.zeros((1, 0))
    fixed = np.stack([b[:, d.fixed_names.index(c)] if c in d.fixed_names else np.zeros(b.shape[0])
                      for c in info.coefs], axis=-1)
    return fixed[:, None, :] + info.ranef_draws(post)


@dataclass
class ShrinkagePath:
    """Each group's conditional estimate as a function of the group-level sd.

    Attributes
    ----------
    tau : (T, q)          the group-level sd of each coefficient along the path
    estimates : (T, J, q) conditional estimates of each group's coefficients
    complete : (q,)       complete pooling
    no_pooling : (J, q)   no pooling (NaN where not identified)
    partial : (J, q)      posterior means
    sd_draws : (S, q)     posterior draws of the group-level sds
    sd_mean : (q,)        their posterior means (the path's scale: tau = c * sd_mean)
    levels, coefs : list of str
    sizes : (J,)          rows per group
    factor, label : str
    exact : bool          True for Gaussian models (closed form), False for IRLS modes

    Example
    -------
    >>> path = shrinkage_path(fit, "school")  # doctest: +SKIP
    >>> path.at(0.1)[:5, 0]   # the first schools' intercepts at tau = 0.1  # doctest: +SKIP
    """

    tau: np.ndarray
    estimates: np.ndarray
    complete: np.ndarray
    no_pooling: np.ndarray
    partial: np.ndarray
    sd_draws: np.ndarray
    sd_mean: np.ndarray
    levels: list[str]
    coefs: list[str]
    sizes: np.ndarray
    factor: str
    label: str
    exact: bool

    def at(self, tau: float, coef: int = 0) -> np.ndarray:
        """Estimates (J, q) at one value of the sd of coefficient ``coef`` (log-linear interpolation)."""
        t = self.tau[:, coef]
        x = np.log(np.clip(tau, t[0], t[-1]))
        lt = np.log(t)
        k = int(np.clip(np.searchsorted(lt, x) - 1, 0, len(t) - 2))
        f = (x - lt[k]) / (lt[k + 1] - lt[k]) if lt[k + 1] > lt[k] else 0.0
        return (1 - f) * self.estimates[k] + f * self.estimates[k + 1]


def _default_multipliers(prob, info, sd_mean, sd_draws, n: int) -> np.ndarray:
    w, _ = _working(prob, prob.eta_start)
    ZWZ = np.zeros((info.n_levels, info.q))
    np.add.at(ZWZ, prob.index, (prob.Z**2) * w[:, None])
    lo, hi = [], []
    for k in range(info.q):
        inf_k = ZWZ[:, k][ZWZ[:, k] > 0]
        lo.append(0.1 / np.sqrt(inf_k.max()) / sd_mean[k])
        hi.append(10.0 / np.sqrt(inf_k.min()) / sd_mean[k])
        lo.append(np.quantile(sd_draws[:, k], 0.001) / sd_mean[k] / 2)
        hi.append(np.quantile(sd_draws[:, k], 0.999) / sd_mean[k] * 2)
    c_lo = float(np.clip(min(lo), 1e-4, 0.5))
    c_hi = float(np.clip(max(hi), 2.0, 1e4))
    return np.geomspace(c_lo, c_hi, n)


def shrinkage_path(fit, term: str | None = None, tau=None, n: int = 100) -> ShrinkagePath:
    """Conditional estimates of every group's coefficients along a grid of group-level sds.

    For a term with several coefficients the whole group-level covariance is scaled:
    Σ(c) = c² Σ̂ (Σ̂ from the posterior means of the sds and correlations), so each
    coefficient's sd is ``c * sd_mean``.  Gaussian models use the closed form (no
    resampling); other families the penalised IRLS mode.

    Parameters
    ----------
    fit : HierFit
    term : str, optional
        Grouping factor.
    tau : array, optional
        Values of the sd of the term's first coefficient (the others scale with it).
        Default: a log grid from complete to no pooling, covering the posterior of τ.
    n : int
        Number of grid points of the default grid.

    Returns
    -------
    ShrinkagePath

    Example
    -------
    >>> from hierfit.plots.pooling import shrinkage_path
    >>> path = shrinkage_path(fit, "school", tau=[1e-6, 1e3])  # doctest: +SKIP
    >>> path.estimates[0, :, 0]   # all equal: complete pooling  # doctest: +SKIP
    """
    info = resolve_term(fit, term)
    prob = _problem(fit, info)
    post = fit.draws
    sd_draws = info.sd_draws(post)
    sd_mean = sd_draws.mean(axis=0)
    cov = info.cov_draws(post)
    sds = np.sqrt(np.einsum("sii->si", cov))
    cor = (cov / (sds[:, :, None] * sds[:, None, :])).mean(axis=0)
    base = cor * sd_mean[:, None] * sd_mean[None, :] + 1e-12 * np.diag(sd_mean**2)
    base_inv = np.linalg.inv(base)
    if tau is None:
        mult = _default_multipliers(prob, info, sd_mean, sd_draws, n)
    else:
        tau = np.atleast_1d(np.asarray(tau, dtype=float))
        if np.any(tau < 0) or not np.all(np.isfinite(tau)):
            raise HierfitError("tau must hold non-negative finite values")
        mult = tau / sd_mean[0]
    estimates = np.empty((len(mult), info.n_levels, info.q))
    eta = prob.eta_start.copy()
    order = np.argsort(mult)[::-1]  # from no pooling down, warm-starting IRLS
    for t in order:
        c = mult[t]
        prec = None if c == 0 else base_inv / c**2
        b, u, _, eta = _fit(prob, prec, eta=eta)
        estimates[t] = _coefs(prob, info, b, u)
    b0, u0, _, _ = _fit(prob, None)
    return ShrinkagePath(
        tau=mult[:, None] * sd_mean[None, :], estimates=estimates, complete=_coefs(prob, info, b0, u0)[0],
        no_pooling=no_pooling(fit, info.factor).to_numpy(), partial=partial_draws(fit, info).mean(axis=0),
        sd_draws=sd_draws, sd_mean=sd_mean, levels=list(info.levels), coefs=list(info.coefs),
        sizes=group_sizes(info), factor=info.factor, label=info.label, exact=prob.linear)

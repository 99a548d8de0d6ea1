"""Stage 3 of the pipeline: design + priors -> PyMC model.

The model written here is the specification of every hierfit fit::

    y_i       ~ Normal(mu_i, sigma)
    mu_i      = Intercept + (x_i - mean(x)) b + sum_k Z_k[i] r_k[g_k[i]]
    r_k[j]    = diag(sd_k) L_k z_k[j],  z_k[j] ~ Normal(0, I)     (non-centred, default)
    L_k L_k'  ~ LKJ(eta)                                         (correlated terms)

Fixed-effect columns are centred while sampling (the brms device that removes the
intercept/slope correlation); the reported intercept ``b["(Intercept)"]`` is on
the original scale.  Group effects are added with index gathers, never a dense Z.

Posterior variables (all labelled with dims):

``b`` (coef)                                   fixed effects, lme4 names
``Intercept``                                  intercept at the predictor means
``sigma``                                      residual sd
``sd_<key>`` (<key>__coef)                     group-level sds
``cor_<key>`` (<key>__coef, <key>__coef_bis)   group-level correlations
``r_<key>`` (<key>__level, <key>__coef)        group effects (deviations, like ranef)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hierfit.engine.addition import addition_likelihood, observation_sd
from hierfit.spec.centring import centred_means, coords_for
from hierfit.spec.design import Design
from hierfit.spec.parametrization import Parametrization, choose_parametrization
from hierfit.engine.pymc_priors import dist_rv, pymc_rv
from hierfit.errors import PriorError
from hierfit.spec.priors import Dist, PriorSet
from hierfit.spec.smooths import smooth_var

__all__ = ["build_model", "fixed_part", "FixedPart"]


def vector_rv(name: str, dists: list[Dist], dim: str, positive: bool):
    """One random vector whose elements have the given priors (one RV per prior family)."""
    import pymc as pm
    import pytensor.tensor as pt

    families = sorted({d.family for d in dists})
    if len(families) == 1:
        params = np.array([d.params for d in dists], dtype=float).T
        return pymc_rv(name, families[0], list(params), positive, dims=dim)
    out = pt.zeros(len(dists))
    for fam in families:
        idx = [i for i, d in enumerate(dists) if d.family == fam]
        params = np.array([dists[i].params for i in idx], dtype=float).T
        rv = pymc_rv(f"{name}__{fam}", fam, list(params), positive, shape=len(idx))
        out = pt.set_subtensor(out[idx], rv)
    return pm.Deterministic(name, out, dims=dim)


def threshold_rv(name: str, dists: list[Dist], dim: str, transform, initval):
    """The ordered thresholds: one vector variable (PyMC's ordered transform) with a prior per element.

    One prior family: that distribution with per-element parameters.  Several (brms's
    ``prior(..., class = Intercept, coef = k)`` with another family than the rest): a
    ``CustomDist`` whose log density is each element's own and whose draws come from each
    element's distribution (a symbolic graph), so the value variable stays
    ``<name>_ordered__`` either way.

    Example
    -------
    >>> import pymc as pm
    >>> from pymc.distributions.transforms import ordered
    >>> with pm.Model(coords={"thres": ["1", "2"]}) as m:
    ...     rv = threshold_rv("Intercept", [Dist("normal", (0.0, 1.0)), Dist("cauchy", (0.0, 2.0))], "thres",
    ...                       ordered, np.array([-1.0, 1.0]))
    >>> [v.name for v in m.value_vars]
    ['Intercept_ordered__']
    """
    import pymc as pm
    import pytensor.tensor as pt

    families = sorted({d.family for d in dists})
    if len(families) == 1:
        params = [np.array(p, dtype=float) for p in zip(*(d.params for d in dists))]
        return pymc_rv(name, families[0], params, positive=False, dims=dim, transform=transform, initval=initval)
    if any(f not in ("normal", "student_t", "cauchy") for f in families):
        bad = sorted(set(families) - {"normal", "student_t", "cauchy"})
        raise PriorError(f"{', '.join(bad)}() is a prior for positive parameters, not for the thresholds (class "
                         "'Intercept')")
    groups = []
    for fam in families:
        idx = [i for i, d in enumerate(dists) if d.family == fam]
        width = len(dists[idx[0]].params)
        groups.append((fam, idx, [np.array([dists[i].params[j] for i in idx]) for j in range(width)]))

    def element_rv(fam, p):
        return {"normal": lambda: pm.Normal.dist(mu=p[0], sigma=p[1]),
                "student_t": lambda: pm.StudentT.dist(nu=p[0], mu=p[1], sigma=p[2]),
                "cauchy": lambda: pm.Cauchy.dist(alpha=p[0], beta=p[1])}[fam]()

    def draws(size):  # each element from its own prior (prior predictive draws), symbolic: no Python callback
        out = pt.zeros(len(dists))
        for fam, idx, p in groups:
            out = pt.set_subtensor(out[idx], element_rv(fam, p))
        return out

    def logp(value):
        out = pt.zeros(len(dists))
        for fam, idx, p in groups:
            out = pt.set_subtensor(out[idx], pm.logp(element_rv(fam, p), value[idx]))
        return out

    return pm.CustomDist(name, dist=draws, logp=logp, dims=dim, transform=transform, initval=initval)


@dataclass
class FixedPart:
    """The fixed-effect variables of one linear predictor, as built into the PyMC model."""

    names: list[str]
    slope_idx: list[int]
    X: np.ndarray  # the slope columns, uncentred
    xmean: np.ndarray
    intercept: object  # the intercept at the predictor means (RV) or None
    beta: object  # slope RV vector or None
    coef: dict  # lme4 name -> tensor of the coefficient on the original scale
    b: object  # stacked coefficients (the Deterministic "b")
    smooth_idx: list = None  # columns of the penalised smooth coefficients (s_sx_1[j])
    smooth_X: np.ndarray = None  # their columns, centred like the slopes
    smooth_beta: object = None  # their coefficients: zs * sds, one sd per smooth
    thresholds: object = None  # ordered thresholds at the predictor means (ordinal families), or None


def fixed_part(pred, pp) -> FixedPart:
    """Create the intercept (at the predictor means), slopes and ``b`` of a predictor, inside a model context.

    The intercept is sampled for centred predictors (brms's device); ``b["(Intercept)"]`` is on the
    original scale.  Shared by the full and the collapsed model builders.
    """
    import pymc as pm
    import pytensor.tensor as pt

    names = pred.fixed_names
    penalised = {j: label for label, cols in pred.smooths.items() for j in cols}
    slope_idx = [j for j, n in enumerate(names) if n != "(Intercept)" and j not in penalised]
    X = pred.X[:, slope_idx]
    xmean = X.mean(axis=0) if pred.centred else np.zeros(len(slope_idx))
    beta = None
    if slope_idx:
        beta = vector_rv(pred.var("beta"), [pp.b[names[j]] for j in slope_idx], pred.dim("beta_coef"), positive=False)
    intercept = None
    coef: dict[str, object] = {}
    smooth_idx = sorted(penalised)
    smooth_X, smooth_beta = None, None
    if smooth_idx:  # brms/mgcv's smooths: penalised coefficients zs * sds (non-centred), one sd per smooth
        parts = []
        for label, cols in pred.smooths.items():
            sds = dist_rv(pp.sds[label], pred.var(smooth_var("sds", label)), positive=True)
            zs = pm.Normal(pred.var(smooth_var("zs", label)), 0.0, 1.0, shape=len(cols))
            parts.append(zs * sds)
        smooth_beta = pt.concatenate(parts)
        Xs = pred.X[:, smooth_idx]
        smean = Xs.mean(axis=0) if pred.centred else np.zeros(len(smooth_idx))
        smooth_X = Xs - smean
        for k, j in enumerate(smooth_idx):
            coef[names[j]] = smooth_beta[k]
    if pred.has_intercept:
        intercept = dist_rv(pp.intercept, pred.var("Intercept"), positive=False)
        coef["(Intercept)"] = intercept - (pt.dot(xmean, beta) if beta is not None else 0.0) \
            - (pt.dot(smean, smooth_beta) if smooth_idx else 0.0)
    thresholds = None
    if pred.n_thresholds:  # ordered thresholds at the predictor means; Intercept[k] on the original scale
        from pymc.distributions.transforms import ordered

        n = pred.n_thresholds
        thresholds = threshold_rv(pred.var("Intercept"), pp.threshold_priors(n), pred.dim("thres"), ordered,
                                  np.linspace(-1.0, 1.0, n))
        shift = (pt.dot(xmean, beta) if beta is not None else 0.0) \
            + (pt.dot(smean, smooth_beta) if smooth_idx else 0.0)
        pm.Deterministic(pred.var("b_Intercept"), thresholds + shift, dims=pred.dim("thres"))
    for k, j in enumerate(slope_idx):
        coef[names[j]] = beta[k]
    b = pt.zeros(0)
    if names:
        b = pm.Deterministic(pred.var("b"), pt.stack([pt.as_tensor(coef[n]) for n in names]), dims=pred.dim("coef"))
    return FixedPart(names, slope_idx, X, xmean, intercept, beta, coef, b, smooth_idx, smooth_X, smooth_beta,
                     thresholds)


def _predictor_eta(pred, pp, par: dict[str, str], nobs: int, extra: dict | None = None):
    """Add one linear predictor's variables to the model and return its eta (thresholds go into ``extra``)."""
    import pymc as pm
    import pytensor.tensor as pt

    fp = fixed_part(pred, pp)
    if fp.thresholds is not None and extra is not None:
        extra["thresholds"] = fp.thresholds
    slope_idx, X, xmean, intercept, beta = fp.slope_idx, fp.X, fp.xmean, fp.intercept, fp.beta
    eta = pt.zeros(nobs)
    if slope_idx:
        eta = eta + pt.dot(pm.Data(pred.var("X"), X - xmean), beta)
    if intercept is not None:
        eta = eta + intercept
    if fp.smooth_idx:
        eta = eta + pt.dot(pm.Data(pred.var("Xs"), fp.smooth_X), fp.smooth_beta)
    plans = centred_means(pred, par)
    for blk in pred.blocks:
        key = blk.key
        dims = (f"{key}__level", f"{key}__coef")
        sd = vector_rv(f"sd_{key}", pp.sd[blk.name], f"{key}__coef", positive=True)
        if blk.is_correlated:
            Lc = pm.LKJCorr(f"L_{key}", n=blk.n_coefs, eta=pp.cor[blk.name].params[0])
            pm.Deterministic(f"cor_{key}", Lc @ Lc.T, dims=(f"{key}__coef", f"{key}__coef_bis"))
            chol = sd[:, None] * Lc
        if par[key] == "noncentered":
            z = pm.Normal(f"z_{key}", 0.0, 1.0, dims=dims)
            r = pm.Deterministic(f"r_{key}", z @ chol.T if blk.is_correlated else z * sd, dims=dims)
        else:
            # centred (hierarchical centring): the level's coefficient gamma = its mean + deviation is sampled;
            # r = gamma - mean keeps the posterior's variables unchanged (see centred_means).
            means = []
            for lm in plans[key]:
                if lm.kind == "intercept":
                    mean_c = pt.as_tensor(intercept) * pt.ones(blk.n_levels)
                    if lm.slopes:
                        mean_c = mean_c + pt.dot(lm.level_X, beta[list(lm.slopes)])
                elif lm.kind == "slope":
                    mean_c = beta[lm.slopes[0]] * pt.ones(blk.n_levels)
                else:
                    mean_c = pt.zeros(blk.n_levels)
                means.append(mean_c)
            m = pt.stack(means, axis=1)
            if blk.is_correlated:
                gamma = pm.MvNormal(f"gamma_{key}", mu=m, chol=chol, dims=dims)
            else:
                gamma = pm.Normal(f"gamma_{key}", m, sd, dims=dims)
            r = pm.Deterministic(f"r_{key}", gamma - m, dims=dims)
        idx = pm.Data(f"g_{key}", blk.index)
        for c in range(blk.n_coefs):
            zc = blk.Z[:, c]
            if np.all(zc == 1.0):
                eta = eta + r[idx, c]
            else:
                eta = eta + r[idx, c] * pm.Data(f"Z_{key}_{c}", zc)
    if pred.offset is not None:
        eta = eta + pm.Data(pred.var("offset"), pred.offset)
    return eta


def build_model(design: Design, priors: PriorSet, parametrization="auto"):
    """Build the PyMC model of a (generalised, distributional) mixed model.

    Parameters
    ----------
    design : Design
        From :func:`hierfit.spec.design.build_design`.
    priors : PriorSet
        From :func:`hierfit.spec.priors.resolve_priors`.
    parametrization : {"auto", "noncentered", "centered"}, dict or Parametrization
        Per group term (dict keys are group names such as ``"school"``); "auto"
        decides from the data (see :mod:`hierfit.spec.parametrization`).

    Returns
    -------
    pymc.Model

    Example
    -------
    >>> import hierfit
    >>> from hierfit.spec.design import build_design
    >>> from hierfit.spec.priors import resolve_priors
    >>> d = build_design("normexam ~ standLRT + (standLRT | school)", hierfit.datasets.load("exam"))
    >>> m = build_model(d, resolve_priors(d), "noncentered")
    >>> sorted(v.name for v in m.free_RVs)
    ['Intercept', 'L_school', 'beta', 'sd_school', 'sigma', 'z_school']
    """
    import pymc as pm
    import pytensor.tensor as pt

    par = parametrization if isinstance(parametrization, Parametrization) else \
        choose_parametrization(design, parametrization)
    fam = design.family
    with pm.Model(coords=coords_for(design)) as model:
        dvals = {}
        etas = {dp: _predictor_eta(pred, priors.predictors[dp], par, design.nobs, dvals)
                for dp, pred in design.predictors.items()}
        for dpar in fam.dpars:
            if dpar.name in etas:
                dvals[dpar.name] = dpar.inverse_pt(etas[dpar.name])
            else:
                dvals[dpar.name] = dist_rv(priors.dpars[dpar.name], dpar.name, positive=True, lower=dpar.lower)
        mu = fam.mean_parameter_pt(etas["mu"])
        y = pm.Data("y_obs", design.y)
        trials = pm.Data("trials", design.trials) if design.trials is not None else None
        addition_likelihood(fam, mu, observation_sd(dvals, design.addition), y, trials, design.addition)
    return model

"""Choosing centred or non-centred group effects per term, from the data.

Non-centred effects (r = sd * z) sample well when a level's data say little about
its effect compared with the group-level spread; centred effects (r ~ N(0, sd))
sample well when every level has much data.  The deciding number is the ratio of
the data's information about a level to the prior's::

    kappa = median_j( sum_{i in j} z_ij^2 / s2 ) * tau2

where s2 is the observation-level variance on the link scale and tau2 the
group-level variance of that coefficient.  Both are rough moment estimates made
before sampling (a one-way ANOVA on the residuals of the fixed-effect least-squares
fit for Gaussian models; the family's working variance and tau = 0.5 for others).
``kappa > 1`` means the data say more about a typical level than the group-level
distribution does, which is where the centred form mixes better (Gelfand, Sahu &
Carlin 1995): centre.  For families whose group-level variance is only guessed (tau =
0.5, not estimated from the data) a margin is kept: centre when ``kappa > 3``.
"""

from __future__ import annotations


import numpy as np

from hierfit.errors import HierfitError

__all__ = ["Parametrization", "choose_parametrization", "PARAMETRIZATIONS", "KAPPA_CENTER", "KAPPA_CENTER_GUESSED"]

PARAMETRIZATIONS = ("noncentered", "centered")
KAPPA_CENTER = 1.0
#: the threshold when tau is a guess rather than an estimate (non-Gaussian families)
KAPPA_CENTER_GUESSED = 3.0


class Parametrization(dict):
    """Block key -> ``"centered"``/``"noncentered"``, with the reason for each choice.

    ``str()`` gives one line per term; ``.reasons`` maps the term's name to its reason.
    """

    def __init__(self, choices: dict, reasons: dict | None = None, names: dict | None = None,
                 kappa: dict | None = None):
        super().__init__(choices)
        self.reasons = dict(reasons or {})
        self.names = dict(names or {k: k for k in choices})
        self.kappa = dict(kappa or {})  # data/prior information ratio per block (mean-formula terms)

    def by_name(self) -> dict[str, str]:
        """Choices keyed by the term's lme4 name (``school``, ``student:school``)."""
        return {self.names[k]: v for k, v in self.items()}

    def __str__(self) -> str:
        return "\n".join(f"{self.names[k]}: {v}" + (f" ({self.reasons[k]})" if k in self.reasons else "")
                         for k, v in self.items())

    def __reduce__(self):
        return (Parametrization, (dict(self), self.reasons, self.names, self.kappa))


def _residual_variance(design) -> tuple[np.ndarray, float]:
    """Residuals of the fixed-effect least-squares fit and their variance (Gaussian), or working values."""
    fam = design.family
    y = design.y
    X = design.X
    if fam.location_scale:
        if X.shape[1]:
            beta, *_ = np.linalg.lstsq(X, y, rcond=None)
            resid = y - X @ beta
        else:
            resid = y - y.mean()
        return resid, float(np.var(resid))
    return np.zeros_like(y), float("nan")


def _working_variance(design) -> float:
    """Observation-level variance on the link scale for non-Gaussian families (at the mean response)."""
    return float(design.family.working_variance(design.y, design.trials))


def _tau2_anova(resid: np.ndarray, index: np.ndarray, n_levels: int, s2: float) -> float:
    """Between-level variance of residual means minus its sampling part (method of moments)."""
    counts = np.bincount(index, minlength=n_levels).astype(float)
    sums = np.bincount(index, weights=resid, minlength=n_levels)
    ok = counts > 0
    means = sums[ok] / counts[ok]
    between = float(np.var(means))
    return max(between - s2 * float(np.mean(1.0 / counts[ok])), 0.0)


def _kappa(design, blk, resid, s2) -> tuple[float, float]:
    """(kappa, median rows per level) of a block's first coefficient."""
    counts = np.bincount(blk.index, minlength=blk.n_levels)
    z2 = np.bincount(blk.index, weights=blk.Z[:, 0] ** 2, minlength=blk.n_levels)
    info = float(np.median(z2))
    if np.isfinite(s2):
        if np.allclose(blk.Z[:, 0], 1.0):
            tau2 = _tau2_anova(resid, blk.index, blk.n_levels, s2)
        else:  # slope-only term: spread of per-level slopes of the residuals
            zr = np.bincount(blk.index, weights=blk.Z[:, 0] * resid, minlength=blk.n_levels)
            ok = z2 > 0
            slopes = zr[ok] / z2[ok]
            tau2 = max(float(np.var(slopes)) - s2 * float(np.mean(1.0 / z2[ok])), 0.0)
        return info * tau2 / s2, float(np.median(counts))
    return info * 0.25 / _working_variance(design), float(np.median(counts))


def choose_parametrization(design, parametrization="auto") -> Parametrization:
    """Resolve ``parametrization`` ("auto", "centered", "noncentered" or a dict) per block.

    Example
    -------
    >>> import hierfit
    >>> from hierfit.spec.design import build_design
    >>> d = build_design("normexam ~ standLRT + (1 | school)", hierfit.datasets.load("exam"))
    >>> str(choose_parametrization(d, "noncentered"))
    'school: noncentered (forced)'
    """
    blocks = design.all_blocks
    names = {b.key: b.name if b.dpar == "mu" else f"{b.dpar}: {b.name}" for b in blocks}
    forced: dict[str, str] = {}
    default = parametrization
    if isinstance(parametrization, dict):
        default = "auto"
        for k, v in parametrization.items():
            matches = [b.key for b in blocks if k in (b.name, b.factor, b.key)]
            if not matches:
                raise HierfitError(f"parametrization names group '{k}', which is not a group term of this model "
                                   f"(terms: {', '.join(b.name for b in blocks) or 'none'})")
            if v not in PARAMETRIZATIONS + ("auto",):
                raise HierfitError(f"parametrization for '{k}' must be one of auto, {', '.join(PARAMETRIZATIONS)}")
            for m in matches:
                forced[m] = v
    elif not isinstance(parametrization, str) or parametrization not in PARAMETRIZATIONS + ("auto",):
        raise HierfitError(f"parametrization must be 'auto', 'centered', 'noncentered' or a dict per group term, "
                           f"got {parametrization!r}")
    resid, s2 = _residual_variance(design)
    choices, reasons, kappas = {}, {}, {}
    for blk in blocks:
        want = forced.get(blk.key, default)
        if blk.dpar == "mu":
            kappa, n_med = _kappa(design, blk, resid, s2)
            kappas[blk.key] = kappa
        if want != "auto":
            choices[blk.key], reasons[blk.key] = want, "forced"
            continue
        if blk.dpar != "mu":
            choices[blk.key], reasons[blk.key] = "noncentered", "term of a distributional formula"
            continue
        threshold = KAPPA_CENTER if design.family.location_scale else KAPPA_CENTER_GUESSED
        choice = "centered" if kappa > threshold else "noncentered"
        choices[blk.key] = choice
        reasons[blk.key] = (f"auto: median {n_med:g} rows per level, data/prior information ratio "
                            f"{kappa:.2g} {'>' if choice == 'centered' else '<='} {threshold:g}")
    return Parametrization(choices, reasons, names, kappas)

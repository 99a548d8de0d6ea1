"""How the group effects are laid out: model coordinates, and the level means of centred terms.

Shared by the PyMC model (:mod:`hierfit.engine.model`) and the compiled kernel
(:mod:`hierfit.engine.kernel.spec`), so both name and centre the effects identically.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


__all__ = ["coords_for", "LevelMean", "centred_means"]


def coords_for(design) -> dict[str, list[str]]:
    """The coordinate labels of every dim of the model.

    Example
    -------
    >>> import hierfit
    >>> from hierfit.spec.design import build_design
    >>> d = build_design("normexam ~ standLRT + (1 | school)", hierfit.datasets.load("exam"))
    >>> sorted(coords_for(d))
    ['beta_coef', 'coef', 'school__coef', 'school__coef_bis', 'school__level']
    """
    coords: dict[str, list[str]] = {}
    for pred in design.predictors.values():
        coords[pred.dim("coef")] = list(pred.fixed_names)
        penalised = {j for cols in pred.smooths.values() for j in cols}  # sampled as zs * sds, not in beta
        coords[pred.dim("beta_coef")] = [n for j, n in enumerate(pred.fixed_names)
                                         if n != "(Intercept)" and j not in penalised]
        if pred.n_thresholds:
            coords[pred.dim("thres")] = pred.threshold_names
        for blk in pred.blocks:
            coords[f"{blk.key}__level"] = list(blk.levels)
            coords[f"{blk.key}__coef"] = list(blk.coefs)
            coords[f"{blk.key}__coef_bis"] = list(blk.coefs)
    return coords


def _constant_within(x: np.ndarray, index: np.ndarray, n_levels: int) -> bool:
    """True when x takes a single value within every level (a group-level predictor)."""
    lo = np.full(n_levels, np.inf)
    hi = np.full(n_levels, -np.inf)
    np.minimum.at(lo, index, x)
    np.maximum.at(hi, index, x)
    return bool(np.all(hi - lo <= 1e-12 * (1 + np.abs(hi))))


def _first_row_per_level(index: np.ndarray, n_levels: int) -> np.ndarray:
    first = np.full(n_levels, -1)
    rows = np.arange(len(index))[::-1]
    first[index[::-1]] = rows
    return first


@dataclass(frozen=True)
class LevelMean:
    """The mean of one centred coefficient's level values (hierarchical centring).

    ``kind`` is ``"intercept"`` (the intercept at the predictor means plus the effects of
    the slopes in ``slopes`` that are constant within levels, with their centred values
    per level in ``level_X``), ``"slope"`` (the fixed slope ``slopes[0]``) or ``"zero"``.
    Slope indices count the predictor's non-intercept coefficients.
    """

    kind: str
    slopes: tuple[int, ...] = ()
    level_X: np.ndarray | None = None


def centred_means(pred, par) -> dict[str, list[LevelMean]]:
    """For each centred block of ``pred``: the :class:`LevelMean` of each of its coefficients.

    The intercept's mean is the intercept plus the predictors that are constant within
    the block's levels (group-level predictors); a slope's mean is its fixed effect.  Each
    fixed coefficient serves one term only: the most data-rich centred term first (the
    largest information ratio ``par.kappa``; block order without it), because the fixed
    effect is best identified by the level means that the data pin down best — with
    crossed terms, hosting the intercept in a data-poor term leaves it nearly unidentified
    between the terms.  Shared by the PyMC model and hierfit's compiled kernel, so both
    centre identically.
    """
    names = pred.fixed_names
    slope_idx = [j for j, n in enumerate(names) if n != "(Intercept)"]
    slope_names = [names[j] for j in slope_idx]
    X = pred.X[:, slope_idx]
    xmean = X.mean(axis=0) if pred.has_intercept else np.zeros(len(slope_idx))
    used: set[str] = set()
    out: dict[str, list[LevelMean]] = {}
    kappa = getattr(par, "kappa", {})
    centred = [blk for blk in pred.blocks if par.get(blk.key) == "centered"]
    for blk in sorted(centred, key=lambda b: -kappa.get(b.key, 0.0)):  # stable: block order for ties
        plan = []
        for c in blk.coefs:
            if c == "(Intercept)" and pred.has_intercept and c not in used:
                used.add(c)
                cols = [k for k, n in enumerate(slope_names) if n not in used
                        and _constant_within(X[:, k], blk.index, blk.n_levels)]
                level_X = None
                if cols:
                    first = _first_row_per_level(blk.index, blk.n_levels)
                    level_X = (X - xmean)[first][:, cols]
                    used.update(slope_names[k] for k in cols)
                plan.append(LevelMean("intercept", tuple(cols), level_X))
            elif c in slope_names and c not in used:
                used.add(c)
                plan.append(LevelMean("slope", (slope_names.index(c),)))
            else:
                plan.append(LevelMean("zero"))
        out[blk.key] = plan
    return out

"""Convergence of the group effects: R-hat and bulk/tail ESS of the least converged ones.

A crossed model with thousands of levels has thousands of group effects, each a
sampled parameter of the full model.  The exact statistics of
:mod:`hierfit.results.diagnostics` (rank-normalised, split R-hat; bulk and tail ESS)
cost about a millisecond per parameter: up to :data:`EXACT_ELEMENTS` draws of group
effects in all (10,000 effects of 4,000 draws) every group effect gets them; beyond that they
are computed for a screened set: every
group effect is first scored by two cheap statistics of its draws — the classic split
R-hat of the draws and of their distances from the mean, and a batch-means ESS, all
from per-chain means and variances — and the
:data:`SCREEN` worst by each score get the exact statistics.  Group effects of a
collapsed fit are drawn exactly from their conditional given each posterior draw, so
their mixing is that of the reported parameters and they are not screened.

Example
-------
>>> import xarray as xr
>>> from types import SimpleNamespace
>>> rng = np.random.default_rng(0)
>>> r = rng.normal(size=(4, 500, 30, 1))
>>> r[0, :, 3, 0] += 1.0  # one chain of one level's effect elsewhere
>>> post = xr.Dataset({"r_g": (("chain", "draw", "g__level", "g__coef"), r)},
...                   coords={"g__level": [f"L{i}" for i in range(30)], "g__coef": ["(Intercept)"]})
>>> blk = SimpleNamespace(key="g", name="g", levels=[f"L{i}" for i in range(30)], coefs=["(Intercept)"])
>>> design = SimpleNamespace(all_blocks=[blk])
>>> tab = group_effect_diagnostics(post, design)
>>> tab.index[0], bool(tab["Rhat"].iloc[0] > 1.01)
('r_g[L3,(Intercept)]', True)
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from hierfit.results.diagnostics import ESS_MIN, RHAT_MAX, convergence_stats

__all__ = ["SCREEN", "EXACT_ELEMENTS", "group_effect_diagnostics", "group_effect_message"]

#: group effects per screening score that get the exact statistics
SCREEN = 100
#: up to this many draws of group effects in all (10,000 effects x 4,000 draws), every one gets the exact
#: statistics (about 0.8 ms per group effect of 4,000 draws); beyond it, the screening
EXACT_ELEMENTS = 4e7
#: group effects whose draws are screened at once (bounds the temporaries: about 8 MB at 4 x 1000 draws)
_BATCH = 250


def _split_rhat(x: np.ndarray) -> np.ndarray:
    """Classic (not rank-normalised) split R-hat of (parameters, chain, draw) draws."""
    p, m, n = x.shape
    half = n // 2
    split = x[:, :, :2 * half].reshape(p, 2 * m, half)  # the two halves of every chain
    within = split.var(axis=-1, ddof=1).mean(axis=-1)
    between = half * split.mean(axis=-1).var(axis=-1, ddof=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.sqrt((between / within + half - 1) / half)


def _screen_scores(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(split R-hat of the draws and of their distances from the mean, whichever is larger; batch-means ESS)
    of (parameters, chain, draw) draws, without ranks or FFTs (the folded R-hat catches chains that agree
    on the location but not on the spread)."""
    p, m, n = x.shape
    folded = np.abs(x - x.mean(axis=(-2, -1), keepdims=True))
    with np.errstate(invalid="ignore", divide="ignore"):
        rhat = np.fmax(_split_rhat(x), _split_rhat(folded))
        size = max(int(np.sqrt(n)), 1)  # batches of sqrt(n) draws per chain
        nb = n // size
        batches = x[:, :, :nb * size].reshape(p, m, nb, size).mean(axis=-1)
        var_batch = batches.var(axis=-1, ddof=1).mean(axis=-1)
        ess = m * n * x.var(axis=(-2, -1)) / (size * var_batch)
    return np.nan_to_num(rhat, nan=1.0), np.nan_to_num(ess, nan=float(m * n))


def _labelled_effects(posterior, design):
    """(label, (chain, draw) array view) of every group effect, by block."""
    for blk in design.all_blocks:
        var = f"r_{blk.key}"
        if var not in posterior:
            continue
        arr = np.asarray(posterior[var].values)  # (chain, draw, level, coef)
        labels = [f"r_{blk.name}[{lev},{c}]" for lev in blk.levels for c in blk.coefs]
        yield labels, arr


def group_effect_diagnostics(posterior, design, screen: int = SCREEN,
                             exact_elements: float = EXACT_ELEMENTS) -> pd.DataFrame:
    """Exact R-hat and bulk/tail ESS of the group effects, worst R-hat first.

    Every group effect when there are at most ``exact_elements`` draws of them in all;
    otherwise the least converged ones, found by the screening of the module's docstring.
    Labels are brms's, ``r_school[3,(Intercept)]``.  An empty table when the fit has no
    group effects or ``design`` is None (a collapsed fit).
    """
    blocks = list(_labelled_effects(posterior, design)) if design is not None else []
    flats = [arr.reshape(arr.shape[0], arr.shape[1], -1) for _, arr in blocks]
    labels = [lab for labs, _ in blocks for lab in labs]
    if not labels:
        return pd.DataFrame({"Rhat": [], "Bulk_ESS": [], "Tail_ESS": []},
                            index=pd.Index([], name="parameter"), dtype=float)
    where = [(b, j) for b, flat in enumerate(flats) for j in range(flat.shape[-1])]
    exact = len(labels) * flats[0].shape[0] * flats[0].shape[1] <= exact_elements
    if exact:
        pick = np.arange(len(labels))
    else:
        scores_r, scores_e = [], []
        for flat in flats:
            for lo in range(0, flat.shape[-1], _BATCH):
                r, e = _screen_scores(np.moveaxis(flat[:, :, lo:lo + _BATCH], -1, 0).astype(float))
                scores_r.append(r)
                scores_e.append(e)
        r, e = np.concatenate(scores_r), np.concatenate(scores_e)
        k = min(screen, len(labels))
        pick = np.union1d(np.argsort(-r, kind="stable")[:k], np.argsort(e, kind="stable")[:k])
    stats = []
    for lo in range(0, len(pick), _BATCH):  # batches bound the temporaries of the rank normalisation
        draws = np.stack([flats[where[i][0]][:, :, where[i][1]] for i in pick[lo:lo + _BATCH]]).astype(float)
        stats.append(np.stack(convergence_stats(draws, prob=(0.05, 0.95)), axis=-1))
    stats = np.concatenate(stats)
    tab = pd.DataFrame({"Rhat": stats[:, 0], "Bulk_ESS": stats[:, 1], "Tail_ESS": stats[:, 2]},
                       index=pd.Index([labels[i] for i in pick], name="parameter"))
    return tab.sort_values(["Rhat", "Bulk_ESS"], ascending=[False, True], kind="stable")


def group_effect_message(tab: pd.DataFrame, draws: int, shown: int = 3) -> str | None:
    """The warning for group effects with R-hat > 1.01 or ESS < 400, or None when they all pass.

    Example
    -------
    >>> tab = pd.DataFrame({"Rhat": [1.02, 1.0], "Bulk_ESS": [350.0, 900.0], "Tail_ESS": [500.0, 800.0]},
    ...                    index=["r_g[a,(Intercept)]", "r_g[b,(Intercept)]"])
    >>> print(group_effect_message(tab, 1000))  # doctest: +NORMALIZE_WHITESPACE
    R-hat > 1.01 or bulk/tail ESS < 400 for 1 group effect(s) (r_g[a,(Intercept)]: R-hat 1.020, ESS 350):
    their chains have not mixed well enough for their means and intervals. Likely reason: too few
    draws for these group effects. Remedy: fit.update(draws=2000)
    """
    bad = tab[(tab["Rhat"].fillna(1.0) > RHAT_MAX) | (tab[["Bulk_ESS", "Tail_ESS"]].min(axis=1) < ESS_MIN)]
    if bad.empty:
        return None
    worst = ", ".join(f"{name}: R-hat {row.Rhat:.3f}, ESS {min(row.Bulk_ESS, row.Tail_ESS):.0f}"
                      for name, row in bad.head(shown).iterrows())
    more = f" and {len(bad) - shown} more" if len(bad) > shown else ""
    return (f"R-hat > {RHAT_MAX} or bulk/tail ESS < {ESS_MIN} for {len(bad)} group effect(s) ({worst}{more}): "
            "their chains have not mixed well enough for their means and intervals. Likely reason: too few draws "
            f"for these group effects. Remedy: fit.update(draws={2 * draws})")

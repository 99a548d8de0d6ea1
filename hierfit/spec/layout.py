"""Which Gaussian designs the collapsed sampler handles, how their rows group, and their sufficient statistics.

The collapsed sampler (:mod:`hierfit.engine.collapsed`) integrates the group effects
out of Gaussian models with one grouping factor or one nested in another.  This
module holds the numpy side that the compiled kernel, the PyMC collapsed model and
the exact post-sampling draws all read: the eligibility test (:func:`collapsible`),
the grouping of levels (:func:`collapsed_layout`) and the per-level sums
(:func:`sufficient_stats`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hierfit.errors import HierfitError

__all__ = ["collapsible", "collapsed_layout", "CollapsedLayout", "SufficientStats", "sufficient_stats"]


@dataclass
class CollapsedLayout:
    """How the collapsed sampler groups the rows: one grouping factor, or an inner factor nested in an outer one.

    The group coefficients are stacked outer blocks first (``q1`` of them), then inner
    blocks; ``qstart`` gives each block's first column.  Inner levels are sorted by
    their outer level: inner level ``order[k]`` is the k-th, and the inner levels of
    outer level ``j`` are ``starts[j]:starts[j + 1]``.  With one factor the inner and
    outer levels coincide (``order`` is the identity).
    """

    outer: list
    inner: list
    inner_index: np.ndarray  # (n,) original inner level of each row
    order: np.ndarray  # (K,) original inner level at each sorted position
    starts: np.ndarray  # (J + 1,)
    q1: int
    qstart: dict

    @property
    def nested(self) -> bool:
        return bool(self.inner)

    @property
    def q(self) -> int:
        return sum(b.n_coefs for b in self.outer + self.inner)


def _nesting(design):
    """(outer factor, inner factor) when the design's two grouping factors are nested, else a reason."""
    blocks = design.blocks
    first = {}
    for b in blocks:
        first.setdefault(b.factor, b)
    if len(first) == 1:
        return next(iter(first.values())), None
    names = ", ".join(first)
    if len(first) > 2:
        return None, f"several grouping factors ({names}); the collapsed sampler handles one, or one nested in another"
    a, b = sorted(first.values(), key=lambda blk: blk.n_levels)
    pairs = np.unique(b.index.astype(np.int64) * a.n_levels + a.index)
    if len(pairs) != b.n_levels:  # some inner level meets two outer levels: crossed, not nested
        return None, (f"several grouping factors ({names}) that are crossed, not nested; the collapsed sampler "
                      "handles one, or one nested in another")
    return a, b


def collapsed_layout(design) -> CollapsedLayout:
    """The outer/inner grouping of a collapsible design (see :func:`collapsible`).

    Example
    -------
    >>> import hierfit
    >>> from hierfit.spec.design import build_design
    >>> lay = collapsed_layout(build_design("normexam ~ standLRT + (1 | school/student)", hierfit.datasets.load("exam")))
    >>> lay.nested, lay.q1, len(lay.starts) - 1, len(lay.order)
    (True, 1, 65, 4055)
    """
    outer_blk, inner_blk = _nesting(design)
    if outer_blk is None:
        raise HierfitError(f"the collapsed sampler does not apply: {inner_blk}")
    outer = [b for b in design.blocks if b.factor == outer_blk.factor]
    inner = [b for b in design.blocks if inner_blk is not None and b.factor == inner_blk.factor]
    qstart, start = {}, 0
    for b in outer + inner:
        qstart[b.key] = start
        start += b.n_coefs
    J = outer_blk.n_levels
    if inner_blk is None:
        K, inner_index, outer_of = J, outer_blk.index, np.arange(J)
    else:
        K, inner_index = inner_blk.n_levels, inner_blk.index
        outer_of = np.zeros(K, dtype=np.int64)
        outer_of[inner_blk.index] = outer_blk.index
    order = np.argsort(outer_of, kind="stable")
    starts = np.concatenate([[0], np.cumsum(np.bincount(outer_of, minlength=J))])
    return CollapsedLayout(outer, inner, np.asarray(inner_index), order, starts,
                           sum(b.n_coefs for b in outer), qstart)


def collapsible(design) -> tuple[bool, str]:
    """Whether the collapsed sampler applies, and why (not).

    It applies to Gaussian models (identity link, one residual sd) whose group terms
    use one grouping factor, or two factors of which one is nested in the other
    (``(1 | school/class)``, or two columns whose levels happen to nest).

    Example
    -------
    >>> import hierfit
    >>> from hierfit.spec.design import build_design
    >>> collapsible(build_design("normexam ~ standLRT + (standLRT | school)", hierfit.datasets.load("exam")))
    (True, 'Gaussian with one grouping factor (school)')
    """
    ok, why = design.family.collapsible()
    if not ok:
        return False, why
    if len(design.predictors) > 1:
        return False, "distributional formulas (e.g. sigma ~ x) make the residual variance vary by row"
    if not design.blocks:
        return False, "the model has no group terms"
    outer, inner = _nesting(design)
    if outer is None:
        return False, inner
    if inner is None:
        return True, f"Gaussian with one grouping factor ({outer.factor})"
    return True, f"Gaussian with {inner.factor} nested in {outer.factor}"


@dataclass
class SufficientStats:
    """Per-level sums the collapsed likelihood needs (K inner levels sorted by outer level, p fixed effects,
    q group coefficients, outer ones first; see :class:`CollapsedLayout`)."""

    n: np.ndarray  # (K,)
    yy: np.ndarray  # (K,)
    Xy: np.ndarray  # (K, p)
    XX: np.ndarray  # (K, p, p)
    Zy: np.ndarray  # (K, q)
    ZX: np.ndarray  # (K, q, p)
    ZZ: np.ndarray  # (K, q, q)


def sufficient_stats(design, layout: CollapsedLayout | None = None) -> SufficientStats:
    """Per-level sufficient statistics, computed in one pass over the rows (vectorised, O(n (p + q)^2)).

    Example
    -------
    >>> import hierfit
    >>> from hierfit.spec.design import build_design
    >>> s = sufficient_stats(build_design("normexam ~ standLRT + (1 | school)", hierfit.datasets.load("exam")))
    >>> s.n.sum(), s.XX.shape, s.ZZ.shape
    (np.int64(4059), (65, 2, 2), (65, 1, 1))
    """
    summary = getattr(design, "summary", None)
    if summary is not None and summary.stats is not None:
        return summary.stats  # computed by a data engine in one grouped pass (hierfit.data)
    lay = layout if layout is not None else collapsed_layout(design)
    K = len(lay.order)
    position = np.empty(K, dtype=np.int64)
    position[lay.order] = np.arange(K)
    idx = position[lay.inner_index]
    y = design.y - (design.mu.offset if design.mu.offset is not None else 0.0)
    X = design.X
    Z = np.hstack([b.Z for b in lay.outer + lay.inner])
    W = np.hstack([X, Z, y[:, None]])
    k = W.shape[1]
    cross = np.zeros((K, k, k))
    # accumulate W_i W_i' per level without an n x k x k temporary
    for a in range(k):
        cross[:, a, :] = np.stack([np.bincount(idx, weights=W[:, a] * W[:, c], minlength=K) for c in range(k)], axis=1)
    p, q = X.shape[1], Z.shape[1]
    return SufficientStats(
        n=np.bincount(idx, minlength=K),
        yy=cross[:, -1, -1],
        Xy=cross[:, :p, -1],
        XX=cross[:, :p, :p],
        Zy=cross[:, p:p + q, -1],
        ZX=cross[:, p:p + q, :p],
        ZZ=cross[:, p:p + q, p:p + q],
    )

"""Variance decomposition of the collapsed Gaussian model: which sds NUTS samples jointly with sigma.

When a group term has (nearly) one row per level — the student in ``(1 | school/student)``
with one exam per student — its variance and the residual variance are identified only
through their sum: in PyMC's coordinates (log sigma, log sd) the posterior is a curved
ridge that a diagonal mass matrix cannot follow (divergences, R-hat > 1.01).  NUTS then
samples instead

    u   = log sqrt(sigma^2 + sum_k sd_k^2)     (the total sd, well identified)
    w_k = log(sd_k / sigma)                    (how the total is shared)

on which the ridge is axis-aligned.  The map has Jacobian determinant 1, so the log
density is PyMC's at the mapped point; priors are unchanged.  The numba side is
:func:`hierfit.engine.kernel.terms.vardec_forward`; this module chooses the terms and maps
draws back with numpy.

Example
-------
>>> import numpy as np
>>> y = np.array([0.0, -0.5, 1.0])  # u, then log sigma's and one log sd's positions
>>> x = forward(y, (0, (2,)))
>>> bool(np.isclose(np.exp(2 * x[0]) + np.exp(2 * x[2]), 1.0)), bool(np.isclose(x[2] - x[0], 1.0))
(True, True)
"""

from __future__ import annotations

import numpy as np

__all__ = ["ROWS_PER_LEVEL", "TARGET_ACCEPT", "candidates", "choose", "forward", "inverse"]

#: A one-coefficient term joins sigma's decomposition when its levels average at most this many rows.
ROWS_PER_LEVEL = 1.5
#: NUTS's default target acceptance rate for a decomposed model: the posterior of the log ratio has a sharp
#: edge where sigma is pinned by the few levels with repeated rows (0.8 left a few divergences on Exam).
TARGET_ACCEPT = 0.9


def candidates(design) -> list[str]:
    """Keys of the blocks that join sigma's decomposition in the collapsed model of this Gaussian design.

    Example
    -------
    >>> import hierfit
    >>> from hierfit.spec.design import build_design
    >>> candidates(build_design("normexam ~ standLRT + (1 | school/student)", hierfit.datasets.load("exam")))
    ['student_school']
    """
    if design.family.name != "gaussian" or "sigma" in design.predictors:
        return []
    return [blk.key for blk in design.all_blocks
            if blk.n_coefs == 1 and blk.n_levels * ROWS_PER_LEVEL >= design.nobs]


def choose(design, value_vars, sd_positions: dict, sigma_pos: int):
    """(position of log sigma, positions of the log sds) to decompose, or None.

    ``sd_positions`` maps each block key to the positions of its sds.  A block joins when
    it has one coefficient, its levels average at most :data:`ROWS_PER_LEVEL` rows, and
    its sd and sigma are plain log-transformed (lower bound 0).
    """
    names = {int(p): v.name for v in value_vars for p in np.atleast_1d(v.positions)}
    if sigma_pos < 0 or not names.get(sigma_pos, "").endswith("_log__"):
        return None
    picked = []
    for key in candidates(design):
        pos = sd_positions.get(key)
        if pos is not None and names.get(int(pos[0]), "").endswith("_log__"):
            picked.append(int(pos[0]))
    return (int(sigma_pos), tuple(picked)) if picked else None


def _log_share(w: np.ndarray) -> np.ndarray:
    """log(1 + sum_k exp(2 w_k)) over the last axis, stably."""
    two_w = 2.0 * w
    top = np.maximum(two_w.max(axis=-1), 0.0)
    return top + np.log(np.exp(-top) + np.exp(two_w - top[..., None]).sum(axis=-1))


def forward(y: np.ndarray, table) -> np.ndarray:
    """PyMC's unconstrained vectors of the sampler's y (..., n_dim)."""
    a, bs = table
    y = np.asarray(y, dtype=float)
    x = y.copy()
    bs = list(bs)
    x[..., a] = y[..., a] - 0.5 * _log_share(y[..., bs])
    x[..., bs] = x[..., a, None] + y[..., bs]
    return x


def inverse(x: np.ndarray, table) -> np.ndarray:
    """The sampler's y of PyMC's unconstrained vectors x (..., n_dim)."""
    a, bs = table
    x = np.asarray(x, dtype=float)
    y = x.copy()
    bs = list(bs)
    w = x[..., bs] - x[..., a, None]
    y[..., bs] = w
    y[..., a] = x[..., a] + 0.5 * _log_share(w)
    return y

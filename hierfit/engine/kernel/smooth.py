"""Penalised smooths ``s(x)`` in the kernel's program (see :func:`smooth_blocks`).

Example
-------
>>> import hierfit
>>> from hierfit.engine.kernel import build_spec
>>> from hierfit.spec.design import build_design
>>> from hierfit.spec.priors import resolve_priors
>>> df = hierfit.datasets.load("exam")
>>> d = build_design("normexam ~ s(standLRT, k = 5) + (1 | school)", df)
>>> [v.name for v in build_spec(d, resolve_priors(d), {"school": "noncentered"}).value_vars]
['beta', 'sds_sstandLRT_1_log__', 'zs_sstandLRT_1', 'Intercept', 'sd_school_log__', 'z_school', 'sigma_log__']
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hierfit.engine.kernel import codes as C
from hierfit.engine.kernel.generated import SmoothStep
from hierfit.spec.smooths import smooth_var

__all__ = ["SmoothLayout", "smooth_blocks"]


@dataclass(frozen=True)
class SmoothLayout:
    """The smooths of one predictor as laid out in the kernel's program."""

    columns: set  # the penalised columns
    z_pos: np.ndarray  # per penalised column (sorted): position of its zs element
    sd_pos: np.ndarray  # ... and of its smooth's log sds
    mean: np.ndarray  # ... and its mean (the columns are centred like the slopes)
    rows: list  # one block row per smooth
    stored: list  # (name, shape, dims) of sds_<label> and zs_<label>
    steps: list


def smooth_blocks(prog, layout, pri, pred, pp, pred_index: int) -> SmoothLayout:
    """Lay out each smooth's sds and zs (as hierfit.engine.model.fixed_part creates them).

    A smooth's penalised coefficients zs * sds enter eta exactly as a group block with one
    level, k - 2 coefficients sharing one sd and the centred columns as its Z; so each smooth
    is written as such a block row and the kernel's block code (non-centred effects, exact
    gradients; the shared sd's gradient summed over the coefficients) evaluates it.
    """
    rows, stored, steps = [], [], []
    z_all, sd_all = [], []
    penalised = sorted(j for cols in pred.smooths.values() for j in cols)
    Xs = pred.X[:, penalised]
    smean = Xs.mean(axis=0) if pred.centred else np.zeros(len(penalised))
    n = pred.X.shape[0]
    for label, cols in pred.smooths.items():
        sds_name, zs_name = pred.var(smooth_var("sds", label)), pred.var(smooth_var("zs", label))
        sd_pos = pri.scalar(sds_name, pp.sds[label], positive=True)
        K = len(cols)
        z_pos = layout.take(zs_name, (K,))
        at = [penalised.index(j) for j in cols]
        row = [0] * C.BLOCK_WIDTH
        row[C.B_PRED], row[C.B_J], row[C.B_K] = pred_index, 1, K
        row[C.B_INDEX] = prog.i(np.zeros(n, dtype=np.int64))
        row[C.B_Z] = prog.f((Xs[:, at] - smean[at]).T)  # column-major
        row[C.B_ONES] = prog.i(np.zeros(K, dtype=np.int64))
        row[C.B_RUNS] = prog.i([1, 0, n])  # one run: every row is the one level's
        row[C.B_SD_IDX] = prog.i(np.full(K, sd_pos, dtype=np.int64))  # one sd shared by the K coefficients
        row[C.B_CORR] = 0
        row[C.B_L_POS] = row[C.B_L_MAP] = row[C.B_ETA] = row[C.B_MEAN] = row[C.B_QSTART] = -1
        row[C.B_CENTERED] = 0
        row[C.B_PARAM_POS] = int(z_pos[0])
        rows.append(row)
        stored += [(sds_name, (), ()), (zs_name, (K,), (f"{zs_name}_dim_0",))]
        steps.append(SmoothStep(sds_name, zs_name, int(sd_pos), np.asarray(z_pos, dtype=np.int64)))
        z_all += list(z_pos)
        sd_all += [sd_pos] * K
    return SmoothLayout(set(penalised), np.asarray(z_all, dtype=np.int64), np.asarray(sd_all, dtype=np.int64),
                         smean, rows, stored, steps)

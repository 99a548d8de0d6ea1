"""The kernel's program: a model (design + priors + parametrization) as flat arrays.

:func:`build_spec` writes down everything the compiled log density needs — data,
level indices, prior parameters, where each parameter sits in the sampler's
unconstrained vector — as one int64 and one float64 array (layout in
:mod:`hierfit.engine.kernel.codes`).  The unconstrained vector is laid out exactly as the
PyMC model's (same variables, order, transforms), so the two densities can be compared
point by point (:meth:`KernelSpec.pymc_point`).

Example
-------
>>> import hierfit
>>> from hierfit.spec.design import build_design
>>> from hierfit.spec.priors import resolve_priors
>>> d = build_design("normexam ~ standLRT + (1 | school)", hierfit.datasets.load("exam"))
>>> spec = build_spec(d, resolve_priors(d), collapsed=True)
>>> spec.kind, spec.n_dim, [v.name for v in spec.value_vars]
('collapsed', 4, ['beta', 'Intercept', 'sd_school_log__', 'sigma_log__'])
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from hierfit.engine.kernel import codes as C
from hierfit.engine.kernel.generated import BlockStep, DparStep, FixedStep, ThresholdStep
from hierfit.engine.kernel.smooth import smooth_blocks
from hierfit.engine.kernel.stats_table import collapsed_table
from hierfit.engine.kernel.thresholds import threshold_table

__all__ = ["KernelSpec", "ValueVar", "StoredVar", "build_spec", "kernel_support", "spiral_positions"]


@dataclass(frozen=True)
class ValueVar:
    """One variable of the unconstrained vector, named as PyMC names its value variable."""

    name: str
    positions: np.ndarray  # where its (raveled) elements sit in x
    shape: tuple[int, ...]


@dataclass(frozen=True)
class StoredVar:
    """One variable of the stored draws, with its dims (computed by hierfit.engine.kernel.generated)."""

    name: str
    shape: tuple[int, ...]
    dims: tuple[str, ...]


@dataclass
class KernelSpec:
    """The inspectable output of :func:`build_spec`: the program and its bookkeeping.

    Attributes
    ----------
    kind : "full" or "collapsed"
    n_dim : number of unconstrained parameters NUTS samples
    ints, floats : the program (header, tables, data)
    value_vars : the unconstrained vector's variables, in order
    stored : the posterior's variables, with their dims
    steps : how they are computed from the unconstrained draws (hierfit.engine.kernel.generated)
    coords : coordinate labels of every dim
    init_centre : the unconstrained starting point before jitter
    """

    kind: str
    n_dim: int
    ints: np.ndarray
    floats: np.ndarray
    value_vars: list[ValueVar]
    stored: list[StoredVar]
    coords: dict[str, list[str]]
    init_centre: np.ndarray
    jitter: np.ndarray = field(repr=False, default=None)
    steps: list = field(repr=False, default_factory=list)
    vardec: tuple | None = None  # (log sigma's position, log sds' positions): see hierfit.engine.kernel.vardec

    def to_pymc(self, x: np.ndarray) -> np.ndarray:
        """PyMC's unconstrained vectors of the sampler's draws (different only under a variance decomposition)."""
        if self.vardec is None:
            return np.asarray(x, dtype=float)
        from hierfit.engine.kernel.vardec import forward

        return forward(x, self.vardec)

    def initial_point(self, seed: int) -> np.ndarray:
        """A starting point: the centre plus uniform(-1, 1) jitter (as PyMC's jitter_rvs), seeded."""
        rng = np.random.default_rng(seed)
        return self.init_centre + self.jitter * rng.uniform(-1.0, 1.0, self.n_dim)

    def pymc_point(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """The PyMC value-variable point of an unconstrained vector (for checks against PyMC's logp)."""
        x = self.to_pymc(x)
        return {v.name: x[v.positions].reshape(v.shape) for v in self.value_vars}

    def stored_draws(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """The posterior's variables of unconstrained draws x (..., n_dim) (see hierfit.engine.kernel.generated)."""
        from hierfit.engine.kernel.generated import stored_draws

        return stored_draws(self, x)


class _Program:
    """Accumulates the int64 and float64 arrays; offsets point into them."""

    def __init__(self):
        self.ints: list[np.ndarray] = [np.zeros(C.HEADER_SIZE, dtype=np.int64)]
        self.ints[0][C.H_THRESH] = -1  # set by an ordinal family's thresholds
        self.n_int = C.HEADER_SIZE
        self.floats: list[np.ndarray] = []
        self.n_float = 0

    @property
    def header(self) -> np.ndarray:
        return self.ints[0]

    def f(self, values) -> int:
        arr = np.ascontiguousarray(values, dtype=np.float64).ravel()
        off = self.n_float
        self.floats.append(arr)
        self.n_float += arr.size
        return off

    def i(self, values) -> int:
        arr = np.ascontiguousarray(values, dtype=np.int64).ravel()
        off = self.n_int
        self.ints.append(arr)
        self.n_int += arr.size
        return off

    def table(self, rows: list[list[int]], width: int) -> int:
        arr = np.zeros((len(rows), width), dtype=np.int64)
        for r, row in enumerate(rows):
            arr[r, :len(row)] = row
        return self.i(arr) if rows else self.n_int

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        ints = np.concatenate(self.ints)
        floats = np.concatenate(self.floats) if self.floats else np.zeros(1)
        return ints, floats


class _Layout:
    """Hands out positions in the unconstrained vector and records PyMC's value-variable names."""

    def __init__(self):
        self.n = 0
        self.value_vars: list[ValueVar] = []
        self.centre: list[np.ndarray] = []
        self.jitter: list[np.ndarray] = []

    def take(self, name: str, shape: tuple[int, ...], centre=0.0, jitter=1.0) -> np.ndarray:
        size = int(np.prod(shape)) if shape else 1
        pos = np.arange(self.n, self.n + size)
        self.n += size
        self.value_vars.append(ValueVar(name, pos, tuple(shape)))
        self.centre.append(np.broadcast_to(np.asarray(centre, dtype=float), (size,)).copy())
        self.jitter.append(np.broadcast_to(np.asarray(jitter, dtype=float), (size,)).copy())
        return pos


# -- priors ---------------------------------------------------------------------------------------------------------

_LOC = {"normal": 0, "student_t": 1, "cauchy": 0}


def _prior_terms(dist, positive: bool, lower: float, half: bool | None = None):
    """(density code, params, constant, transform, value-name suffix) of a prior, as hierfit.spec.priors.pymc_rv builds it.

    A positive parameter's normal/student_t/cauchy prior is the half-distribution (plus
    log 2) when the location of every element of its PyMC variable is 0 (``half``), else
    the distribution truncated at ``lower`` (minus the log probability above it).
    """
    fam, p = dist.family, tuple(float(v) for v in dist.params)
    if fam not in C.PRIORS:
        raise KernelUnsupported(f"a {fam} prior has no compiled kernel")
    code = C.PRIORS[fam]
    params = (p + (0.0, 0.0, 0.0))[:3]
    if not positive:
        return code, params, 0.0, C.T_NONE, ""
    if fam == "beta":  # a probability (zi, hu): PyMC's log-odds transform
        return code, params, 0.0, C.T_LOGIT, "_logodds__"
    loc = _LOC.get(fam)
    if half is None:
        half = loc is not None and p[loc] == 0
    if loc is not None and half and lower == 0:
        return code, params, math.log(2.0), C.T_LOG, "_log__"
    if loc is None and lower == 0:
        return code, params, 0.0, C.T_LOG, "_log__"
    return code, params, -float(dist.scipy().logsf(lower)), C.T_LOG, "_interval__"


def _typical_value(dist, positive: bool, lower: float) -> float:
    """A central value of the prior, on the parameter's scale (the start before jitter)."""
    fam, p = dist.family, dist.params
    if not positive:
        return p[_LOC[fam]]
    if fam in _LOC:  # half or truncated normal, student_t, cauchy: its scale, or its location when larger
        typical = max(p[-1], p[_LOC[fam]])
    elif fam == "exponential":
        typical = 1 / p[0]
    elif fam == "gamma":
        typical = p[0] / p[1]
    elif fam == "lognormal":
        typical = math.exp(p[0])
    elif fam == "beta":
        return p[0] / (p[0] + p[1])
    else:  # inv_gamma: its mode
        typical = p[1] / (p[0] + 1)
    return lower + min(max(typical, 1e-3), 1e3)


class _Priors:
    def __init__(self, prog: _Program, layout: _Layout):
        self.prog, self.layout, self.rows = prog, layout, []

    def vector(self, name: str, dists: list, positive: bool, lower: float = 0.0) -> np.ndarray:
        """Positions of a vector parameter with per-element priors; one PyMC variable per prior family."""
        families = sorted({d.family for d in dists})
        pos = np.zeros(len(dists), dtype=np.int64)
        for fam in families:
            idx = [i for i, d in enumerate(dists) if d.family == fam]
            var = name if len(families) == 1 else f"{name}__{fam}"
            loc = _LOC.get(fam)
            half = loc is not None and all(dists[i].params[loc] == 0 for i in idx)
            suffix = _prior_terms(dists[idx[0]], positive, lower, half)[4]
            centre = [self._centre(dists[i], positive, lower) for i in idx]
            p = self.layout.take(var + suffix, (len(idx),), centre=centre)
            for k, i in enumerate(idx):
                self._row(p[k], dists[i], positive, lower, half)
                pos[i] = p[k]
        return pos

    def scalar(self, name: str, dist, positive: bool, lower: float = 0.0) -> int:
        suffix = _prior_terms(dist, positive, lower)[4]
        p = self.layout.take(name + suffix, (), centre=self._centre(dist, positive, lower))
        self._row(p[0], dist, positive, lower)
        return int(p[0])

    @staticmethod
    def _centre(dist, positive, lower):
        v = _typical_value(dist, positive, lower)
        if positive and dist.family == "beta":
            return math.log(v / (1.0 - v))
        return math.log(v - lower) if positive else v

    def _row(self, pos, dist, positive, lower, half=None):
        code, params, const, transform, _ = _prior_terms(dist, positive, lower, half)
        off = self.prog.f([*params, lower, const])
        self.rows.append([int(pos), code, off, transform])


# -- per-row constants ------------------------------------------------------------------------------------------------

def row_terms(family, y: np.ndarray, trials) -> tuple[np.ndarray, np.ndarray]:
    """(const, aux) per row: the parts of the log-likelihood that depend on the data alone (the family's own).

    Example
    -------
    >>> from hierfit.families import get
    >>> row_terms(get("poisson"), np.array([0.0, 2.0]), None)[0].round(4).tolist()
    [-0.0, -0.6931]
    """
    const, aux = family.row_terms(np.asarray(y, dtype=float), trials)
    return np.asarray(const, dtype=float), np.asarray(aux, dtype=float)


# -- the LKJ transform ----------------------------------------------------------------------------------------------

def spiral_positions(k: int) -> np.ndarray:
    """(row, col) in the k x k Cholesky factor of each unconstrained LKJ element, in PyMC's order.

    PyMC's CholeskyCorr transform fills the strictly lower triangle in the "spiral"
    order of TensorFlow Probability's ``fill_triangular``, then normalises the rows.

    Example
    -------
    >>> spiral_positions(3).tolist()
    [[2, 1], [2, 0], [1, 0]]
    """
    n = k - 1
    m = n * (n + 1) // 2
    x = np.arange(m)
    filled = np.concatenate([x[n:], x[::-1]]).reshape(n, n)
    out = np.zeros((m, 2), dtype=np.int64)
    for a in range(n):
        for b in range(a + 1):
            out[filled[a, b]] = (a + 1, b)
    return out


def _lkj_log_normaliser(eta: float, n: int) -> float:
    k = np.arange(1, n)
    return float((n - 1) * math.lgamma(eta + 0.5 * (n - 1))
                 - sum(0.5 * kk * math.log(math.pi) + math.lgamma(eta + 0.5 * (n - 1 - kk)) for kk in k))


# -- support ----------------------------------------------------------------------------------------------------------

class KernelUnsupported(Exception):
    """Raised while building a spec for a model the compiled kernel does not handle."""


def kernel_support(design, priors) -> tuple[bool, str]:
    """Whether hierfit's compiled kernel evaluates this model, and why not.

    Example
    -------
    >>> import hierfit
    >>> from hierfit.spec.design import build_design
    >>> from hierfit.spec.priors import resolve_priors
    >>> d = build_design("normexam ~ standLRT + (1 | school)", hierfit.datasets.load("exam"))
    >>> kernel_support(d, resolve_priors(d))
    (True, '')
    """
    fam = design.family
    if fam.kernel_code is None:
        return False, f"the {fam.name} family has no compiled kernel"
    if not fam.has_kernel:
        return False, f"the {fam.link.name} link of the {fam.name} family has no compiled kernel"
    try:
        build_spec(design, priors, parametrization={b.key: "noncentered" for b in design.all_blocks})
    except KernelUnsupported as err:
        return False, str(err)
    return True, ""


# -- building ---------------------------------------------------------------------------------------------------------

def _fixed_part(prog, layout, pri, pred, pp, pred_index: int, steps: list):
    """Lay out beta, the smooths' sds and zs or the ordinal thresholds, then Intercept (PyMC's order in
    hierfit.engine.model.fixed_part); return the table row, the (Intercept, beta) positions, the step and the
    smooths (hierfit.engine.kernel.smooth)."""
    names = pred.fixed_names
    groups = pred.smooths
    penalised = sorted(j for cols in groups.values() for j in cols)
    if [j for cols in groups.values() for j in cols] != penalised:
        raise KernelUnsupported("penalised smooths whose columns interleave have no compiled kernel")
    slope_idx = [j for j, n in enumerate(names) if n != "(Intercept)" and j not in set(penalised)]
    X = pred.X[:, slope_idx]
    xmean = X.mean(axis=0) if pred.centred else np.zeros(len(slope_idx))
    beta_pos = pri.vector(pred.var("beta"), [pp.b[names[j]] for j in slope_idx], positive=False) \
        if slope_idx else np.zeros(0, dtype=np.int64)
    smooth = smooth_blocks(prog, layout, pri, pred, pp, pred_index)
    int_pos = pri.scalar(pred.var("Intercept"), pp.intercept, positive=False) if pred.has_intercept else -1
    if pred.n_thresholds:  # ordinal: K - 1 ordered thresholds, PyMC's ordered transform (after the slopes)
        if penalised:
            raise KernelUnsupported("penalised smooths in an ordinal model have no compiled kernel")
        thr = pp.threshold_priors(pred.n_thresholds)
        if any(d.family not in _LOC for d in thr):
            raise KernelUnsupported("the thresholds' priors must be normal, student_t or cauchy")
        prog.header[C.H_THRESH], pos = threshold_table(prog, layout, pred.var("Intercept"), thr)
        steps.append(ThresholdStep(pred.var("Intercept"), pred.var("b_Intercept"), pos, beta_pos, xmean))
    fixed_map = [-1 if n == "(Intercept)" else
                 (-2 - penalised.index(j) if j in smooth.columns else slope_idx.index(j)) for j, n in enumerate(names)]
    offset = prog.f(pred.offset) if pred.offset is not None else -1
    row = [0] * C.PRED_WIDTH
    row[C.PR_P] = len(slope_idx)
    row[C.PR_X] = prog.f((X - xmean).T)  # column-major: each slope's n values contiguous
    row[C.PR_XMEAN] = prog.f(xmean)
    row[C.PR_HAS_INT] = int(pred.has_intercept)
    row[C.PR_INT_POS] = int_pos
    row[C.PR_BETA_IDX] = prog.i(beta_pos)
    row[C.PR_NFIXED] = len(names)
    row[C.PR_FIXED_MAP] = prog.i(fixed_map)
    row[C.PR_OFFSET] = offset
    step = FixedStep(pred.var("Intercept") if pred.has_intercept else None,
                     pred.var("beta") if slope_idx else None, pred.var("b") if names else None,
                     int(int_pos), np.asarray(beta_pos, dtype=np.int64), xmean, np.asarray(fixed_map, dtype=np.int64),
                     smooth.z_pos, smooth.sd_pos, smooth.mean)
    return row, np.concatenate([[int_pos], beta_pos]).astype(np.int64), step, smooth


def _stored_fixed(pred) -> list[StoredVar]:
    out = []
    if pred.has_intercept:
        out.append(StoredVar(pred.var("Intercept"), (), ()))
    penalised = {j for cols in pred.smooths.values() for j in cols}
    slopes = [n for j, n in enumerate(pred.fixed_names) if n != "(Intercept)" and j not in penalised]
    if slopes:
        out.append(StoredVar(pred.var("beta"), (len(slopes),), (pred.dim("beta_coef"),)))
    if pred.n_thresholds:
        n = pred.n_thresholds
        out += [StoredVar(pred.var(v), (n,), (pred.dim("thres"),)) for v in ("Intercept", "b_Intercept")]
    if pred.fixed_names:
        out.append(StoredVar(pred.var("b"), (len(pred.fixed_names),), (pred.dim("coef"),)))
    return out


def _block(prog, layout, pri, blk, pred_index, pp, par, sample_effects: bool):
    """Lay out sd and L of one group block; return its table row, stored vars, effects' name and sd positions."""
    k, J = blk.n_coefs, blk.n_levels
    row = [0] * C.BLOCK_WIDTH
    row[C.B_PRED], row[C.B_J], row[C.B_K] = pred_index, J, k
    row[C.B_INDEX] = prog.i(blk.index)
    row[C.B_Z] = prog.f(blk.Z.T)  # column-major
    row[C.B_ONES] = prog.i([int(np.all(blk.Z[:, c] == 1.0)) for c in range(k)])
    # rows in runs of one level (sorted by level): the runs' table [m, start_0, ..., start_m = n], so each run's
    # effects are read and its gradients summed once; -1 when runs average 2 rows or fewer
    idx = np.asarray(blk.index)
    row[C.B_RUNS] = -1
    if len(idx) > 1 and np.mean(idx[1:] == idx[:-1]) > 0.5:
        starts = np.flatnonzero(np.r_[True, idx[1:] != idx[:-1]])
        row[C.B_RUNS] = prog.i(np.r_[len(starts), starts, len(idx)])
    sd_pos = pri.vector(f"sd_{blk.key}", pp.sd[blk.name], positive=True)
    row[C.B_SD_IDX] = prog.i(sd_pos)
    row[C.B_CORR] = int(blk.is_correlated)
    stored = [StoredVar(f"sd_{blk.key}", (k,), (f"{blk.key}__coef",))]
    if blk.is_correlated:
        eta = float(pp.cor[blk.name].params[0])
        m = k * (k - 1) // 2
        row[C.B_L_POS] = int(layout.take(f"L_{blk.key}_cholesky_corr__", (m,))[0])
        row[C.B_L_MAP] = prog.i(spiral_positions(k))
        row[C.B_ETA] = prog.f([eta, _lkj_log_normaliser(eta, k)])
        stored.append(StoredVar(f"cor_{blk.key}", (k, k), (f"{blk.key}__coef", f"{blk.key}__coef_bis")))
    else:
        row[C.B_L_POS] = row[C.B_L_MAP] = row[C.B_ETA] = -1
    row[C.B_MEAN] = -1
    if sample_effects:
        centred = par[blk.key] == "centered"
        name = f"gamma_{blk.key}" if centred else f"z_{blk.key}"
        row[C.B_CENTERED] = int(centred)
        row[C.B_PARAM_POS] = -2  # the caller takes the position and, for centred blocks, adds the mean matrix
        stored.append(StoredVar(f"r_{blk.key}", (J, k), (f"{blk.key}__level", f"{blk.key}__coef")))
        return row, stored, name, sd_pos
    row[C.B_PARAM_POS] = -1
    return row, stored, None, sd_pos


def _mean_matrix(pred, blk, plan) -> np.ndarray:
    """(J, k, 1 + P): level means of a centred block as a linear map of (Intercept, beta)."""
    penalised = {j for cols in pred.smooths.values() for j in cols}
    P = sum(1 for j, n in enumerate(pred.fixed_names) if n != "(Intercept)" and j not in penalised)
    M = np.zeros((blk.n_levels, blk.n_coefs, 1 + P))
    for c, lm in enumerate(plan):
        if lm.kind == "intercept":
            M[:, c, 0] = 1.0
            for col, k in enumerate(lm.slopes):
                M[:, c, 1 + k] = lm.level_X[:, col]
        elif lm.kind == "slope":
            M[:, c, 1 + lm.slopes[0]] = 1.0
    return M


def build_spec(design, priors, parametrization=None, collapsed: bool = False) -> KernelSpec:
    """The kernel program of a model.

    Parameters
    ----------
    design : Design
    priors : PriorSet
    parametrization : dict or Parametrization, optional
        Block key -> "centered"/"noncentered" (the full model; default non-centred).
    collapsed : bool
        The collapsed Gaussian model (group effects integrated out) instead of the full one.

    Example
    -------
    >>> import hierfit
    >>> from hierfit.spec.design import build_design
    >>> from hierfit.spec.priors import resolve_priors
    >>> d = build_design("normexam ~ standLRT + (standLRT | school)", hierfit.datasets.load("exam"))
    >>> spec = build_spec(d, resolve_priors(d), {"school": "noncentered"})
    >>> [v.name for v in spec.value_vars]
    ['beta', 'Intercept', 'sd_school_log__', 'L_school_cholesky_corr__', 'z_school', 'sigma_log__']
    """
    from hierfit.spec import centring
    from hierfit.spec.layout import collapsed_layout

    fam = design.family
    if not fam.has_kernel:
        raise KernelUnsupported(f"the {fam.name} family ({fam.link.name} link) has no compiled kernel")
    if collapsed and any(p.smooths for p in design.predictors.values()):
        raise KernelUnsupported("the collapsed kernel does not integrate out penalised smooths s()")
    par = parametrization if parametrization is not None else {}
    lay = collapsed_layout(design) if collapsed else None
    prog, layout = _Program(), _Layout()
    pri = _Priors(prog, layout)
    pred_rows, block_rows, stored, steps, sd_of = [], [], [], [], {}
    preds = list(design.predictors.items())
    if collapsed:
        preds = preds[:1]
    for pi, (dp, pred) in enumerate(preds):
        pp = priors.predictors[dp]
        row, theta_pos, fixed_step, smooth = _fixed_part(prog, layout, pri, pred, pp, pi, steps)
        steps.append(fixed_step)
        steps.extend(smooth.steps)
        row[C.PR_FIRST_BLOCK] = len(block_rows)
        row[C.PR_NBLOCK] = len(pred.blocks)
        link = fam.link.name if dp == "mu" else fam.dpar(dp).link
        row[C.PR_LINK] = C.LINKS[link]
        pred_rows.append(row)
        stored.extend(_stored_fixed(pred))
        stored.extend(StoredVar(*v) for v in smooth.stored)
        plans = centring.centred_means(pred, par) if not collapsed else {}
        qstart = lay.qstart if collapsed else {}
        for blk in pred.blocks:
            brow, bstored, effect_name, sd_pos = _block(prog, layout, pri, blk, pi, pp, par, not collapsed)
            sd_of[blk.key] = sd_pos
            M = None
            if effect_name is not None:
                brow[C.B_PARAM_POS] = int(layout.take(effect_name, (blk.n_levels, blk.n_coefs))[0])
                if brow[C.B_CENTERED]:
                    M = _mean_matrix(pred, blk, plans[blk.key])
                    brow[C.B_MEAN] = prog.f(M)
                    # start each level at its mean at the fixed effects' starting values
                    centre = np.concatenate(layout.centre)
                    theta0 = np.where(theta_pos >= 0, centre[np.maximum(theta_pos, 0)], 0.0)
                    layout.centre[-1] = (M @ theta0).ravel()
            brow[C.B_QSTART] = qstart[blk.key] if collapsed else -1
            block_rows.append(brow)
            stored.extend(bstored)
            steps.append(BlockStep(
                blk.key, np.asarray(sd_pos, dtype=np.int64),
                int(brow[C.B_L_POS]), spiral_positions(blk.n_coefs) if blk.is_correlated else None,
                int(brow[C.B_PARAM_POS]), blk.n_levels, blk.n_coefs, bool(brow[C.B_CENTERED]), M, fixed_step))
        block_rows.extend(smooth.rows)  # after the predictor's group blocks (PR_FIRST_BLOCK, PR_NBLOCK)
    dpar_rows, sigma_pos = [], -1
    for dpar in fam.dpars:
        if dpar.link not in ("log", "logit"):
            raise KernelUnsupported(f"the {dpar.link} link of {dpar.name} has no compiled kernel")
        link = C.LINKS[dpar.link]
        if dpar.name in design.predictors and not collapsed:
            pidx = [dp for dp, _ in preds].index(dpar.name)
            dpar_rows.append([C.SRC_PREDICTOR, pidx, prog.f([dpar.lower]), link])
        else:
            dist = priors.dpars[dpar.name]
            if (dist.family == "beta") != (dpar.link == "logit"):
                raise KernelUnsupported(f"a {dist.family} prior on {dpar.name} has no compiled kernel")
            pos = pri.scalar(dpar.name, dist, positive=True, lower=dpar.lower)
            dpar_rows.append([C.SRC_PARAM, pos, prog.f([dpar.lower]), link])
            sigma_pos = pos if dpar.name == "sigma" else sigma_pos
            stored.append(StoredVar(dpar.name, (), ()))
            steps.append(DparStep(dpar.name, pos, float(dpar.lower), dpar.link == "logit"))
    h = prog.header
    h[C.H_KIND] = C.COLLAPSED if collapsed else C.FULL
    h[C.H_N] = design.nobs
    h[C.H_NDIM] = layout.n
    h[C.H_FAMILY] = fam.kernel_code
    h[C.H_LINK] = C.LINKS[fam.link.name]
    h[C.H_Y] = prog.f(design.y)
    h[C.H_TRIALS] = prog.f(design.trials) if design.trials is not None else -1
    const, aux = row_terms(fam, np.asarray(design.y, dtype=float), design.trials)
    h[C.H_ROW_CONST], h[C.H_ROW_AUX] = prog.f(const), prog.f(aux)
    h[C.H_CONST_SUM] = prog.f([const.sum()])
    h[C.H_NPRIOR], h[C.H_PRIORS] = len(pri.rows), prog.table(pri.rows, C.PRIOR_WIDTH)
    h[C.H_NPRED], h[C.H_PREDS] = len(pred_rows), prog.table(pred_rows, C.PRED_WIDTH)
    h[C.H_NBLOCK], h[C.H_BLOCKS] = len(block_rows), prog.table(block_rows, C.BLOCK_WIDTH)
    h[C.H_NDPAR], h[C.H_DPARS] = len(dpar_rows), prog.table(dpar_rows, C.DPAR_WIDTH)
    h[C.H_ADDITION] = _addition_table(prog, design)
    h[C.H_VARDEC], vd = -1, None
    if collapsed:
        collapsed_table(prog, design, lay)
        from hierfit.engine.kernel import vardec

        vd = vardec.choose(design, layout.value_vars, sd_of, sigma_pos)
        if vd is not None:
            h[C.H_VARDEC] = prog.i([len(vd[1]), vd[0], *vd[1]])
    ints, floats = prog.arrays()
    centre = np.concatenate(layout.centre) if layout.centre else np.zeros(0)
    if vd is not None:
        from hierfit.engine.kernel.vardec import inverse

        centre = inverse(centre, vd)
    return KernelSpec(kind="collapsed" if collapsed else "full", n_dim=layout.n, ints=ints, floats=floats,
                      value_vars=layout.value_vars, stored=stored,
                      coords=centring.coords_for(design), init_centre=centre,
                      jitter=np.concatenate(layout.jitter) if layout.jitter else np.zeros(0), steps=steps,
                      vardec=vd)


def _addition_table(prog: _Program, design) -> int:
    """The addition table (weights, censoring, known se) or -1; raises for what the kernel lacks."""
    add = getattr(design, "addition", None)
    if add is None:
        return -1
    fam = design.family
    if (add.cens is not None or add.se is not None) and fam.name != "gaussian":
        raise KernelUnsupported(f"censoring of the {fam.name} family has no compiled kernel")
    row = [-1] * C.ADDITION_WIDTH
    if add.weights is not None:
        row[C.A_WEIGHTS] = prog.f(add.weights)
    if add.cens is not None:
        row[C.A_CENS] = prog.f(add.cens.astype(float))
        row[C.A_Y2] = prog.f(add.y2 if add.y2 is not None else np.zeros(design.nobs))
    if add.se is not None:
        row[C.A_SE] = prog.f(add.se)
    row[C.A_SE_SIGMA] = int(add.sigma)
    return prog.i(row)

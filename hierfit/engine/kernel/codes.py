"""Integer codes shared by the kernel's program (built in Python) and its numba code.

The program is two flat arrays: ``ints`` (int64) and ``floats`` (float64).  ``ints``
starts with a header of ``HEADER_SIZE`` slots (named ``H_*`` below); tables of fixed-
width rows follow (priors, predictors, group blocks, distributional parameters), and
the data arrays are slices of ``floats`` (or of ``ints`` for level indices) whose
offsets the tables hold.
"""

# model kinds
FULL = 0
COLLAPSED = 1

# response families and links: declared at the spec level, where each Family carries its code
from hierfit.families.codes import (  # noqa: E402,F401
    BERNOULLI, BETA, BINOMIAL, CLOGLOG, CUMULATIVE, EXPONENTIAL, GAMMA, GAUSSIAN, HURDLE_LOGNORMAL,
    HURDLE_NEGBINOMIAL, HURDLE_POISSON, IDENTITY, INVERSE, LINKS, LOG, LOGIT, LOGNORMAL, NEGBINOMIAL, POISSON, PROBIT,
    STUDENT, WEIBULL, ZI_NEGBINOMIAL, ZI_POISSON,
)

# prior densities (brms spelling in hierfit.spec.priors)
PRIORS = {"normal": 0, "student_t": 1, "cauchy": 2, "exponential": 3, "gamma": 4, "lognormal": 5, "inv_gamma": 6,
          "beta": 7}
P_NORMAL, P_STUDENT_T, P_CAUCHY, P_EXPONENTIAL, P_GAMMA, P_LOGNORMAL, P_INV_GAMMA, P_BETA = range(8)

# header slots
H_KIND, H_N, H_NDIM, H_FAMILY, H_LINK, H_Y, H_TRIALS = range(7)
H_NPRIOR, H_PRIORS, H_NPRED, H_PREDS, H_NBLOCK, H_BLOCKS, H_NDPAR, H_DPARS = range(7, 15)
H_J, H_P, H_Q, H_SS_N, H_SS_YY, H_SS_XY, H_SS_XX, H_SS_ZY, H_SS_ZX, H_SS_ZZ = range(15, 25)
H_ROW_CONST, H_ROW_AUX = 25, 26  # per-row terms that depend on y alone (log-likelihood constants, log y)
H_CONST_SUM = 27  # offset (floats) of the sum of the per-row constants
# collapsed model: coefficients of the outer factor, number of inner levels (= H_J for one factor), offset (ints)
# of the J + 1 starts of each outer level's inner levels
H_Q1, H_K, H_SS_START = 28, 29, 30
H_ADDITION = 31  # offset (ints) of the addition table (brms's weights/cens/se), or -1
# offset (ints) of the variance-decomposition table (m, position of log sigma, positions of m log sds), or -1
H_VARDEC = 32
H_THRESH = 33  # offset (ints) of the threshold table (ordinal families), or -1
HEADER_SIZE = 34

# prior rows: x position, density code, offset of (p1, p2, p3, lower, constant) in floats, transform
PRIOR_WIDTH = 4
T_NONE, T_LOG, T_LOGIT = 0, 1, 2  # T_LOG: value = lower + exp(x); T_LOGIT: value = 1 / (1 + exp(-x))

# predictor rows
(PR_P, PR_X, PR_XMEAN, PR_HAS_INT, PR_INT_POS, PR_BETA_IDX, PR_NFIXED, PR_FIXED_MAP, PR_OFFSET,
 PR_FIRST_BLOCK, PR_NBLOCK, PR_LINK) = range(12)
PRED_WIDTH = 12

# group-block rows
(B_PRED, B_J, B_K, B_INDEX, B_Z, B_ONES, B_SD_IDX, B_CORR, B_L_POS, B_L_MAP, B_ETA, B_PARAM_POS, B_CENTERED,
 B_MEAN, B_RUNS, B_QSTART) = range(16)
BLOCK_WIDTH = 16  # B_QSTART: the block's first column among the collapsed model's stacked coefficients;
# B_RUNS: offset of the runs table [m, start_0, ..., start_m = n] of rows sorted by level, or -1

# distributional-parameter rows: source (scalar parameter or predictor), its x position or predictor, lower bound,
# link (LOG: lower + exp, LOGIT: inverse logit)
D_SOURCE, D_WHERE, D_LOWER, D_LINK = range(4)
DPAR_WIDTH = 4
SRC_PARAM, SRC_PREDICTOR = 0, 1

# addition table: offsets (floats, -1 when absent) of weights, censoring codes, upper bounds, known se; se with sigma
A_WEIGHTS, A_CENS, A_Y2, A_SE, A_SE_SIGMA = range(5)
ADDITION_WIDTH = 5

# threshold table (ordinal families): number of thresholds n = K - 1, position of the first of their n contiguous
# unconstrained elements (PyMC's ordered transform: theta_1 = x_1, theta_k = theta_{k-1} + exp(x_k), Jacobian
# sum_{k >= 2} x_k), offset (floats) of their n prior rows (p1, p2, p3, lower, constant), then n prior codes
TH_N, TH_POS, TH_PRIORS, TH_CODES = range(4)

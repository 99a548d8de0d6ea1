"""exp and log1p as straight-line arithmetic, so that row loops over them vectorise (numba).

``math.exp`` and ``math.log1p`` compile to calls into the C library, one row at a time;
a loop that calls them cannot use the processor's vector units.  These versions are
polynomials (no calls, no branches: the one choice is a select), so LLVM turns a loop
over rows into SIMD code (8 rows at a time with AVX-512).  Both are accurate to about
2 units in the last place over their stated domains (``tests/test_kernel.py`` checks
them against numpy on a dense grid):

* ``exp_nonpos(x)`` for -708 <= x <= 0: x = k log 2 + r with |r| <= log(2) / 2 (Cody and
  Waite's two-part log 2), exp(r) by its Taylor polynomial of degree 13 (remainder
  < 1e-17), times 2**k built from its bit pattern.
* ``log1p_unit(t)`` for 0 <= t <= 1: log(1 + t) = 2 atanh(s) with s = t / (2 + t), or
  log 2 + 2 atanh(s) with s = (t - 1) / (t + 3) when 1 + t > sqrt(2); |s| <= 0.172, and
  the atanh series to s**23 (remainder < 1e-18).

Only 'contract' (fused multiply-add) is allowed of the fast-math rewrites: reassociation
would undo the two-part reduction.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np
from numba import types
from numba.extending import intrinsic

LOG2E = 1.4426950408889634
LN2_HI = 6.93147180369123816490e-01  # log 2 to 32 bits, so k * LN2_HI is exact
LN2_LO = 1.90821492927058770002e-10
LN2 = math.log(2.0)
SQRT2_M1 = math.sqrt(2.0) - 1.0
VEC = dict(cache=True, error_model="numpy", nogil=True, fastmath={"contract"})


@intrinsic
def bits_as_f64(typingctx, v):
    """The float64 whose bit pattern is the int64 v."""
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(types.float64))

    return types.float64(types.int64), codegen


@nb.njit(inline="always", **VEC)
def exp_nonpos(x):
    """exp(x) for -708 <= x <= 0."""
    k = math.floor(x * LOG2E + 0.5)
    r = (x - k * LN2_HI) - k * LN2_LO
    p = 1.0 / 6227020800.0
    p = p * r + 1.0 / 479001600.0
    p = p * r + 1.0 / 39916800.0
    p = p * r + 1.0 / 3628800.0
    p = p * r + 1.0 / 362880.0
    p = p * r + 1.0 / 40320.0
    p = p * r + 1.0 / 5040.0
    p = p * r + 1.0 / 720.0
    p = p * r + 1.0 / 120.0
    p = p * r + 1.0 / 24.0
    p = p * r + 1.0 / 6.0
    p = p * r + 0.5
    p = p * r + 1.0
    p = p * r + 1.0
    return p * bits_as_f64((np.int64(k) + 1023) << 52)


@nb.njit(inline="always", **VEC)
def log1p_unit(t):
    """log(1 + t) for 0 <= t <= 1."""
    big = t > SQRT2_M1
    s = (t - 1.0 if big else t) / (t + 3.0 if big else t + 2.0)  # one division
    s2 = s * s
    p = 1.0 / 23.0
    p = p * s2 + 1.0 / 21.0
    p = p * s2 + 1.0 / 19.0
    p = p * s2 + 1.0 / 17.0
    p = p * s2 + 1.0 / 15.0
    p = p * s2 + 1.0 / 13.0
    p = p * s2 + 1.0 / 11.0
    p = p * s2 + 1.0 / 9.0
    p = p * s2 + 1.0 / 7.0
    p = p * s2 + 1.0 / 5.0
    p = p * s2 + 1.0 / 3.0
    p = p * s2 + 1.0
    return (LN2 if big else 0.0) + 2.0 * s * p


@nb.njit(**VEC)
def exp_nonpos_array(x):
    """exp_nonpos over an array (for tests)."""
    out = np.empty_like(x)
    for i in range(x.shape[0]):
        out[i] = exp_nonpos(x[i])
    return out


@nb.njit(**VEC)
def log1p_unit_array(t):
    """log1p_unit over an array (for tests)."""
    out = np.empty_like(t)
    for i in range(t.shape[0]):
        out[i] = log1p_unit(t[i])
    return out

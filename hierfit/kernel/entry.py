"""The C entry points nutpie calls: ``logp(dim, x, grad, logp, user_data)`` and ``expand(...)``.

``user_data`` points at four int64 words: the address and length of the program's
int64 array, then of its float64 array.  The functions are numba ``cfunc``s cached on
disk, so they are compiled once for every model hierfit's kernel handles.
Return codes follow nutpie: 0 ok, 3 a non-finite gradient, 4 a non-finite log
density (both recoverable: the sampler treats the point as divergent).
"""

from __future__ import annotations

import math

import numba as nb
from numba import types
from numba.extending import intrinsic

from .codes import COLLAPSED, H_KIND
from .density import collapsed_logp, expand, full_logp
from .scalar import JIT


@intrinsic
def _f64_ptr(typingctx, addr):
    """An int64 address as a float64 pointer."""
    sig = types.CPointer(types.float64)(types.int64)

    def codegen(context, builder, signature, args):
        return builder.inttoptr(args[0], context.get_value_type(types.CPointer(types.float64)))

    return sig, codegen


@intrinsic
def _i64_ptr(typingctx, addr):
    """An int64 address as an int64 pointer."""
    sig = types.CPointer(types.int64)(types.int64)

    def codegen(context, builder, signature, args):
        return builder.inttoptr(args[0], context.get_value_type(types.CPointer(types.int64)))

    return sig, codegen


@nb.njit(**JIT)
def logp_and_grad(x, grad, ints, floats):
    if ints[H_KIND] == COLLAPSED:
        return collapsed_logp(x, grad, ints, floats)
    return full_logp(x, grad, ints, floats)


LOGP_SIG = types.int64(types.uint64, types.CPointer(types.float64), types.CPointer(types.float64),
                       types.CPointer(types.float64), types.CPointer(types.int64))
EXPAND_SIG = types.int64(types.uint64, types.uint64, types.CPointer(types.float64), types.CPointer(types.float64),
                         types.CPointer(types.int64))


@nb.cfunc(LOGP_SIG, cache=True, error_model="numpy")
def logp_cfunc(dim, x_ptr, grad_ptr, logp_ptr, user_data):
    head = nb.carray(user_data, (4,))
    ints = nb.carray(_i64_ptr(head[0]), (head[1],))
    floats = nb.carray(_f64_ptr(head[2]), (head[3],))
    x = nb.carray(x_ptr, (dim,))
    grad = nb.carray(grad_ptr, (dim,))
    lp = logp_and_grad(x, grad, ints, floats)
    logp_ptr[0] = lp
    if not math.isfinite(lp):
        return 4
    for i in range(dim):
        if not math.isfinite(grad[i]):
            return 3
    return 0


@nb.cfunc(EXPAND_SIG, cache=True, error_model="numpy")
def expand_cfunc(dim, n_expanded, x_ptr, out_ptr, user_data):
    head = nb.carray(user_data, (4,))
    ints = nb.carray(_i64_ptr(head[0]), (head[1],))
    floats = nb.carray(_f64_ptr(head[2]), (head[3],))
    x = nb.carray(x_ptr, (dim,))
    out = nb.carray(out_ptr, (n_expanded,))
    expand(x, out, ints, floats)
    return 0

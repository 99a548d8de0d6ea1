"""The C entry points nutpie calls: ``logp(dim, x, grad, logp, user_data)`` and ``expand(...)``.

``user_data`` points at four int64 words: the address and length of the program's
int64 array, then of its float64 array.  The functions are numba ``cfunc``s cached on
disk, so they are compiled once for every model hierfit's kernel handles; the full and
the collapsed log densities are separate entry points, compiled when first needed.
Return codes follow nutpie: 0 ok, 3 a non-finite gradient, 4 a non-finite log
density (both recoverable: the sampler treats the point as divergent).
"""

from __future__ import annotations

import math

import numba as nb
from numba import types
from numba.extending import intrinsic

from hierfit.engine.kernel.codes import COLLAPSED, H_KIND
from hierfit.engine.kernel.density import collapsed_logp, full_logp
from hierfit.engine.kernel.scalar import JIT


def _pointer_to(dtype):
    """An intrinsic that reads an int64 address as a pointer to ``dtype``."""
    ptr = types.CPointer(dtype)

    def cast(typingctx, addr):
        def codegen(context, builder, signature, args):
            return builder.inttoptr(args[0], context.get_value_type(ptr))

        return ptr(types.int64), codegen

    cast.__name__ = f"as_{dtype}_ptr"
    return intrinsic(cast)


_f64_ptr = _pointer_to(types.float64)
_i64_ptr = _pointer_to(types.int64)


@nb.njit(**JIT)
def logp_and_grad(x, grad, ints, floats):
    if ints[H_KIND] == COLLAPSED:
        return collapsed_logp(x, grad, ints, floats)
    return full_logp(x, grad, ints, floats)


LOGP_SIG = types.int64(types.uint64, types.CPointer(types.float64), types.CPointer(types.float64),
                       types.CPointer(types.float64), types.CPointer(types.int64))
EXPAND_SIG = types.int64(types.uint64, types.uint64, types.CPointer(types.float64), types.CPointer(types.float64),
                         types.CPointer(types.int64))


@nb.njit(**JIT)
def _program(user_data):
    """The program's arrays from the four words at user_data (addresses and lengths)."""
    head = nb.carray(user_data, (4,))
    return nb.carray(_i64_ptr(head[0]), (head[1],)), nb.carray(_f64_ptr(head[2]), (head[3],))


@nb.njit(**JIT)
def _status(lp, grad):
    """nutpie's return code: 4 for a non-finite log density, 3 for a non-finite gradient, else 0."""
    if not math.isfinite(lp):
        return 4
    for i in range(grad.shape[0]):
        if not math.isfinite(grad[i]):
            return 3
    return 0


def _logp_full(dim, x_ptr, grad_ptr, logp_ptr, user_data):
    ints, floats = _program(user_data)
    grad = nb.carray(grad_ptr, (dim,))
    logp_ptr[0] = full_logp(nb.carray(x_ptr, (dim,)), grad, ints, floats)
    return _status(logp_ptr[0], grad)


def _logp_collapsed(dim, x_ptr, grad_ptr, logp_ptr, user_data):
    ints, floats = _program(user_data)
    grad = nb.carray(grad_ptr, (dim,))
    logp_ptr[0] = collapsed_logp(nb.carray(x_ptr, (dim,)), grad, ints, floats)
    return _status(logp_ptr[0], grad)


def _expand(dim, n_expanded, x_ptr, out_ptr, user_data):
    """The stored draw is the unconstrained vector itself; hierfit.engine.kernel.generated derives the rest."""
    if n_expanded != dim:
        return -1
    for i in range(dim):
        out_ptr[i] = x_ptr[i]
    return 0


_RAW = {"full": (_logp_full, LOGP_SIG), "collapsed": (_logp_collapsed, LOGP_SIG), "expand": (_expand, EXPAND_SIG)}
_COMPILED: dict = {}


def cfunc(name: str):
    """The C entry point ``"full"``, ``"collapsed"`` (log densities) or ``"expand"``, compiled on first use.

    Each is compiled separately (and cached), so a first fit compiles only what its
    model kind needs.  Call through :func:`hierfit.engine.kernel.entry_point`, which sets the
    cache folder.
    """
    if name not in _COMPILED:
        fn, sig = _RAW[name]
        _COMPILED[name] = nb.cfunc(sig, cache=True, error_model="numpy")(fn)
    return _COMPILED[name]


def compiled_entries() -> dict:
    """The entry points made so far in this process, by name (numba ``CFunc`` objects, with ``cache_hits``)."""
    return dict(_COMPILED)

"""PyMC's NUTS on the compiled kernel (``sampler="pymc"``): the kernel's log density as a PyTensor Op.

PyMC samples one flat variable, the unconstrained vector, whose log density (the
kernel's, Jacobians included) enters as a Potential; the graph is two nodes, so there
is nothing to compile.  The draws then become the posterior's variables exactly as
after nutpie (hierfit.engine.kernel.generated).
"""

from __future__ import annotations

import time

import numpy as np

from hierfit.errors import SamplingError

__all__ = ["KernelLogp", "sample_spec_pymc"]


def _evaluate(kind: str, x, grad, ints, floats) -> float:
    from hierfit.engine.kernel import load

    load()  # imports the numba code with the kernel's cache folder (also in PyMC's worker processes)
    from hierfit.engine.kernel import density

    fn = density.collapsed_logp if kind == "collapsed" else density.full_logp
    return float(fn(x, grad, ints, floats))


def _op_class():
    from pytensor.graph.basic import Apply
    from pytensor.graph.op import Op
    import pytensor.tensor as pt

    class KernelLogpOp(Op):
        """x -> (log density, gradient) of a KernelSpec; the gradient of the first output is the second."""

        def __init__(self, kind, ints, floats, n_dim):
            self.kind, self.ints, self.floats, self.n_dim = kind, ints, floats, n_dim

        def __eq__(self, other):
            return self is other

        def __hash__(self):
            return id(self)

        def make_node(self, x):
            x = pt.as_tensor_variable(x)
            return Apply(self, [x], [pt.dscalar(), pt.dvector()])

        def perform(self, node, inputs, outputs):
            x = np.ascontiguousarray(inputs[0], dtype=np.float64)
            grad = np.empty(self.n_dim)
            lp = _evaluate(self.kind, x, grad, self.ints, self.floats)
            outputs[0][0] = np.asarray(lp)
            outputs[1][0] = grad

        def grad(self, inputs, output_grads):
            return [output_grads[0] * self(inputs[0])[1]]

    return KernelLogpOp


def KernelLogp(spec):  # noqa: N802 - a factory that reads like the Op it makes
    """The PyTensor Op of a spec's log density and gradient.

    Example
    -------
    >>> # op = KernelLogp(spec); logp, grad = op(pytensor.tensor.dvector())
    """
    return _op_class()(spec.kind, np.ascontiguousarray(spec.ints), np.ascontiguousarray(spec.floats), spec.n_dim)


def sample_spec_pymc(spec, settings):
    """Sample a KernelSpec with ``pymc.sample``; returns (DataTree, timing dict).

    Example
    -------
    >>> # dt, timing = sample_spec_pymc(build_spec(design, priors), SamplerSettings(sampler="pymc", seed=1))
    """
    t_start = time.perf_counter()
    import pymc as pm
    import xarray as xr

    from hierfit.engine.kernel.driver import posterior_dataset

    t0 = time.perf_counter()
    op = KernelLogp(spec)
    x0 = np.zeros(spec.n_dim)
    _evaluate(spec.kind, spec.init_centre, x0, op.ints, op.floats)  # compile or load the kernel here
    t1 = time.perf_counter()
    from hierfit.engine.quiet import quiet_pymc

    with pm.Model(), quiet_pymc():
        x = pm.Flat("x", shape=spec.n_dim)
        pm.Potential("kernel", op(x)[0])
        try:
            idata = pm.sample(draws=settings.draws, tune=settings.tune, chains=settings.chains,
                              random_seed=settings.seed, progressbar=settings.progressbar,
                              target_accept=settings.target_accept, compute_convergence_checks=False,
                              cores=settings.cores or min(settings.chains, 4),
                              initvals=[{"x": spec.initial_point(settings.seed + c)} for c in range(settings.chains)],
                              compile_kwargs={"mode": "FAST_COMPILE"})
        except KeyboardInterrupt:
            raise
        except Exception as err:  # noqa: BLE001
            raise SamplingError(f"PyMC's NUTS failed: {err}") from err
    t2 = time.perf_counter()
    draws = np.asarray(idata["posterior"]["x"].values)
    stats = idata["sample_stats"].to_dataset()
    tree = xr.DataTree.from_dict({"posterior": posterior_dataset(spec, list(draws)), "sample_stats": stats})
    return tree, {"import": t0 - t_start, "compile": t1 - t0, "sampling": t2 - t1, "kernel": "hierfit"}

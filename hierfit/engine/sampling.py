"""Stage 4 of the pipeline: the model -> posterior draws (an ``xarray.DataTree``).

Samplers: nutpie's NUTS (default) and PyMC's own NUTS.  nutpie evaluates the log
density with one of four kernels:

``"hierfit"``   hierfit's compiled kernel (:mod:`hierfit.engine.kernel`): written once in numba and
                cached on disk, so no model is ever compiled; the default for every model it handles
``"pytensor"``  PyTensor's numba kernel of the PyMC model, cached on disk per model structure
``"cfunc"``     nutpie's own wrapper of that kernel, compiled again in every process
``"jax"``       the PyMC model compiled by JAX (``pip install jax``; for GPUs and many chains)

``sample_model`` samples a PyMC model; :func:`hierfit.engine.kernel.driver.sample_spec` a kernel spec
with nutpie and :func:`hierfit.engine.kernel.pymc_nuts.sample_spec_pymc` with PyMC's NUTS
(``sampler="pymc"`` uses hierfit's kernel too, unless ``kernel="pytensor"``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from hierfit.arguments import check_cores, check_count, check_probability, check_seed
from hierfit.errors import ArgumentError, HierfitError, SamplingError

__all__ = ["SamplerSettings", "sample_design", "sample_model", "SAMPLERS"]

SAMPLERS = ("nutpie", "pymc")
KERNELS = ("auto", "hierfit", "pytensor", "cfunc", "jax")
#: When the hierfit kernel does not apply, "auto" uses "cfunc" above this many rows x group terms
#: (sampling then outweighs compiling) and "pytensor" below.
CFUNC_WORK = 200_000


@dataclass(frozen=True)
class SamplerSettings:
    """What to run: sampler, draws, tune, chains, seed, target_accept, progressbar, cores, kernel.

    ``ess_target`` and ``requested_draws`` record the run-length rule
    (:mod:`hierfit.engine.run_length`): ``draws`` is what ran, ``requested_draws`` what was
    asked for when the run was extended.

    Example
    -------
    >>> SamplerSettings(draws=500, chains=2, seed=1).draws
    500
    """

    sampler: str = "nutpie"
    draws: int = 1000
    tune: int = 1000
    chains: int = 4
    seed: int | None = None
    target_accept: float = 0.8
    progressbar: bool = True
    cores: int | None = None
    kernel: str = "auto"
    ess_target: float | None = None
    requested_draws: int | None = None

    def validate(self) -> "SamplerSettings":
        if self.sampler not in SAMPLERS:
            raise HierfitError(f"sampler must be one of {', '.join(SAMPLERS)}, got {self.sampler!r}")
        check_count("draws", self.draws)
        check_count("chains", self.chains, maximum=1024)
        check_count("tune", self.tune, minimum=0)
        check_probability("target_accept", self.target_accept)
        check_seed(self.seed)
        check_cores(self.cores)
        if self.ess_target is not None and (isinstance(self.ess_target, bool)
                                            or not isinstance(self.ess_target, (int, float, np.integer, np.floating))
                                            or not self.ess_target > 0):
            raise ArgumentError(f"ess_target must be a positive number or None, got {self.ess_target!r}")
        if self.kernel not in KERNELS:
            raise HierfitError(f"kernel must be one of {', '.join(KERNELS)}, got {self.kernel!r}")
        if self.sampler == "pymc" and self.kernel in ("cfunc", "jax"):
            raise HierfitError(f"kernel={self.kernel!r} is one of nutpie's; with sampler='pymc' use kernel='auto' "
                               "(hierfit's kernel) or 'pytensor' (the PyMC model's own graph)")
        return self


def kernel_spec(design, priors, par, collapsed: bool, settings: SamplerSettings):
    """hierfit's compiled-kernel program for this model, or None when another kernel is to be used."""
    if settings.kernel not in ("auto", "hierfit"):
        return None
    from hierfit.engine.kernel import KernelUnsupported, build_spec

    try:
        return build_spec(design, priors, par, collapsed=collapsed)
    except KernelUnsupported as err:
        if settings.kernel == "hierfit":
            raise HierfitError(f"kernel='hierfit' cannot evaluate this model: {err}; use kernel='pytensor'") from err
        return None


def sample_design(design, priors, par, collapsed: bool, settings: SamplerSettings):
    """Stages 3 and 4 for :func:`hierfit.fit`: write the model down and sample it.

    The compiled kernel's spec when the kernel applies (sampled by nutpie, or PyMC's NUTS
    with ``sampler="pymc"``), else the PyMC model (collapsed or full).  Returns
    (DataTree, timing with ``model``, ``import``, ``compile``, ``sampling`` seconds and the
    ``kernel`` used, the PyMC model or None).

    Example
    -------
    >>> # posterior, timing, model = sample_design(design, priors, par, False, SamplerSettings(seed=1))
    """
    t0 = time.perf_counter()
    spec = kernel_spec(design, priors, par, collapsed, settings)
    model = None
    if spec is not None:
        if settings.sampler == "pymc":
            from hierfit.engine.kernel.pymc_nuts import sample_spec_pymc as sample_spec
        else:
            from hierfit.engine.kernel.driver import sample_spec
        t1 = time.perf_counter()
        posterior, timing = sample_spec(spec, settings)
    else:
        if collapsed:
            from hierfit.engine.collapsed import build_collapsed_model

            model = build_collapsed_model(design, priors)
        else:
            from hierfit.engine.model import build_model

            model = build_model(design, priors, par)
        t1 = time.perf_counter()
        work = 0 if collapsed else design.nobs * max(1, len(design.all_blocks))
        posterior, timing = sample_model(model, settings, work)
    timing.pop("trace", None)
    return posterior, {"model": t1 - t0, **timing}, model


def sample_model(model, settings: SamplerSettings, work: int = 0):
    """Sample a PyMC model; returns (DataTree, timing dict with compile/sampling seconds).

    Example
    -------
    >>> import pymc as pm
    >>> with pm.Model() as m:
    ...     _ = pm.Normal("x")
    >>> dt, timing = sample_model(m, SamplerSettings(draws=50, tune=50, chains=1, seed=1, progressbar=False))
    >>> dt.posterior["x"].shape
    (1, 50)
    """
    settings = settings.validate()
    if settings.sampler == "nutpie":
        kernel = settings.kernel
        if kernel in ("auto", "hierfit"):
            kernel = "cfunc" if work > CFUNC_WORK else "pytensor"
        return _sample_nutpie(model, settings, kernel)
    return _sample_pymc(model, settings)


#: Sampler-internal variables that are not stored with the draws (they are re-expressed as r_<key>, cor_<key>).
INTERNAL_PREFIXES = ("z_", "gamma_", "L_")


def stored_variables(model) -> list[str]:
    """Names of the model variables kept in the posterior (all but the sampler-internal ones)."""
    names = [v.name for v in model.free_RVs + model.deterministics]
    return [n for n in names if not n.startswith(INTERNAL_PREFIXES)]


def pytensor_kernel(model):
    """A nutpie model whose log density and gradient are PyTensor's numba kernel, called directly.

    PyTensor caches that kernel on disk (keyed by the graph), so a model structure that was
    compiled once, in any process, loads in seconds; nutpie's own compiled wrapper would be
    rebuilt every time.  Draws are identical to those of :func:`nutpie.compile_pymc_model`'s
    model for the same seed.
    """
    from nutpie.compile_pymc import _make_functions, _prepare_dims_and_coords, _wrap_with_lock
    from nutpie.compiled_pyfunc import from_pyfunc
    from pymc.initial_point import make_initial_point_fn

    point_fn = _wrap_with_lock(make_initial_point_fn(model=model, default_strategy="support_point",
                                                     jitter_rvs=set(model.free_RVs), return_transformed=True))
    n_dim, _, logp_pt, expand_pt, initial_point_fn, shape_info, reparameterized = _make_functions(
        model, mode="NUMBA", compute_grad=True, join_expanded=False, pymc_initial_point_fn=point_fn,
        var_names=stored_variables(model))
    names, _, shapes = shape_info
    logp_shared = [v.get_value() for v in logp_pt.get_shared()]
    expand_shared = [v.get_value() for v in expand_pt.get_shared()]
    logp_jit, expand_jit = logp_pt.vm.jit_fn, expand_pt.vm.jit_fn

    def make_logp_func():
        def logp(x, **_):
            value, grad = logp_jit(x, *logp_shared)
            return float(value), grad

        return logp

    def make_expand_func(seed1, seed2, chain):
        def expand(x, **_):
            values = expand_jit(x, *expand_shared)
            return {n: np.asarray(v, dtype="float64").reshape(s) for n, v, s in zip(names, values, shapes)}

        return expand

    # numba compiles (or loads from its cache) on the first call: do it here, so it counts as compiling
    x0 = initial_point_fn(0)
    logp_jit(x0, *logp_shared)
    expand_jit(x0, *expand_shared)
    dims, coords = _prepare_dims_and_coords(model, shape_info, reparameterized)
    return from_pyfunc(ndim=n_dim, make_logp_fn=make_logp_func, make_expand_fn=make_expand_func,
                       make_initial_point_fn=initial_point_fn, expanded_dtypes=[np.dtype("float64")] * len(names),
                       expanded_shapes=shapes, expanded_names=names, dims=dims, coords=coords,
                       reparameterized_names=reparameterized)


def _sample_nutpie(model, s: SamplerSettings, kernel: str):
    t_start = time.perf_counter()
    import nutpie

    import pytensor
    from threadpoolctl import threadpool_limits

    t0 = time.perf_counter()
    try:
        # IEEE arithmetic (no fastmath): a cached and a freshly compiled kernel then give bit-identical
        # results, so a seed reproduces the same draws whatever the state of the compile cache.
        with pytensor.config.change_flags(numba__fastmath=False):
            if kernel == "pytensor":
                compiled = pytensor_kernel(model)
            elif kernel == "jax":
                compiled = _jax_kernel(model)
            else:
                compiled = nutpie.compile_pymc_model(model, backend="numba", var_names=stored_variables(model))
    except SamplingError:
        raise
    except Exception as err:  # noqa: BLE001 - report compile failures as ours
        raise SamplingError(f"could not compile the model for nutpie: {err}") from err
    t1 = time.perf_counter()
    kwargs = dict(draws=s.draws, tune=s.tune, chains=s.chains, seed=s.seed, progress_bar=s.progressbar,
                  target_accept=s.target_accept, save_warmup=False)
    if s.cores is not None:
        kwargs["cores"] = s.cores
    from hierfit.engine.kernel.driver import nutpie_errors

    with nutpie_errors(), threadpool_limits(limits=1, user_api="blas"):  # chains run in parallel already
        dt = nutpie.sample(compiled, **kwargs)
    t2 = time.perf_counter()
    return dt, {"import": t0 - t_start, "compile": t1 - t0, "sampling": t2 - t1, "kernel": kernel}


def _jax_kernel(model):
    """The PyMC model compiled by JAX for nutpie (log density and gradient both in JAX)."""
    import importlib.util

    if importlib.util.find_spec("jax") is None:
        raise SamplingError("kernel='jax' needs JAX: pip install jax (or jax[cuda12] for NVIDIA GPUs)")
    import nutpie

    return nutpie.compile_pymc_model(model, backend="jax", gradient_backend="jax", var_names=stored_variables(model))


def _sample_pymc(model, s: SamplerSettings):
    t_start = time.perf_counter()
    import pymc as pm

    t0 = time.perf_counter()
    from hierfit.engine.quiet import quiet_pymc

    try:
        with model, quiet_pymc():
            dt = pm.sample(draws=s.draws, tune=s.tune, chains=s.chains, random_seed=s.seed,
                           progressbar=s.progressbar, target_accept=s.target_accept,
                           compute_convergence_checks=False, cores=s.cores or min(s.chains, 4))
    except KeyboardInterrupt:
        raise
    except Exception as err:  # noqa: BLE001
        raise SamplingError(f"PyMC's NUTS failed: {err}") from err
    t1 = time.perf_counter()
    return dt, {"import": t0 - t_start, "compile": float("nan"), "sampling": t1 - t0}

"""Stage 4 of the pipeline: PyMC model -> posterior draws (an ``xarray.DataTree``).

Two backends: nutpie (default; compiles the model with numba, whose cache makes a
second fit of the same model structure fast) and PyMC's own NUTS.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from .errors import HierfitError, SamplingError

__all__ = ["SamplerSettings", "sample_model", "SAMPLERS"]

SAMPLERS = ("nutpie", "pymc")


@dataclass(frozen=True)
class SamplerSettings:
    """What to run: sampler, draws, tune, chains, seed, target_accept, progressbar, cores.

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

    def validate(self) -> "SamplerSettings":
        if self.sampler not in SAMPLERS:
            raise HierfitError(f"sampler must be one of {', '.join(SAMPLERS)}, got {self.sampler!r}")
        for name in ("draws", "chains"):
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or v < 1:
                raise HierfitError(f"{name} must be a positive integer, got {v!r}")
        if not isinstance(self.tune, (int, np.integer)) or self.tune < 0:
            raise HierfitError(f"tune must be a non-negative integer, got {self.tune!r}")
        if not 0 < self.target_accept < 1:
            raise HierfitError(f"target_accept must be between 0 and 1, got {self.target_accept!r}")
        if self.seed is not None and (not isinstance(self.seed, (int, np.integer)) or self.seed < 0):
            raise HierfitError(f"seed must be a non-negative integer or None, got {self.seed!r}")
        return self


def sample_model(model, settings: SamplerSettings):
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
        return _sample_nutpie(model, settings)
    return _sample_pymc(model, settings)


def _sample_nutpie(model, s: SamplerSettings):
    import nutpie

    import pytensor
    from threadpoolctl import threadpool_limits

    t0 = time.perf_counter()
    try:
        # IEEE arithmetic (no fastmath): a cached and a freshly compiled kernel then give bit-identical
        # results, so a seed reproduces the same draws whatever the state of the compile cache.
        with pytensor.config.change_flags(numba__fastmath=False):
            compiled = nutpie.compile_pymc_model(model, backend="numba")
    except Exception as err:  # noqa: BLE001 - report compile failures as ours
        raise SamplingError(f"could not compile the model for nutpie: {err}") from err
    t1 = time.perf_counter()
    kwargs = dict(draws=s.draws, tune=s.tune, chains=s.chains, seed=s.seed, progress_bar=s.progressbar,
                  target_accept=s.target_accept, save_warmup=False)
    if s.cores is not None:
        kwargs["cores"] = s.cores
    try:
        with threadpool_limits(limits=1, user_api="blas"):  # chains run in parallel; BLAS threads only add noise
            dt = nutpie.sample(compiled, **kwargs)
    except KeyboardInterrupt:
        raise
    except Exception as err:  # noqa: BLE001
        raise SamplingError(f"nutpie failed while sampling: {err}") from err
    t2 = time.perf_counter()
    return dt, {"compile": t1 - t0, "sampling": t2 - t1}


def _sample_pymc(model, s: SamplerSettings):
    import pymc as pm

    t0 = time.perf_counter()
    try:
        with model:
            dt = pm.sample(draws=s.draws, tune=s.tune, chains=s.chains, random_seed=s.seed,
                           progressbar=s.progressbar, target_accept=s.target_accept,
                           compute_convergence_checks=False, cores=s.cores or min(s.chains, 4))
    except KeyboardInterrupt:
        raise
    except Exception as err:  # noqa: BLE001
        raise SamplingError(f"PyMC's NUTS failed: {err}") from err
    t1 = time.perf_counter()
    return dt, {"compile": float("nan"), "sampling": t1 - t0}

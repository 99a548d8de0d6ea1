"""Running nutpie's NUTS (Rust) on the compiled kernel, and turning its trace into a DataTree.

nutpie's sampler calls the kernel's C entry points from its own threads, one chain per
core, without the Python interpreter in between.  Only nutpie's compiled extension is
loaded (nutpie's Python package would also import ArviZ's plotting stack, seconds of
import time a fit does not need); its trace is converted here to the same
``posterior``/``sample_stats`` groups ``nutpie.sample`` returns.
"""

from __future__ import annotations

import contextlib
import glob
import importlib.util
import os
import sys
import time

import numpy as np

from hierfit.errors import SamplingError
from hierfit.results.draws import index_coords, variable

__all__ = ["nutpie_lib", "nutpie_errors", "sample_spec"]


@contextlib.contextmanager
def nutpie_errors():
    """Report a failure inside nutpie (its Rust panics derive from BaseException) as a SamplingError.

    Example
    -------
    >>> try:
    ...     with nutpie_errors():
    ...         raise RuntimeError("no finite start")
    ... except SamplingError as err:
    ...     print(str(err).split(";")[0])
    nutpie failed while sampling: no finite start
    """
    try:
        yield
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as err:  # noqa: BLE001
        raise SamplingError(f"nutpie failed while sampling: {err}; try another seed, a higher target_accept, "
                            "or narrower priors") from err


def nutpie_lib():
    """nutpie's compiled extension module (``nutpie._lib``), without importing the nutpie package.

    Example
    -------
    >>> hasattr(nutpie_lib(), "PySampler")
    True
    """
    name = "nutpie._lib"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.find_spec("nutpie")
    if spec is None or not spec.submodule_search_locations:
        raise SamplingError("nutpie is not installed; install hierfit's dependencies (pip install hierfit)")
    found = glob.glob(os.path.join(spec.submodule_search_locations[0], "_lib*"))
    found = [f for f in found if f.endswith((".so", ".pyd"))]
    if not found:  # an unusual layout: let the package import it
        import nutpie

        return nutpie._lib
    lib_spec = importlib.util.spec_from_file_location(name, found[0])
    module = importlib.util.module_from_spec(lib_spec)
    lib_spec.loader.exec_module(module)
    sys.modules[name] = module
    return module


_NOTEBOOK_TEMPLATE = ("<p>Sampling {{ num_chains }} chains: {{ total_finished_draws }} / {{ total_draws }} draws, "
                      "{{ time_sampling }}</p>")


def _in_notebook() -> bool:
    ip = sys.modules.get("IPython")
    if ip is None:
        return False
    try:
        shell = ip.get_ipython()
    except Exception:  # noqa: BLE001
        return False
    return shell is not None and shell.__class__.__name__ == "ZMQInteractiveShell"


def _progress(lib, show: bool, cores: int):
    if not show:
        return lib.ProgressType.none()
    if _in_notebook():
        from IPython.display import HTML, display

        handle = display(HTML(""), display_id=True)

        def update(html):
            try:
                handle.update(HTML(html))
            except Exception:  # noqa: BLE001 - a display glitch must not stop sampling
                pass

        return lib.ProgressType.template_callback(250, _NOTEBOOK_TEMPLATE, cores, update)
    if not _is_terminal(sys.stderr):
        return lib.ProgressType.template_callback(250, _TEXT_TEMPLATE, cores, ProgressLines(sys.stderr))
    return lib.ProgressType.indicatif(250)


_TEXT_TEMPLATE = "{{ num_chains }} {{ total_finished_draws }} {{ total_draws }} {{ time_sampling }}"


def _is_terminal(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


class ProgressLines:
    """Progress for output that is not a terminal (a log file, CI, a pipe): a line at 0, 25, 50, 75 and 100 %.

    Example
    -------
    >>> import io
    >>> out = io.StringIO()
    >>> report = ProgressLines(out)
    >>> for done in (0, 300, 1000, 2000):
    ...     report(f"2 {done} 2000 1s")
    >>> print(out.getvalue(), end="")
    Sampling 2 chains: 0 / 2000 draws (0%), 1s
    Sampling 2 chains: 1000 / 2000 draws (50%), 1s
    Sampling 2 chains: 2000 / 2000 draws (100%), 1s
    """

    def __init__(self, stream):
        self.stream, self.next_step = stream, 0

    def __call__(self, text: str) -> None:
        try:
            chains, done, total, elapsed = text.split(" ", 3)
            percent = 100 * int(done) // max(int(total), 1)
        except ValueError:
            return
        if percent < self.next_step:
            return
        self.next_step = (percent // 25 + 1) * 25
        try:
            print(f"Sampling {chains} chains: {done} / {total} draws ({percent}%), {elapsed}", file=self.stream,
                  flush=True)
        except Exception:  # noqa: BLE001 - a closed stream must not stop sampling
            pass


def _column(batch, name):
    """One arrow column as numpy: (rows,) for scalars, (rows, size) for list columns."""
    import arro3.core as ac

    col = batch.column(name)
    if "List" in str(col.type):
        flat = ac.list_flatten(col).to_numpy()
        return flat.reshape(batch.num_rows, -1) if batch.num_rows else flat.reshape(0, 0)
    return col.to_numpy()


def _scalar_stat_columns(batch) -> list[str]:
    out = []
    for name in batch.column_names:
        col = batch.column(name)
        kind = str(col.type)
        if col.null_count == 0 and "List" not in kind and "Utf8" not in kind and name not in ("chain", "draw"):
            out.append(name)
    return out


#: the trace's one variable: each draw's unconstrained vector
RAW = "__unconstrained"


def posterior_dataset(spec, chains):
    """The posterior Dataset from each chain's unconstrained draws (an iterable of (draw, n_dim) arrays).

    Chains are turned into the posterior's variables one at a time, so only one chain's
    temporaries exist at once (the draws of big models are hundreds of megabytes).
    """
    import xarray as xr

    out: dict[str, np.ndarray] = {}
    n_chain = 0
    for c, x in enumerate(chains):
        values = spec.stored_draws(x)
        if not out:
            n_chain = len(chains)
            out = {v.name: np.empty((n_chain,) + values[v.name].shape) for v in spec.stored}
        for v in spec.stored:
            out[v.name][c] = values[v.name]
        del values
    n_draw = next(iter(out.values())).shape[1] if out else 0
    dims = dict.fromkeys(d for v in spec.stored for d in v.dims)  # in the order of the variables
    coords = {"chain": np.arange(n_chain), "draw": np.arange(n_draw),
              **{d: spec.coords[d] for d in dims if d in spec.coords}}
    return xr.Dataset({v.name: variable(("chain", "draw") + v.dims, out[v.name])
                       for v in spec.stored}, coords=index_coords(coords))


class _ChainDraws:
    """Each chain's post-warm-up unconstrained draws, read (and released) from nutpie's trace one at a time."""

    def __init__(self, draw_batches, kept, n_draw):
        self.batches, self.kept, self.n_draw = draw_batches, kept, n_draw

    def __len__(self):
        return len(self.batches)

    def __iter__(self):
        for c in range(len(self.batches)):
            x = _column(self.batches[c], RAW)[self.kept[c][:self.n_draw]]
            self.batches[c] = None  # the trace's memory goes back as soon as a chain is converted
            yield x


def trace_to_datatree(draw_batches, stat_batches, spec):
    """The post-warm-up draws and sampler statistics as ``posterior`` and ``sample_stats`` groups.

    The draws' arrow batches are released from ``draw_batches`` as they are converted.
    """
    import xarray as xr

    kept = []
    for stats in stat_batches:
        tuning = np.asarray(_column(stats, "tuning"), dtype=bool)
        kept.append(np.flatnonzero(~tuning))
    n_draw = min(len(k) for k in kept)
    posterior = posterior_dataset(spec, _ChainDraws(draw_batches, kept, n_draw))
    coords = {"chain": np.arange(len(kept)), "draw": np.arange(n_draw)}
    stats = {}
    for name in _scalar_stat_columns(stat_batches[0]):
        if name == "tuning":
            continue
        arr = np.stack([np.asarray(_column(s, name))[k[:n_draw]] for s, k in zip(stat_batches, kept)])
        stats[name] = variable(("chain", "draw"), arr)
    sample_stats = xr.Dataset(stats, coords=index_coords(coords))
    sample_stats.attrs["inference_library"] = "nutpie"
    return xr.DataTree.from_dict({"posterior": posterior, "sample_stats": sample_stats})


def sample_spec(spec, settings):
    """Sample a :class:`~hierfit.engine.kernel.spec.KernelSpec` with nutpie; returns (DataTree, timing dict).

    ``timing["import"]`` is the time to import numba and nutpie's extension (0 when
    already imported), ``timing["compile"]`` the time to load (or, the first time ever,
    compile) the kernel's machine code, ``timing["sampling"]`` the sampler's run.

    Example
    -------
    >>> # dt, timing = sample_spec(build_spec(design, priors), SamplerSettings(seed=1))
    """
    t0 = time.perf_counter()
    import numba  # noqa: F401 - timed as importing

    lib = nutpie_lib()
    from hierfit.engine.kernel import entry_point

    t_import = time.perf_counter()
    logp_address, expand_address = entry_point(spec.kind), entry_point("expand")
    t1 = time.perf_counter()
    ints = np.ascontiguousarray(spec.ints, dtype=np.int64)
    floats = np.ascontiguousarray(spec.floats, dtype=np.float64)
    user_data = np.array([ints.ctypes.data, ints.size, floats.ctypes.data, floats.size], dtype=np.int64)
    keep_alive = (ints, floats, user_data)
    logp_fn = lib.LogpFunc(logp_address, user_data.ctypes.data, keep_alive)
    expand_fn = lib.ExpandFunc(spec.n_dim, spec.n_dim, expand_address, user_data.ctypes.data, keep_alive)
    dim = RAW + "_dim"
    variables = lib.PyVariable.new_variables([RAW], ["float64"], [(spec.n_dim,)], {dim: spec.n_dim}, {RAW: (dim,)})
    model = lib.PyMcModel(logp_fn, expand_fn, variables, spec.n_dim, {dim: spec.n_dim},
                          {dim: [str(i) for i in range(spec.n_dim)]}, spec.initial_point, None)
    nuts = lib.PyNutsSettings.Diag(int(settings.seed))
    nuts.update(dict(num_tune=int(settings.tune), num_draws=int(settings.draws), num_chains=int(settings.chains),
                     target_accept=float(settings.target_accept)))
    cores = settings.cores or min(settings.chains, os.cpu_count() or 1)
    with nutpie_errors():
        sampler = lib.PySampler.from_pymc(nuts, cores, model, _progress(lib, settings.progressbar, cores), None, 250,
                                          lib.PyStorage.arrow())
        interrupted = False
        try:
            sampler.wait(None)
        except KeyboardInterrupt:  # Ctrl-C: keep the draws made so far
            sampler.abort()
            interrupted = True
        draws, stats = sampler.take_results().get_arrow_trace()
        del sampler
    t2 = time.perf_counter()
    tree = trace_to_datatree(draws, stats, spec)
    del draws, stats
    timing = {"import": t_import - t0, "compile": t1 - t_import, "sampling": t2 - t1,
              "trace": time.perf_counter() - t2, "kernel": "hierfit"}
    if interrupted:
        if tree["posterior"].sizes.get("draw", 0) == 0:
            raise KeyboardInterrupt("sampling was interrupted during warm-up: there are no draws to keep")
        timing["interrupted"] = True
    return tree, timing

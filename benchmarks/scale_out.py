"""Fitting from Parquet larger than memory through Dask: y ~ x + sex + (x | g), 10,000 levels, 10^7+ rows.

The script writes a synthetic Parquet data set in chunks (never the whole data in
memory), starts a dask.distributed LocalCluster of worker processes, and for each size
measures: one plain scan of the needed columns, the engine passes (metadata pass,
grouped sufficient-statistics pass, residual-quantile pass), the sampling time, the
total, the peak memory of the fitting process and of each worker, the minimum bulk ESS
and how many of the 95% intervals cover the truth.  ``--pandas N`` also fits N rows
the in-memory way (pandas.read_parquet + hierfit.fit) in a child process, for its
time and peak memory.

Usage:
  python benchmarks/scale_out.py --rows 1e7 --pandas 1e7            # writes benchmarks/results/scale_out.md
  python benchmarks/scale_out.py --rows 1e7 3e7 1e8 --data /tmp/hf_scale --keep
  python benchmarks/scale_out.py --rows 1e8 --append                 # add a size to the earlier results
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _revision import revision  # noqa: E402

FORMULA = "y ~ x + sex + (x | g)"
#: Fitted on four files by another client process before the timed fit (unless --cold-workers): the workers have
#: then imported hierfit, and the fitting process still loads everything itself.
WARM_FORMULA = "y ~ x + (1 | g)"
LEVELS = 10_000
TRUTH = {"b[(Intercept)]": 0.5, "b[x]": 0.8, "b[sexM]": -0.3, "sd_g[(Intercept)]": 0.6, "sd_g[x]": 0.3,
         "cor_g": 0.3, "sigma": 1.0}
CHUNK = 2_000_000


def _effects(seed: int = 7) -> np.ndarray:
    rng = np.random.default_rng(seed)
    sd = np.array([TRUTH["sd_g[(Intercept)]"], TRUTH["sd_g[x]"]])
    cov = np.outer(sd, sd) * np.array([[1, TRUTH["cor_g"]], [TRUTH["cor_g"], 1]])
    return rng.multivariate_normal(np.zeros(2), cov, size=LEVELS)


def write_data(folder: Path, rows: int, seed: int = 11) -> float:
    """Write ``rows`` rows as Parquet files of CHUNK rows (float32/int32, sex dictionary-encoded); seconds taken."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if folder.exists() and (folder / "_done").exists():
        return 0.0
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    t0 = time.perf_counter()
    u = _effects()
    rng = np.random.default_rng(seed)
    for i, start in enumerate(range(0, rows, CHUNK)):
        n = min(CHUNK, rows - start)
        g = rng.integers(0, LEVELS, n).astype(np.int32)
        x = rng.normal(size=n).astype(np.float32)
        male = rng.random(n) < 0.5
        mu = TRUTH["b[(Intercept)]"] + TRUTH["b[x]"] * x + TRUTH["b[sexM]"] * male + u[g, 0] + u[g, 1] * x
        y = (mu + rng.normal(0, TRUTH["sigma"], n)).astype(np.float32)
        sex = pa.DictionaryArray.from_arrays(pa.array(male.astype(np.int8)), pa.array(["F", "M"]))
        pq.write_table(pa.table({"y": y, "x": x, "sex": sex, "g": g}), folder / f"part-{i:04d}.parquet",
                       row_group_size=CHUNK)
    (folder / "_done").write_text(str(rows))
    return time.perf_counter() - t0


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _coverage(fit) -> tuple[int, int]:
    fe = fit.fixef()
    vc = fit.VarCorr()
    lo_hi = {f"b[{k}]": (fe.loc[k].iloc[2], fe.loc[k].iloc[3]) for k in fe.index}
    draws = fit.draws
    for name, arr in (("sd_g[(Intercept)]", draws["sd_g"].sel(g__coef="(Intercept)")),
                      ("sd_g[x]", draws["sd_g"].sel(g__coef="x")),
                      ("cor_g", draws["cor_g"].isel(g__coef=0, g__coef_bis=1)), ("sigma", draws["sigma"])):
        v = np.asarray(arr).ravel()
        lo_hi[name] = tuple(np.quantile(v, [0.025, 0.975]))
    del vc
    hits = sum(lo <= TRUTH[k] <= hi for k, (lo, hi) in lo_hi.items())
    return hits, len(lo_hi)


def run_engine(folder: Path, rows: int, workers: int, draws: int, tune: int, chains: int, cold: bool = False) -> dict:
    import dask.dataframe as dd
    from distributed import Client, LocalCluster

    import hierfit

    out = {"rows": rows, "workers": workers}
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0",
                      silence_logs=40) as cluster, Client(cluster) as client:
        path = str(folder / "*.parquet")
        cpu = lambda: (lambda r: r.ru_utime + r.ru_stime)(resource.getrusage(resource.RUSAGE_SELF))  # noqa: E731
        def scan(source):
            dd.read_parquet(source, columns=["y", "x", "sex", "g"]).map_partitions(
                lambda p: p[["y", "x"]].sum().to_frame().T + p["g"].sum() + (p["sex"] == "M").sum()).sum().compute()

        client.run(lambda: __import__("pyarrow.parquet") and None)
        scan(sorted(str(f) for f in folder.glob("*.parquet"))[:2])  # the workers import their readers first
        scans = []
        for _ in range(3):  # the reference is the fastest of three scans (one scan varied 3-23 s on this machine)
            scan0 = client.run(cpu)
            t0 = time.perf_counter()
            scan(path)
            scans.append(time.perf_counter() - t0)
            cpu0 = client.run(cpu)
            if scans[-1] == min(scans):
                out["scan_cpu_s"] = sum(cpu0[w] - scan0[w] for w in cpu0)  # the workers' CPU seconds in that scan
        out["scan_s"], out["scans_s"] = min(scans), scans
        if not cold:  # the workers import hierfit and load its compiled pass functions, as for a user's second model
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-c", _WARM_UP, cluster.scheduler_address, WARM_FORMULA,
                            *sorted(str(f) for f in folder.glob("*.parquet"))[:4]], check=True, capture_output=True,
                           env=os.environ.copy())
            out["warm_up_fit_s"] = time.perf_counter() - t0
            cpu0 = client.run(cpu)  # the workers' CPU seconds of the timed fit only
        t0 = time.perf_counter()
        fit = hierfit.fit(FORMULA, path, chains=chains, draws=draws, tune=tune, seed=1, progressbar=False,
                          cores=min(chains, 2), warn=False)
        out["total_s"] = time.perf_counter() - t0
        s = fit.design.summary
        out["metadata_pass_s"] = s.timing["metadata_pass"]
        out["stats_pass_s"] = s.timing["stats_pass"]
        out["residual_pass_s"] = s.timing.get("residual_pass", float("nan"))
        out["sampling_s"] = fit.timing.get("sampling", float("nan"))
        out["npartitions"] = s.npartitions
        out["nobs"] = fit.nobs
        out["peak_fit_mb"] = _peak_mb()
        worker_peaks = client.run(lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
        out["peak_worker_mb"] = max(worker_peaks.values())
        cpu1 = client.run(cpu)
        out["worker_cpu_s"] = sum(cpu1[w] - cpu0[w] for w in cpu1)  # CPU seconds the workers spent on the fit
        diag = fit.diagnostics
        out["min_bulk_ess"] = float(diag["Bulk_ESS"].min())
        out["max_rhat"] = float(diag["Rhat"].max())
        out["covered"], out["intervals"] = _coverage(fit)
        out["fixef"] = fit.fixef()["Estimate"].round(4).to_dict()
        out["timing"] = {k: round(v, 2) for k, v in fit.timing.items()}
        out["load_avg"] = os.getloadavg()[0]  # other jobs on the machine during the last minute
    return out


def run_engine_child(folder: Path, rows: int, args) -> dict:
    """:func:`run_engine` in a fresh Python process: its peak memory is that of this size alone."""
    cmd = [sys.executable, __file__, "--child", str(folder), "--rows", str(rows), "--workers", str(args.workers),
           "--draws", str(args.draws), "--tune", str(args.tune), "--chains", str(args.chains)] + \
        (["--cold-workers"] if args.cold_workers else [])
    proc = subprocess.run(cmd, capture_output=True, text=True, env=os.environ.copy())
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode or not lines:
        raise RuntimeError(f"the run at {rows} rows failed:\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT "):])


_PANDAS_CHILD = r"""
import json, resource, sys, time
import pandas as pd, hierfit
t0 = time.perf_counter()
df = pd.read_parquet(sys.argv[1])
t1 = time.perf_counter()
fit = hierfit.fit(sys.argv[2], df, chains=int(sys.argv[3]), draws=int(sys.argv[4]), tune=int(sys.argv[5]), seed=1,
                  progressbar=False, cores=2, warn=False)
t2 = time.perf_counter()
print(json.dumps({"read_s": t1 - t0, "fit_s": t2 - t1, "design_s": fit.timing.get("design"),
                  "sampling_s": fit.timing.get("sampling"),
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "min_bulk_ess": float(fit.diagnostics["Bulk_ESS"].min())}))
"""


def run_pandas(folder: Path, rows: int, draws: int, tune: int, chains: int, timeout: int) -> dict:
    proc = subprocess.run([sys.executable, "-c", _PANDAS_CHILD, str(folder), FORMULA, str(chains), str(draws),
                           str(tune)], capture_output=True, text=True, timeout=timeout, env=os.environ.copy())
    if proc.returncode:
        return {"rows": rows, "error": proc.stderr.strip().splitlines()[-1] if proc.stderr else "failed"}
    return {"rows": rows, **json.loads(proc.stdout.strip().splitlines()[-1])}


_WARM_UP = r"""
import contextlib, sys, hierfit
from distributed import Client
# argv: a scheduler's address ("-": none), the formula, the files
with Client(sys.argv[1]) if sys.argv[1] != "-" else contextlib.nullcontext():
    hierfit.fit(sys.argv[2], sys.argv[3:], chains=1, draws=20, tune=20, seed=1, progressbar=False, warn=False)
"""


def warm_up(folder: Path) -> float:
    """Fit the model once on one file in another process, so that the kernel's on-disk cache is warm.

    The compiled kernel is cached per user (compiling it is a one-off cost of a new installation,
    20 s on this machine); the timed runs then load it from the cache, as every later fit does.
    """
    t0 = time.perf_counter()
    first = sorted(folder.glob("*.parquet"))[0]
    subprocess.run([sys.executable, "-c", _WARM_UP, "-", FORMULA, str(first)], check=True, capture_output=True,
                   env=os.environ.copy())
    return time.perf_counter() - t0


def report(engine: list[dict], pandas_runs: list[dict], write_s: dict, args) -> str:
    lines = ["# Scale-out: fitting from Parquet through Dask", "",
             f"`{FORMULA}`, {LEVELS:,} levels of g, synthetic Parquet (float32 y/x, int32 g, dictionary sex) "
             f"written in chunks of {CHUNK:,} rows (one partition each).  dask.distributed LocalCluster with "
             f"{args.workers} worker processes x 1 thread; {args.chains} chains x {args.draws} draws "
             f"(+{args.tune} warm-up).  The compiled kernel's cache is warm (one fit on one file in another "
             "process first; each timed run still loads the kernel from it); the workers read two files before "
             "the timed scans, so that they time the read, not their imports; the scan is the fastest of three.  "
             + ("The workers are cold: the timed fit is the cluster's first.  " if args.cold_workers else
                f"Before the timed fit, another client process fits `{WARM_FORMULA}` on four files on the same "
                "cluster, so that the workers time the passes, not their imports of hierfit (`--cold-workers` times "
                "a fresh cluster's first fit); the fitting process itself starts cold and loads its kernel.  ")
             + "Machine: 2 CPU cores shared with other jobs, so times are upper bounds.  "
             f"hierfit {revision()}.", "",
             "| rows | scan of the needed columns (s) | metadata pass (s) | statistics pass (s) | residual pass (s) "
             "| sampling (s) | total fit (s) | total / (scan + sampling) | peak memory, fitting process (MB) "
             "| peak memory per worker (MB) | min bulk ESS | max R-hat | truth covered | load average |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in engine:
        ratio = r["total_s"] / (r["scan_s"] + r["sampling_s"])
        lines.append(f"| {r['rows']:.0e} | {r['scan_s']:.1f} | {r['metadata_pass_s']:.1f} | {r['stats_pass_s']:.1f} "
                     f"| {r['residual_pass_s']:.1f} | {r['sampling_s']:.1f} | {r['total_s']:.1f} | {ratio:.2f} "
                     f"| {r['peak_fit_mb']:.0f} | {r['peak_worker_mb']:.0f} | {r['min_bulk_ess']:.0f} "
                     f"| {r['max_rhat']:.3f} | {r['covered']}/{r['intervals']} | {r.get('load_avg', float('nan')):.1f} |")
    if engine:
        r = engine[-1]
        per_row = (r["metadata_pass_s"] + r["stats_pass_s"] + r["residual_pass_s"]) / r["rows"] * args.workers
        lines += ["", f"Engine cost per row and worker core at {r['rows']:.0e} rows (three passes), from the wall "
                  f"clock: {per_row * 1e9:.0f} ns, i.e. {per_row * 1e9 / 60:.0f} minutes per 10^9 rows per worker "
                  "core on this shared machine (divide by the number of cores of a cluster)."]
        if "worker_cpu_s" in r:
            cpu_row = r["worker_cpu_s"] / r["rows"]
            lines += [f"From the CPU time the workers actually got: {cpu_row * 1e9:.0f} ns per row (all passes), "
                      f"i.e. {cpu_row * 1e9 / 60:.0f} minutes of one core per 10^9 rows."]
        if "scan_cpu_s" in r:
            lines += ["", "Worker CPU seconds (not disturbed by other jobs' load): "
                      + "; ".join(f"{x['rows']:.0e} rows: scan {x['scan_cpu_s']:.1f} s, the fit's passes "
                                  f"{x['worker_cpu_s']:.1f} s ({x['worker_cpu_s'] / x['scan_cpu_s']:.1f} scans)"
                                  for x in engine if "scan_cpu_s" in x) + "."]
        lines += ["",
                  "Posterior means at the largest size: " + ", ".join(f"{k} {v}" for k, v in r["fixef"].items())
                  + f" (truth: 0.5, 0.8, -0.3)."]
    if pandas_runs:
        lines += ["", "## In-memory pandas path (pandas.read_parquet + hierfit.fit, one process)", "",
                  "| rows | read (s) | fit (s) | of which design (s) | sampling (s) | peak memory (MB) | min bulk ESS |",
                  "|---:|---:|---:|---:|---:|---:|---:|"]
        for r in pandas_runs:
            if "error" in r:
                lines.append(f"| {r['rows']:.0e} | failed: {r['error']} | | | | | |")
            else:
                lines.append(f"| {r['rows']:.0e} | {r['read_s']:.1f} | {r['fit_s']:.1f} | {r['design_s']:.1f} "
                             f"| {r['sampling_s']:.1f} | {r['peak_mb']:.0f} | {r['min_bulk_ess']:.0f} |")
    lines += ["", "Writing the data: " + ", ".join(f"{k:.0e} rows {v:.0f} s" for k, v in write_s.items() if v), ""]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=float, nargs="+", default=[1e7])
    ap.add_argument("--pandas", type=float, nargs="*", default=[])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--chains", type=int, default=4)
    ap.add_argument("--draws", type=int, default=500)
    ap.add_argument("--tune", type=int, default=500)
    ap.add_argument("--data", default="/tmp/hierfit_scale_out")
    ap.add_argument("--keep", action="store_true", help="keep the Parquet files")
    ap.add_argument("--cold-workers", action="store_true",
                    help="time the first fit of a fresh cluster (no warm-up fit of another model on four files)")
    ap.add_argument("--append", action="store_true", help="add to the results of earlier runs (results/*.json)")
    ap.add_argument("--out", default=str(HERE / "results" / "scale_out.md"))
    ap.add_argument("--child", help=argparse.SUPPRESS)  # one size in this process: print its JSON
    args = ap.parse_args()
    if args.child:
        r = run_engine(Path(args.child), int(args.rows[0]), args.workers, args.draws, args.tune, args.chains,
                       cold=args.cold_workers)
        print("RESULT " + json.dumps(r, default=float), flush=True)
        return
    engine, pandas_runs, write_s = [], [], {}
    store = Path(args.out).with_suffix(".json")
    if args.append and store.exists():
        saved = json.loads(store.read_text())
        engine, pandas_runs = saved["engine"], saved["pandas"]
    try:
        for rows in map(int, args.rows):
            folder = Path(args.data) / f"rows_{rows}"
            write_s[rows] = write_data(folder, rows)
            print(f"warm-up fit (kernel cache) {warm_up(folder):.1f} s", flush=True)
            r = run_engine_child(folder, rows, args)
            print(json.dumps(r, default=float), flush=True)
            engine.append(r)
            if rows in map(int, args.pandas):
                p = run_pandas(folder, rows, args.draws, args.tune, args.chains, timeout=3600)
                print(json.dumps(p, default=float), flush=True)
                pandas_runs.append(p)
            Path(args.out).write_text(report(engine, pandas_runs, write_s, args))
            store.write_text(json.dumps({"engine": engine, "pandas": pandas_runs}, indent=1, default=float))
    finally:
        if not args.keep:
            shutil.rmtree(args.data, ignore_errors=True)
    print(Path(args.out).read_text())


if __name__ == "__main__":
    main()

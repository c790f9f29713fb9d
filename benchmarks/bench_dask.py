"""Dask benchmarks: ours against dask-ml, against ourselves in memory, and out of core.

``compare`` (default n=2e6, d=50): the same data, persisted in a 2-worker
LocalCluster (one thread each), fitted by the maximum-likelihood Newton solvers
of problogreg (``MAPLogisticRegression(prior_scale=None,
intercept_prior_scale=None)``) and dask-ml (``LogisticRegression(solver="newton")``,
which is unpenalised), and by problogreg on the same rows as numpy arrays. The
best of ``--repeats`` runs each; the largest coefficient difference shows both
reach the same optimum. Reported with ours: its passes over the data (the
validation pass, which also draws the warm-start sample, the gradient-only pass of
the first step, which takes the sample's Hessian, and the Newton passes)
and the time of each phase; and the load average before and after.

``scale`` (default n=5e7 and 1.25e7, d=50, float32, ~10 and 2.5 GB): rows are
written to disk in chunks (never all in memory), then fitted from disk by a
2-worker LocalCluster with ``memory_limit`` per worker (default 2 GB). The format
is Zarr (default: chunks of ``--chunk-rows`` rows by all columns, opened by
``problogreg.open_zarr``, or with ``--zarr-reader dask`` by ``dask.array.from_zarr``) or Parquet
(``--format parquet``: one file of ``--chunk-rows`` rows per chunk, opened as the
``problogreg fit --parquet`` command opens it). Both are written without a codec
(decompression would cost more CPU than the page cache or disk saves). Reported:
time per pass over the data (one per Newton iteration with the Hessian, the
validation pass, and the first step's gradient-only pass apart),
the workers' peak resident memory (sampled every 0.2 s), and the rows per second
of a pass against the machine's BLAS throughput for the weighted Gram matrix of
in-memory float64 rows (measured just before and just after each fit, and averaged)
and against a read-only pass (``X.sum(axis=0)``: reading every chunk and a trivial
reduction), and the load
average. The store is synced to disk before the fit; it is deleted afterwards.
The workers run in the environment the benchmark was started in (``--worker-env
NAME=VALUE`` adds to it, e.g. to measure an allocator setting).

Run from the repository root:
    python benchmarks/bench_dask.py compare
    python benchmarks/bench_dask.py scale --dir /some/scratch/dir
dask-ml is needed for ``compare`` only (``pip install dask-ml``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path

import numpy as np


def simulate_block(block_id: int, rows: int, d: int, dtype=np.float64):
    """Rows of one block: standard normal features and logistic labels, seeded by block."""
    rng = np.random.default_rng([7, block_id])
    X = rng.standard_normal((rows, d), dtype=np.float32 if dtype == np.float32 else np.float64)
    beta = np.linspace(-1.0, 1.0, d) / np.sqrt(d) * 2.0
    eta = 0.25 + X.astype(np.float64) @ beta
    y = (rng.random(rows) < 1.0 / (1.0 + np.exp(-eta))).astype(np.int8)
    return X.astype(dtype, copy=False), y


def simulated(n: int, d: int, chunk_rows: int, dtype=np.float64):
    """Lazy Dask arrays X (n, d) and y (n,), generated block by block."""
    import dask
    import dask.array as da

    sizes = [min(chunk_rows, n - start) for start in range(0, n, chunk_rows)]
    make = dask.delayed(simulate_block, nout=2)
    pieces = [make(b, rows, d, dtype) for b, rows in enumerate(sizes)]
    X = da.concatenate(
        [da.from_delayed(p[0], (r, d), dtype) for p, r in zip(pieces, sizes, strict=True)]
    )
    y = da.concatenate(
        [da.from_delayed(p[1], (r,), np.int8) for p, r in zip(pieces, sizes, strict=True)]
    )
    return X, y


def local_cluster(memory_limit="auto", worker_env: dict | None = None):
    """A 2-worker LocalCluster, one thread each; ``worker_env`` is set in the workers'
    environment before they start (Dask's ``distributed.nanny.pre-spawn-environ``:
    allocator settings such as ``GLIBC_TUNABLES`` are read when a process starts, so
    ``LocalCluster(env=...)``, applied after, would not reach them)."""
    import dask
    from distributed import Client, LocalCluster

    key = "distributed.nanny.pre-spawn-environ"
    environ = {**dask.config.get(key, {}), **(worker_env or {})}
    with dask.config.set({key: environ}):
        cluster = LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            memory_limit=memory_limit,
            dashboard_address=":0",
        )
    return cluster, Client(cluster)


class PassLog:
    """Records the duration of every pass over the blocks of a fit: the validation pass,
    and each pass of the blocked likelihood (``_pass``), as "Newton" when it computed the
    Hessian, else "gradient" (the first, whose step takes the sample's Hessian)."""

    def __init__(self):
        from problogreg.core import blocked
        from problogreg.models import _mode

        self.passes: list[tuple[str, float]] = []
        self._patches = [
            (
                blocked.BlockedLikelihood,
                "_pass",
                lambda likelihood, theta, want_hessian: "Newton" if want_hessian else "gradient",
            ),
            (_mode, "validate_blocked_fit_data", "validation"),
        ]

    def __enter__(self):
        self._originals = []
        for owner, name, kind in self._patches:
            original = getattr(owner, name)
            self._originals.append((owner, name, original))
            setattr(owner, name, self._timed(original, kind))
        return self

    def _timed(self, function, kind):
        def run(*args, **kwargs):
            start = time.perf_counter()
            result = function(*args, **kwargs)
            label = kind(*args, **kwargs) if callable(kind) else kind
            self.passes.append((label, time.perf_counter() - start))
            return result

        return run

    def __exit__(self, *exc):
        for owner, name, original in self._originals:
            setattr(owner, name, original)

    def seconds(self, kind: str) -> list[float]:
        return [seconds for k, seconds in self.passes if k == kind]


def load_average() -> str:
    return "{:.1f} / {:.1f} / {:.1f}".format(*os.getloadavg())


def settled(client, tasks: int) -> None:
    """Wait until the scheduler holds only ``tasks`` tasks (the persisted data), so that a
    repeated fit cannot reuse results of the last one (same inputs, same task keys)."""
    count = client.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.tasks))
    while count > tasks:
        time.sleep(0.05)
        count = client.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.tasks))


def timed(function, repeats: int, before=lambda: None):
    times, result = [], None
    for _ in range(repeats):
        before()
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    return min(times), result


def run_compare(n: int, d: int, repeats: int, chunk_rows: int) -> None:
    import dask
    from dask_ml.linear_model import LogisticRegression as DaskMLLogisticRegression

    from problogreg import MAPLogisticRegression

    print(f"load average (1/5/15 min) before: {load_average()}")
    cluster, client = local_cluster()
    try:
        X, y = simulated(n, d, chunk_rows)
        X, y = client.persist([X, y])
        from distributed import wait

        wait([X, y])
        # Imports on the workers happen before the timing, for both libraries.
        client.run(lambda: [__import__(m) for m in ("problogreg", "dask_ml.linear_model")])
        print(f"compare: n={n}, d={d}, {X.numblocks[0]} blocks, persisted in 2 workers")
        tasks = client.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.tasks))

        log = PassLog()

        def ours():
            settled(client, tasks)
            log.passes.clear()
            with log:
                start = time.perf_counter()
                fit = MAPLogisticRegression(prior_scale=None, intercept_prior_scale=None).fit(X, y)
                return fit, time.perf_counter() - start, list(log.passes)

        def theirs():
            return DaskMLLogisticRegression(solver="newton").fit(X, y)

        runs = [ours() for _ in range(repeats)]
        ours_fit, t_ours, passes = min(runs, key=lambda run: run[1])
        validation = sum(seconds for kind, seconds in passes if kind == "validation")
        solver = [(kind, seconds) for kind, seconds in passes if kind != "validation"]
        solver_seconds = sum(seconds for _, seconds in solver)
        print(
            f"  problogreg on Dask: {t_ours:.2f} s (runs: "
            f"{', '.join(f'{run[1]:.2f}' for run in runs)}); {1 + len(solver)} passes: "
            f"validation and sample {validation:.2f} s, {len(solver)} solver passes "
            f"({ours_fit.n_iter_} iterations) {solver_seconds:.2f} s "
            f"[{', '.join(f'{kind} {t:.2f}' for kind, t in solver)}], rest (client: sample "
            f"fit, solves) {t_ours - validation - solver_seconds:.2f} s"
        )
        t_theirs, theirs_fit = timed(theirs, repeats, lambda: settled(client, tasks))
        print(f"  dask-ml newton:     {t_theirs:.2f} s")
        X_memory, y_memory = dask.compute(X, y)
    finally:
        client.close()
        cluster.close()

    def in_memory():
        return MAPLogisticRegression(prior_scale=None, intercept_prior_scale=None).fit(
            X_memory, y_memory
        )

    t_memory, memory_fit = timed(in_memory, repeats)
    print(f"  problogreg in memory (numpy): {t_memory:.2f} s")
    gap = np.max(np.abs(ours_fit.coef_.ravel() - theirs_fit.coef_.ravel()))
    gap_memory = np.max(np.abs(ours_fit.coef_ - memory_fit.coef_))
    print(
        f"  ratios: ours/dask-ml = {t_ours / t_theirs:.2f} (target <= 0.3), "
        f"ours Dask/in memory = {t_ours / t_memory:.2f} (target <= 1.5)"
    )
    print(
        f"  max |coef difference|: vs dask-ml {gap:.1e}, vs in memory {gap_memory:.1e} "
        f"(largest |coef| {np.max(np.abs(memory_fit.coef_)):.2f})"
    )
    print(f"load average (1/5/15 min) after: {load_average()}")


def write_zarr(path: Path, n: int, d: int, chunk_rows: int) -> None:
    """n float32 rows (and int8 labels) to a Zarr store, one chunk at a time."""
    import dask.array as da

    X, y = simulated(n, d, chunk_rows, np.float32)
    da.to_zarr(X, str(path / "X"), compressors=None, overwrite=True)
    da.to_zarr(y, str(path / "y"), compressors=None, overwrite=True)


def write_parquet(path: Path, n: int, d: int, chunk_rows: int) -> None:
    """n float32 rows (columns x0, x1, ...) and int8 labels (column y) to a directory of
    Parquet files, one file of ``chunk_rows`` rows at a time, in parallel."""
    import dask
    import pyarrow as pa
    import pyarrow.parquet as pq

    def write(block_id: int, rows: int) -> None:
        X, y = simulate_block(block_id, rows, d, np.float32)
        columns = {f"x{j}": X[:, j] for j in range(d)} | {"y": y}
        pq.write_table(
            pa.table(columns),
            path / f"part-{block_id:05d}.parquet",
            compression="none",
            row_group_size=rows,
        )

    path.mkdir(parents=True, exist_ok=True)
    sizes = [min(chunk_rows, n - start) for start in range(0, n, chunk_rows)]
    dask.compute(*[dask.delayed(write)(b, rows) for b, rows in enumerate(sizes)])


def open_store(path: Path, data_format: str, zarr_reader: str = "problogreg"):
    """Lazy X and y of a store written by :func:`write_parquet` or :func:`write_zarr`;
    Zarr arrays by ``problogreg.open_zarr`` or by ``dask.array.from_zarr(path)``."""
    if data_format == "parquet":
        from problogreg.cli import read_parquet

        return read_parquet(str(path), "y")
    if zarr_reader == "dask":
        import dask.array as da

        return da.from_zarr(str(path / "X")), da.from_zarr(str(path / "y"))
    from problogreg import open_zarr

    return open_zarr(path / "X"), open_zarr(path / "y")


class PeakMemory:
    """Samples each worker's resident memory in a background thread; keeps the maxima."""

    def __init__(self, client, interval=0.2):
        self.client, self.interval = client, interval
        self.peak = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        import psutil

        def rss():
            return psutil.Process().memory_info().rss

        while not self._stop.is_set():
            for worker, value in self.client.run(rss).items():
                self.peak[worker] = max(self.peak.get(worker, 0), value)
            self._stop.wait(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def gram_throughput(d: int, rows: int = 1_000_000) -> float:
    """Rows per second of the weighted Gram [1, X]^T diag(c) [1, X] (BLAS syrk, float64
    rows in memory): the single-machine reference for one pass. The better of BLAS on
    all cores and one single-threaded BLAS per core on its share of the rows (as the
    workers run), so that the reference is the stronger of the two."""
    from concurrent.futures import ThreadPoolExecutor

    from threadpoolctl import threadpool_limits

    from problogreg.core.numerics import weighted_gram

    rng = np.random.default_rng(0)
    X, c = rng.standard_normal((rows, d)), rng.random(rows)
    weighted_gram(X, c, intercept=True)
    all_cores, _ = timed(lambda: weighted_gram(X, c, intercept=True), 3)
    cores = os.cpu_count() or 1
    parts = [(np.ascontiguousarray(X[h]), c[h]) for h in np.array_split(np.arange(rows), cores)]

    def threaded():
        with ThreadPoolExecutor(cores) as pool:
            return list(pool.map(lambda p: weighted_gram(*p, intercept=True), parts))

    with threadpool_limits(1, "blas"):
        per_core, _ = timed(threaded, 3)
    return rows / min(all_cores, per_core)


def run_scale(
    sizes: list[int],
    d: int,
    chunk_rows: int,
    memory_limit: str,
    directory,
    data_format: str,
    worker_env: dict,
    zarr_reader: str,
) -> None:
    from problogreg import MAPLogisticRegression

    print(f"load average (1/5/15 min) before: {load_average()}")
    print(
        f"scale: d={d}, float32 {data_format} (uncompressed), chunks of {chunk_rows} rows, "
        f"2 workers x {memory_limit}, worker environment additions: {worker_env or 'none'}"
        + (f", Zarr read by {zarr_reader}" if data_format == "zarr" else "")
    )
    for n in sizes:
        store = Path(tempfile.mkdtemp(prefix="bench-dask-", dir=directory))
        try:
            start = time.perf_counter()
            writer = write_parquet if data_format == "parquet" else write_zarr
            writer(store, n, d, chunk_rows)
            # Written back to disk before the fit, so that the fit does not compete with
            # the flushing of dirty pages (the store may still be read from the page cache).
            os.sync()
            size = sum(f.stat().st_size for f in store.rglob("*") if f.is_file())
            print(
                f"  n={n}: wrote {size / 1e9:.1f} GB in {time.perf_counter() - start:.0f} s; "
                f"fitting from disk (load average {load_average()})"
            )
            # The machine's speed drifts within minutes, so the reference is taken just
            # before and just after the fit (the workers stopped), and averaged.
            before = gram_throughput(d)
            cluster, client = local_cluster(memory_limit, worker_env)
            try:
                X, y = open_store(store, data_format, zarr_reader)
                client.run(lambda: __import__("problogreg"))
                with PeakMemory(client) as memory, PassLog() as log:
                    start = time.perf_counter()
                    model = MAPLogisticRegression().fit(X, y)
                    elapsed = time.perf_counter() - start
                # The floor of any pass: reading every chunk and one trivial reduction.
                read_only, _ = timed(X.sum(axis=0).compute, 2)
            finally:
                client.close()
                cluster.close()
            after = gram_throughput(d)
            reference = (before + after) / 2
            print(
                f"    single-machine BLAS weighted Gram (float64): {before / 1e6:.2f} M rows/s "
                f"before the fit, {after / 1e6:.2f} after; their mean is the reference"
            )
            peak = max(memory.peak.values())
            newton, gradient = log.seconds("Newton"), log.seconds("gradient")
            validation = sum(log.seconds("validation"))
            print(
                f"    fit {elapsed:.0f} s, {1 + len(gradient) + len(newton)} passes (validation "
                f"and sample {validation:.0f} s, {len(gradient)} gradient-only "
                f"{sum(gradient):.0f} s, {len(newton)} Newton passes with the Hessian, "
                f"{model.n_iter_} iterations), "
                f"converged={model.converged_}; peak worker memory {peak / 1e9:.2f} GB "
                f"(limit {memory_limit}); load average after {load_average()}"
            )
            for kind, times in (("validation", [validation]), ("Newton", newton)):
                per_pass = float(np.median(times))
                print(
                    f"    {kind} pass: median {per_pass:.1f} s = {n / per_pass / 1e6:.2f} M rows/s "
                    f"({n / per_pass / reference:.0%} of the BLAS Gram, "
                    f"{read_only / per_pass:.0%} of the read-only pass's rate)"
                    + (f" [{', '.join(f'{t:.1f}' for t in times)}]" if len(times) > 1 else "")
                )
            print(
                f"    read-only pass (X.sum(axis=0), best of 2): {read_only:.1f} s = "
                f"{n / read_only / 1e6:.2f} M rows/s"
            )
        finally:
            shutil.rmtree(store, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command")
    compare = commands.add_parser("compare")
    compare.add_argument("--n", type=int, default=2_000_000)
    compare.add_argument("--d", type=int, default=50)
    compare.add_argument("--repeats", type=int, default=2)
    compare.add_argument("--chunk-rows", type=int, default=125_000)
    scale = commands.add_parser("scale")
    scale.add_argument("--n", type=int, nargs="+", default=[12_500_000, 50_000_000])
    scale.add_argument("--d", type=int, default=50)
    scale.add_argument("--chunk-rows", type=int, default=500_000)
    scale.add_argument("--memory-limit", default="2GB")
    scale.add_argument("--dir", default=None, help="scratch directory for the store")
    scale.add_argument("--format", choices=("zarr", "parquet"), default="zarr")
    scale.add_argument(
        "--zarr-reader",
        choices=("problogreg", "dask"),
        default="problogreg",
        help="problogreg.open_zarr, or dask.array.from_zarr(path)",
    )
    scale.add_argument(
        "--worker-env", nargs="*", default=[], metavar="NAME=VALUE", help="added to workers"
    )
    args = parser.parse_args()
    if args.command == "scale":
        worker_env = dict(item.split("=", 1) for item in args.worker_env)
        run_scale(
            args.n,
            args.d,
            args.chunk_rows,
            args.memory_limit,
            args.dir,
            args.format,
            worker_env,
            args.zarr_reader,
        )
    else:
        run_compare(
            getattr(args, "n", 2_000_000),
            getattr(args, "d", 50),
            getattr(args, "repeats", 2),
            getattr(args, "chunk_rows", 125_000),
        )


if __name__ == "__main__":
    main()

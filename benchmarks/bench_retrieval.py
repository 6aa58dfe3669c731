"""Benchmark: top-k video retrieval, ours against the original's sklearn + argsort method.

Methods (each in its own subprocess, so that its peak memory is its own):

* ``original``: the body of the original ``retrieve_clips.topk_retrieval``: sklearn
  ``cosine_distances(X_test, X_train)`` (the full query x gallery matrix), ``np.argsort`` of
  every row (all gallery indices, int64), then a Python loop per k and query.
* ``ours``: :func:`iic_helpers.retrieval.retrieval_hits`: chunks of queries of at most
  ``DEFAULT_MAX_ELEMENTS`` similarities, each chunk normalized on its own, its product with
  the raw gallery (numpy / OpenBLAS, through a transposed view) divided by the gallery's
  row norms, ``torch.topk``; memory beyond the inputs is one chunk.
* ``unit_copies``: the package's previous method: unit-norm copies of both feature sets,
  then the same chunked product and ``torch.topk`` (numpy matmul here).

Cases: UCF101 size (3783 queries x 9537 gallery videos, 9216-d conv5 features, 101 classes)
with all three methods, and a Kinetics-sized case (20k x 240k, 512-d, 400 classes) where the
original method's memory is computed (not run) and ours is run on a proportional slice of
the queries (time then scales linearly in the number of queries) or whole when it fits the
time limit. Features are random float32, clustered by class (centre + noise, then ReLU, like
conv5 features; top-1 about 0.3), so that retrieval is neither trivial nor chance.

Usage::

    .venv/bin/python benchmarks/bench_retrieval.py               # both ISAs, ~3 min each
    .venv/bin/python benchmarks/bench_retrieval.py --nq 300 --ng 700 --dim 64 --big-nq 0
    .venv/bin/python benchmarks/bench_retrieval.py --isa native  # native instruction set only

``--isa both`` (the default) runs the benchmark natively, then again in a child process
limited to AVX2 (``--isa avx2``; torch, numpy's SIMD code and OpenBLAS are limited, and the
method subprocesses inherit the limits): results/retrieval.json and
results/retrieval_avx2.json (see ``benchmarks/_common.py``).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from _common import (
    add_isa_argument,
    command_line,
    format_table,
    machine_info,
    peak_rss_mib,
    reset_peak_rss,
    result_name,
    rss_mib,
    run_isas,
    warn_if_busy,
    write_json,
)

from iic_helpers.retrieval import DEFAULT_KS, DEFAULT_MAX_ELEMENTS, retrieval_hits

METHODS = ("original", "ours", "unit_copies")
BIG_METHODS = ("ours", "unit_copies")
GB = 1e9


# --------------------------------------------------------------------------- data


def make_features(
    n_query: int, n_gallery: int, dim: int, classes: int, seed: int = 0, separation: float = 1.3
) -> dict[str, np.ndarray]:
    """Random clustered float32 features ``relu(s * centre[label] + N(0, 1))`` and labels.

    ``s = separation / dim ** 0.25`` keeps retrieval about equally hard at any dimension
    (top-1 ~0.3 at both benchmark sizes, near the paper's numbers), so that hits are neither
    all true nor chance and near-ties at rank k do occur.
    """
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((classes, dim), dtype=np.float32)
    centres *= separation / dim**0.25
    out: dict[str, np.ndarray] = {}
    for name, n in (("query", n_query), ("gallery", n_gallery)):
        labels = rng.integers(0, classes, n)
        feats = np.empty((n, dim), dtype=np.float32)
        for start in range(0, n, 4096):  # chunked: no float64 temporaries of the whole set
            stop = min(n, start + 4096)
            block = rng.standard_normal((stop - start, dim), dtype=np.float32)
            block += centres[labels[start:stop]]
            np.maximum(block, 0, out=block)
            feats[start:stop] = block
        out[f"{name}_feats"], out[f"{name}_labels"] = feats, labels.astype(np.int64)
    return out


def save_features(data: dict[str, np.ndarray], folder: Path) -> None:
    for name, array in data.items():
        np.save(folder / f"{name}.npy", array)


def load_features(folder: Path) -> dict[str, np.ndarray]:
    names = ("query_feats", "query_labels", "gallery_feats", "gallery_labels")
    return {name: np.load(folder / f"{name}.npy") for name in names}


# --------------------------------------------------------------------------- methods


def original_hits(data: dict[str, np.ndarray], ks: Sequence[int]) -> dict[int, np.ndarray]:
    """The original ``retrieve_clips.topk_retrieval`` (per-query hits instead of counts)."""
    from sklearn.metrics.pairwise import cosine_distances

    x_test, x_train = data["query_feats"], data["gallery_feats"]
    y_test, y_train = data["query_labels"], data["gallery_labels"]
    distances = cosine_distances(x_test, x_train)
    indices = np.argsort(distances)
    hits = {}
    for k in ks:
        top_k_indices = indices[:, :k]
        hit = np.zeros(len(y_test), dtype=bool)
        for q, (ind, test_label) in enumerate(zip(top_k_indices, y_test, strict=True)):
            labels = y_train[ind]
            if test_label in labels:
                hit[q] = True
        hits[k] = hit
    return hits


def _row_norms(x: np.ndarray) -> np.ndarray:
    """L2 norms of the rows without a full-size temporary; zero rows get 1."""
    norms = np.sqrt(np.einsum("ij,ij->i", x, x))
    norms[norms == 0] = 1
    return norms


def _hits_from_chunks(chunks, data: dict[str, np.ndarray], ks: Sequence[int], k_max: int):
    q_labels = torch.from_numpy(data["query_labels"])
    g_labels = torch.from_numpy(data["gallery_labels"])
    hits: dict[int, list[torch.Tensor]] = {k: [] for k in ks}
    for start, sims in chunks:
        idx = torch.topk(torch.from_numpy(sims), k_max, dim=1, largest=True, sorted=True).indices
        match = g_labels[idx] == q_labels[start : start + idx.shape[0], None]
        first = torch.where(match.any(1), match.float().argmax(1), k_max)
        for k in ks:
            hits[k].append(first < min(k, k_max))
    return {k: torch.cat(v).numpy() for k, v in hits.items()}


def unit_copies_hits(
    data: dict[str, np.ndarray],
    ks: Sequence[int],
    max_elements: int = DEFAULT_MAX_ELEMENTS,
) -> dict[int, np.ndarray]:
    """The previous package method: unit rows (one copy of each set), the gallery read
    through a transposed *view*, numpy's matrix product, ``torch.topk``."""
    query = data["query_feats"] / _row_norms(data["query_feats"])[:, None]
    gallery = data["gallery_feats"] / _row_norms(data["gallery_feats"])[:, None]
    rows = max(1, max_elements // gallery.shape[0])
    gallery_t = gallery.T  # a view: BLAS reads it transposed
    chunks = (
        (start, query[start : start + rows] @ gallery_t) for start in range(0, query.shape[0], rows)
    )
    return _hits_from_chunks(chunks, data, ks, min(max(ks), gallery.shape[0]))


def run_method(method: str, data: dict[str, np.ndarray], ks: Sequence[int]):
    if method == "original":
        return original_hits(data, ks)
    if method == "ours":
        return retrieval_hits(
            data["query_feats"],
            data["query_labels"],
            data["gallery_feats"],
            data["gallery_labels"],
            ks,
        )
    if method == "unit_copies":
        return unit_copies_hits(data, ks)
    raise ValueError(f"unknown method {method!r}; choose one of {METHODS}")


def worker(method: str, folder: Path, ks: Sequence[int], threads: int | None) -> dict[str, Any]:
    """Run one method on saved features in this process; time and peak RSS above the data."""
    if threads:
        torch.set_num_threads(threads)
    data = load_features(folder)
    import gc

    if method == "original":
        import sklearn.metrics.pairwise  # noqa: F401  (import time is not the method's)

    gc.collect()
    reset_peak_rss()
    rss0 = rss_mib()
    start = time.perf_counter()
    hits = run_method(method, data, ks)
    seconds = time.perf_counter() - start
    peak = peak_rss_mib()
    np.savez(folder / f"hits_{method}.npz", **{str(k): v for k, v in hits.items()})
    return {
        "method": method,
        "seconds": seconds,
        "peak_extra_mib": None if peak is None or rss0 is None else peak - rss0,
        "data_mib": sum(a.nbytes for a in data.values()) / 2**20,
        "accuracy": {str(k): float(v.mean()) for k, v in hits.items()},
    }


def run_in_subprocess(
    method: str, folder: Path, ks: Sequence[int], threads: int | None, timeout: float | None
) -> dict[str, Any]:
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--worker",
        method,
        "--data",
        str(folder),
        "--ks",
        ",".join(map(str, ks)),
    ]
    if threads:
        cmd += ["--threads", str(threads)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"{method} worker failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def load_hits(folder: Path, method: str) -> dict[int, np.ndarray]:
    with np.load(folder / f"hits_{method}.npz") as f:
        return {int(k): f[k] for k in f.files}


# --------------------------------------------------------------------------- matmul


def time_matmul(rows: int, dim: int, n_gallery: int, repeat: int = 2) -> dict[str, Any]:
    """float32 ``(rows, dim) @ (dim, n_gallery)`` in torch and numpy, gallery transposed view."""
    rng = np.random.default_rng(1)
    a = rng.standard_normal((rows, dim), dtype=np.float32)
    g = rng.standard_normal((n_gallery, dim), dtype=np.float32)
    ta, tg = torch.from_numpy(a), torch.from_numpy(g)
    out: dict[str, Any] = {"shape": f"({rows}x{dim}) @ ({dim}x{n_gallery})"}
    flops = 2.0 * rows * dim * n_gallery
    for name, fn in (
        ("numpy", lambda: a @ g.T),
        ("torch", lambda: ta @ tg.T),
        ("torch_contiguous_t", None),
    ):
        if fn is None:
            tgt = tg.t().contiguous()  # what the package does today (a second gallery copy)

            def fn(tgt=tgt):
                return ta @ tgt

        fn()  # warm-up
        times = []
        for _ in range(repeat):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        best = min(times)
        out[f"{name}_s"] = best
        out[f"{name}_gflops"] = flops / best / 1e9
    out["numpy_speedup_vs_torch"] = out["torch_s"] / out["numpy_s"]
    return out


# --------------------------------------------------------------------------- memory arithmetic


def original_memory_bytes(
    n_query: int, n_gallery: int, dim: int, itemsize: int
) -> dict[str, float]:
    """Bytes the original method holds at once beyond the inputs (computed, not run).

    Distances ``(Nq, Ng)`` in the features' float type, ``np.argsort`` indices ``(Nq, Ng)``
    int64, and sklearn's normalized copies of both feature sets.
    """
    distances = n_query * n_gallery * itemsize
    argsort = n_query * n_gallery * 8
    copies = (n_query + n_gallery) * dim * itemsize
    return {
        "distances_gb": distances / GB,
        "argsort_gb": argsort / GB,
        "normalised_copies_gb": copies / GB,
        "total_gb": (distances + argsort + copies) / GB,
    }


def ours_memory_bytes(
    n_query: int, n_gallery: int, dim: int, max_elements: int, k: int
) -> dict[str, float]:
    """Bytes ``retrieval_hits`` holds beyond the inputs: the gallery's inverse row norms, one
    normalized chunk of queries, one chunk of similarities and the top-k results."""
    rows = max(1, max_elements // n_gallery)
    norms = n_gallery * 4
    query_chunk = rows * dim * 4
    chunk = rows * n_gallery * 4
    topk = n_query * k * 12
    return {
        "gallery_norms_gb": norms / GB,
        "query_chunk_gb": query_chunk / GB,
        "chunk_gb": chunk / GB,
        "total_gb": (norms + query_chunk + chunk + topk) / GB,
    }


# --------------------------------------------------------------------------- the benchmark


def run(
    *,
    nq: int = 3783,
    ng: int = 9537,
    dim: int = 9216,
    classes: int = 101,
    big_nq: int = 20000,
    big_ng: int = 240000,
    big_dim: int = 512,
    big_classes: int = 400,
    big_max_seconds: float = 180.0,
    big_probe_nq: int = 1000,
    ks: Sequence[int] = DEFAULT_KS,
    threads: int | None = None,
    matmul: bool = True,
    verbose: bool = True,
) -> dict[str, Any]:
    """Run the benchmark; returns ``{"ucf": {...}, "matmul": [...], "kinetics": {...}}``.

    ``ucf["rows"]`` has one row per method (``seconds``, ``peak_extra_mib``, ``speedup``,
    ``identical_hits``); ``big_nq=0`` skips the Kinetics-sized case.
    """
    ks = tuple(int(k) for k in ks)

    def say(*args: Any) -> None:
        if verbose:
            print(*args, flush=True)

    result: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench_retrieval_") as tmp:
        folder = Path(tmp) / "ucf"
        folder.mkdir()
        save_features(make_features(nq, ng, dim, classes), folder)
        rows = []
        for method in METHODS:
            row = run_in_subprocess(method, folder, ks, threads, timeout=None)
            say(
                f"  {nq}x{ng}x{dim} {method:10s} {row['seconds']:7.2f} s, "
                f"peak +{row['peak_extra_mib']:.0f} MiB"
            )
            rows.append(row)
        reference = load_hits(folder, "original")
        base = rows[0]["seconds"]
        for row in rows:
            hits = load_hits(folder, row["method"])
            differing = {k: int((hits[k] != reference[k]).sum()) for k in ks}
            row["identical_hits"] = all(v == 0 for v in differing.values())
            row["differing_queries"] = differing
            row["speedup"] = base / row["seconds"]
            row["memory_ratio"] = row["peak_extra_mib"] / rows[0]["peak_extra_mib"]
            row["top1"] = row["accuracy"][str(ks[0])]
        result["ucf"] = {
            "n_query": nq,
            "n_gallery": ng,
            "dim": dim,
            "classes": classes,
            "rows": rows,
            "original_memory_computed": original_memory_bytes(nq, ng, dim, 4),
            "ours_memory_computed": ours_memory_bytes(nq, ng, dim, DEFAULT_MAX_ELEMENTS, max(ks)),
        }

    if matmul:
        shapes = [(min(nq, max(1, DEFAULT_MAX_ELEMENTS // ng)), dim, ng)]
        if big_nq:
            shapes.append((min(big_nq, max(1, DEFAULT_MAX_ELEMENTS // big_ng)), big_dim, big_ng))
        result["matmul"] = []
        for shape in shapes:
            row = time_matmul(*shape)
            say(
                f"  matmul {row['shape']}: numpy {row['numpy_gflops']:.0f} GFLOP/s, torch "
                f"{row['torch_gflops']:.0f} GFLOP/s (contiguous .t(): "
                f"{row['torch_contiguous_t_gflops']:.0f})"
            )
            result["matmul"].append(row)

    if big_nq:
        result["kinetics"] = run_big(
            big_nq, big_ng, big_dim, big_classes, ks, threads, big_max_seconds, big_probe_nq, say
        )
    return result


def run_big(
    nq: int,
    ng: int,
    dim: int,
    classes: int,
    ks: Sequence[int],
    threads: int | None,
    max_seconds: float,
    probe_nq: int,
    say: Any,
    methods: Sequence[str] = BIG_METHODS,
) -> dict[str, Any]:
    """Kinetics-sized case: the original's memory computed; ``methods`` timed on a slice of
    the queries, then on all of them when the slice's time, scaled, fits ``max_seconds``."""
    out: dict[str, Any] = {
        "n_query": nq,
        "n_gallery": ng,
        "dim": dim,
        "original_memory_float64_computed": original_memory_bytes(nq, ng, dim, 8),
        "original_memory_float32_computed": original_memory_bytes(nq, ng, dim, 4),
        "ours_memory_computed": ours_memory_bytes(nq, ng, dim, DEFAULT_MAX_ELEMENTS, max(ks)),
        "runs": [],
        "full": {},
    }
    with tempfile.TemporaryDirectory(prefix="bench_retrieval_big_") as tmp:
        folder = Path(tmp)
        data = make_features(nq, ng, dim, classes, seed=1)
        probe = min(probe_nq, nq)
        sizes = [probe, nq] if probe < nq else [nq]
        hits: dict[tuple[str, int], dict[int, np.ndarray]] = {}
        for size in sizes:
            sub = dict(
                data,
                query_feats=data["query_feats"][:size],
                query_labels=data["query_labels"][:size],
            )
            save_features(sub, folder)
            for method in methods:
                previous = [r for r in out["runs"] if r["method"] == method]
                if previous:
                    projected = previous[-1]["seconds"] * size / previous[-1]["n_query"]
                    if projected > max_seconds:
                        say(
                            f"  {method}: {size} queries would take ~{projected:.0f} s > "
                            f"{max_seconds:.0f} s: not run (extrapolated)"
                        )
                        continue
                row = run_in_subprocess(method, folder, ks, threads, timeout=max_seconds * 2)
                row["n_query"] = size
                row["top1"] = row["accuracy"][str(ks[0])]
                hits[method, size] = load_hits(folder, method)
                say(
                    f"  {size}x{ng}x{dim} {method:11s} {row['seconds']:7.2f} s, "
                    f"peak +{row['peak_extra_mib']:.0f} MiB"
                )
                out["runs"].append(row)
        for method in methods:
            last = [r for r in out["runs"] if r["method"] == method][-1]
            full = last["n_query"] == nq
            out["full"][method] = {
                "full_run": full,
                "seconds" if full else "extrapolated_seconds": last["seconds"]
                * nq
                / last["n_query"],
                "peak_extra_mib": last["peak_extra_mib"],
            }
        for row in out["runs"]:  # same hits as the first method on the same queries
            first = hits.get((methods[0], row["n_query"]))
            mine = hits[row["method"], row["n_query"]]
            row["identical_hits"] = (
                None if first is None else all(np.array_equal(first[k], mine[k]) for k in ks)
            )
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nq", type=int, default=3783, help="queries (UCF101 test videos)")
    parser.add_argument("--ng", type=int, default=9537, help="gallery (UCF101 train videos)")
    parser.add_argument("--dim", type=int, default=9216)
    parser.add_argument("--classes", type=int, default=101)
    parser.add_argument("--big-nq", type=int, default=20000, help="0 skips the Kinetics case")
    parser.add_argument("--big-ng", type=int, default=240000)
    parser.add_argument("--big-dim", type=int, default=512)
    parser.add_argument("--big-max-seconds", type=float, default=180.0)
    parser.add_argument("--big-probe-nq", type=int, default=1000)
    parser.add_argument("--ks", default=",".join(map(str, DEFAULT_KS)))
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--no-matmul", action="store_true")
    parser.add_argument("--out", default=None, help="folder for the JSON (benchmarks/results)")
    parser.add_argument("--worker", choices=METHODS, help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    add_isa_argument(parser)
    args = parser.parse_args(argv)
    ks = tuple(int(k) for k in args.ks.split(",") if k)
    if args.worker:  # a method's subprocess: it inherits the ISA limits of its parent
        print(json.dumps(worker(args.worker, Path(args.data), ks, args.threads)))
        return 0
    return run_isas(args.isa, lambda: run_once(args, ks), __file__, argv)


def run_once(args: argparse.Namespace, ks: tuple[int, ...]) -> int:
    """One run of the benchmark in this process (whatever instruction set it is limited to)."""
    if args.threads:
        torch.set_num_threads(args.threads)
    info = machine_info()
    print(
        f"bench_retrieval on {info['cpu']} ({info['logical_cpus']} CPUs), torch {info['torch']}, "
        f"numpy {info['numpy']}, isa {info['isa']} ({info['torch_cpu_capability']}, "
        f"OpenBLAS {info['openblas_architecture']})"
    )
    if info["other_busy_processes"]:
        print("  note: other busy processes:", *info["other_busy_processes"], sep="\n    ")
    start = time.perf_counter()
    result = run(
        nq=args.nq,
        ng=args.ng,
        dim=args.dim,
        classes=args.classes,
        big_nq=args.big_nq,
        big_ng=args.big_ng,
        big_dim=args.big_dim,
        big_max_seconds=args.big_max_seconds,
        big_probe_nq=args.big_probe_nq,
        ks=ks,
        threads=args.threads,
        matmul=not args.no_matmul,
    )
    elapsed = time.perf_counter() - start
    info["other_busy_processes_end"] = warn_if_busy()
    print_report(result)
    payload = {
        "benchmark": "retrieval",
        "command": command_line(),
        "machine": info,
        "elapsed_s": elapsed,
        "max_elements": DEFAULT_MAX_ELEMENTS,
        **result,
    }
    path = write_json(result_name("retrieval"), payload, args.out)
    print(f"({elapsed:.0f} s in all) wrote {path}")
    return 0


def print_report(result: dict[str, Any]) -> None:
    ucf = result["ucf"]
    print(
        f"\nRetrieval, {ucf['n_query']} queries x {ucf['n_gallery']} gallery, {ucf['dim']}-d "
        f"float32, {ucf['classes']} classes:"
    )
    print(
        format_table(
            ucf["rows"],
            (
                "method",
                "seconds",
                "speedup",
                "peak_extra_mib",
                "memory_ratio",
                "identical_hits",
                "top1",
            ),
        )
    )
    for row in result.get("matmul", []):
        print(
            f"matmul {row['shape']} float32: numpy {row['numpy_s']:.3f} s "
            f"({row['numpy_gflops']:.0f} GFLOP/s), torch {row['torch_s']:.3f} s "
            f"({row['torch_gflops']:.0f} GFLOP/s), torch on a contiguous transposed copy "
            f"{row['torch_contiguous_t_s']:.3f} s; numpy/torch speedup "
            f"{row['numpy_speedup_vs_torch']:.2f}x"
        )
    big = result.get("kinetics")
    if big:
        o64, o32 = big["original_memory_float64_computed"], big["original_memory_float32_computed"]
        print(f"\nKinetics-sized: {big['n_query']} x {big['n_gallery']}, {big['dim']}-d")
        print(
            f"  original method (computed, not run): distances + argsort = "
            f"{o64['distances_gb'] + o64['argsort_gb']:.1f} GB in float64 + int64 "
            f"({o32['distances_gb'] + o32['argsort_gb']:.1f} GB with float32 distances), "
            f"{o64['total_gb']:.1f} GB with sklearn's normalized copies"
        )
        ours = big["ours_memory_computed"]
        print(f"  ours (computed): {ours['total_gb']:.2f} GB beyond the inputs")
        print(
            format_table(
                big["runs"],
                ("method", "n_query", "seconds", "peak_extra_mib", "identical_hits", "top1"),
            )
        )
        for method, full in big["full"].items():
            if full["full_run"]:
                print(f"  {method}: full case run, {full['seconds']:.1f} s")
            else:
                print(
                    f"  {method}: full case NOT run; extrapolated from the largest run: "
                    f"{full['extrapolated_seconds']:.0f} s"
                )


if __name__ == "__main__":
    raise SystemExit(main())

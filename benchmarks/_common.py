"""Helpers shared by the benchmark scripts: machine facts, tables, JSON, timers, peak memory,
and the instruction-set runs (``--isa native|avx2|both``).

Not a benchmark itself (``make bench`` runs it too; it does nothing when run).

Instruction sets: the CPU benchmarks run natively (AVX-512 where the CPU has it) and again in
a child process whose libraries are limited to AVX2, the most a student's laptop has
(:data:`AVX2_ENV`; the limits must be set before torch and numpy are imported, hence the
child). The native run writes ``results/<name>.json``, the AVX2 run ``results/<name>_avx2.json``;
each records its ``isa`` label, the CPU capability torch uses and the limits in ``machine``.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from iic_helpers.isa import AVX2_ENV, cpu_model, numpy_avx512_targets
from iic_helpers.isa import avx2_env as package_avx2_env

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"

if str(REPO) not in sys.path:  # run as `python benchmarks/x.py` without an installed package
    sys.path.insert(1, str(REPO))


def cpu_flags() -> list[str]:
    """The interesting SIMD flags of this CPU (AVX2, AVX-512, BF16, AMX)."""
    wanted = ("avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16", "amx_tile")
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                return [f for f in wanted if f in flags]
    except OSError:
        pass
    return []


def other_busy_processes() -> list[str]:
    """Other processes using > 20% CPU right now (they make timings noisy)."""
    try:
        out = subprocess.run(
            ["ps", "-eo", "pid,pcpu,args", "--sort=-pcpu"],
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    mine = {os.getpid()}
    if is_avx2_child():  # the parent waits for this run (ps's %CPU is a lifetime average)
        mine.add(os.getppid())
    busy = []
    for line in out.splitlines()[1:]:
        parts = line.split(None, 2)
        if len(parts) < 3:
            continue
        pid, pcpu, args = parts
        if int(pid) in mine or float(pcpu) < 20.0 or args.startswith("ps "):
            continue
        busy.append(f"{pid} {pcpu}% {args[:100]}")
    return busy


def warn_if_busy() -> list[str]:
    """Other busy processes now; printed as a warning (their timings are then suspect)."""
    busy = other_busy_processes()
    if busy:
        print("WARNING: other busy processes at the end (timings suspect):", *busy, sep="\n  ")
    return busy


def machine_info() -> dict[str, Any]:
    """Facts to store next to every result: CPU, cores, versions, threads, date."""
    import numpy as np
    import torch

    info: dict[str, Any] = {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu_model(),
        "cpu_flags": cpu_flags(),
        "logical_cpus": os.cpu_count(),
        **isa_info(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "other_busy_processes": other_busy_processes(),
    }
    try:
        import sklearn

        info["sklearn"] = sklearn.__version__
    except ImportError:
        pass
    return info


# --------------------------------------------------------------------------- instruction sets

#: The ``--isa`` choices: ``both`` runs ``native`` and then ``avx2`` (one after the other).
ISA_CHOICES = ("native", "avx2", "both")

#: Set (to "1") in the environment of the AVX2 child; the child runs the benchmark itself.
AVX2_CHILD_MARKER = "IIC_BENCH_AVX2_CHILD"

# AVX2_ENV: the limits of the AVX2 run (iic_helpers.isa, shared with scripts/run_notebooks.py)

#: Every variable the JSON records under ``machine["isa_env"]`` (null where unset).
ISA_ENV_VARS = (*AVX2_ENV, "NPY_DISABLE_CPU_FEATURES")

#: The x86 flags ATen needs for its AVX512 kernels (``get_cpu_capability() == "AVX512"``).
AVX512_FLAGS = ("avx512f", "avx512bw", "avx512vl", "avx512dq")


def _proc_cpu_flags() -> set[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def cpu_has_avx512() -> bool:
    """Whether this CPU has the AVX-512 subsets torch's AVX512 kernels need (Linux only)."""
    flags = _proc_cpu_flags()
    return all(f in flags for f in AVX512_FLAGS)


def avx2_env(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of the AVX2 child: ``base`` (default ``os.environ``) plus the limits."""
    env = package_avx2_env(base)
    env[AVX2_CHILD_MARKER] = "1"
    return env


def is_avx2_child() -> bool:
    """True in the AVX2 child started by :func:`run_isas`."""
    return os.environ.get(AVX2_CHILD_MARKER) == "1"


def child_argv(argv: Sequence[str], isa: str = "avx2") -> list[str]:
    """``argv`` with its ``--isa`` option (``--isa X`` or ``--isa=X``) replaced by ``isa``."""
    out: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--isa":
            skip = True
        elif not arg.startswith("--isa="):
            out.append(arg)
    return [*out, "--isa", isa]


def result_name(name: str, avx2: bool | None = None) -> str:
    """``name`` for the native run, ``name + "_avx2"`` for the AVX2 one (default: this process)."""
    avx2 = is_avx2_child() if avx2 is None else avx2
    return f"{name}_avx2" if avx2 else name


def isa_label(capability: str | None = None, avx512_cpu: bool | None = None) -> str:
    """``"native"``, ``"avx2-emulated"`` (AVX2 on an AVX-512 CPU) or ``"avx2-native"``.

    ``capability`` is ``torch.backends.cpu.get_cpu_capability()`` (default: this process's),
    ``avx512_cpu`` whether the CPU has AVX-512 (default: :func:`cpu_has_avx512`).
    """
    if capability is None:
        import torch

        capability = torch.backends.cpu.get_cpu_capability()
    avx512_cpu = cpu_has_avx512() if avx512_cpu is None else avx512_cpu
    if capability != "AVX2":
        return "native"
    return "avx2-emulated" if avx512_cpu else "avx2-native"


def openblas_architecture() -> str | None:
    """The kernel set OpenBLAS chose (e.g. ``SkylakeX``, ``Haswell``), via threadpoolctl."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return None
    for lib in threadpool_info():
        if lib.get("internal_api") == "openblas":
            return lib.get("architecture")
    return None


def numpy_avx512_enabled() -> list[str]:
    """numpy's AVX-512 dispatch targets enabled in this process (empty in the AVX2 child)."""
    from numpy._core._multiarray_umath import __cpu_features__

    return [t for t in numpy_avx512_targets() if __cpu_features__.get(t)]


def isa_info() -> dict[str, Any]:
    """The ``machine`` entries about instruction sets: label, capability, limits in force."""
    import torch

    capability = torch.backends.cpu.get_cpu_capability()
    return {
        "isa": isa_label(capability),
        "torch_cpu_capability": capability,
        "cpu_has_avx512": cpu_has_avx512(),
        "isa_env": {var: os.environ.get(var) for var in ISA_ENV_VARS},
        "openblas_architecture": openblas_architecture(),
        "numpy_avx512_targets_enabled": numpy_avx512_enabled(),
    }


def check_avx2_limits() -> None:
    """Raise RuntimeError unless torch, numpy and OpenBLAS are limited to AVX2 in this process."""
    import torch

    problems = []
    capability = torch.backends.cpu.get_cpu_capability()
    if capability != "AVX2":
        problems.append(f"torch.backends.cpu.get_cpu_capability() is {capability!r}, not 'AVX2'")
    if numpy_avx512_enabled():
        problems.append(f"numpy still dispatches to {numpy_avx512_enabled()}")
    arch = openblas_architecture()
    if arch is not None and arch.lower() not in ("haswell", "zen"):
        problems.append(f"OpenBLAS uses its {arch!r} kernels, not 'Haswell'")
    if problems:
        raise RuntimeError(
            "benchmarks/_common.py: the AVX2 run is not limited to AVX2: "
            + "; ".join(problems)
            + ". The limits are environment variables read when the libraries load "
            f"({', '.join(ISA_ENV_VARS)}): run the benchmark with `--isa avx2` (which sets "
            "them in a fresh process) instead of importing it into a running one, and check "
            "that this torch build honours ATEN_CPU_CAPABILITY (x86-64 builds do)."
        )


def add_isa_argument(parser: Any) -> None:
    """Add ``--isa {native,avx2,both}`` (default ``both``) to an ``argparse`` parser."""
    parser.add_argument(
        "--isa",
        choices=ISA_CHOICES,
        default="both",
        help="native: this CPU's best instruction set (AVX-512 where present), written to "
        "results/<name>.json; avx2: a child process limited to AVX2, written to "
        "results/<name>_avx2.json; both (default): native, then avx2",
    )


def run_isas(
    isa: str,
    body: Callable[[], int],
    script: str | Path,
    argv: Sequence[str] | None = None,
) -> int:
    """Run a benchmark ``body`` natively and/or limited to AVX2; return the exit status.

    ``native`` calls ``body()`` here; ``avx2`` runs ``script`` again with the same arguments
    (``argv``, default ``sys.argv[1:]``, with ``--isa avx2``) in a child process with
    :func:`avx2_env`, which calls ``body()`` after :func:`check_avx2_limits`; ``both`` does
    one, then the other. Where torch does not use AVX-512 natively the native run already
    is AVX2 (or the CPU is not x86): ``both`` then says so and skips the AVX2 run.
    """
    import torch

    if isa not in ISA_CHOICES:
        raise ValueError(f"isa must be one of {ISA_CHOICES}, not {isa!r}")
    if is_avx2_child():
        if isa != "avx2":
            raise RuntimeError(
                f"{AVX2_CHILD_MARKER}=1 is set but --isa is {isa!r}: unset {AVX2_CHILD_MARKER} "
                "in your shell (only run_isas sets it, for its AVX2 child)"
            )
        check_avx2_limits()
        print(f"[isa] AVX2 run ({isa_label()}): limits {AVX2_ENV}", flush=True)
        return body()
    capability = torch.backends.cpu.get_cpu_capability()
    if isa in ("native", "both"):
        preset = {v: os.environ[v] for v in ISA_ENV_VARS if os.environ.get(v)}
        if preset:
            raise RuntimeError(
                f"the native run would inherit instruction-set limits from your shell: {preset}. "
                f"Unset them (e.g. `env -u {next(iter(preset))} ...`) and use `--isa avx2` "
                "for the limited run."
            )
        label = isa_label(capability)
        if label == "avx2-native":
            print(
                "[isa] this CPU has no AVX-512: the native run already is AVX2 "
                "(recorded as isa 'avx2-native')",
                flush=True,
            )
        else:
            print(f"[isa] native run (torch CPU capability {capability})", flush=True)
        status = body()
        if status or isa == "native":
            return status
        if capability != "AVX512":
            print(
                f"[isa] no separate AVX2 run: torch's native CPU capability is {capability}, "
                "not AVX512",
                flush=True,
            )
            return 0
    args = list(sys.argv[1:] if argv is None else argv)
    cmd = [sys.executable, str(script), *child_argv(args)]
    print(f"[isa] AVX2 run in a child process: {' '.join(cmd[1:])}", flush=True)
    return subprocess.run(cmd, env=avx2_env(), check=False).returncode


def command_line() -> str:
    """The command that ran this script, relative to the repository."""
    script = Path(sys.argv[0])
    try:
        script = script.resolve().relative_to(REPO)
    except ValueError:
        pass
    return " ".join([".venv/bin/python", str(script), *sys.argv[1:]])


def write_json(name: str, payload: dict[str, Any], out_dir: Path | None = None) -> Path:
    """Write ``<out_dir>/<name>.json`` (default ``benchmarks/results``); return the path."""
    out_dir = RESULTS_DIR if out_dir is None else Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    return path


def format_table(rows: Sequence[dict[str, Any]], columns: Sequence[str] | None = None) -> str:
    """A GitHub-markdown table of ``rows`` (dicts); floats get 3 significant-ish digits."""
    if not rows:
        return "(no rows)"
    columns = list(columns or rows[0].keys())

    def fmt(value: Any) -> str:
        if isinstance(value, float):
            if value == 0 or 0.01 <= abs(value) < 1e5:
                return f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"
            return f"{value:.3g}"
        return "" if value is None else str(value)

    cells = [[fmt(row.get(c)) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    lines = [
        "| " + " | ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)) + " |",
        "|" + "|".join("-" * (w + 2) for w in widths) + "|",
    ]
    for row in cells:
        lines.append("| " + " | ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) + " |")
    return "\n".join(lines)


def time_call(
    fn: Callable[[], Any], *, warmup: int = 1, repeat: int = 3, min_time: float = 0.0
) -> dict[str, float]:
    """Run ``fn`` ``warmup`` times, then at least ``repeat`` times (and ``min_time`` seconds).

    Returns ``{"median_s", "min_s", "runs"}``.
    """
    for _ in range(warmup):
        fn()
    times: list[float] = []
    start_all = time.perf_counter()
    while len(times) < repeat or time.perf_counter() - start_all < min_time:
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return {"median_s": statistics.median(times), "min_s": min(times), "runs": len(times)}


# --------------------------------------------------------------------------- peak memory (Linux)


def _status_kib(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def rss_mib() -> float | None:
    """Resident set size now (MiB), from /proc/self/status."""
    kib = _status_kib("VmRSS")
    return None if kib is None else kib / 1024


def peak_rss_mib() -> float | None:
    """Peak resident set size (MiB) since start or the last :func:`reset_peak_rss`."""
    kib = _status_kib("VmHWM")
    return None if kib is None else kib / 1024


def reset_peak_rss() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0); False where that is not possible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


if __name__ == "__main__":
    print("benchmarks/_common.py: helpers only; run the bench_*.py scripts (or `make bench`).")

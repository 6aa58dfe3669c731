"""Helpers shared by the benchmark scripts: machine facts, tables, JSON, timers, peak memory.

Not a benchmark itself (``make bench`` runs it too; it does nothing when run).
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"

if str(REPO) not in sys.path:  # run as `python benchmarks/x.py` without an installed package
    sys.path.insert(1, str(REPO))


def cpu_model() -> str:
    """CPU model name from /proc/cpuinfo (or platform's guess elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


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
    import subprocess

    try:
        out = subprocess.run(
            ["ps", "-eo", "pid,pcpu,args", "--sort=-pcpu"],
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    busy = []
    for line in out.splitlines()[1:]:
        parts = line.split(None, 2)
        if len(parts) < 3:
            continue
        pid, pcpu, args = parts
        if int(pid) == os.getpid() or float(pcpu) < 20.0 or args.startswith("ps "):
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
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
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

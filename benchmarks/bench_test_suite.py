"""Benchmark: how long ``make test`` takes, on one pytest process and on two workers.

``make test`` runs ``ruff check .`` and ``IIC_QUICK=1 pytest -q -n 2``: two pytest-xdist
worker processes with one intra-op thread each (``tests/conftest.py`` explains why one).
This script runs exactly that, once per setting of ``--workers`` (``0``: one pytest process
with torch's default threads, how the suite ran before; ``2``: ``make test``; ``2x2``: two
workers with two threads each, torch's default, to show why ``make test`` uses one), for each
``--isa`` (``avx2`` limits every library to AVX2 from the start of every process, see
:data:`iic_helpers.isa.AVX2_ENV`), and records the wall time, pytest's summary line, the
slowest tests, the CPU time of all its processes and any hung notebook cell that was
executed again (the ``HUNG CELL`` warning of ``scripts/run_notebooks.py``). The first setting
is the baseline of the ratios.

Writes ``results/test_suite.json`` (``--isa native``) or ``results/test_suite_avx2.json``
(``--isa avx2``); ``--isa both`` writes both; ``--label L`` writes
``results/test_suite_L[_avx2].json`` instead. The default data (``data/synthetic``) should
exist already (``make tutorial`` or ``python -m iic_helpers make-synthetic``): otherwise the
first run also writes it.

Usage::

    .venv/bin/python benchmarks/bench_test_suite.py                 # ~30 min on 2 cores
    .venv/bin/python benchmarks/bench_test_suite.py --isa avx2 --workers 2,2x2 --label threads
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    AVX2_CHILD_MARKER,
    REPO,
    command_line,
    machine_info,
    result_name,
    run_isas,
    warn_if_busy,
    write_json,
)

#: pytest's last line, e.g. ``550 passed, 1 skipped, 194 warnings in 632.54s (0:10:32)``.
SUMMARY = re.compile(r"^=*\s*(\d+ (passed|failed).*) in ([\d.]+)s")
#: One line of ``--durations``: ``129.84s setup    tests/test_x.py::test_y``.
DURATION = re.compile(r"^([\d.]+)s (call|setup|teardown)\s+(\S.*?)\s*$")
#: ``tests/conftest.py``'s variable for the intra-op threads of each xdist worker.
WORKER_THREADS_ENV = "IIC_TEST_WORKER_THREADS"


def parse_setting(text: str) -> tuple[int, int | None]:
    """``"2"`` -> 2 workers with one thread each (``make test``), ``"2x2"`` -> two threads
    each, ``"0"`` -> one process with torch's default threads (``None``).

    >>> parse_setting("0"), parse_setting("2"), parse_setting("2x2")
    ((0, None), (2, 1), (2, 2))
    """
    workers, sep, threads = text.partition("x")
    if not workers.isdigit() or (sep and not threads.isdigit()) or threads == "0":
        raise ValueError(f"--workers: {text!r} is not N or NxT (T threads per worker, T >= 1)")
    if int(workers) == 0:
        if threads:
            raise ValueError("--workers: 0 (one process) takes torch's default threads")
        return 0, None
    return int(workers), int(threads or 1)


def pytest_command(workers: int, durations: int = 15) -> list[str]:
    """The ``make test`` pytest command with ``workers`` xdist workers (0: one process)."""
    command = [sys.executable, "-m", "pytest", "-q", f"--durations={durations}"]
    return command + (["-n", str(workers)] if workers else [])


def parse_pytest_output(text: str) -> dict[str, Any]:
    """Counts, pytest's own seconds, the slowest tests and the hung-cell warnings of ``text``."""
    summary = next((m for m in map(SUMMARY.match, reversed(text.splitlines())) if m), None)
    counts: dict[str, int] = {}
    if summary:
        for number, word in re.findall(r"(\d+) (\w+)", summary.group(1)):
            counts[word] = int(number)
    slowest = [
        {"seconds": float(m.group(1)), "phase": m.group(2), "test": m.group(3)}
        for m in map(DURATION.match, text.splitlines())
        if m
    ]
    return {
        "counts": counts,
        "pytest_seconds": float(summary.group(3)) if summary else None,
        "slowest": slowest,
        "hung_cells": [line.strip() for line in text.splitlines() if "HUNG CELL" in line],
    }


def _children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_once(workers: int, worker_threads: int | None = 1) -> dict[str, Any]:
    """``ruff check .`` then pytest in this process's environment plus ``IIC_QUICK=1``
    (and ``worker_threads`` intra-op threads per xdist worker)."""
    env = {**os.environ, "IIC_QUICK": "1"}
    env.pop(AVX2_CHILD_MARKER, None)  # the tests are not this benchmark's AVX2 child
    env.pop(WORKER_THREADS_ENV, None)
    if workers and worker_threads is not None:
        env[WORKER_THREADS_ENV] = str(worker_threads)
    start = time.perf_counter()
    ruff = subprocess.run(
        [str(Path(sys.executable).with_name("ruff")), "check", "."], cwd=REPO, env=env
    )
    ruff_seconds = time.perf_counter() - start
    start, cpu_start = time.perf_counter(), _children_cpu_seconds()
    proc = subprocess.run(
        pytest_command(workers), cwd=REPO, env=env, capture_output=True, text=True
    )
    seconds = time.perf_counter() - start
    cpu_seconds = _children_cpu_seconds() - cpu_start
    parsed = parse_pytest_output(proc.stdout)
    if proc.returncode != 0:
        print(proc.stdout[-5000:], proc.stderr[-3000:], sep="\n", file=sys.stderr)
    return {
        "workers": workers,
        "worker_threads": worker_threads,
        "returncode": proc.returncode,
        "ruff_returncode": ruff.returncode,
        "ruff_seconds": round(ruff_seconds, 1),
        "tests_seconds": round(seconds, 1),
        "tests_minutes": round(seconds / 60, 2),
        "cpu_minutes": round(cpu_seconds / 60, 2),
        **parsed,
    }


def run(worker_settings: Sequence[str], label: str = "") -> int:
    """Every setting once, in order; writes the JSON; 1 if a run failed."""
    busy = warn_if_busy()
    machine = machine_info()
    rows: list[dict[str, Any]] = []
    for setting in worker_settings:
        row = run_once(*parse_setting(setting))
        base = rows[0]["tests_seconds"] if rows else row["tests_seconds"]
        row["speedup_vs_first"] = round(base / row["tests_seconds"], 2)
        rows.append(row)
        print(
            f"{machine['isa']} workers={setting}: tests {row['tests_minutes']} min "
            f"{row['counts']}, x{row['speedup_vs_first']} vs workers={worker_settings[0]}, "
            f"hung cells executed again: {len(row['hung_cells'])}",
            flush=True,
        )
    payload = {
        "benchmark": "test_suite",
        "command": command_line(),
        "machine": machine,
        "other_busy_processes": busy,
        "other_busy_processes_end": warn_if_busy(),
        "rows": rows,
    }
    write_json(result_name("test_suite" + (f"_{label}" if label else "")), payload)
    return 1 if any(r["returncode"] or r["ruff_returncode"] for r in rows) else 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--isa", choices=("native", "avx2", "both"), default="both")
    parser.add_argument(
        "--workers",
        default="0,2",
        help="comma-separated pytest-xdist settings: N workers with one thread each, NxT with "
        "T threads each, 0 for one process; the first is the base of the ratios",
    )
    parser.add_argument("--label", default="", help="results/test_suite_<label>[_avx2].json")
    args = parser.parse_args(argv)
    settings = args.workers.split(",")
    try:
        [parse_setting(s) for s in settings]
    except ValueError as error:
        parser.error(str(error))
    return run_isas(args.isa, lambda: run(settings, args.label), __file__, argv)


if __name__ == "__main__":
    sys.exit(main())

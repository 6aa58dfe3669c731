"""Benchmark: how much faster the tiny step is with two threads than with one, with its spread.

One number decides the AVX2 speed target (the package's step with 2 threads against the
notebooks' old setting of 1 thread), and on a shared 2-core machine a single run of
``bench_train_step.py`` moves it by +-0.1. So this benchmark measures only that ratio, many
times:

* ``--processes`` fresh processes per ISA (native, then limited to AVX2 as in
  ``_common.run_isas``), one after the other;
* in each, three pretraining states built as ``bench_train_step.py``'s ``ours`` (the
  package's ``pretrain_step``, ``channels_last_3d``, random clips, batch 16): ``t1`` stepped
  with 1 thread, ``t2`` with 2 threads and ``cpu_parallel_backward=False`` (one
  ``loss.backward()``), ``t2+pb`` with 2 threads and the package's default, the views'
  backward passes on one-thread workers (:mod:`iic_helpers.parallel_backward`). They are
  stepped **alternately, step by step** (the order reversed every round), so all see the
  same machine conditions; ``--rounds`` timed rounds after 2 warm-up rounds;
* per process: median ms per sample for each, and the ratios ``ratio`` = t1 / t2 and
  ``ratio_pb`` = t1 / t2+pb; per ISA: the median, minimum and maximum of the processes'
  ratios.

The first process of each ISA also records a per-operator profile (``torch.profiler``, self
CPU time per step, t1 vs t2): which operators gain from the second thread and which do not.

Usage::

    .venv/bin/python benchmarks/bench_thread_ratio.py                 # both ISAs, ~5 min
    .venv/bin/python benchmarks/bench_thread_ratio.py --isa avx2 --processes 3
    .venv/bin/python benchmarks/bench_thread_ratio.py --processes 8 --label run2
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    REPO,
    add_isa_argument,
    command_line,
    format_table,
    is_avx2_child,
    machine_info,
    result_name,
    run_isas,
    warn_if_busy,
    write_json,
)

BATCH = 16
N_DATA = 360
WARMUP_ROUNDS = 2
PROFILE_STEPS = 4
PROFILE_TOP = 12


#: the timed settings: name -> (intra-op threads, cpu_parallel_backward)
SETTINGS = {"t1": (1, False), "t2": (2, False), "t2+pb": (2, True)}


def _states() -> dict[str, Any]:
    """Identical package states (``ours``), one per setting of :data:`SETTINGS`."""
    import torch
    from bench_train_step import build_state

    states = {}
    for name, (_, parallel) in SETTINGS.items():
        state = build_state("tiny", N_DATA, cpu_parallel_backward=parallel)
        state.model.to(memory_format=torch.channels_last_3d)  # as pretrain() does
        state.model.train()
        state.head.train()
        states[name] = state
    return states


def profile_ops(states: dict[str, Any], clips: Any, index: Any) -> list[dict[str, Any]]:
    """Self CPU ms per step of the busiest operators with 1 and 2 threads."""
    import torch
    from torch.profiler import profile

    from iic_helpers.train import pretrain_step

    per_op: dict[str, dict[int, float]] = {}
    for threads, state in ((1, states["t1"]), (2, states["t2"])):
        torch.set_num_threads(threads)
        generator = torch.Generator().manual_seed(3)
        with profile() as prof:
            for _ in range(PROFILE_STEPS):
                pretrain_step(state, clips, index, generator)
        for event in prof.key_averages():
            ms = event.self_cpu_time_total / 1000 / PROFILE_STEPS
            per_op.setdefault(event.key, {})[threads] = ms
    total = {t: sum(v.get(t, 0.0) for v in per_op.values()) for t in (1, 2)}
    rows = [{"op": "(all)", "t1_ms": total[1], "t2_ms": total[2]}]
    for op, ms in sorted(per_op.items(), key=lambda kv: -kv[1].get(2, 0.0))[:PROFILE_TOP]:
        rows.append({"op": op, "t1_ms": ms.get(1, 0.0), "t2_ms": ms.get(2, 0.0)})
    for row in rows:
        row["t1_ms"], row["t2_ms"] = round(row["t1_ms"], 1), round(row["t2_ms"], 1)
        row["share_t2"] = round(row["t2_ms"] / total[2], 3)
        row["2v1"] = round(row["t1_ms"] / row["t2_ms"], 2) if row["t2_ms"] else None
    return rows


def child(rounds: int, with_profile: bool) -> dict[str, Any]:
    """One process: alternate the settings step by step; ms per sample of each, the ratios."""
    import torch

    from iic_helpers.train import pretrain_step

    states = _states()
    cfg = states["t1"].cfg
    shape = (BATCH, 3, cfg.clip_len, cfg.crop, cfg.crop)
    clips = torch.rand(shape, generator=torch.Generator().manual_seed(1))
    index = torch.arange(BATCH) % N_DATA
    generators = {name: torch.Generator().manual_seed(2) for name in states}
    times: dict[str, list[float]] = {name: [] for name in states}
    for round_ in range(WARMUP_ROUNDS + rounds):
        order = list(SETTINGS) if round_ % 2 == 0 else list(reversed(SETTINGS))
        for name in order:
            torch.set_num_threads(SETTINGS[name][0])
            start = time.perf_counter()
            pretrain_step(states[name], clips, index, generators[name])
            if round_ >= WARMUP_ROUNDS:
                times[name].append(time.perf_counter() - start)
    ms = {name: 1000 * statistics.median(v) / BATCH for name, v in times.items()}
    out: dict[str, Any] = {
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "t1_ms_per_sample": round(ms["t1"], 2),
        "t2_ms_per_sample": round(ms["t2"], 2),
        "t2_pb_ms_per_sample": round(ms["t2+pb"], 2),
        "ratio": round(ms["t1"] / ms["t2"], 3),
        "ratio_pb": round(ms["t1"] / ms["t2+pb"], 3),
    }
    if with_profile:
        out["profile"] = profile_ops(states, clips, index)
    return out


def body(processes: int, rounds: int, label: str) -> int:
    busy = warn_if_busy()
    start = time.perf_counter()
    runs = []
    for i in range(processes):
        command = [sys.executable, __file__, "--child", str(rounds), str(int(i == 0))]
        done = subprocess.run(command, check=True, cwd=REPO, capture_output=True, text=True)
        result = json.loads(done.stdout.strip().splitlines()[-1])
        print(
            f"process {i + 1}/{processes}: 1 thread {result['t1_ms_per_sample']} ms/sample, "
            f"2 threads {result['t2_ms_per_sample']} (ratio {result['ratio']}), "
            f"2 threads + parallel backward {result['t2_pb_ms_per_sample']} "
            f"(ratio {result['ratio_pb']})",
            flush=True,
        )
        runs.append(result)
    summary: dict[str, float] = {}
    for key in ("ratio", "ratio_pb"):
        ratios = [r[key] for r in runs]
        summary[f"{key}_median"] = round(statistics.median(ratios), 2)
        summary[f"{key}_min"] = round(min(ratios), 2)
        summary[f"{key}_max"] = round(max(ratios), 2)
    for key in ("t1", "t2", "t2_pb"):
        values = [r[f"{key}_ms_per_sample"] for r in runs]
        summary[f"{key}_ms_per_sample_median"] = round(statistics.median(values), 1)
    profile = runs[0].pop("profile")
    print(format_table(profile))
    print("summary:", summary)
    payload = {
        "command": command_line(),
        "machine": machine_info(),
        "busy_at_start": busy,
        "busy_at_end": warn_if_busy(),
        "seconds": round(time.perf_counter() - start, 1),
        "processes": processes,
        "rounds": rounds,
        "summary": summary,
        "runs": runs,
        "profile": profile,
    }
    name = "thread_ratio" + (f"_{label}" if label else "")
    path = write_json(result_name(name, is_avx2_child()), payload)
    print(f"wrote {path}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--child"]:
        print(json.dumps(child(int(argv[1]), argv[2] == "1")))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_isa_argument(parser)
    parser.add_argument("--processes", type=int, default=5, help="fresh processes per ISA")
    parser.add_argument("--rounds", type=int, default=10, help="timed rounds per process")
    parser.add_argument(
        "--label", default="", help="keep this run apart: results/thread_ratio_<label>.json"
    )
    args = parser.parse_args(argv)
    run = lambda: body(args.processes, args.rounds, args.label)  # noqa: E731
    return run_isas(args.isa, run, __file__, argv)


if __name__ == "__main__":
    sys.exit(main())

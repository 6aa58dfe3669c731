"""Benchmark: whole pretraining epochs with 1 and 2 torch threads, on AVX-512 and AVX2.

The tiny preset's real ``pretrain()`` (data loading, views, intra-negatives, three encoder
passes, memory bank, backward, SGD) runs ``--epochs`` epochs of IIC ("repeat") from the same
seed once per thread setting, each in its own process, so that the thread count and the ISA
limits (:data:`iic_helpers.isa.AVX2_ENV`, set before torch is imported) apply from the start.
A setting is a thread count, ``N``, with the package's defaults (on 2 or 3 threads the views'
backward passes run on one-thread workers, :mod:`iic_helpers.parallel_backward`), or
``N-plain``: the same without them (``cpu_parallel_backward=False``, one ``loss.backward()``).

Reported per ISA: seconds per epoch (median of the epochs after the first, which also fills
the decoded-video cache), the speed-up of each thread count over one thread measured in the
same run, and how far each run's per-epoch loss is from the one-thread run's (the learning
check: a different thread count sums in another order, so the losses may differ by float
rounding only; the first three steps on fixed clips show that difference before training
amplifies it). The one-thread run is also compared with the history of the shipped
checkpoint made with one thread (``checkpoints/tiny-iic-repeat.history.csv``).

Usage::

    .venv/bin/python benchmarks/bench_pretrain_epochs.py                  # ~4 min on 2 cores
    .venv/bin/python benchmarks/bench_pretrain_epochs.py --isa native --epochs 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from iic_helpers.isa import AVX2_ENV, avx2_env

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

SHIPPED_HISTORY = REPO / "checkpoints" / "tiny-iic-repeat.history.csv"


def parse_setting(setting: str) -> tuple[int, bool]:
    """``"2"`` -> (2 threads, package defaults); ``"2-plain"`` -> (2, no parallel backward)."""
    count, _, suffix = setting.partition("-")
    if not count.isdigit() or int(count) < 1 or suffix not in ("", "plain"):
        raise ValueError(f"a thread setting is N or N-plain (N >= 1), got {setting!r}")
    return int(count), suffix != "plain"


def child(epochs: int, setting: str, out: Path) -> None:
    """Run in a child process: pretrain ``epochs`` epochs and write the history as JSON."""
    import torch

    from iic_helpers.config import make_config
    from iic_helpers.train import pretrain, read_history, uses_parallel_backward

    threads, parallel = parse_setting(setting)
    torch.set_num_threads(threads)
    cfg = make_config(
        "tiny", seed=0, epochs=epochs, intra_negative="repeat", cpu_parallel_backward=parallel
    )
    step_losses = first_step_losses(cfg)
    with tempfile.TemporaryDirectory() as tmp:
        run = pretrain(cfg, Path(tmp) / "run", progress=False)
        rows = read_history(run)
    import resource

    payload = {
        "minor_page_faults": resource.getrusage(resource.RUSAGE_SELF).ru_minflt,
        "threads": torch.get_num_threads(),
        "parallel_backward": uses_parallel_backward(cfg, torch.device("cpu"), None, 3),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "step_losses": step_losses,
        "rows": rows,
    }
    out.write_text(json.dumps(payload))


def first_step_losses(cfg: Any, steps: int = 3) -> list[float]:
    """Losses of the first ``steps`` training steps on fixed random clips (same weights, same
    draws in every process): how far one thread count or ISA is from another before training
    amplifies the difference."""
    import torch

    from iic_helpers.train import PretrainState, pretrain_step

    torch.manual_seed(0)
    state = PretrainState(cfg, 360, torch.device("cpu"))
    state.model.to(memory_format=torch.channels_last_3d)
    generator = torch.Generator().manual_seed(0)
    losses = []
    for _ in range(steps):
        clips = torch.rand(16, 3, cfg.clip_len, cfg.crop, cfg.crop, generator=generator)
        index = torch.randperm(360, generator=generator)[:16]
        losses.append(pretrain_step(state, clips, index, generator)["loss"])
    return losses


def run_child(epochs: int, setting: str, isa: str) -> dict[str, Any]:
    env = dict(os.environ)
    for name in (*AVX2_ENV, "NPY_DISABLE_CPU_FEATURES"):
        env.pop(name, None)
    if isa == "avx2":
        env = avx2_env(env)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "history.json"
        command = [sys.executable, __file__, "--child", str(epochs), setting, str(out)]
        subprocess.run(command, env=env, check=True, cwd=REPO)
        result = json.loads(out.read_text())
    if isa == "avx2" and result["cpu_capability"] != "AVX2":
        raise RuntimeError(f"the AVX2 child ran with {result['cpu_capability']}, not AVX2")
    return result


def max_loss_gap(rows: Sequence[dict[str, float]], reference: Sequence[dict[str, float]]) -> float:
    """Largest ``|loss - reference loss|`` over the epochs both have."""
    return max(abs(a["loss"] - b["loss"]) for a, b in zip(rows, reference, strict=False))


def shipped_rows() -> list[dict[str, float]]:
    from iic_helpers.runs import read_csv_rows

    return read_csv_rows(SHIPPED_HISTORY) if SHIPPED_HISTORY.exists() else []


def run(epochs: int, settings: Sequence[str], isas: Sequence[str]) -> dict[str, Any]:
    from _common import command_line, machine_info, warn_if_busy, write_json

    busy = warn_if_busy()
    start = time.perf_counter()
    shipped = shipped_rows()
    rows_out: list[dict[str, Any]] = []
    for isa in isas:
        baseline = None
        for setting in settings:
            result = run_child(epochs, setting, isa)
            history = result["rows"]
            per_epoch = statistics.median(r["seconds"] for r in history[1:] or history)
            if baseline is None:
                baseline = (per_epoch, history, result["step_losses"])
            pairs = zip(result["step_losses"], baseline[2], strict=True)
            step_gap = max(abs(a - b) for a, b in pairs)
            row = {
                "isa": isa,
                "cpu_capability": result["cpu_capability"],
                "threads": result["threads"],
                "parallel_backward": result["parallel_backward"],
                "minor_page_faults": result["minor_page_faults"],
                "epochs": len(history),
                "s_per_epoch": round(per_epoch, 2),
                "first_epoch_s": round(history[0]["seconds"], 2),
                "speedup_vs_first": round(baseline[0] / per_epoch, 2),
                "step_losses": result["step_losses"],
                "max_step_loss_gap_vs_first": float(f"{step_gap:.2g}"),
                "max_loss_gap_vs_first": float(f"{max_loss_gap(history, baseline[1]):.2g}"),
                "max_loss_gap_vs_shipped": (
                    float(f"{max_loss_gap(history, shipped):.2g}") if shipped else None
                ),
                "losses": [round(r["loss"], 6) for r in history],
            }
            rows_out.append(row)
            print(
                f"{isa:>6} {setting}: {row['s_per_epoch']} s/epoch "
                f"(x{row['speedup_vs_first']} vs {settings[0]}), first-steps loss gap "
                f"{row['max_step_loss_gap_vs_first']}, epoch loss gap vs "
                f"{settings[0]} {row['max_loss_gap_vs_first']}, vs shipped "
                f"{row['max_loss_gap_vs_shipped']}",
                flush=True,
            )
    payload = {
        "benchmark": "pretrain_epochs",
        "command": command_line(),
        "machine": machine_info(),
        "other_busy_processes": busy,
        "other_busy_processes_end": warn_if_busy(),
        "seconds": round(time.perf_counter() - start, 1),
        "rows": rows_out,
    }
    write_json("pretrain_epochs", payload)
    return payload


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--child"]:
        child(int(argv[1]), argv[2], Path(argv[3]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument(
        "--threads",
        default="1,2-plain,2",
        help="comma-separated settings, N or N-plain (no parallel backward); the first is the base",
    )
    parser.add_argument("--isa", choices=("native", "avx2", "both"), default="both")
    args = parser.parse_args(argv)
    isas = ("native", "avx2") if args.isa == "both" else (args.isa,)
    settings = args.threads.split(",")
    for setting in settings:
        parse_setting(setting)  # a bad setting fails before any run
    run(args.epochs, settings, isas)
    return 0


if __name__ == "__main__":
    sys.exit(main())

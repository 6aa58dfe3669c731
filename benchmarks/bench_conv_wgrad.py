"""Benchmark: why a second thread helps the tiny step less on AVX2 — each convolution's
forward pass, input gradient and weight gradient, with 1 and 2 threads, on AVX-512 and AVX2.

Every ``Conv3d`` of the tiny preset's backbone (R3D width 8, a 16x48x48 clip, batch 16) is
timed with the input shape it sees in training and ``channels_last_3d``, as ``pretrain()``
runs it:

* ``fwd``: ``F.conv3d``;
* ``dgrad``: the gradient of its input (``aten.convolution_backward``, input only; the
  stem's input is the clip, which needs none in training, so its ``dgrad`` is not counted
  in the step);
* ``wgrad``: the gradient of its weight (weight only);
* ``wgrad_split``: the weight gradient as two half batches computed at the same time on two
  Python threads with one intra-op thread each, then added: if the weight gradient were
  slow because oneDNN spreads it badly over threads, this would be ~2x faster than ``wgrad``
  with one thread; if memory traffic (im2col + GEMM under AVX2) limits it, it is not.

Per ISA and layer: milliseconds (median of ``--repeat`` calls) for 1 and 2 threads and the
ratio; per ISA: the sum over one training step (three encoder passes: ``fwd`` x3, ``wgrad``
x3, ``dgrad`` x3 except the stem).

Usage::

    .venv/bin/python benchmarks/bench_conv_wgrad.py              # both ISAs, ~1 min
    .venv/bin/python benchmarks/bench_conv_wgrad.py --isa native
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
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

VIEWS_PER_STEP = 3  # RGB clip, view 2, intra-negative: three encoder passes per step


def tiny_conv_layers() -> list[dict[str, Any]]:
    """Each ``Conv3d`` of the tiny backbone with the input shape it sees in training."""
    import torch

    from iic_helpers.config import make_config
    from iic_helpers.models import build_backbone

    cfg = make_config("tiny")
    model = build_backbone(cfg.backbone, width=cfg.width)
    layers: list[dict[str, Any]] = []

    def record(name: str) -> Callable[..., None]:
        def hook(module: torch.nn.Conv3d, inputs: tuple[torch.Tensor, ...]) -> None:
            layers.append(
                {
                    "layer": name,
                    "input": tuple(inputs[0].shape),
                    "weight": tuple(module.weight.shape),
                    "stride": list(module.stride),
                    "padding": list(module.padding),
                }
            )

        return hook

    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Conv3d):
            module.register_forward_pre_hook(record(name))
    with torch.no_grad():
        model(torch.zeros(cfg.batch_size, 3, cfg.clip_len, cfg.crop, cfg.crop))
    return layers


def median_ms(fn: Callable[[], Any], repeat: int) -> float:
    for _ in range(2):
        fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def time_layer(layer: dict[str, Any], threads: int, repeat: int, pool: Any) -> dict[str, float]:
    """ms of fwd / dgrad / wgrad (and wgrad_split with 2 threads) of one layer."""
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(threads)
    generator = torch.Generator().manual_seed(0)
    cl = torch.channels_last_3d
    x = torch.rand(layer["input"], generator=generator).contiguous(memory_format=cl)
    w = 0.1 * torch.randn(layer["weight"], generator=generator)
    stride, padding = layer["stride"], layer["padding"]
    y = F.conv3d(x, w, None, stride, padding)
    gy = torch.randn(y.shape, generator=generator).contiguous(memory_format=cl)

    def backward(gy: torch.Tensor, x: torch.Tensor, mask: list[bool]) -> Any:
        return torch.ops.aten.convolution_backward(
            gy, x, w, None, stride, padding, [1, 1, 1], False, [0, 0, 0], 1, mask
        )

    out = {
        "fwd": median_ms(lambda: F.conv3d(x, w, None, stride, padding), repeat),
        "dgrad": median_ms(lambda: backward(gy, x, [True, False, False]), repeat),
        "wgrad": median_ms(lambda: backward(gy, x, [False, True, False]), repeat),
    }
    if threads == 2:
        half = x.shape[0] // 2

        def split() -> torch.Tensor:
            a = pool.submit(backward, gy[:half], x[:half], [False, True, False])
            b = pool.submit(backward, gy[half:], x[half:], [False, True, False])
            return a.result()[1] + b.result()[1]

        out["wgrad_split"] = median_ms(split, repeat)
    return out


def one_intra_op_thread() -> None:
    """Worker initializer: one intra-op thread. torch gives a new thread the process-wide
    count at its first parallel call, which would override an earlier ``set_num_threads(1)``
    if the caller changed its own count in between; so that call comes first here."""
    import torch

    torch.get_num_threads()
    torch.set_num_threads(1)


def body(repeat: int) -> int:
    busy = warn_if_busy()
    start = time.perf_counter()
    layers = tiny_conv_layers()
    pool = ThreadPoolExecutor(2, initializer=one_intra_op_thread)
    rows = []
    for layer in layers:
        t1 = time_layer(layer, 1, repeat, pool)
        t2 = time_layer(layer, 2, repeat, pool)
        row: dict[str, Any] = {"layer": layer["layer"], "input": "x".join(map(str, layer["input"]))}
        for part in ("fwd", "dgrad", "wgrad"):
            row[f"{part}_t1_ms"] = round(t1[part], 2)
            row[f"{part}_t2_ms"] = round(t2[part], 2)
            row[f"{part}_2v1"] = round(t1[part] / t2[part], 2)
        row["wgrad_split_ms"] = round(t2["wgrad_split"], 2)
        rows.append(row)
    pool.shutdown()
    step = {}
    for threads in (1, 2):
        parts = {
            part: VIEWS_PER_STEP
            * sum(r[f"{part}_t{threads}_ms"] for i, r in enumerate(rows) if part != "dgrad" or i)
            for part in ("fwd", "dgrad", "wgrad")
        }
        step[f"t{threads}"] = {k: round(v, 1) for k, v in parts.items()}
        step[f"t{threads}"]["total"] = round(sum(parts.values()), 1)
    for part in ("fwd", "dgrad", "wgrad", "total"):
        step[f"{part}_2v1"] = round(step["t1"][part] / step["t2"][part], 2)
    print(format_table(rows))
    print("per step (ms, three encoder passes, stem dgrad excluded):", step)
    payload = {
        "command": command_line(),
        "machine": machine_info(),
        "busy_at_start": busy,
        "busy_at_end": warn_if_busy(),
        "seconds": round(time.perf_counter() - start, 1),
        "repeat": repeat,
        "rows": rows,
        "per_step_ms": step,
    }
    path = write_json(result_name("conv_wgrad", is_avx2_child()), payload)
    print(f"wrote {path}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_isa_argument(parser)
    parser.add_argument("--repeat", type=int, default=9, help="timed calls per measurement")
    args = parser.parse_args()
    return run_isas(args.isa, lambda: body(args.repeat), __file__)


if __name__ == "__main__":
    sys.exit(main())

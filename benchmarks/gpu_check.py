"""GPU check: the paper preset's pretraining step on CUDA, its data loading, fp32 vs AMP.

One command, under 5 minutes on one GPU, no edits::

    .venv/bin/python benchmarks/gpu_check.py

1. Training step (:func:`iic_helpers.train.pretrain_step`, the ``paper`` preset: R3D width
   64, 16x112x112, batch 16, k=1024, UCF101-sized memory bank), as ratios against the
   original's setting (fp32, NCDHW, TF32 convolutions off): fp32 with TF32 (PyTorch's
   default for cuDNN convolutions), the paper preset as it is (``default``: fp32,
   ``channels_last_3d``), bf16 autocast (``amp=True``) in NCDHW and with channels_last.
   Samples/s (a sample is 3 clips forwarded, 2 backward), clips/s, and peak memory
   (``torch.cuda.max_memory_allocated``).
2. DataLoader throughput (clips/s) with 4, 8 and 16 workers over videos pre-resized to short
   side 128 (``resize_videos``), and with 4 workers over the 240x320 originals (MPEG-4 .avi,
   written here), against the fastest step's need: how many workers keep the GPU fed.
3. A 200-step paper-size run (batch 16, the pre-resized clips through the DataLoader) in
   fp32 and in AMP from the same initial weights and draws: do their losses track each
   other (mean absolute difference, correlation, the last 50 steps' means)?

Without a CUDA device it prints why and exits 0 (so ``make bench`` passes on CPU machines).
Results go to ``benchmarks/results/gpu_check.json``.
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from _common import command_line, format_table, machine_info, warn_if_busy, write_json

from iic_helpers.config import make_config
from iic_helpers.train import PretrainState, pretrain_step

#: Settings of the training-step check: (name, config overrides, allow TF32 convolutions).
#: ``fp32`` is the original's setting (its baseline); ``default`` the paper preset unchanged.
STEP_VARIANTS: tuple[tuple[str, dict[str, Any], bool], ...] = (
    ("fp32", dict(amp=False, channels_last=False), False),
    ("fp32+tf32", dict(amp=False, channels_last=False), True),
    ("default", dict(), True),
    ("bf16", dict(amp=True, channels_last=False), True),
    ("bf16+channels_last", dict(amp=True, channels_last=True), True),
)
#: The loss-tracking run: fp32 (the preset) against bf16 autocast.
TRACK_VARIANTS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("fp32", dict(amp=False)),
    ("amp", dict(amp=True)),
)
UCF_N_DATA = 9537
XVID_GOP = 300  # keyframe interval of the test videos (Xvid's default maximum)
FORWARD_GFLOP = 39.774715904  # R3D at 16x112x112, one clip (reference/models.json)


# --------------------------------------------------------------------------- training step


def step_rows(
    device: torch.device,
    *,
    preset: str = "paper",
    batch: int = 16,
    warmup: int = 3,
    steps: int = 10,
    n_data: int = UCF_N_DATA,
    variants: Sequence[tuple[str, dict[str, Any], bool]] = STEP_VARIANTS,
    overrides: dict[str, Any] | None = None,
    verbose: bool = True,
) -> list[dict[str, Any]]:
    """Time ``pretrain_step`` in each variant; rows with ``samples_per_s``, ``clips_per_s``,
    ``ms_per_step``, ``peak_mem_gib`` (CUDA only), ``tflops`` and ``speedup`` vs fp32."""
    rows: list[dict[str, Any]] = []
    cuda = device.type == "cuda"
    if cuda:
        torch.backends.cudnn.benchmark = True
    for name, variant_overrides, tf32 in variants:
        cfg = make_config(preset, device=str(device), **(overrides or {}), **variant_overrides)
        if cuda:
            torch.backends.cudnn.allow_tf32 = tf32
            torch.backends.cuda.matmul.allow_tf32 = tf32
        row: dict[str, Any] = {
            "variant": name,
            "batch": batch,
            "amp": cfg.amp,
            "channels_last": cfg.channels_last,
            "tf32": tf32,
        }
        try:
            torch.manual_seed(0)
            state = PretrainState(cfg, n_data, device)
            if cuda and cfg.channels_last:  # as pretrain() does
                state.model.to(memory_format=torch.channels_last_3d)
            shape = (batch, 3, cfg.clip_len, cfg.crop, cfg.crop)
            clips = torch.rand(shape, device=device)
            index = torch.arange(batch, device=device) % n_data
            generator = torch.Generator(device=device).manual_seed(0)
            if cuda:
                torch.cuda.synchronize()
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats()
            for _ in range(warmup):
                stats = pretrain_step(state, clips, index, generator)
            if cuda:
                torch.cuda.synchronize()
            start = time.perf_counter()
            for _ in range(steps):
                stats = pretrain_step(state, clips, index, generator)
            if cuda:
                torch.cuda.synchronize()
            elapsed = (time.perf_counter() - start) / steps
            row.update(
                ms_per_step=1000 * elapsed,
                samples_per_s=batch / elapsed,
                clips_per_s=3 * batch / elapsed,
                loss=stats["loss"],
            )
            if cuda:
                row["peak_mem_gib"] = torch.cuda.max_memory_allocated() / 2**30
            if preset == "paper":
                row["tflops"] = 7 * FORWARD_GFLOP * batch / elapsed / 1000
            del state, clips
        except torch.cuda.OutOfMemoryError:
            row["error"] = "out of memory"
        except RuntimeError as err:  # e.g. an unsupported kernel: record it, keep going
            row["error"] = str(err).splitlines()[0][:200]
        if cuda:
            torch.cuda.empty_cache()
        rows.append(row)
        if verbose:
            print(
                f"  step {name:20s} "
                + (
                    f"{row['ms_per_step']:8.1f} ms/step {row['samples_per_s']:7.1f} samples/s "
                    f"peak {row.get('peak_mem_gib', 0):.2f} GiB"
                    if "error" not in row
                    else row["error"]
                ),
                flush=True,
            )
    base = next((r for r in rows if r["variant"] == "fp32" and "error" not in r), None)
    for row in rows:
        if base is not None and "error" not in row:
            row["speedup_vs_fp32"] = row["samples_per_s"] / base["samples_per_s"]
    return rows


# --------------------------------------------------------------------------- data loading


def _render(args: tuple[Path, str, int, int, int, int]) -> Path:
    from iic_helpers.data import render_synthetic_video, write_video

    path, name, group, frames, height, width = args
    pixels = render_synthetic_video(
        name, group=group, num_frames=frames, size=(height, width), noise=0.02, seed=group
    )
    return write_video(path, pixels, codec="mpeg4", gop=XVID_GOP)


def make_videos(
    root: Path, n_videos: int = 8, frames: int = 160, size: tuple[int, int] = (240, 320)
) -> list[Any]:
    """UCF101-like .avi videos under ``<root>/videos`` (rendered in parallel); records."""
    from iic_helpers.data import VideoRecord

    classes = ("MoveRight", "RotateClockwise", "Grow", "Oscillate")
    jobs, records = [], []
    for i in range(n_videos):
        name = classes[i % len(classes)]
        video_id = f"v_{name}_g{i + 1:02d}_c01"
        path = root / "videos" / name / f"{video_id}.avi"
        jobs.append((path, name, i + 1, frames, *size))
        records.append(
            VideoRecord(path=path, label=i % len(classes), class_name=name, video_id=video_id)
        )
    processes = min(len(jobs), max(1, (multiprocessing.cpu_count() or 1)))
    if processes > 1:
        with multiprocessing.get_context("spawn").Pool(processes) as pool:
            pool.map(_render, jobs)
    else:
        for job in jobs:
            _render(job)
    return records


def loader_rows(
    records: Sequence[Any],
    *,
    label: str,
    workers: Sequence[int] = (0, 2, 4, 8),
    batch: int = 16,
    batches: int = 20,
    verbose: bool = True,
) -> list[dict[str, Any]]:
    """Clips/s of a DataLoader over ``ClipDataset(records)`` (paper train transform).

    The records are cycled so that one epoch holds ``batches + 1`` batches (the first batch,
    with the workers' start-up, is not timed).
    """
    from torch.utils.data import DataLoader

    from iic_helpers.data import ClipDataset, train_transform

    paper = make_config("paper")
    cycled = [records[i % len(records)] for i in range((batches + 1) * batch)]
    dataset = ClipDataset(
        cycled,
        clip_len=paper.clip_len,
        transform=train_transform(paper.resize, paper.crop),
    )
    rows = []
    for n in workers:
        loader = DataLoader(
            dataset,
            batch_size=batch,
            shuffle=True,
            num_workers=n,
            pin_memory=torch.cuda.is_available(),
            drop_last=True,
            persistent_workers=False,
        )
        it = iter(loader)
        next(it)  # worker start-up and first batch are not counted
        count, start = 0, time.perf_counter()
        for clips, _, _ in it:
            count += clips.shape[0]
        elapsed = time.perf_counter() - start
        del it
        row = {
            "videos": label,
            "workers": n,
            "clips_per_s": count / elapsed,
            "clips_per_s_per_worker": count / elapsed / max(n, 1),
        }
        rows.append(row)
        if verbose:
            print(
                f"  loader {label:22s} workers={n}: {row['clips_per_s']:7.1f} clips/s", flush=True
            )
    return rows


def loss_track(
    device: torch.device,
    records: Sequence[Any],
    *,
    preset: str = "paper",
    steps: int = 200,
    batch: int = 16,
    workers: int = 8,
    n_data: int = 256,
    variants: Sequence[tuple[str, dict[str, Any]]] = TRACK_VARIANTS,
    overrides: dict[str, Any] | None = None,
    verbose: bool = True,
) -> dict[str, Any]:
    """``steps`` training steps per variant on real clips, same initial weights and draws.

    The records are cycled into ``n_data`` memory-bank rows; the DataLoader is reseeded
    alike for every variant, so the variants see the same clips in the same order.

    Returns:
        ``{"variants": {name: {"losses": [...], "seconds": s, "last50": mean}},
        "mean_abs_diff", "max_abs_diff", "correlation"}`` (the last three compare the
        first two variants step by step).
    """
    from torch.utils.data import DataLoader

    from iic_helpers.data import ClipDataset, train_transform

    base = make_config(preset, device=str(device), **(overrides or {}))
    cycled = [records[i % len(records)] for i in range(n_data)]
    dataset = ClipDataset(
        cycled, clip_len=base.clip_len, transform=train_transform(base.resize, base.crop)
    )
    out: dict[str, Any] = {"variants": {}}
    for name, variant in variants:
        cfg = base.replace(**variant)
        torch.manual_seed(0)
        state = PretrainState(cfg, n_data, device)
        if cfg.channels_last:
            state.model.to(memory_format=torch.channels_last_3d)
        state.model.train()
        generator = torch.Generator(device=device).manual_seed(1)
        losses: list[float] = []
        start = time.perf_counter()
        epoch = 0
        while len(losses) < steps:
            torch.manual_seed(100 + epoch)
            loader = DataLoader(
                dataset,
                batch_size=batch,
                shuffle=True,
                num_workers=workers,
                drop_last=True,
                pin_memory=device.type == "cuda",
                generator=torch.Generator().manual_seed(100 + epoch),
            )
            for clips, _, index in loader:
                losses.append(pretrain_step(state, clips, index, generator)["loss"])
                if len(losses) >= steps:
                    break
            epoch += 1
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        tail = losses[-50:]
        out["variants"][name] = {
            "losses": losses,
            "seconds": seconds,
            "last50": sum(tail) / len(tail),
        }
        if verbose:
            print(
                f"  track {name:6s} {steps} steps in {seconds:5.1f} s, loss {losses[0]:.3f} -> "
                f"{losses[-1]:.3f} (last 50: {out['variants'][name]['last50']:.3f})",
                flush=True,
            )
        del state
    names = [name for name, _ in variants]
    if len(names) >= 2:
        a = torch.tensor(out["variants"][names[0]]["losses"], dtype=torch.float64)
        b = torch.tensor(out["variants"][names[1]]["losses"], dtype=torch.float64)
        out["mean_abs_diff"] = (a - b).abs().mean().item()
        out["max_abs_diff"] = (a - b).abs().max().item()
        both = torch.stack([a, b])
        out["correlation"] = torch.corrcoef(both)[0, 1].item() if len(a) > 1 else float("nan")
    return out


def workers_needed(samples_per_s: float, rows: Sequence[dict[str, Any]]) -> int | None:
    """Workers to feed ``samples_per_s`` clips/s, from the best per-worker rate measured with
    workers (assuming linear scaling up to the CPU count)."""
    rates = [r["clips_per_s_per_worker"] for r in rows if r["workers"] > 0]
    if not rates or samples_per_s <= 0:
        return None
    return math.ceil(samples_per_s / max(rates))


# --------------------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--workers", default="4,8,16", help="for the pre-resized videos")
    parser.add_argument("--videos", type=int, default=8)
    parser.add_argument("--batches", type=int, default=20, help="loader batches timed per row")
    parser.add_argument("--skip-loader", action="store_true")
    parser.add_argument("--track-steps", type=int, default=200, help="0: no fp32/AMP run")
    parser.add_argument("--out", default=None, help="folder for the JSON (benchmarks/results)")
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        print(
            f"gpu_check: no CUDA device visible (torch {torch.__version__}, built for CUDA "
            f"{torch.version.cuda}); nothing measured. Run `.venv/bin/python "
            "benchmarks/gpu_check.py` on a machine with an NVIDIA GPU."
        )
        return 0
    device = torch.device("cuda")
    info = machine_info()
    info["gpu_memory_gib"] = torch.cuda.get_device_properties(0).total_memory / 2**30
    info["cudnn"] = torch.backends.cudnn.version()
    print(
        f"gpu_check on {info['cuda']} ({info['gpu_memory_gib']:.0f} GiB), {info['cpu']} "
        f"({info['logical_cpus']} CPUs), torch {info['torch']}"
    )
    start = time.perf_counter()
    steps = step_rows(device, batch=args.batch, steps=args.steps)
    loaders: list[dict[str, Any]] = []
    track: dict[str, Any] = {}
    if not args.skip_loader or args.track_steps:
        from iic_helpers.data import VideoRecord, resize_videos

        workers = [int(w) for w in args.workers.split(",") if w]
        workers = [w for w in workers if w <= (multiprocessing.cpu_count() or 1)]
        with tempfile.TemporaryDirectory(prefix="gpu_check_") as tmp:
            root = Path(tmp) / "ucf_like"
            records = make_videos(root, args.videos)
            if not args.skip_loader:
                loaders += loader_rows(
                    records,
                    label="240x320 .avi",
                    workers=workers[:1] or [0],
                    batch=args.batch,
                    batches=args.batches,
                )
            small_root = Path(tmp) / "ucf_like_128"
            resize_videos(root, small_root, short_side=128, progress=False)
            small = [
                VideoRecord(
                    path=small_root / r.path.relative_to(root),
                    label=r.label,
                    class_name=r.class_name,
                    video_id=r.video_id,
                )
                for r in records
            ]
            if not args.skip_loader:
                loaders += loader_rows(
                    small,
                    label="pre-resized 128",
                    workers=workers or [0],
                    batch=args.batch,
                    batches=args.batches,
                )
            if args.track_steps:
                track = loss_track(
                    device,
                    small,
                    steps=args.track_steps,
                    batch=args.batch,
                    workers=max(workers or [0]),
                )
    elapsed = time.perf_counter() - start
    info["other_busy_processes_end"] = warn_if_busy()
    print()
    print(
        format_table(
            steps,
            (
                "variant",
                "batch",
                "ms_per_step",
                "samples_per_s",
                "clips_per_s",
                "speedup_vs_fp32",
                "tflops",
                "peak_mem_gib",
                "error",
            ),
        )
    )
    needed = {}
    if loaders:
        print(format_table(loaders, ("videos", "workers", "clips_per_s", "clips_per_s_per_worker")))
        fastest = max(
            (r for r in steps if "error" not in r), key=lambda r: r["samples_per_s"], default=None
        )
        if fastest is not None:
            for label in dict.fromkeys(r["videos"] for r in loaders):
                n = workers_needed(
                    fastest["samples_per_s"], [r for r in loaders if r["videos"] == label]
                )
                needed[label] = n
                print(
                    f"workers needed to feed {fastest['samples_per_s']:.0f} samples/s "
                    f"({fastest['variant']}) from {label}: {n}"
                )
    if track.get("variants"):
        names = list(track["variants"])
        seconds = [track["variants"][n]["seconds"] for n in names]
        print(
            f"{args.track_steps}-step run, {names[0]} vs {names[1]}: mean |loss difference| "
            f"{track['mean_abs_diff']:.4f} (max {track['max_abs_diff']:.4f}), correlation "
            f"{track['correlation']:.3f}; last-50 means "
            + ", ".join(f"{n} {track['variants'][n]['last50']:.4f}" for n in names)
            + f"; time ratio {seconds[0] / seconds[1]:.2f}x"
        )
    print(f"({elapsed:.0f} s in all)")
    payload = {
        "benchmark": "gpu_check",
        "command": command_line(),
        "machine": info,
        "elapsed_s": elapsed,
        "steps": steps,
        "loaders": loaders,
        "workers_needed": needed,
        "loss_track": track,
    }
    path = write_json("gpu_check", payload, args.out)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Benchmark: training clips per second per DataLoader worker, by storage format.

The same videos, the same clip positions and crops (seeded ``ClipDataset``), read from:

* ``jpeg``: JPEG frame folders via PIL, the original IIC code's format (baseline);
* ``pyav``: the video files via PyAV (``ClipDataset`` default);
* ``pyav_seek96``: the same files with the reader's previous seek threshold
  (``SEEK_MIN_FRAME`` 96 instead of the package's 16, patched for this row only);
* ``pyav_preresized``: videos re-encoded with the short side 128 by
  :func:`iic_helpers.data.resize_videos` with its defaults (UCF101's ``.avi`` names: MPEG-4
  part 2, a keyframe every 16 frames) (only where the videos are larger than that);
* ``preresized_h264_avi_gop250``: what ``resize_videos`` wrote before (H.264 in ``.avi``,
  libx264's default keyframe interval): ``resize_video(codec="libx264", gop=None)``;
* ``preresized_h264_mp4_gop16``: ``resize_video(codec="libx264")`` into ``.mp4``;
* ``cache``: ``ClipDataset(cache=True)``, every video decoded once into memory up front
  (``preload()``; its one-off time is reported separately).

Datasets: the synthetic training set (64x64, 32 frames, H.264 .mp4; tiny-preset transform:
resize 37x49, random crop 32) and a few UCF101-like videos written here (240x320, 160
frames, MPEG-4 part 2 .avi with keyframes 300 frames apart, like UCF101's Xvid files;
paper transform: resize 128x171, random crop 112). JPEG frames are written at quality 90.
One process with one intra-op thread stands for one DataLoader worker (workers run
single-threaded); the page cache is warm for every format.

Usage::

    .venv/bin/python benchmarks/bench_data_loading.py          # both ISAs, ~1 min each
    .venv/bin/python benchmarks/bench_data_loading.py --synthetic-videos 4 --ucf-videos 1 \\
        --ucf-frames 40 --min-seconds 0.2
    .venv/bin/python benchmarks/bench_data_loading.py --isa native   # native instruction set only

``--isa both`` (the default) runs the benchmark natively, then again in a child process
limited to AVX2 (``--isa avx2``): results/data_loading.json and results/data_loading_avx2.json
(see ``benchmarks/_common.py``; PyAV's FFmpeg and Pillow choose their own SIMD code, which
these limits do not reach).
"""

from __future__ import annotations

import argparse
import dataclasses
import random
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
    REPO,
    add_isa_argument,
    command_line,
    format_table,
    machine_info,
    result_name,
    run_isas,
    warn_if_busy,
    write_json,
)
from PIL import Image

from iic_helpers.config import make_config
from iic_helpers.data import (
    ClipDataset,
    VideoRecord,
    read_split,
    read_video,
    render_synthetic_video,
    resize_video,
    resize_videos,
    train_transform,
    write_video,
)
from iic_helpers.data import video_reading as video_module
from iic_helpers.data.video import RESIZE_GOP

SYNTHETIC_ROOT = REPO / "data" / "synthetic"
JPEG_QUALITY = 90
#: Keyframe interval of the UCF101-like videos: Xvid's default maximum (UCF101 is Xvid).
XVID_GOP = 300
#: The reader's seek threshold before this benchmark changed it (row ``pyav_seek96``).
OLD_SEEK_MIN_FRAME = 96
#: (row label, resize_video options, container) of the other pre-resized encodings.
RESIZE_VARIANTS = (
    ("preresized_h264_avi_gop250", {"codec": "libx264", "gop": None}, ".avi"),
    ("preresized_h264_mp4_gop16", {"codec": "libx264"}, ".mp4"),
)


# --------------------------------------------------------------------------- data preparation


def ensure_synthetic(root: Path = SYNTHETIC_ROOT) -> Path:
    """The synthetic dataset; generated with the package's command when missing."""
    if not (root / "videos").is_dir() or not any((root / "videos").rglob("*.mp4")):
        print(f"  {root} has no videos: running `python -m iic_helpers make-synthetic`")
        subprocess.run(
            [sys.executable, "-m", "iic_helpers", "make-synthetic", "--data-root", str(root)],
            check=True,
            cwd=REPO,
        )
    return root


def write_jpeg_folders(records: Sequence[VideoRecord], frames_root: Path) -> int:
    """Decode each video and write ``<frames_root>/<video_id>/frame000001.jpg …``; bytes."""
    total = 0
    for record in records:
        folder = frames_root / record.video_id
        folder.mkdir(parents=True, exist_ok=True)
        for i, frame in enumerate(read_video(record.path)):
            path = folder / f"frame{i + 1:06d}.jpg"
            Image.fromarray(frame).save(path, quality=JPEG_QUALITY)
            total += path.stat().st_size
    return total


def make_ucf_like(
    root: Path, n_videos: int, frames: int, size: tuple[int, int]
) -> list[VideoRecord]:
    """``n_videos`` UCF101-like .avi videos (MPEG-4 part 2) under ``<root>/videos/``."""
    classes = ("MoveRight", "RotateClockwise", "Grow", "Oscillate")
    records = []
    for i in range(n_videos):
        name = classes[i % len(classes)]
        video_id = f"v_{name}_g{i // len(classes) + 1:02d}_c01"
        path = root / "videos" / name / f"{video_id}.avi"
        pixels = render_synthetic_video(
            name, group=i + 1, num_frames=frames, size=size, noise=0.02, seed=i
        )
        write_video(path, pixels, codec="mpeg4", gop=XVID_GOP)
        records.append(
            VideoRecord(path=path, label=i % len(classes), class_name=name, video_id=video_id)
        )
    return records


def bytes_of(paths: Sequence[Path]) -> int:
    return sum(p.stat().st_size for p in paths)


# --------------------------------------------------------------------------- timing


def clips_per_second(
    dataset: ClipDataset, *, min_items: int, min_seconds: float, seed: int = 0
) -> dict[str, float]:
    """Read items in a seeded random order (3 warm-up items first) until both minimums are
    met; returns ``{"clips_per_s", "ms_per_clip", "items"}``."""
    order = np.random.default_rng(seed).permutation(len(dataset))
    for i in range(min(3, len(dataset))):
        dataset[int(order[i])]
    count = 0
    start = time.perf_counter()
    while count < min_items or time.perf_counter() - start < min_seconds:
        clip, _, _ = dataset[int(order[count % len(order)])]
        count += 1
    elapsed = time.perf_counter() - start
    return {"clips_per_s": count / elapsed, "ms_per_clip": 1000 * elapsed / count, "items": count}


def measure_dataset(
    name: str,
    records: Sequence[VideoRecord],
    transform: Any,
    frames_root: Path,
    *,
    preresized: Sequence[VideoRecord] | None,
    other_encodings: dict[str, Sequence[VideoRecord]] | None = None,
    sizes_bytes: dict[str, int],
    min_items: int,
    min_seconds: float,
    verbose: bool,
) -> list[dict[str, Any]]:
    """Rows for one dataset: jpeg (baseline), pyav (+ old seek threshold), pre-resized, cache."""
    variants: list[tuple[str, ClipDataset]] = [
        ("jpeg", ClipDataset(records, transform=transform, frames_root=frames_root, seed=0)),
        ("pyav", ClipDataset(records, transform=transform, seed=0)),
        ("pyav_seek96", ClipDataset(records, transform=transform, seed=0)),
    ]
    if preresized is not None:
        variants.append(("pyav_preresized", ClipDataset(preresized, transform=transform, seed=0)))
    for label, encoded in (other_encodings or {}).items():
        variants.append((label, ClipDataset(encoded, transform=transform, seed=0)))
    cached = ClipDataset(records, transform=transform, seed=0, cache=True)
    start = time.perf_counter()
    cached.preload(progress=False)
    preload_s = time.perf_counter() - start
    variants.append(("cache", cached))
    rows = []
    base = None
    for variant, dataset in variants:
        # pyav_seek96: the previous threshold; every other row uses the package's
        seek_from = OLD_SEEK_MIN_FRAME if variant == "pyav_seek96" else video_module.SEEK_MIN_FRAME
        video_module._UNSEEKABLE.clear()  # each row learns for itself which files cannot seek
        saved, video_module.SEEK_MIN_FRAME = video_module.SEEK_MIN_FRAME, seek_from
        seeks = {"tried": 0, "failed": 0}
        decode_after_seek = video_module._decode_after_seek

        def counting(*args, _inner=decode_after_seek, _seeks=seeks):
            out = _inner(*args)
            _seeks["tried"] += 1
            _seeks["failed"] += out is None  # fell back to decoding from the start
            return out

        video_module._decode_after_seek = counting
        try:
            timing = clips_per_second(dataset, min_items=min_items, min_seconds=min_seconds)
        finally:
            video_module.SEEK_MIN_FRAME = saved
            video_module._decode_after_seek = decode_after_seek
        row = {"dataset": name, "format": variant, **timing}
        row["seeks"] = f"{seeks['tried'] - seeks['failed']}/{seeks['tried']}"
        if variant == "jpeg":
            base = row["clips_per_s"]
        row["speedup_vs_jpeg"] = row["clips_per_s"] / base
        row["storage_mb"] = (
            cached.cache_bytes / 1e6 if variant == "cache" else sizes_bytes[variant] / 1e6
        )
        if variant == "cache":
            row["preload_s"] = preload_s
        rows.append(row)
        if verbose:
            print(
                f"  {name:10s} {variant:16s} {row['clips_per_s']:8.1f} clips/s "
                f"({row['ms_per_clip']:.1f} ms/clip)",
                flush=True,
            )
    return rows


def same_clips(records: Sequence[VideoRecord], transform: Any, frames_root: Path) -> float:
    """Largest |difference| between a clip read from the video and from its JPEG folder
    (same seed, so same position and crop; JPEG re-compression explains the rest)."""
    video = ClipDataset(records, transform=transform, seed=0)
    jpeg = ClipDataset(records, transform=transform, frames_root=frames_root, seed=0)
    a, b = video[0][0], jpeg[0][0]
    return float((a - b).abs().mean()) if a.shape == b.shape else float("nan")


def run(
    *,
    synthetic_root: Path = SYNTHETIC_ROOT,
    synthetic_videos: int = 40,
    ucf_videos: int = 4,
    ucf_frames: int = 160,
    ucf_size: tuple[int, int] = (240, 320),
    min_items: int = 20,
    min_seconds: float = 3.0,
    threads: int = 1,
    verbose: bool = True,
) -> dict[str, Any]:
    """Run the benchmark; returns ``{"rows": [...], "datasets": {...}}``.

    Each row: ``dataset``, ``format``, ``clips_per_s``, ``ms_per_clip``, ``speedup_vs_jpeg``,
    ``storage_mb``. ``ucf_videos=0`` skips the UCF101-like videos.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    random.seed(0)
    rows: list[dict[str, Any]] = []
    datasets: dict[str, Any] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="bench_data_") as tmp:
            tmp = Path(tmp)
            # synthetic set, tiny-preset transform
            root = ensure_synthetic(synthetic_root)
            records = read_split(root, 1, "train")
            step = max(1, len(records) // synthetic_videos)
            records = records[::step][:synthetic_videos]
            tiny = make_config("tiny")
            transform = train_transform(tiny.resize, tiny.crop)
            frames_root = tmp / "synthetic_frames"
            jpeg_bytes = write_jpeg_folders(records, frames_root)
            pyav_bytes = bytes_of([r.path for r in records])
            sizes = {"jpeg": jpeg_bytes, "pyav": pyav_bytes, "pyav_seek96": pyav_bytes}
            datasets["synthetic"] = {
                "videos": len(records),
                "source": "64x64, 32 frames, H.264 .mp4 (data/synthetic)",
                "transform": f"resize {tiny.resize}, random crop {tiny.crop}, T={tiny.clip_len}",
                "preresized": "not applicable (64x64 is below the 128 short side)",
                "mean_abs_diff_video_vs_jpeg": same_clips(records, transform, frames_root),
            }
            rows += measure_dataset(
                "synthetic",
                records,
                transform,
                frames_root,
                preresized=None,
                sizes_bytes=sizes,
                min_items=min_items,
                min_seconds=min_seconds,
                verbose=verbose,
            )
            # UCF101-like, paper transform
            if ucf_videos:
                ucf_root = tmp / "ucf_like"
                records = make_ucf_like(ucf_root, ucf_videos, ucf_frames, ucf_size)
                small_root = tmp / "ucf_like_128"
                resize_videos(ucf_root, small_root, short_side=128, progress=False)
                small = [
                    VideoRecord(
                        path=small_root / r.path.relative_to(ucf_root),
                        label=r.label,
                        class_name=r.class_name,
                        video_id=r.video_id,
                    )
                    for r in records
                ]
                paper = make_config("paper")
                transform = train_transform(paper.resize, paper.crop)
                frames_root = tmp / "ucf_frames"
                sizes = {
                    "jpeg": write_jpeg_folders(records, frames_root),
                    "pyav": bytes_of([r.path for r in records]),
                    "pyav_seek96": bytes_of([r.path for r in records]),
                    "pyav_preresized": bytes_of([r.path for r in small]),
                }
                other = {}
                for label, options, suffix in RESIZE_VARIANTS:
                    folder = tmp / label
                    other[label] = [
                        dataclasses.replace(r, path=folder / f"{r.video_id}{suffix}")
                        for r in records
                    ]
                    for src, dst in zip(records, other[label], strict=True):
                        resize_video(src.path, dst.path, short_side=128, **options)
                    sizes[label] = bytes_of([r.path for r in other[label]])
                small_shape = read_video(small[0].path).shape
                datasets["ucf_like"] = {
                    "videos": len(records),
                    "source": f"{ucf_size[0]}x{ucf_size[1]}, {ucf_frames} frames, MPEG-4 part 2 "
                    f".avi, keyframe interval {XVID_GOP} (rendered synthetic scenes with 2% "
                    "pixel noise)",
                    "preresized": f"{small_shape[1]}x{small_shape[2]} (resize_videos defaults: "
                    f"MPEG-4 part 2 in .avi, keyframe every {RESIZE_GOP} frames); "
                    "preresized_h264_avi_gop250: H.264 in .avi, libx264's default keyframe "
                    "interval (the previous default); preresized_h264_mp4_gop16: H.264 in .mp4, "
                    f"keyframe every {RESIZE_GOP}; reader seeks from frame "
                    f"{video_module.SEEK_MIN_FRAME} (pyav_seek96: from {OLD_SEEK_MIN_FRAME})",
                    "transform": f"resize {paper.resize}, random crop {paper.crop}, "
                    f"T={paper.clip_len}",
                    "mean_abs_diff_video_vs_jpeg": same_clips(records, transform, frames_root),
                }
                rows += measure_dataset(
                    "ucf_like",
                    records,
                    transform,
                    frames_root,
                    preresized=small,
                    other_encodings=other,
                    sizes_bytes=sizes,
                    min_items=min_items,
                    min_seconds=min_seconds,
                    verbose=verbose,
                )
    finally:
        torch.set_num_threads(previous)
    return {"rows": rows, "datasets": datasets, "jpeg_quality": JPEG_QUALITY, "threads": threads}


def parse_size(text: str) -> tuple[int, int]:
    h, w = text.lower().split("x")
    return int(h), int(w)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--synthetic-root", default=str(SYNTHETIC_ROOT))
    parser.add_argument("--synthetic-videos", type=int, default=40)
    parser.add_argument("--ucf-videos", type=int, default=4, help="0 skips the UCF101-like set")
    parser.add_argument("--ucf-frames", type=int, default=160)
    parser.add_argument("--ucf-size", type=parse_size, default=(240, 320), help="HxW")
    parser.add_argument("--min-items", type=int, default=20)
    parser.add_argument("--min-seconds", type=float, default=3.0)
    parser.add_argument("--threads", type=int, default=1, help="intra-op threads (workers: 1)")
    parser.add_argument("--out", default=None, help="folder for the JSON (benchmarks/results)")
    add_isa_argument(parser)
    args = parser.parse_args(argv)
    return run_isas(args.isa, lambda: run_once(args), __file__, argv)


def run_once(args: argparse.Namespace) -> int:
    """One run of the benchmark in this process (whatever instruction set it is limited to)."""
    info = machine_info()
    print(
        f"bench_data_loading on {info['cpu']} ({info['logical_cpus']} CPUs), "
        f"torch {info['torch']}, isa {info['isa']} ({info['torch_cpu_capability']}), "
        f"one worker = one process, {args.threads} thread(s)"
    )
    if info["other_busy_processes"]:
        print("  note: other busy processes:", *info["other_busy_processes"], sep="\n    ")
    start = time.perf_counter()
    result = run(
        synthetic_root=Path(args.synthetic_root),
        synthetic_videos=args.synthetic_videos,
        ucf_videos=args.ucf_videos,
        ucf_frames=args.ucf_frames,
        ucf_size=args.ucf_size,
        min_items=args.min_items,
        min_seconds=args.min_seconds,
        threads=args.threads,
    )
    elapsed = time.perf_counter() - start
    info["other_busy_processes_end"] = warn_if_busy()
    print()
    for name, facts in result["datasets"].items():
        print(
            f"{name}: {facts['videos']} videos, {facts['source']}; {facts['transform']}; "
            f"pre-resized: {facts['preresized']}"
        )
    print(
        format_table(
            result["rows"],
            (
                "dataset",
                "format",
                "clips_per_s",
                "ms_per_clip",
                "speedup_vs_jpeg",
                "storage_mb",
                "seeks",
                "preload_s",
            ),
        )
    )
    print(f"(clips/s of one worker; speedup vs JPEG folders + PIL, same run; {elapsed:.0f} s)")
    payload = {
        "benchmark": "data_loading",
        "command": command_line(),
        "machine": info,
        "elapsed_s": elapsed,
        **result,
    }
    path = write_json(result_name("data_loading"), payload, args.out)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

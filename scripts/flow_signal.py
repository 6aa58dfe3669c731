"""How much of the synthetic motion survives in the stored optical flow (the ``u`` view)?

For a few videos per class, prints the flow in pixels per frame (OpenCV Farneback, as
``python -m iic_helpers flow`` computes it) and how many of the 255 grey levels the stored
8-bit ``u`` JPEGs use around "no motion" (128) at the original's ±20 px bound.

    python scripts/flow_signal.py --data-root data/synthetic --per-class 3
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

from iic_helpers.data import read_split, read_video, resolve_data_root
from iic_helpers.data.flow import DEFAULT_BOUND, compute_flow
from iic_helpers.data.video import count_jpeg_frames, find_frame_dir, read_jpeg_frames


def flow_signal(root: Path, per_class: int = 3) -> dict[str, dict[str, float]]:
    """Per class: ``max_px``, ``p99_px`` (|flow| in px/frame, both components) and
    ``u_levels`` (mean |u - 128| of the stored u JPEGs, in grey levels)."""
    chosen: dict[str, list] = defaultdict(list)
    for record in read_split(root, subset="train"):
        if len(chosen[record.class_name]) < per_class:
            chosen[record.class_name].append(record)
    out = {}
    for name, records in sorted(chosen.items()):
        magnitudes, levels = [], []
        for record in records:
            flow = np.abs(compute_flow(read_video(record.path)))
            magnitudes.append(flow.reshape(-1))
            folder = find_frame_dir(root / "flow" / "u", record.video_id)
            u = read_jpeg_frames(folder, range(count_jpeg_frames(folder)))[..., 0]
            levels.append(np.abs(u.astype(float) - 128).mean())
        values = np.concatenate(magnitudes)
        out[name] = {
            "max_px": float(values.max()),
            "p99_px": float(np.percentile(values, 99)),
            "u_levels": float(np.mean(levels)),
        }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", default="data/synthetic")
    parser.add_argument("--per-class", type=int, default=3)
    args = parser.parse_args(argv)
    root = resolve_data_root(args.data_root)
    if not (root / "flow" / "u").is_dir():
        print(f"no flow in {root / 'flow'}: run `python -m iic_helpers flow --data-root {root}`")
        return 2
    print(f"bound ±{DEFAULT_BOUND} px -> 1 px/frame = {127.5 / DEFAULT_BOUND:.1f} grey levels")
    print(f"{'class':16s} {'max px':>7s} {'p99 px':>7s} {'mean |u-128|':>13s}")
    for name, m in flow_signal(root, args.per_class).items():
        print(f"{name:16s} {m['max_px']:7.2f} {m['p99_px']:7.2f} {m['u_levels']:13.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

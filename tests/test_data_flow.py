"""Optical flow (Farneback) and the u/v views of ClipDataset."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from iic_helpers.data import ClipDataset, make_synthetic_dataset, read_split, write_video
from iic_helpers.data.flow import compute_flow, flow_to_uint8, write_flow, write_flow_for_records


def _moving_texture(steps: int = 6, shift: int = 2, size: int = 48) -> np.ndarray:
    rng = np.random.default_rng(0)
    base = rng.random((size // 4, size // 4))
    texture = np.kron(base, np.ones((4, 4)))  # blocky texture, trackable
    frames = [np.roll(texture, shift * t, axis=1) for t in range(steps)]
    rgb = (np.stack(frames)[..., None].repeat(3, -1) * 200 + 20).astype(np.uint8)
    return rgb


def test_farneback_recovers_a_rightward_shift() -> None:
    flow = compute_flow(_moving_texture(shift=2))
    assert flow.shape == (5, 48, 48, 2) and flow.dtype == np.float32
    inner = flow[:, 8:-8, 8:-8]
    assert np.median(inner[..., 0]) == pytest.approx(2.0, abs=0.3)
    assert np.median(inner[..., 1]) == pytest.approx(0.0, abs=0.3)


def test_quantisation_convention() -> None:
    q = flow_to_uint8(np.array([-100.0, -20.0, 0.0, 20.0, 100.0]), bound=20)
    assert q.tolist() == [0, 0, 128, 255, 255]


def test_errors() -> None:
    with pytest.raises(ValueError, match="unknown flow method"):
        compute_flow(_moving_texture(), method="magic")
    with pytest.raises(ValueError, match="uint8"):
        compute_flow(np.zeros((3, 8, 8, 3), np.float32))


def test_write_flow_and_flow_views(tmp_path) -> None:
    video = write_video(tmp_path / "v.mp4", _moving_texture(steps=8), lossless=True)
    n = write_flow(video, tmp_path / "u" / "v", tmp_path / "v" / "v")
    assert n == 7 and len(list((tmp_path / "u" / "v").glob("frame*.jpg"))) == 7


def test_resumable_flow_for_a_dataset_and_aligned_views(tmp_path) -> None:
    root = make_synthetic_dataset(
        tmp_path / "syn",
        n_groups=8,
        clips_per_group=1,
        num_frames=12,
        size=32,
        classes=("MoveRight", "MoveLeft"),
    )
    records = read_split(root, 1, "train")
    assert write_flow_for_records(records, progress=False) == {"written": 2, "skipped": 0}
    assert write_flow_for_records(records, progress=False) == {"written": 0, "skipped": 2}
    ds = ClipDataset(records, clip_len=8, views=("rgb", "u", "v"))
    torch.manual_seed(0)
    right = next(i for i, r in enumerate(records) if r.class_name == "MoveRight")
    clips, label, index = ds[right]
    assert index == right
    assert set(clips) == {"rgb", "u", "v"}
    assert clips["rgb"].shape == clips["u"].shape == (3, 8, 32, 32)
    # MoveRight: the horizontal component is above 'no motion' (0.5) on average where it moves
    moving = (clips["u"][0] - 0.5).abs() > 0.01
    assert moving.any()
    assert clips["u"][0][moving].mean() > 0.5 > clips["v"][0][moving].mean() - 0.02


def test_flow_signal_script_sees_horizontal_motion_in_u(tmp_path) -> None:
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "scripts" / "flow_signal.py"
    spec = importlib.util.spec_from_file_location("flow_signal", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    root = make_synthetic_dataset(
        tmp_path / "syn",
        n_groups=8,
        clips_per_group=1,
        num_frames=12,
        size=32,
        classes=("MoveRight", "MoveUp"),
    )
    write_flow_for_records(read_split(root, 1, "train"), progress=False)
    signal = module.flow_signal(root, per_class=2)
    assert set(signal) == {"MoveRight", "MoveUp"}
    assert all(m["p99_px"] > 0.5 for m in signal.values())  # both classes move
    # u is the horizontal component: it carries MoveRight, much less MoveUp
    assert signal["MoveRight"]["u_levels"] > 2 * signal["MoveUp"]["u_levels"]

"""Optical flow as the second view (the paper's ``u`` / ``v`` views), computed with OpenCV.

Flow is stored as the two-stream convention does, in the original's folder layout::

    <root>/flow/u/<video_id>/frame000001.jpg    horizontal component, one grey JPEG per pair
    <root>/flow/v/<video_id>/frame000001.jpg    vertical component

Each component is clipped to ``[-bound, bound]`` pixels per frame and mapped linearly to
``0..255`` (128 = no motion). A video of ``N`` frames has ``N - 1`` flow frames.
Farneback (``opencv-python-headless``) is the default; TV-L1, the paper's choice, is used
when ``opencv-contrib-python`` provides ``cv2.optflow``. Computing flow is slow on a CPU
(it is optional and not part of the default tutorial run).
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from .splits import VideoRecord
from .video import read_video

__all__ = ["FLOW_METHODS", "compute_flow", "flow_to_uint8", "write_flow", "write_flow_for_records"]

FLOW_METHODS = ("farneback", "tvl1")
DEFAULT_BOUND = 20.0


def _cv2():
    try:
        import cv2
    except ImportError as err:  # pragma: no cover - cv2 is a dependency
        raise ImportError("optical flow needs OpenCV: pip install opencv-python-headless") from err
    return cv2


def compute_flow(frames: np.ndarray, method: str = "farneback") -> np.ndarray:
    """Dense optical flow between consecutive frames.

    Args:
        frames: ``(T, H, W, 3)`` uint8 RGB frames.
        method: ``"farneback"`` or ``"tvl1"`` (needs ``opencv-contrib-python``).

    Returns:
        ``(T - 1, H, W, 2)`` float32 flow in pixels: ``[..., 0]`` = u (right positive),
        ``[..., 1]`` = v (down positive).
    """
    cv2 = _cv2()
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be (T, H, W, 3) uint8, got {frames.shape} {frames.dtype}")
    if method == "farneback":

        def estimate(a, b):
            return cv2.calcOpticalFlowFarneback(a, b, None, 0.5, 3, 9, 3, 5, 1.1, 0)
    elif method == "tvl1":
        if not hasattr(cv2, "optflow"):
            raise ImportError(
                "method='tvl1' needs cv2.optflow: pip install opencv-contrib-python "
                "(or use method='farneback')"
            )
        tvl1 = cv2.optflow.DualTVL1OpticalFlow_create()

        def estimate(a, b):
            return tvl1.calc(a, b, None)
    else:
        raise ValueError(f"unknown flow method {method!r}; choose one of {FLOW_METHODS}")
    grey = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames]
    flows = [estimate(a, b) for a, b in zip(grey[:-1], grey[1:], strict=True)]
    if not flows:
        return np.zeros((0, *frames.shape[1:3], 2), np.float32)
    return np.stack(flows).astype(np.float32)


def flow_to_uint8(flow: np.ndarray, bound: float = DEFAULT_BOUND) -> np.ndarray:
    """Clip to ``[-bound, bound]`` and map to ``0..255`` (uint8); 0 motion -> 127.5 -> 128."""
    scaled = (np.clip(flow, -bound, bound) + bound) * (255.0 / (2 * bound))
    return np.round(scaled).astype(np.uint8)


def write_flow(
    video: str | Path,
    u_dir: str | Path,
    v_dir: str | Path,
    *,
    method: str = "farneback",
    bound: float = DEFAULT_BOUND,
) -> int:
    """Compute one video's flow and write its u and v JPEG folders atomically.

    Returns the number of flow frames written (frames - 1).
    """
    from PIL import Image

    frames = read_video(video)
    quantised = flow_to_uint8(compute_flow(frames, method), bound)
    for component, target in ((0, Path(u_dir)), (1, Path(v_dir))):
        tmp = target.with_name(target.name + ".partial")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        for t, image in enumerate(quantised[..., component]):
            Image.fromarray(image, mode="L").save(tmp / f"frame{t + 1:06d}.jpg", quality=95)
        shutil.rmtree(target, ignore_errors=True)
        tmp.rename(target)
    return len(quantised)


def write_flow_for_records(
    records: Sequence[VideoRecord],
    flow_root: str | Path | None = None,
    *,
    method: str = "farneback",
    bound: float = DEFAULT_BOUND,
    progress: bool = True,
) -> dict[str, int]:
    """Flow for every record, resumably: finished videos (both folders present) are skipped.

    Args:
        records: from :func:`~iic_helpers.data.read_split`.
        flow_root: folder for ``u/`` and ``v/``; default ``<dataset root>/flow``.

    Returns:
        ``{"written": n, "skipped": m}``.
    """

    counts = {"written": 0, "skipped": 0}
    for record in tqdm(records, desc="optical flow", disable=not progress):
        base = Path(flow_root) if flow_root is not None else record.root / "flow"
        u_dir, v_dir = base / "u" / record.video_id, base / "v" / record.video_id
        if u_dir.is_dir() and v_dir.is_dir():
            counts["skipped"] += 1
            continue
        write_flow(record.path, u_dir, v_dir, method=method, bound=bound)
        counts["written"] += 1
    return counts

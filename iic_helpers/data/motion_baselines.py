"""Two cheap baselines that show what a video dataset's labels depend on.

* `single_frame_features`: one frame, block-averaged to a small grid of RGB values. A
  linear classifier on these sees appearance only.
* `motion_features`: a handful of hand-made numbers per video computed from frame
  differences and spatial gradients (a global affine Lucas-Kanade fit per frame pair):
  median velocity, expansion (divergence), rotation (curl), how much of each there is, how
  often the motion reverses, and how bursty the change is. A linear classifier on these
  sees motion only.

On the synthetic dataset (`make_synthetic_dataset`) the first should sit near chance and
the second far above it; `compare_baselines` returns both with the chance level.

Videos are ``(N, T, H, W, 3)`` arrays (uint8 in [0, 255] or float in [0, 1]), or a list of
``(T, H, W, 3)`` arrays of possibly different sizes; clips in the package's tensor layout
``(N, C, T, H, W)`` are accepted with ``channels_first=True``. Torch tensors work too.

Example:
    >>> from iic_helpers.data.synthetic import render_synthetic_video
    >>> videos = [render_synthetic_video(c, group=g) for g in (1, 2) for c in ("MoveLeft", "Grow")]
    >>> motion_features(videos).shape
    (4, 10)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..probe import linear_probe_accuracy

__all__ = [
    "MOTION_FEATURE_NAMES",
    "compare_baselines",
    "linear_probe_accuracy",
    "motion_features",
    "single_frame_features",
]

#: Names of the columns `motion_features` returns, in order.
MOTION_FEATURE_NAMES: tuple[str, ...] = (
    "median_vx",  # median horizontal velocity at the centre of the change (+ = right)
    "median_vy",  # median vertical velocity (+ = down)
    "median_div",  # median expansion rate (+ = growing)
    "median_curl",  # median rotation rate (+ = clockwise on screen)
    "mean_abs_v",  # mean speed
    "mean_abs_div",
    "mean_abs_curl",
    "reversals",  # fraction of frame pairs whose velocity points against the previous one
    "calm_fraction",  # fraction of frame pairs with little change (< 25 % of the peak)
    "energy_cv",  # coefficient of variation of the per-pair change energy
)


def _as_videos(videos: Any, channels_first: bool) -> list[np.ndarray]:
    """Return a list of float32 ``(T, H, W, 3)`` arrays in [0, 1]."""
    if hasattr(videos, "detach"):  # a torch tensor
        videos = videos.detach().cpu().numpy()
    if isinstance(videos, np.ndarray):
        if videos.ndim != 5:
            layout = "(N, C, T, H, W)" if channels_first else "(N, T, H, W, C)"
            raise ValueError(f"videos must be {layout}, got shape {videos.shape}")
        items: Sequence[Any] = list(videos)
    else:
        items = list(videos)
    out = []
    for video in items:
        if hasattr(video, "detach"):
            video = video.detach().cpu().numpy()
        video = np.asarray(video)
        if video.ndim != 4:
            raise ValueError(f"each video must have 4 dimensions, got shape {video.shape}")
        if channels_first:
            video = np.moveaxis(video, 0, -1)  # (C, T, H, W) -> (T, H, W, C)
        scale = 255.0 if video.dtype == np.uint8 else 1.0
        out.append(video.astype(np.float32) / scale)
    if not out:
        raise ValueError("no videos given")
    return out


def _block_mean(image: np.ndarray, grid: int) -> np.ndarray:
    """Average ``(H, W, C)`` over a ``grid x grid`` set of near-equal blocks."""
    rows = np.array_split(np.arange(image.shape[0]), grid)
    cols = np.array_split(np.arange(image.shape[1]), grid)
    return np.array([[image[r][:, c].mean(axis=(0, 1)) for c in cols] for r in rows])


def single_frame_features(
    videos: Any, *, frame: int | None = None, grid: int = 8, channels_first: bool = False
) -> np.ndarray:
    """One frame per video, block-averaged to ``grid x grid`` RGB values.

    Args:
        videos: ``(N, T, H, W, 3)`` array or list of ``(T, H, W, 3)`` arrays (uint8 or
            float in [0, 1]); ``(N, C, T, H, W)`` with ``channels_first=True``.
        frame: frame index (negative counts from the end); None = the middle frame.
        grid: output grid size; H and W must be at least `grid`.
        channels_first: inputs are laid out ``(C, T, H, W)`` per video.

    Returns:
        float32 array ``(N, grid * grid * 3)``.
    """
    if grid < 1:
        raise ValueError(f"grid must be >= 1, got {grid}")
    feats = []
    for video in _as_videos(videos, channels_first):
        t = video.shape[0] // 2 if frame is None else frame
        if not -video.shape[0] <= t < video.shape[0]:
            raise ValueError(f"frame {frame} is outside a video of {video.shape[0]} frames")
        if min(video.shape[1:3]) < grid:
            raise ValueError(f"frames of size {video.shape[1:3]} are smaller than grid={grid}")
        feats.append(_block_mean(video[t], grid).ravel())
    return np.asarray(feats, dtype=np.float32)


def _downsample(video: np.ndarray, factor: int) -> np.ndarray:
    """Average ``(T, H, W, C)`` over ``factor x factor`` blocks (edges cropped)."""
    if factor == 1:
        return video
    t, h, w, c = video.shape
    h2, w2 = h // factor, w // factor
    v = video[:, : h2 * factor, : w2 * factor]
    return v.reshape(t, h2, factor, w2, factor, c).mean(axis=(2, 4))


def _box_blur(video: np.ndarray) -> np.ndarray:
    """3x3 box blur over H and W of ``(T, H, W, C)`` (edge values repeated)."""
    p = np.pad(video, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="edge")
    rows = (p[:, :-2] + p[:, 1:-1] + p[:, 2:]) / 3.0
    return (rows[:, :, :-2] + rows[:, :, 1:-1] + rows[:, :, 2:]) / 3.0


def _centre_on_change(video: np.ndarray) -> np.ndarray:
    """Roll ``(T, H, W, C)`` in space so that the centre of the change sits mid-frame.

    The centre is a circular mean, so an object that wraps around the frame edges (as the
    synthetic ones do) ends up whole in the middle instead of split across the border,
    where a single affine flow would read its growth as shrinking. The roll is the same
    for every frame, so it adds no motion.
    """
    change = np.abs(np.diff(video, axis=0)).sum(axis=(0, 3))  # (H, W)
    if change.sum() == 0:
        return video
    shifts = []
    for axis, n in ((0, video.shape[1]), (1, video.shape[2])):
        profile = change.sum(axis=1 - axis)
        angle = np.angle((profile * np.exp(2j * np.pi * np.arange(n) / n)).sum())
        centre = int(round(angle / (2 * np.pi) * n)) % n
        shifts.append(n // 2 - centre)
    return np.roll(video, shifts, axis=(1, 2))


def _affine_flow(video: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fit one affine flow per frame pair of ``(T, H, W, C)``.

    Returns ``(params, energy)``: params ``(T-1, 6)`` with the velocity at the centroid of
    the change ``(vx, vy)``, ``div``, ``curl`` and the change centroid ``(xc, yc)``, in
    pixels per frame (coordinates are pixels from the frame centre); energy ``(T-1,)`` is
    the mean absolute frame difference.
    """
    _, h, w, _ = video.shape
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    xs -= (w - 1) / 2
    ys -= (h - 1) / 2
    out = np.zeros((video.shape[0] - 1, 6), dtype=np.float64)
    energy = np.zeros(video.shape[0] - 1, dtype=np.float64)
    for t in range(video.shape[0] - 1):
        a, b = video[t], video[t + 1]
        mid = (a + b) / 2
        iy, ix = np.gradient(mid, axis=(0, 1))
        it = b - a
        x, y = xs[..., None], ys[..., None]
        # Columns of the Lucas-Kanade system: ix*vx + iy*vy + it = 0 with an affine v(x, y).
        cols = np.stack([ix, ix * x, ix * y, iy, iy * x, iy * y], axis=-1).reshape(-1, 6)
        ata = cols.T @ cols
        atb = cols.T @ (-it.reshape(-1))
        ridge = 1e-3 * np.trace(ata) / 6 + 1e-9
        p = np.linalg.solve(ata + ridge * np.eye(6), atb)
        change = np.abs(it).sum(axis=-1)
        total = change.sum()
        energy[t] = change.mean()
        xc = float((change * xs).sum() / total) if total > 0 else 0.0
        yc = float((change * ys).sum() / total) if total > 0 else 0.0
        vx = p[0] + p[1] * xc + p[2] * yc
        vy = p[3] + p[4] * xc + p[5] * yc
        out[t] = (vx, vy, p[1] + p[5], p[4] - p[2], xc, yc)
    return out, energy


def motion_features(
    videos: Any, *, downsample: int = 2, channels_first: bool = False
) -> np.ndarray:
    """Ten motion numbers per video (`MOTION_FEATURE_NAMES`), blind to static appearance.

    Each consecutive frame pair is fitted with one global affine optical flow (least
    squares on brightness constancy, after `downsample` block averaging and a 3x3 blur);
    the flow's velocity at the centroid of the change, its divergence and its curl are then
    summarised over time by medians (direction), mean magnitudes (amount), the fraction of
    velocity reversals (oscillation) and the burstiness of the change energy (blinking).
    Velocities are in (downsampled) pixels per frame; the numbers do not depend on
    colours or contrast, only on how things move.

    Args:
        videos: ``(N, T, H, W, 3)`` array or list of ``(T, H, W, 3)`` arrays (uint8 or
            float in [0, 1]), T >= 3; ``(N, C, T, H, W)`` with ``channels_first=True``.
        downsample: integer block-averaging factor applied first (1 = none).
        channels_first: inputs are laid out ``(C, T, H, W)`` per video.

    Returns:
        float32 array ``(N, 10)``, columns as in `MOTION_FEATURE_NAMES`.
    """
    if downsample < 1:
        raise ValueError(f"downsample must be >= 1, got {downsample}")
    feats = []
    for video in _as_videos(videos, channels_first):
        if video.shape[0] < 3:
            raise ValueError(f"motion features need at least 3 frames, got {video.shape[0]}")
        small = _box_blur(_centre_on_change(_downsample(video, downsample)))
        flow, energy = _affine_flow(small)
        vel = flow[:, :2]
        speed = np.linalg.norm(vel, axis=1)
        dots = (vel[1:] * vel[:-1]).sum(axis=1)
        moving = (speed[1:] > 0.05) & (speed[:-1] > 0.05)
        peak = energy.max()
        feats.append(
            [
                np.median(flow[:, 0]),
                np.median(flow[:, 1]),
                np.median(flow[:, 2]),
                np.median(flow[:, 3]),
                speed.mean(),
                np.abs(flow[:, 2]).mean(),
                np.abs(flow[:, 3]).mean(),
                float(((dots < 0) & moving).mean()),
                float((energy < 0.25 * peak).mean()) if peak > 0 else 1.0,
                float(energy.std() / energy.mean()) if energy.mean() > 0 else 0.0,
            ]
        )
    return np.asarray(feats, dtype=np.float32)


def compare_baselines(
    train_videos: Any,
    train_labels: Any,
    test_videos: Any,
    test_labels: Any,
    *,
    frame: int | None = None,
    grid: int = 8,
    downsample: int = 2,
    channels_first: bool = False,
) -> dict[str, float]:
    """Linear-probe accuracy on single frames vs motion features, with the chance level.

    Returns:
        ``{"chance": 1 / number of classes, "single_frame": ..., "motion": ...}``, all
        fractions of the test videos.
    """
    labels = np.concatenate([np.asarray(train_labels).ravel(), np.asarray(test_labels).ravel()])
    results = {"chance": 1.0 / len(np.unique(labels))}
    kw = {"channels_first": channels_first}
    results["single_frame"] = linear_probe_accuracy(
        single_frame_features(train_videos, frame=frame, grid=grid, **kw),
        train_labels,
        single_frame_features(test_videos, frame=frame, grid=grid, **kw),
        test_labels,
    )
    results["motion"] = linear_probe_accuracy(
        motion_features(train_videos, downsample=downsample, **kw),
        train_labels,
        motion_features(test_videos, downsample=downsample, **kw),
        test_labels,
    )
    return results

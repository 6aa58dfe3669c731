"""Figures for the notebooks: frame strips, view grids, animations, loss curves.

Clips may be torch tensors ``(C, T, H, W)`` in ``[0, 1]`` (the package's convention) or
numpy arrays ``(T, H, W, 3)`` uint8 (decoded frames). One class keeps one colour in every
notebook (:func:`class_colors`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import torch

__all__ = [
    "to_frames",
    "class_colors",
    "frame_strip",
    "show_views",
    "animate_views",
    "plot_history",
    "plot_embedding",
    "neighbour_grid",
]


def to_frames(clip: Any) -> np.ndarray:
    """A clip as ``(T, H, W, 3)`` float in ``[0, 1]`` for ``imshow``.

    Accepts ``(C, T, H, W)`` tensors/arrays in ``[0, 1]`` (C = 1 or 3) and ``(T, H, W, 3)``
    uint8 arrays.
    """
    if isinstance(clip, torch.Tensor):
        clip = clip.detach().float().cpu().numpy()
    clip = np.asarray(clip)
    if clip.ndim != 4:
        raise ValueError(f"expected a clip (C, T, H, W) or (T, H, W, 3), got shape {clip.shape}")
    if clip.shape[-1] == 3 and clip.shape[0] not in (1, 3):
        frames = clip
    else:
        frames = np.moveaxis(clip, 0, -1)
        if frames.shape[-1] == 1:
            frames = np.repeat(frames, 3, axis=-1)
    if frames.dtype == np.uint8:
        return frames.astype(np.float32) / 255.0
    return np.clip(frames.astype(np.float32), 0.0, 1.0)


def _as_image(image: np.ndarray) -> np.ndarray:
    """An ``(H, W, 3)`` frame (uint8 or float) as float in ``[0, 1]``."""
    image = np.asarray(image)
    return image.astype(np.float32) / 255.0 if image.dtype == np.uint8 else np.clip(image, 0, 1)


def class_colors(class_names: Sequence[str]) -> dict[str, tuple[float, float, float]]:
    """One fixed colour per class (tab10, then husl), the same in every notebook."""
    import seaborn as sns

    palette = sns.color_palette("tab10" if len(class_names) <= 10 else "husl", len(class_names))
    return {name: tuple(palette[i]) for i, name in enumerate(class_names)}


def frame_strip(
    clip: Any,
    ax: plt.Axes | None = None,
    *,
    title: str | None = None,
    every: int = 1,
    max_frames: int = 16,
    gap: int = 1,
) -> plt.Axes:
    """Draw the frames of a clip side by side in one row (time runs left to right)."""
    frames = to_frames(clip)[::every][:max_frames]
    t, h, w, _ = frames.shape
    canvas = np.ones((h, t * (w + gap) - gap, 3), np.float32)
    for i, frame in enumerate(frames):
        canvas[:, i * (w + gap) : i * (w + gap) + w] = frame
    if ax is None:
        _, ax = plt.subplots(figsize=(min(16, 1.0 * t), 1.4))
    ax.imshow(canvas, interpolation="nearest")
    ax.set_xticks([(w + gap) * i + w / 2 for i in range(t)], [str(i * every) for i in range(t)])
    ax.tick_params(axis="x", labelsize=7, length=0)
    ax.set_yticks([])
    if title:
        ax.set_title(title, loc="left", fontsize=10)
    return ax


def show_views(
    views: Mapping[str, Any], *, title: str | None = None, every: int = 1, max_frames: int = 16
) -> plt.Figure:
    """One frame strip per named view (e.g. RGB, residual, repeat, shuffle), stacked."""
    fig, axes = plt.subplots(
        len(views), 1, figsize=(14, 1.5 * len(views) + 0.4), squeeze=False, layout="constrained"
    )
    for ax, (name, clip) in zip(axes[:, 0], views.items(), strict=True):
        frame_strip(clip, ax, title=name, every=every, max_frames=max_frames)
    axes[-1, 0].set_xlabel("frame index t")
    if title:
        fig.suptitle(title)
    return fig


def animate_views(views: Mapping[str, Any], *, interval: int = 150, scale: float = 2.0):
    """A looping animation of several views side by side (``HTML(anim.to_jshtml())``)."""
    from matplotlib import animation

    clips = {name: to_frames(clip) for name, clip in views.items()}
    length = min(len(c) for c in clips.values())
    fig, axes = plt.subplots(1, len(clips), figsize=(scale * len(clips), scale + 0.4))
    axes = np.atleast_1d(axes)
    images = []
    for ax, (name, frames) in zip(axes, clips.items(), strict=True):
        images.append(ax.imshow(frames[0], interpolation="nearest"))
        ax.set_title(name, fontsize=9)
        ax.axis("off")

    def update(t: int):
        for image, frames in zip(images, clips.values(), strict=True):
            image.set_data(frames[t])
        return images

    anim = animation.FuncAnimation(fig, update, frames=length, interval=interval, blit=True)
    plt.close(fig)
    return anim


def plot_history(
    rows: Sequence[Mapping[str, float]] | Mapping[str, Sequence[Mapping[str, float]]],
    *,
    key: str = "loss",
    ax: plt.Axes | None = None,
    reference: float | None = None,
    reference_label: str = "uniform scores",
) -> plt.Axes:
    """Loss (or another history column) per epoch; several runs when given a dict of runs."""
    runs = rows if isinstance(rows, Mapping) else {"run": rows}
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.5))
    for name, history in runs.items():
        ax.plot([r["epoch"] for r in history], [r[key] for r in history], marker=".", label=name)
    if reference is not None:
        ax.axhline(reference, color="grey", linestyle="--", label=reference_label)
    ax.set_xlabel("epoch")
    ax.set_ylabel(key)
    ax.legend()
    ax.grid(alpha=0.3)
    return ax


def plot_embedding(
    xy: np.ndarray,
    labels: Sequence[int],
    class_names: Sequence[str],
    ax: plt.Axes | None = None,
    *,
    title: str | None = None,
    markers: Sequence[str] | None = None,
    legend: bool = True,
) -> plt.Axes:
    """Scatter a 2-D projection coloured by class (colours from :func:`class_colors`)."""
    colors = class_colors(class_names)
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 5))
    labels = np.asarray(labels)
    markers = np.asarray(markers if markers is not None else ["o"] * len(labels))
    for label, name in enumerate(class_names):
        for marker in np.unique(markers):
            keep = (labels == label) & (markers == marker)
            if keep.any():
                ax.scatter(
                    *xy[keep].T,
                    s=14 if marker == "o" else 30,
                    marker=marker,
                    color=colors[name],
                    label=name if marker == "o" else None,
                    alpha=0.8,
                )
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=10)
    if legend:
        ax.legend(fontsize=7, markerscale=1.2, loc="best", ncols=2)
    return ax


def neighbour_grid(
    queries: Sequence[tuple[np.ndarray, str]],
    neighbours: Sequence[Sequence[tuple[np.ndarray, str, bool]]],
    *,
    title: str | None = None,
) -> plt.Figure:
    """Rows of (query, its nearest neighbours); green frame = same class, red = other class.

    Args:
        queries: ``(image (H, W, 3), title)`` per row.
        neighbours: per row, ``(image, title, correct)`` for each neighbour, nearest first.
    """
    cols = 1 + max(len(row) for row in neighbours)
    fig, axes = plt.subplots(
        len(queries),
        cols,
        figsize=(1.7 * cols, 1.9 * len(queries)),
        squeeze=False,
        layout="constrained",
    )
    for r, ((image, name), row) in enumerate(zip(queries, neighbours, strict=True)):
        axes[r, 0].imshow(_as_image(image))
        axes[r, 0].set_title(f"query\n{name}", fontsize=7, fontweight="bold")
        for c in range(1, cols):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            if c - 1 >= len(row):
                ax.axis("off")
                continue
            img, label, correct = row[c - 1]
            ax.imshow(_as_image(img))
            ax.set_title(label, fontsize=7, color="green" if correct else "red")
            for spine in ax.spines.values():
                spine.set_edgecolor("green" if correct else "red")
                spine.set_linewidth(3)
        axes[r, 0].set_xticks([])
        axes[r, 0].set_yticks([])
    if title:
        fig.suptitle(title)
    return fig

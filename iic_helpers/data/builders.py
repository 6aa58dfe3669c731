"""Datasets from a :class:`~iic_helpers.config.Config`: the one place that maps settings to data.

``clip_dataset(cfg, subset, mode)`` reads the split list under ``cfg.data_root`` and wraps it in
a :class:`ClipDataset` with the preset's clip length, transforms and views, reading RGB from
the videos or from ``<root>/frames/`` (``rgb_source``), with or without each video's last
frame (``drop_last_frame``).
"""

from __future__ import annotations

from pathlib import Path

from ..config import Config
from ..paths import repo_path
from .dataset import ClipDataset
from .splits import read_split
from .transforms import eval_transform, train_transform

__all__ = [
    "resolve_data_root",
    "clip_dataset",
]

#: Where RGB frames come from: the video files, or the original's JPEG folders.
RGB_SOURCES = ("videos", "frames")


def resolve_data_root(data_root: str | Path) -> Path:
    """The folder a dataset root names.

    An absolute root is used as given. A relative root is the folder under the working
    directory if one exists there (returned as given, still relative), otherwise the same
    path under the repository root (:func:`iic_helpers.paths.repo_path`), which is where the
    preset's ``data/synthetic`` lives. So the default root is found, and ``make-synthetic``
    writes it, from ``notebooks/``, from the repository root, from any other folder and on
    Colab. A root that exists nowhere comes back under the repository root; the caller
    creates it or reports it missing.
    """
    root = Path(data_root).expanduser()
    if root.is_absolute() or root.exists():
        return root
    return repo_path(root)


def clip_dataset(
    cfg: Config,
    subset: str = "train",
    mode: str = "train",
    *,
    max_videos: int | None = None,
    views: tuple[str, ...] | None = None,
) -> ClipDataset:
    """The clip dataset a preset trains or evaluates on.

    Args:
        cfg: a :class:`~iic_helpers.config.Config`.
        subset: ``"train"`` or ``"test"`` split list.
        mode: ``"train"`` (one random clip, random crop) or ``"eval"`` (``cfg.eval_clips``
            evenly spaced clips, centre crop).
        max_videos: keep every n-th video so that at most this many remain (quick mode).
        views: what each item holds; default: RGB, plus the flow view 2 (``"u"``/``"v"``)
            when training for pretraining with flow. Fine-tuning passes ``("rgb",)``.
    """
    root = resolve_data_root(cfg.data_root)
    records = read_split(root, split=cfg.split, subset=subset)
    if max_videos is not None and len(records) > max_videos:
        step = -(-len(records) // max_videos)
        records = records[::step]
    if mode == "train":
        transform = train_transform(cfg.resize, cfg.crop, flip=cfg.flip)
    elif mode == "eval":
        transform = eval_transform(cfg.resize, cfg.crop)
    else:
        raise ValueError(f"mode must be 'train' or 'eval', got {mode!r}")
    if views is None:
        flow = cfg.view2 in ("u", "v") and mode == "train"
        views = ("rgb", cfg.view2) if flow else ("rgb",)
    rgb_source = getattr(cfg, "rgb_source", "videos")
    if rgb_source not in RGB_SOURCES:
        raise ValueError(f"rgb_source must be one of {RGB_SOURCES}, got {rgb_source!r}")
    frames_root = root / "frames" if rgb_source == "frames" else None
    if frames_root is not None and not frames_root.is_dir():
        raise FileNotFoundError(
            f"rgb_source='frames' but {frames_root} does not exist: extract JPEG frames to "
            "<root>/frames/<video_id>/frame000001.jpg, or use rgb_source=videos"
        )
    return ClipDataset(
        records,
        frames_root=frames_root,
        drop_last_frame=getattr(cfg, "drop_last_frame", False),
        clip_len=cfg.clip_len,
        mode=mode,
        num_clips=cfg.eval_clips,
        transform=transform,
        views=views,
        cache=cfg.cache_videos,
    )

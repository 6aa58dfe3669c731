"""What the embedding explorer shows: videos, their retrieval features, projections, neighbours.

Features are those of the retrieval protocol (:func:`iic_helpers.retrieval.extract_features`
on the preset's eval clips, clips averaged), so a neighbour in the explorer is a neighbour in
retrieval. Features, projections and thumbnails are cached on disk (``cache_root``):

    <cache_root>/<checkpoint id>/features-<key>.npz      one per (data, split, view, extras)
    <cache_root>/<checkpoint id>/projection-<key>-<method>-s<seed>.npy   next to them
    <cache_root>/<checkpoint id>/neighbours-<key>-k<k>.npy               and the neighbours
    <cache_root>/thumbnails-<key>.json                   shared by every checkpoint

so re-drawing with another colouring or method costs seconds.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from ..animation import gif_data_uri
from ..checkpoint import load_backbone
from ..config import resolve_device
from ..data import read_split, read_video, resolve_data_root
from ..data.builders import clip_dataset
from ..embed import project
from ..features import extract_features, merge_views
from ..metrics import nearest_neighbours, video_features
from ..negatives import intra_negative

__all__ = [
    "EXTRA_KINDS",
    "SPLITS",
    "VIEWS",
    "Panel",
    "VideoTable",
    "check_data_root",
    "checkpoint_id",
    "load_model",
    "panel_for_checkpoint",
    "video_table",
    "cached_features",
    "cached_projection",
    "neighbours_of",
    "cached_neighbours",
    "thumbnail_sample",
    "add_thumbnails",
]

SPLITS = ("test", "train", "both")
VIEWS = ("merged", "rgb", "res")
#: Extra points per video: its intra-negatives and (with ``view="rgb"``) its residual view.
EXTRA_KINDS = ("repeat", "shuffle", "residual")
RANDOM = "random"


@dataclass
class VideoTable:
    """One row per video shown, in the order of the features.

    ``thumbnails[i]`` is a GIF data URI, or ``""`` for videos outside the thumbnail sample.
    """

    video_id: list[str]
    class_name: list[str]
    label: np.ndarray  # (N,) int64
    group: list[str]
    split: list[str]
    paths: list[str]
    thumbnails: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.video_id)


@dataclass
class Panel:
    """One checkpoint's picture.

    ``xy`` ``(N, 2)`` video coordinates; ``neighbours`` ``(N, k)`` indices of each video's
    nearest other videos (cosine distance in the full feature space, nearest first);
    ``extras`` maps a kind to the ``(N, 2)`` coordinates of that extra point of every video
    (projected together with the videos).
    """

    name: str
    xy: np.ndarray
    neighbours: np.ndarray
    extras: dict[str, np.ndarray] = field(default_factory=dict)


# --------------------------------------------------------------------------- inputs


def _group(video_id: str) -> str:
    """``g08`` from UCF101-style ids ``v_Class_g08_c01`` (HMDB51 ids: the id up to ``_c``)."""
    found = re.search(r"_(g\d+)_c\d+$", video_id)
    return found.group(1) if found else video_id.rsplit("_", 1)[0]


def check_data_root(root: Path, records: Sequence[Any]) -> None:
    """Raise a one-line ``ValueError`` when the split lists name videos that are not there."""
    if not records:
        raise ValueError(f"{root}: the split list names no video; check {root / 'splits'}")
    missing = [r.path for r in records if not Path(r.path).is_file()]
    if missing:
        raise ValueError(
            f"{root}: {len(missing)} of {len(records)} listed videos are missing (first: "
            f"{missing[0]}); put the videos under {root / 'videos'} (a symlink to your "
            "download is fine) or run `python -m iic_helpers make-synthetic` for the tiny data"
        )


def _records(cfg: Any, split: str, max_videos: int | None) -> list[tuple[str, Any]]:

    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    root = resolve_data_root(cfg.data_root)
    if not (root / "splits").is_dir():
        raise ValueError(
            f"{root}: not a dataset root (no splits/ folder); pass --data-root with "
            "splits/ and videos/, or run `python -m iic_helpers make-synthetic`"
        )
    subsets = ("train", "test") if split == "both" else (split,)
    out = []
    for subset in subsets:
        records = read_split(root, cfg.split, subset)
        if max_videos is not None and len(records) > max_videos:
            records = records[:: -(-len(records) // max_videos)]
        check_data_root(root, records)
        out += [(subset, r) for r in records]
    return out


def video_table(cfg: Any, split: str = "test", *, max_videos: int | None = None) -> VideoTable:
    """The videos of ``split`` (``"both"``: train then test) without thumbnails."""
    rows = _records(cfg, split, max_videos)
    return VideoTable(
        video_id=[r.video_id for _, r in rows],
        class_name=[r.class_name for _, r in rows],
        label=np.array([r.label for _, r in rows], dtype=np.int64),
        group=[_group(r.video_id) for _, r in rows],
        split=[s for s, _ in rows],
        paths=[str(r.path) for _, r in rows],
    )


def _hash(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:12]


def checkpoint_id(checkpoint: str | Path) -> str:
    """A folder name for a checkpoint's cache: its stem and the SHA-256 of its bytes."""
    if str(checkpoint) == RANDOM:
        return RANDOM
    path = Path(checkpoint)
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return f"{path.stem}-{digest.hexdigest()[:12]}"


def load_model(cfg: Any, checkpoint: str | Path) -> torch.nn.Module:
    """The backbone of ``checkpoint`` (``"random"``: a seeded random network).

    Raises a one-line ``ValueError`` for a missing file or a checkpoint whose weights do not
    fit the architecture it names (or the preset's, when it names none).
    """

    if str(checkpoint) == RANDOM:
        return load_backbone(cfg, None)[0]
    path = Path(checkpoint)
    if not path.is_file():
        raise ValueError(f"{path}: no such checkpoint; pass a file written by `pretrain`")
    try:
        return load_backbone(cfg, path)[0]
    except (RuntimeError, ValueError, KeyError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ValueError(
            f"{path}: not a {cfg.backbone} (width {cfg.width}) checkpoint of this project or "
            f"the original IIC code ({first[:160]}); pass a checkpoint written by `pretrain`, "
            "an original IIC .pth, or the matching --preset/--set backbone=..."
        ) from None


# --------------------------------------------------------------------------- features


class _Transformed(torch.utils.data.Dataset):
    """An eval dataset whose clips ``(N_clips, C, T, H, W)`` go through ``kind`` first."""

    def __init__(self, base: torch.utils.data.Dataset, kind: str, seed: int) -> None:
        self.base, self.kind, self.seed = base, kind, seed

    def __len__(self) -> int:
        return len(self.base)  # type: ignore[arg-type]

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int, int]:

        clips, label, index = self.base[i]
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + i)
        return intra_negative(clips, self.kind, generator), label, index


def _view_features(feats: dict[str, np.ndarray], view: str) -> np.ndarray:

    chosen = merge_views(feats) if view == "merged" else feats[view]
    return video_features(chosen).numpy()


def _extract(
    model: torch.nn.Module, cfg: Any, split: str, view: str, extras: Sequence[str], **kwargs: Any
) -> dict[str, np.ndarray]:
    """``{"videos": (N, D), kind: (N, D) ...}`` video features (clip-averaged)."""

    max_videos = kwargs.pop("max_videos", None)
    options = dict(
        features=cfg.retrieval_features,
        device=resolve_device(cfg.device),
        num_workers=cfg.num_workers,
        progress=kwargs.pop("progress", True),
    )
    subsets = ("train", "test") if split == "both" else (split,)
    parts: dict[str, list[np.ndarray]] = {"videos": [], **{kind: [] for kind in extras}}
    for subset in subsets:
        dataset = clip_dataset(cfg, subset, "eval", max_videos=max_videos, views=("rgb",))
        feats, _ = extract_features(model, dataset, **options)
        parts["videos"].append(_view_features(feats, view))
        for kind in extras:
            if kind == "residual":  # the residual view of the same clips, as an RGB input
                parts[kind].append(feats["res"].mean(axis=1))
                continue
            neg, _ = extract_features(model, _Transformed(dataset, kind, cfg.seed), **options)
            parts[kind].append(_view_features(neg, view))
    return {name: np.concatenate(chunks) for name, chunks in parts.items()}


def _atomic_save(path: Path, write: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _write(tmp: str, save: Any, *args: Any, **kwargs: Any) -> None:
    """``save`` (``np.save``/``np.savez``) into an open file, so no suffix is added to ``tmp``."""
    with open(tmp, "wb") as handle:
        save(handle, *args, **kwargs)


def _features_key(cfg: Any, split: str, view: str, extras: Sequence[str], max_videos: Any) -> str:

    root = resolve_data_root(cfg.data_root).resolve()
    return _hash(
        str(root), cfg.split, split, view, sorted(extras), max_videos, cfg.retrieval_features,
        cfg.crop, cfg.resize, cfg.clip_len, cfg.eval_clips, cfg.seed,
    )  # fmt: skip


def cached_features(
    cfg: Any,
    checkpoint: str | Path,
    cache_dir: Path,
    *,
    split: str,
    view: str,
    extras: Sequence[str] = (),
    max_videos: int | None = None,
    progress: bool = True,
) -> tuple[dict[str, np.ndarray], str]:
    """Features of ``checkpoint`` (computed once, then read from ``cache_dir``) and their key."""
    key = _features_key(cfg, split, view, extras, max_videos)
    path = cache_dir / f"features-{key}.npz"
    if path.is_file():
        with np.load(path) as data:
            return {name: data[name] for name in data.files}, key
    model = load_model(cfg, checkpoint)
    feats = _extract(model, cfg, split, view, extras, max_videos=max_videos, progress=progress)
    _atomic_save(path, lambda tmp: _write(tmp, np.savez, **feats))
    return feats, key


def cached_projection(
    features: np.ndarray, method: str, seed: int, path: Path
) -> np.ndarray:  # fmt: skip
    """:func:`iic_helpers.embed.project` of ``features``, read from ``path`` when cached."""

    if path.is_file():
        xy = np.load(path)
        if xy.shape == (len(features), 2):
            return xy
    xy = project(features, method, seed=seed).astype(np.float32)
    _atomic_save(path, lambda tmp: _write(tmp, np.save, xy))
    return xy


def neighbours_of(features: np.ndarray, k: int) -> np.ndarray:
    """``(N, k)`` nearest other videos by cosine distance (retrieval's ``nearest_neighbours``)."""

    k = min(k, len(features) - 1)
    idx, _ = nearest_neighbours(features, features, k + 1)
    own = idx == np.arange(len(features))[:, None]
    keep = np.where(own.any(1, keepdims=True), ~own, np.arange(k + 1) < k)  # drop self
    return idx[keep].reshape(len(features), k)


def cached_neighbours(features: np.ndarray, k: int, path: Path) -> np.ndarray:
    """:func:`neighbours_of`, read from ``path`` when cached (UCF101 size: a minute to compute)."""
    if path.is_file():
        nn = np.load(path)
        if nn.shape == (len(features), min(k, len(features) - 1)):
            return nn
    nn = neighbours_of(features, k)
    _atomic_save(path, lambda tmp: _write(tmp, np.save, nn))
    return nn


def panel_for_checkpoint(
    cfg: Any,
    checkpoint: str | Path,
    *,
    cache_root: Path,
    split: str = "test",
    view: str = "merged",
    method: str = "umap",
    extras: Sequence[str] = (),
    k: int = 5,
    max_videos: int | None = None,
    progress: bool = True,
    name: str | None = None,
) -> Panel:
    """Features, projection (videos and extras together) and neighbours of one checkpoint."""
    if view not in VIEWS:
        raise ValueError(f"view must be one of {VIEWS}, got {view!r}")
    for kind in extras:
        if kind not in EXTRA_KINDS:
            raise ValueError(f"extra points must be among {EXTRA_KINDS}, got {kind!r}")
    if "residual" in extras and view != "rgb":
        raise ValueError(
            "residual points need --view rgb (merged features already contain the residual view)"
        )
    cache_dir = Path(cache_root) / checkpoint_id(checkpoint)
    feats, key = cached_features(
        cfg, checkpoint, cache_dir, split=split, view=view, extras=extras,
        max_videos=max_videos, progress=progress,
    )  # fmt: skip
    videos = feats["videos"]
    joint = np.concatenate([videos] + [feats[kind] for kind in extras])
    projection = cache_dir / f"projection-{key}-{method}-s{cfg.seed}.npy"
    xy = cached_projection(joint, method, cfg.seed, projection)
    n = len(videos)
    extra_xy = {kind: xy[n * (j + 1) : n * (j + 2)] for j, kind in enumerate(extras)}
    label = name or ("random init" if str(checkpoint) == RANDOM else Path(checkpoint).stem)
    return Panel(
        label,
        xy[:n],
        cached_neighbours(videos, k, cache_dir / f"neighbours-{key}-k{k}.npy"),
        extra_xy,
    )


# --------------------------------------------------------------------------- thumbnails


def thumbnail_sample(n_videos: int, n_thumbnails: int) -> np.ndarray:
    """Indices of the videos that get a thumbnail: evenly spaced over the list.

    Split lists are sorted by class, so an even spacing covers every class.
    """
    if n_thumbnails >= n_videos:
        return np.arange(n_videos)
    return np.unique(np.linspace(0, n_videos - 1, max(n_thumbnails, 0)).round().astype(int))


def add_thumbnails(
    table: VideoTable,
    cache_root: Path,
    *,
    n_thumbnails: int = 600,
    max_size: int = 48,
    max_frames: int = 8,
    progress: bool = True,
) -> VideoTable:
    """Fill ``table.thumbnails`` with looping GIFs (``≤ max_frames`` frames, ``≤ max_size`` px)
    for :func:`thumbnail_sample` of the videos; cached in ``cache_root`` by video list."""

    if max_frames > 16 or max_size > 96:
        raise ValueError("thumbnails are at most 16 frames of at most 96 px")
    chosen = thumbnail_sample(len(table), n_thumbnails)
    key = _hash(table.paths, chosen.tolist(), max_size, max_frames)
    path = Path(cache_root) / f"thumbnails-{key}.json"
    if path.is_file():
        table.thumbnails = json.loads(path.read_text())
        return table
    thumbs = [""] * len(table)
    for i in tqdm(chosen, desc="thumbnails", disable=not progress, leave=False):
        frames = read_video(table.paths[i])
        thumbs[i] = gif_data_uri(frames, max_size=max_size, max_frames=max_frames)
    _atomic_save(path, lambda tmp: Path(tmp).write_text(json.dumps(thumbs)))
    table.thumbnails = thumbs
    return table

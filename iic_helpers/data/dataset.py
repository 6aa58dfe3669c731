"""``ClipDataset``: clips of videos named by a split list, ready for a DataLoader.

Train mode gives one random clip per video and call, eval mode ``num_clips`` evenly spaced
clips, as the original IIC code (``reference/recipe.json``), with its data bugs fixed:

* one crop for the whole clip and for every view (bug 10), via :mod:`.transforms`;
* videos shorter than ``clip_len`` are looped to length and reported (bug 12), not a crash;
* a video that decodes fewer frames than its header says (a truncated file) is used with
  the frames that decode, with one :class:`TruncatedVideoWarning` naming it;
* every frame may start a clip (the original dropped the last frame; ``drop_last_frame=True``
  restores that);
* randomness comes from torch only, so ``torch.manual_seed`` plus DataLoader's per-worker
  seeding reproduce a run, and no Python ``random`` state is disturbed (bug 14).

Construction opens no file. A video that cannot be read raises
:class:`~iic_helpers.data.video.VideoReadError` from ``__getitem__``, naming it.
"""

from __future__ import annotations

import contextlib
import random
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch.utils.data import Dataset
from torchvision.transforms import v2
from tqdm.auto import tqdm

from .splits import VideoRecord
from .transforms import ClipTransform, to_clip, to_video
from .video import (
    TruncatedVideoError,
    VideoReadError,
    count_jpeg_frames,
    find_frame_dir,
    probe_video,
    read_clip,
    read_jpeg_frames,
    read_video,
)

__all__ = [
    "ClipDataset",
    "ShortVideoWarning",
    "TruncatedVideoWarning",
    "eval_clip_starts",
    "seed_worker",
]

VIEWS = ("rgb", "u", "v")
Mode = Literal["train", "eval"]


class ShortVideoWarning(UserWarning):
    """A video has fewer frames than ``clip_len`` and is looped to length."""


class TruncatedVideoWarning(UserWarning):
    """A video decodes fewer frames than its header says; the decoded ones are used."""


def eval_clip_starts(num_frames: int, clip_len: int, num_clips: int) -> np.ndarray:
    """Start frames of ``num_clips`` evenly spaced clips, as the original test code.

    Centres are ``linspace(clip_len/2, num_frames - clip_len/2, num_clips)``; starts are
    ``int(centre - clip_len/2)`` (truncated), so the first clip starts at frame 0 and the
    last ends at the last frame. A video shorter than a clip gives starts of 0.

    Returns:
        ``(num_clips,)`` int64.
    """
    half = clip_len / 2
    centres = np.linspace(half, num_frames - half, num_clips)
    return np.maximum((centres - half).astype(np.int64), 0)


def seed_worker(worker_id: int) -> None:
    """``worker_init_fn`` seeding Python's ``random`` and NumPy from the worker's torch seed.

    ``ClipDataset`` itself draws only from torch, which DataLoader already seeds per worker;
    use this when a custom transform draws from ``random`` or ``numpy.random``.
    """
    seed = torch.initial_seed() % 2**32
    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002 (seeds the legacy global RNG for user code)


class ClipDataset(Dataset):
    """Clips ``(C, T, H, W)`` float32 in ``[0, 1]`` from a list of :class:`VideoRecord`.

    Items:
        * train mode: ``(clip, label, index)``: one clip, start uniform over the valid starts
          ``0 … L - clip_len``; ``index`` is the memory-bank row.
        * eval mode: ``(clips, label, index)`` with clips ``(num_clips, C, T, H, W)`` starting
          at :func:`eval_clip_starts`.
        * with several views (e.g. ``("rgb", "u", "v")``) the first element is a dict
          ``{view: clip}``, all views cropped alike.

    Args:
        records: videos, e.g. ``read_split(root, 1, "train")``.
        clip_len: frames per clip ``T``.
        mode: ``"train"`` or ``"eval"``.
        num_clips: clips per video in eval mode.
        transform: a callable taking frames ``(T, H, W, 3)`` uint8 (a dict ``{view: frames}``
            with several views) and returning ``(C, T, H, W)`` float32 clips in the same
            structure, e.g. :func:`~iic_helpers.data.transforms.train_transform`. A bare
            ``transforms.v2`` transform is wrapped in a ``ClipTransform``. ``None`` keeps the
            decoded frames: rgb24 values / 255.
        views: ``"rgb"`` (video file, or JPEG folders when ``frames_root`` is set), ``"u"``,
            ``"v"`` (optical flow, JPEG folders ``<flow_root>/u/<video_id>/frame*.jpg``; a
            grey flow image is repeated over 3 channels). Clips are aligned: frame ``t`` of
            every view. With flow the usable length is the shortest view's (flow has one
            frame fewer than the video).
        frames_root: read RGB from ``<frames_root>/<video_id>/frame000001.jpg …`` instead of
            decoding the videos.
        flow_root: folder holding ``u/`` and ``v/``; default ``<dataset root>/flow``.
        seed: ``None`` draws clip positions and crops from torch's global RNG (DataLoader
            seeds each worker from it, so ``torch.manual_seed`` reproduces a run for a
            given ``num_workers``). An int makes item ``i`` a function of ``(seed, epoch,
            i)`` only (independent of workers and order; call :meth:`set_epoch`).
        cache: keep every decoded video in memory as uint8 (for small datasets such as the
            synthetic one; fill it up front with :meth:`preload` so DataLoader workers
            inherit it).
        drop_last_frame: never use a video's last frame, as the original code did.
    """

    def __init__(
        self,
        records: Sequence[VideoRecord],
        *,
        clip_len: int = 16,
        mode: Mode = "train",
        num_clips: int = 10,
        transform: Callable[[Any], Any] | None = None,
        views: Sequence[str] = ("rgb",),
        frames_root: str | Path | None = None,
        flow_root: str | Path | None = None,
        seed: int | None = None,
        cache: bool = False,
        drop_last_frame: bool = False,
    ) -> None:
        if mode not in ("train", "eval"):
            raise ValueError(f"mode must be 'train' or 'eval', got {mode!r}")
        if int(clip_len) < 1:
            raise ValueError(f"clip_len must be >= 1, got {clip_len}")
        if int(num_clips) < 1:
            raise ValueError(f"num_clips must be >= 1, got {num_clips}")
        views = tuple(views)
        if not views or len(set(views)) != len(views) or not set(views) <= set(VIEWS):
            raise ValueError(f"views must be distinct names from {VIEWS}, got {views}")
        self.records = list(records)
        self.clip_len = int(clip_len)
        self.mode = mode
        self.num_clips = int(num_clips)
        if isinstance(transform, v2.Transform):  # a bare v2 pipeline: apply it to whole clips
            transform = ClipTransform(transform)
        self.transform = transform
        self.views = views
        self.frames_root = None if frames_root is None else Path(frames_root)
        self.flow_root = None if flow_root is None else Path(flow_root)
        self.seed = seed
        self.epoch = 0
        self.cache = cache
        self.drop_last_frame = drop_last_frame
        #: videos found shorter than ``clip_len`` in this process: ``{path: usable frames}``.
        self.short_videos: dict[Path, int] = {}
        #: videos found truncated in this process: ``{path: (header frames, decoded)}``.
        self.truncated_videos: dict[Path, tuple[int, int]] = {}
        self._cache: dict[tuple[str, int], np.ndarray] = {}

    # ------------------------------------------------------------------ basics
    def __len__(self) -> int:
        return len(self.records)

    @property
    def labels(self) -> list[int]:
        """0-based labels of all records, shape ``(N,)`` as a list."""
        return [record.label for record in self.records]

    @property
    def num_short_videos(self) -> int:
        """How many distinct videos were looped because they were short (this process)."""
        return len(self.short_videos)

    def set_epoch(self, epoch: int) -> None:
        """Set the epoch mixed into per-item seeds (only used when ``seed`` is set)."""
        self.epoch = int(epoch)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({len(self)} videos, clip_len={self.clip_len}, "
            f"mode={self.mode!r}, views={self.views}, transform={self.transform!r})"
        )

    # ------------------------------------------------------------------ randomness
    @contextlib.contextmanager
    def _rng(self, index: int) -> Iterator[None]:
        """Scope in which torch's global RNG is seeded from (seed, epoch, index) if seeded."""
        if self.seed is None:
            yield
            return
        state = np.random.SeedSequence([int(self.seed), self.epoch, int(index)])
        item_seed = int(state.generate_state(1, np.uint64)[0] >> np.uint64(1))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(item_seed)
            yield

    # ------------------------------------------------------------------ frame sources
    def _source(self, view: str, record: VideoRecord) -> Path:
        """Video file (rgb without ``frames_root``) or JPEG folder of one view."""
        if view == "rgb":
            if self.frames_root is None:
                return record.path
            return find_frame_dir(self.frames_root, record.video_id)
        flow_root = self.flow_root if self.flow_root is not None else record.root / "flow"
        return find_frame_dir(flow_root / view, record.video_id)

    def _is_video(self, view: str) -> bool:
        return view == "rgb" and self.frames_root is None

    def _full(self, view: str, index: int) -> np.ndarray:
        """All frames of one view of one video ``(N, H, W, 3)`` uint8, cached."""
        key = (view, index)
        if key not in self._cache:
            source = self._source(view, self.records[index])
            if self._is_video(view):
                frames = read_video(source)
                info = probe_video(source)
                if not info.counted and len(frames) < info.num_frames:
                    self._note_truncated(source, info.num_frames, len(frames))
            else:
                frames = read_jpeg_frames(source, np.arange(count_jpeg_frames(source)))
            self._cache[key] = frames
        return self._cache[key]

    def preload(self, progress: bool = True) -> ClipDataset:
        """Decode every video (all views) into memory now and keep it (``cache=True``).

        Call before building a DataLoader so that workers inherit the decoded frames.
        Memory: ``N_frames * H * W * 3`` bytes per video and view.
        """

        self.cache = True
        for index in tqdm(range(len(self)), desc="decoding", disable=not progress):
            for view in self.views:
                self._full(view, index)
        return self

    @property
    def cache_bytes(self) -> int:
        """Bytes held by the in-memory frame cache."""
        return sum(frames.nbytes for frames in self._cache.values())

    # ------------------------------------------------------------------ clip positions
    def _positions(self, num_frames: int, path: Path) -> np.ndarray:
        """Frame numbers ``(K, clip_len)`` for a video with ``num_frames`` usable frames."""
        length = num_frames - (1 if self.drop_last_frame else 0)
        if length < 1:
            raise VideoReadError(path, f"only {num_frames} frame(s), nothing to sample")
        if self.mode == "train":
            high = max(length - self.clip_len, 0) + 1
            starts = np.array([int(torch.randint(high, (1,)))])
        else:
            starts = eval_clip_starts(length, self.clip_len, self.num_clips)
        positions = starts[:, None] + np.arange(self.clip_len)
        if length < self.clip_len:
            self._note_short(path, length)
            positions = positions % length
        return positions

    def _note_short(self, path: Path, length: int) -> None:
        if path not in self.short_videos:
            self.short_videos[path] = length
            warnings.warn(
                f"{path}: {length} usable frame(s) < clip_len={self.clip_len}; "
                f"looping the video to length",
                ShortVideoWarning,
                stacklevel=2,
            )

    def _note_truncated(self, path: Path, header: int, decoded: int) -> None:
        if path not in self.truncated_videos:
            self.truncated_videos[path] = (header, decoded)
            warnings.warn(
                f"{path}: the header says {header} frames but only {decoded} decode "
                "(a truncated file); using those. `python -m iic_helpers validate` lists "
                "every such file",
                TruncatedVideoWarning,
                stacklevel=3,
            )

    def _load(self, index: int) -> dict[str, np.ndarray]:
        """Frames of every view, ``{view: (K, clip_len, H, W, 3) uint8}``."""
        record = self.records[index]
        sources = {view: self._source(view, record) for view in self.views}
        named = sources.get("rgb", next(iter(sources.values())))
        counts: dict[str, int] = {}
        for view in self.views:
            if self.cache:
                counts[view] = len(self._full(view, index))
            elif not self._is_video(view):
                counts[view] = count_jpeg_frames(sources[view])
        chosen: list[np.ndarray] = []

        def choose(num_video_frames: int) -> np.ndarray:
            usable = [num_video_frames, *counts.values()]
            if named in self.truncated_videos:
                usable.append(self.truncated_videos[named][1])
            positions = self._positions(min(usable), named)
            chosen.append(positions)
            return positions.reshape(-1)

        frames: dict[str, np.ndarray] = {}
        if "rgb" in self.views and self._is_video("rgb") and not self.cache:
            try:
                frames["rgb"], _ = read_clip(sources["rgb"], choose)
            except TruncatedVideoError as err:
                if err.decoded <= 0:
                    raise
                self._note_truncated(sources["rgb"], err.header, err.decoded)
                chosen.clear()
                frames["rgb"], _ = read_clip(sources["rgb"], choose)
        else:
            choose(min(counts.values()))
        flat = chosen[0].reshape(-1)
        for view in self.views:
            if view in frames:
                continue
            if self.cache:
                frames[view] = self._full(view, index)[flat]
            else:
                frames[view] = read_jpeg_frames(sources[view], flat)
        shape = chosen[0].shape
        return {view: frames[view].reshape(*shape, *frames[view].shape[1:]) for view in self.views}

    # ------------------------------------------------------------------ items
    def _to_clip(self, frames: dict[str, np.ndarray]) -> Any:
        """Transform one clip's frames ``{view: (T, H, W, 3)}`` into ``(C, T, H, W)`` clips."""
        single = len(self.views) == 1
        if self.transform is None:
            out = {view: to_clip(to_video(f)) for view, f in frames.items()}
        else:
            out = self.transform(frames[self.views[0]] if single else frames)
            if single:
                out = {self.views[0]: out}
        return out[self.views[0]] if single else out

    def __getitem__(self, index: int) -> tuple[Any, int, int]:
        index = int(index)
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} videos")
        record = self.records[index]
        with self._rng(index):
            frames = self._load(index)
            num = next(iter(frames.values())).shape[0]
            clips = [self._to_clip({v: f[k] for v, f in frames.items()}) for k in range(num)]
        if self.mode == "train":
            return clips[0], record.label, index
        if isinstance(clips[0], dict):
            return {v: torch.stack([c[v] for c in clips]) for v in self.views}, record.label, index
        return torch.stack(clips), record.label, index

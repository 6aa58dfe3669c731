"""Reading frames from JPEG frame folders (the original IIC layout).

Frame folders are ``<folder>/frame000001.jpg`` (1-based); :func:`find_frame_dir` accepts
the ``v_HandstandPushups_`` / ``v_HandStandPushups_`` spelling difference between UCF101
videos and public frame/flow releases. Failures raise
:class:`~iic_helpers.data.video_reading.VideoReadError` naming the folder or file.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from .video_reading import VideoReadError

__all__ = ["count_jpeg_frames", "find_frame_dir", "read_jpeg_frames"]

PathLike = str | os.PathLike


def _variants(video_id: str) -> list[str]:
    names = [video_id]
    for a, b in (
        ("HandStandPushups", "HandstandPushups"),
        ("HandstandPushups", "HandStandPushups"),
    ):
        if a in video_id:
            names.append(video_id.replace(a, b))
    return names


@functools.lru_cache(maxsize=64)
def _lower_listing(base: str, mtime_ns: int) -> dict[str, str]:
    return {name.lower(): name for name in os.listdir(base)}


def find_frame_dir(base: PathLike, video_id: str) -> Path:
    """The frame folder ``<base>/<video_id>``, accepting UCF101's HandStand/Handstand spelling.

    Tries ``video_id``, then the other spelling of ``HandstandPushups``, then a
    case-insensitive match.

    Raises:
        VideoReadError: no such folder (naming the expected path).
    """
    base = Path(base)
    for name in _variants(video_id):
        if (base / name).is_dir():
            return base / name
    if base.is_dir():
        listing = _lower_listing(str(base), base.stat().st_mtime_ns)
        name = listing.get(video_id.lower())
        if name is not None and (base / name).is_dir():
            return base / name
    raise VideoReadError(base / video_id, "frame folder not found")


def _jpeg_names(folder: Path) -> list[str]:
    try:
        names = [n for n in os.listdir(folder) if n.startswith("frame") and n.endswith(".jpg")]
    except FileNotFoundError:
        raise VideoReadError(folder, "frame folder not found") from None
    return names


def count_jpeg_frames(folder: PathLike) -> int:
    """Number of ``frame*.jpg`` files in a frame folder."""
    return len(_jpeg_names(Path(folder)))


def read_jpeg_frames(folder: PathLike, indices: Sequence[int] | np.ndarray) -> np.ndarray:
    """Frames ``indices`` (0-based) of a folder ``frame000001.jpg, …`` as ``(N, H, W, 3)`` uint8.

    Grey images (e.g. optical-flow components) are repeated over the 3 channels.
    """
    folder = Path(folder)
    indices = np.asarray(indices, dtype=np.int64).reshape(-1)
    cache: dict[int, np.ndarray] = {}
    frames = []
    for index in indices:
        index = int(index)
        if index not in cache:
            file = folder / f"frame{index + 1:06d}.jpg"
            try:
                with Image.open(file) as image:
                    cache[index] = np.asarray(image.convert("RGB"))
            except FileNotFoundError:
                raise VideoReadError(file, "frame file not found") from None
            except (OSError, ValueError) as err:
                raise VideoReadError(file, f"not a readable JPEG ({err})") from None
        frames.append(cache[index])
    return np.stack(frames)

"""Video I/O, gathered: reading, writing and JPEG frame folders.

Each job has its own module: :mod:`~iic_helpers.data.video_reading` (probing, seeking,
decoding; :class:`VideoReadError`), :mod:`~iic_helpers.data.video_writing` (the one
encoder, :func:`write_video`, and resizing) and :mod:`~iic_helpers.data.frame_folders`
(``frame000001.jpg`` folders). Their public names are re-exported here, so
``from iic_helpers.data.video import read_clip`` keeps working.
"""

from __future__ import annotations

from .frame_folders import count_jpeg_frames, find_frame_dir, read_jpeg_frames
from .video_reading import (
    SEEK_MIN_FRAME,
    VIDEO_SUFFIXES,
    TruncatedVideoError,
    VideoInfo,
    VideoReadError,
    count_frames,
    probe_video,
    read_clip,
    read_frames,
    read_video,
)
from .video_writing import RESIZE_GOP, resize_video, resize_videos, write_video

__all__ = [
    "RESIZE_GOP",
    "SEEK_MIN_FRAME",
    "VIDEO_SUFFIXES",
    "TruncatedVideoError",
    "VideoInfo",
    "VideoReadError",
    "count_frames",
    "count_jpeg_frames",
    "find_frame_dir",
    "probe_video",
    "read_clip",
    "read_frames",
    "read_jpeg_frames",
    "read_video",
    "resize_video",
    "resize_videos",
    "write_video",
]

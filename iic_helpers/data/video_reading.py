"""Reading frames from video files (PyAV): probing, seeking, decoding.

Frames come back as ``uint8`` arrays shaped ``(T, H, W, 3)``, equal to PyAV's
``frame.to_ndarray(format="rgb24")``. Only what a clip needs is decoded: frames are decoded
in order up to the last requested one and only the requested frames are converted to RGB
(with one reused converter: a fresh converter per frame costs ~2 ms, more than decoding).
When the first requested frame is far into a long video, the reader seeks to the keyframe
before it instead of decoding from the start, and checks from the frame timestamps that it
landed where it meant to (otherwise it decodes from the start).

Every failure raises :class:`VideoReadError`, whose message names the file and the reason
(missing, empty, not a video, truncated or corrupt).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from av.video.reformatter import VideoReformatter

__all__ = [
    "SEEK_MIN_FRAME",
    "VIDEO_SUFFIXES",
    "TruncatedVideoError",
    "VideoInfo",
    "VideoReadError",
    "count_frames",
    "decode_error",
    "open_video",
    "probe_video",
    "read_clip",
    "read_frames",
    "read_video",
]

#: File suffixes treated as videos when a folder is scanned.
VIDEO_SUFFIXES = (".avi", ".mp4", ".mkv", ".mov", ".webm", ".m4v", ".mpg", ".mpeg")

#: Seek instead of decoding from the start when the first wanted frame is at least this far
#: in. Files written by :func:`resize_video` have a keyframe every 16 frames, so a seek
#: skips all but < 16 frames; in a long-GOP file it lands on frame 0 and costs about what
#: decoding from the start costs (``benchmarks/RESULTS.md``, data loading).
SEEK_MIN_FRAME = 16

#: Paths whose timestamps made a seek untrustworthy once (e.g. H.264 with B-frames in AVI):
#: later reads of these decode from the start without trying to seek again.
_UNSEEKABLE: set[str] = set()

PathLike = str | os.PathLike


class VideoReadError(Exception):
    """A video (or frame folder) cannot be read. ``str(err)`` names the path and the reason."""

    def __init__(self, path: PathLike, reason: str | None = None) -> None:
        if reason is None:  # one-argument form: DataLoader re-raises worker errors this way
            self.path, self.reason = None, str(path)
            super().__init__(str(path))
            return
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"cannot read video {self.path}: {reason}")

    def __reduce__(self):  # keep both arguments when pickled
        if self.path is None:
            return (type(self), (self.reason,))
        return (type(self), (self.path, self.reason))


class TruncatedVideoError(VideoReadError):
    """Fewer frames decode than the header says (a file cut after an intact header).

    ``header`` and ``decoded`` are the two counts (0 when unknown, e.g. after pickling).
    """

    def __init__(
        self, path: PathLike, reason: str | None = None, header: int = 0, decoded: int = 0
    ) -> None:
        super().__init__(path, reason)
        self.header, self.decoded = header, decoded


@dataclass(frozen=True)
class VideoInfo:
    """Stream facts of one video.

    Attributes:
        path: the file.
        num_frames: frame count (stream metadata, or counted by decoding; see ``exact``).
        height, width: frame size in pixels.
        fps: average frame rate, or ``None`` when the container does not say.
        codec: decoder name, e.g. ``"h264"``, ``"mpeg4"``.
        counted: ``True`` when ``num_frames`` comes from decoding rather than metadata.
    """

    path: Path
    num_frames: int
    height: int
    width: int
    fps: float | None
    codec: str
    counted: bool


# --------------------------------------------------------------------------- containers


def _check_file(path: Path) -> None:
    if not path.exists():
        raise VideoReadError(path, "file not found")
    if path.is_dir():
        raise VideoReadError(path, "is a folder, not a video file")
    if path.stat().st_size == 0:
        raise VideoReadError(path, "file is empty (0 bytes)")


def open_video(path: Path) -> tuple[av.container.InputContainer, av.video.stream.VideoStream]:
    """Open a container and its first video stream, mapping failures to VideoReadError."""
    _check_file(path)
    try:
        container = av.open(str(path), mode="r")
    except av.error.InvalidDataError:
        raise VideoReadError(
            path, "not a readable video (unknown format, or a corrupt or truncated file)"
        ) from None
    except (av.FFmpegError, OSError) as err:
        raise VideoReadError(path, f"cannot open ({err})") from None
    if not container.streams.video:
        container.close()
        raise VideoReadError(path, "the file has no video stream")
    stream = container.streams.video[0]
    return container, stream


def decode_error(path: Path, decoded: int, err: Exception) -> VideoReadError:
    return VideoReadError(path, f"corrupt or truncated video data after frame {decoded} ({err})")


def _count_by_decoding(path: Path, container, stream) -> int:
    count = 0
    try:
        for _ in container.decode(stream):
            count += 1
    except av.FFmpegError as err:
        raise decode_error(path, count, err) from None
    return count


def probe_video(path: PathLike, *, exact: bool = False) -> VideoInfo:
    """Frame count and size of a video, from stream metadata (fast).

    Args:
        path: a video file.
        exact: count frames by decoding them all (slow) instead of trusting metadata.
            Metadata without a count (0) always falls back to decoding.

    Raises:
        VideoReadError: missing, empty, not a video, or undecodable while counting.
    """
    path = Path(path)
    container, stream = open_video(path)
    with container:
        ctx = stream.codec_context
        num_frames = int(stream.frames or 0)
        counted = exact or num_frames <= 0
        if counted:
            num_frames = _count_by_decoding(path, container, stream)
        rate = stream.average_rate or stream.guessed_rate
        return VideoInfo(
            path=path,
            num_frames=num_frames,
            height=int(ctx.height),
            width=int(ctx.width),
            fps=float(rate) if rate else None,
            codec=ctx.name,
            counted=counted,
        )


def count_frames(path: PathLike, *, exact: bool = False) -> int:
    """Number of frames of a video: stream metadata, or decoding when that says 0."""
    return probe_video(path, exact=exact).num_frames


# --------------------------------------------------------------------------- decoding


def _frame_index(frame: av.VideoFrame, start: int, step: Fraction | None) -> int | None:
    """Frame number from its timestamp, or None when it is not a clean integer."""
    if frame.pts is None or step is None:
        return None
    pos = Fraction(frame.pts - start) / step
    index = round(pos)
    return index if abs(pos - index) < Fraction(1, 10) else None


def _seek(container, stream, first: int) -> tuple[int, Fraction] | None:
    """Seek to the keyframe at or before frame ``first``; return (start pts, pts per frame)."""
    rate = stream.average_rate
    if not rate or stream.time_base is None:
        return None
    step = 1 / (Fraction(rate) * Fraction(stream.time_base))  # pts units per frame
    start = stream.start_time or 0
    try:
        container.seek(int(start + first * step), stream=stream, backward=True, any_frame=False)
    except av.FFmpegError:
        return None
    return start, step


def _convert(reformatter: VideoReformatter, frame: av.VideoFrame) -> np.ndarray:
    return reformatter.reformat(frame, format="rgb24").to_ndarray().copy()


def _decode_from_start(
    path: Path, container, stream, wanted: np.ndarray
) -> tuple[dict[int, np.ndarray], int | None]:
    """Decode from the current (first) position up to ``wanted[-1]``.

    Returns:
        ``({frame number: (H, W, 3) uint8}, total)`` where ``total`` is the number of frames
        in the video when decoding reached its end first, else ``None``.
    """
    last = int(wanted[-1])
    want = set(wanted.tolist())
    reformatter = VideoReformatter()
    out: dict[int, np.ndarray] = {}
    index = -1
    try:
        for index, frame in enumerate(container.decode(stream)):
            if index in want:
                out[index] = _convert(reformatter, frame)
                if index == last:
                    return out, None
    except av.FFmpegError as err:
        raise decode_error(path, index + 1, err) from None
    return out, index + 1


def _decode_after_seek(container, stream, wanted: np.ndarray) -> dict[int, np.ndarray] | None:
    """Seek near ``wanted[0]`` and decode; None when the timestamps cannot be trusted."""
    first, last = int(wanted[0]), int(wanted[-1])
    timing = _seek(container, stream, first)
    if timing is None:
        return None
    start, step = timing
    want = set(wanted.tolist())
    reformatter = VideoReformatter()
    out: dict[int, np.ndarray] = {}
    previous = None
    try:
        for frame in container.decode(stream):
            index = _frame_index(frame, start, step)
            # Trust the seek only if it landed at or before the first wanted frame and the
            # timestamps then count frames one by one.
            if index is None or (previous is None and index > first):
                return None
            if previous is not None and index != previous + 1:
                return None
            previous = index
            if index in want:
                out[index] = _convert(reformatter, frame)
                if index == last:
                    return out
    except av.FFmpegError:
        return None  # decoding from the start reports the error properly
    return None


def _readopen_video(
    path: Path, container, stream, indices: np.ndarray, *, header: int, seek: bool
) -> np.ndarray:
    """Frames ``indices`` of an open container (see :func:`read_frames`)."""
    wanted = np.unique(indices)
    decoded = None
    total = None
    key = str(path)
    if seek and int(wanted[0]) >= SEEK_MIN_FRAME and key not in _UNSEEKABLE:
        decoded = _decode_after_seek(container, stream, wanted)
        if decoded is None:  # start again from a fresh container; do not try this file again
            _UNSEEKABLE.add(key)
            container.close()
            container, stream = open_video(path)
    if decoded is None:
        with container:
            decoded, total = _decode_from_start(path, container, stream, wanted)
    missing = [int(w) for w in wanted if int(w) not in decoded]
    if missing:
        raise _too_few_frames(path, missing[0], total or 0, header)
    first = decoded[int(wanted[0])]
    out = np.empty((indices.size, *first.shape), dtype=np.uint8)
    for k, index in enumerate(indices.tolist()):
        out[k] = decoded[index]
    return out


def _too_few_frames(path: Path, index: int, total: int, header: int) -> VideoReadError:
    if total == 0:
        return VideoReadError(path, "no frame could be decoded")
    if header > total:
        return TruncatedVideoError(
            path,
            f"truncated or corrupt: the header says {header} frames but only {total} decode "
            f"(frame {index} was asked for)",
            header=header,
            decoded=total,
        )
    return VideoReadError(path, f"frame {index} asked for, but the video has {total} frames")


def _as_indices(indices: Sequence[int] | np.ndarray) -> np.ndarray:
    indices = np.asarray(indices, dtype=np.int64).reshape(-1)
    if indices.size == 0:
        raise ValueError("indices is empty")
    if indices.min() < 0:
        raise ValueError(f"frame indices must be >= 0, got {int(indices.min())}")
    return indices


def read_clip(
    path: PathLike, choose: Callable[[int], np.ndarray], *, seek: bool = True
) -> tuple[np.ndarray, int]:
    """Read the frames ``choose(num_frames)`` of a video, opening it once.

    ``num_frames`` comes from stream metadata (decoding counts it when that is 0), so a
    clip position can be drawn before decoding.

    Args:
        path: a video file.
        choose: maps the frame count to the frame numbers to read, shape ``(N,)``.
        seek: allow seeking when the first wanted frame is far into the video.

    Returns:
        ``(frames, num_frames)`` with frames ``(N, H, W, 3)`` uint8.

    Raises:
        VideoReadError: unreadable file, or wanted frames that do not decode.
    """
    path = Path(path)
    container, stream = open_video(path)
    try:
        num_frames = int(stream.frames or 0)
        if num_frames <= 0:
            num_frames = _count_by_decoding(path, container, stream)
            container.close()
            container, stream = open_video(path)
        if num_frames <= 0:
            raise VideoReadError(path, "no frame could be decoded")
        indices = _as_indices(choose(num_frames))
        frames = _readopen_video(path, container, stream, indices, header=num_frames, seek=seek)
    finally:
        container.close()
    return frames, num_frames


def read_frames(
    path: PathLike, indices: Sequence[int] | np.ndarray, *, seek: bool = True
) -> np.ndarray:
    """Decode the frames ``indices`` (0-based, any order, repeats allowed) of a video.

    Args:
        path: a video file readable by PyAV (.avi, .mp4, …).
        indices: frame numbers, shape ``(N,)``.
        seek: allow seeking when the first wanted frame is far into the video.

    Returns:
        ``uint8`` array ``(N, H, W, 3)``; row ``k`` equals PyAV's
        ``to_ndarray(format="rgb24")`` of frame ``indices[k]``.

    Raises:
        VideoReadError: unreadable file, or a wanted frame past the frames that decode (the
            message says when the header promised more: a truncated file).
        ValueError: empty or negative indices.
    """
    path = Path(path)
    indices = _as_indices(indices)
    container, stream = open_video(path)
    try:
        header = int(stream.frames or 0)
        return _readopen_video(path, container, stream, indices, header=header, seek=seek)
    finally:
        container.close()


def read_video(path: PathLike) -> np.ndarray:
    """All frames of a video, ``uint8`` ``(T, H, W, 3)`` (rgb24)."""
    path = Path(path)
    container, stream = open_video(path)
    reformatter = VideoReformatter()
    frames = []
    with container:
        try:
            for frame in container.decode(stream):
                frames.append(_convert(reformatter, frame))
        except av.FFmpegError as err:
            raise decode_error(path, len(frames), err) from None
    if not frames:
        raise VideoReadError(path, "no frame could be decoded")
    return np.stack(frames)

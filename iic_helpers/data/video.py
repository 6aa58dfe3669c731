"""Reading frames from video files (PyAV) and from JPEG frame folders.

Frames come back as ``uint8`` arrays shaped ``(T, H, W, 3)``, equal to PyAV's
``frame.to_ndarray(format="rgb24")``. Only what a clip needs is decoded: frames are decoded
in order up to the last requested one and only the requested frames are converted to RGB
(with one reused converter: a fresh converter per frame costs ~2 ms, more than decoding).
When the first requested frame is far into a long video, the reader seeks to the keyframe
before it instead of decoding from the start, and checks from the frame timestamps that it
landed where it meant to (otherwise it decodes from the start).

Frame folders use the original IIC layout ``<folder>/frame000001.jpg`` (1-based);
:func:`find_frame_dir` accepts the ``v_HandstandPushups_`` / ``v_HandStandPushups_``
spelling difference between UCF101 videos and public frame/flow releases.

Every failure raises :class:`VideoReadError`, whose message names the file and the reason
(missing, empty, not a video, truncated or corrupt).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from av.video.reformatter import VideoReformatter
from PIL import Image

__all__ = [
    "VideoReadError",
    "TruncatedVideoError",
    "VideoInfo",
    "probe_video",
    "count_frames",
    "read_frames",
    "read_video",
    "read_clip",
    "write_video",
    "resize_video",
    "resize_videos",
    "find_frame_dir",
    "count_jpeg_frames",
    "read_jpeg_frames",
    "SEEK_MIN_FRAME",
    "RESIZE_GOP",
]

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


def _open(path: Path) -> tuple[av.container.InputContainer, av.video.stream.VideoStream]:
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


def _decode_error(path: Path, decoded: int, err: Exception) -> VideoReadError:
    return VideoReadError(path, f"corrupt or truncated video data after frame {decoded} ({err})")


def _count_by_decoding(path: Path, container, stream) -> int:
    count = 0
    try:
        for _ in container.decode(stream):
            count += 1
    except av.FFmpegError as err:
        raise _decode_error(path, count, err) from None
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
    container, stream = _open(path)
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
        raise _decode_error(path, index + 1, err) from None
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


def _read_open(
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
            container, stream = _open(path)
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
    container, stream = _open(path)
    try:
        num_frames = int(stream.frames or 0)
        if num_frames <= 0:
            num_frames = _count_by_decoding(path, container, stream)
            container.close()
            container, stream = _open(path)
        if num_frames <= 0:
            raise VideoReadError(path, "no frame could be decoded")
        indices = _as_indices(choose(num_frames))
        frames = _read_open(path, container, stream, indices, header=num_frames, seek=seek)
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
    container, stream = _open(path)
    try:
        header = int(stream.frames or 0)
        return _read_open(path, container, stream, indices, header=header, seek=seek)
    finally:
        container.close()


def read_video(path: PathLike) -> np.ndarray:
    """All frames of a video, ``uint8`` ``(T, H, W, 3)`` (rgb24)."""
    path = Path(path)
    container, stream = _open(path)
    reformatter = VideoReformatter()
    frames = []
    with container:
        try:
            for frame in container.decode(stream):
                frames.append(_convert(reformatter, frame))
        except av.FFmpegError as err:
            raise _decode_error(path, len(frames), err) from None
    if not frames:
        raise VideoReadError(path, "no frame could be decoded")
    return np.stack(frames)


def write_video(
    path: PathLike,
    frames: np.ndarray,
    *,
    fps: int = 25,
    codec: str | None = None,
    lossless: bool = False,
    crf: int = 18,
    gop: int | None = None,
) -> Path:
    """Encode frames ``(T, H, W, 3)`` uint8 (RGB) into a video file with PyAV.

    Args:
        path: output file; ``.mp4`` defaults to H.264 (libx264, yuv420p), ``.avi`` to
            MPEG-4 part 2 (``mpeg4``, as UCF101's Xvid files), other suffixes to libx264.
        frames: ``(T, H, W, 3)`` uint8. Lossy yuv420p codecs need even ``H`` and ``W``.
        fps: frame rate.
        codec: an FFmpeg encoder name to override the default.
        lossless: write frames exactly (``libx264rgb`` qp 0 for .mp4, ``ffv1`` otherwise);
            decoding then gives ``frames`` back bit for bit.
        crf: libx264 quality (lower is better; 18 is visually lossless).
        gop: keyframe interval (default: the encoder's).

    Returns:
        ``path``.
    """
    path = Path(path)
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8 (T, H, W, 3), got {frames.dtype} {frames.shape}")
    _, height, width, _ = frames.shape
    mp4 = path.suffix.lower() in (".mp4", ".m4v", ".mov", ".mkv")
    if codec is None:
        if lossless:
            codec = "libx264rgb" if mp4 else "ffv1"
        else:
            codec = "mpeg4" if path.suffix.lower() == ".avi" else "libx264"
    pix_fmt = {"libx264rgb": "rgb24", "ffv1": "bgr0"}.get(codec, "yuv420p")
    if pix_fmt == "yuv420p" and (height % 2 or width % 2):
        raise ValueError(f"{codec} with yuv420p needs even frame sizes, got {height}x{width}")
    options = {}
    if codec.startswith("libx264"):
        options = {"qp": "0"} if lossless else {"crf": str(crf)}
    elif codec == "mpeg4":
        options = {"qscale": "2"}
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        stream.options = options
        if codec == "mpeg4":
            stream.codec_context.qscale = 2
        if gop is not None:
            stream.codec_context.gop_size = gop
        for array in frames:
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(array), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


VIDEO_SUFFIXES = (".avi", ".mp4", ".mkv", ".mov", ".webm", ".m4v", ".mpg", ".mpeg")


def _resized_size(height: int, width: int, short_side: int) -> tuple[int, int]:
    """(H, W) with the short side ``short_side`` and both even (libx264 yuv420p)."""
    scale = short_side / min(height, width)
    even = lambda v: max(2, int(round(v * scale / 2)) * 2)  # noqa: E731
    return even(height), even(width)


#: Keyframe interval written by :func:`resize_video`: a clip start is never more than this
#: many frames after a keyframe, so the reader can seek instead of decoding from frame 0.
RESIZE_GOP = 16


def _resize_codec(dst: Path, codec: str) -> str:
    """``"auto"``: MPEG-4 part 2 in ``.avi`` (seekable there, fast to decode), else H.264."""
    if codec == "auto":
        return "mpeg4" if dst.suffix.lower() == ".avi" else "libx264"
    if codec not in ("mpeg4", "libx264"):
        raise ValueError(f"codec must be 'auto', 'mpeg4' or 'libx264', got {codec!r}")
    return codec


def resize_video(
    src: PathLike,
    dst: PathLike,
    *,
    short_side: int = 128,
    crf: int = 18,
    codec: str = "auto",
    gop: int | None = RESIZE_GOP,
) -> Path:
    """Re-encode a video with its short side ``short_side`` (every frame kept).

    The container follows ``dst``'s suffix, so split lists that name ``….avi`` still apply.
    ``codec="auto"`` writes MPEG-4 part 2 into ``.avi`` and H.264 into other containers:
    H.264 with B-frames inside AVI stores timestamps in decode order, which defeats seeking
    (``benchmarks/RESULTS.md``). A keyframe every ``gop`` frames (None: the encoder's
    default, 250 for libx264) lets :func:`read_frames` seek to any clip. The file appears
    atomically (written to a temporary name, then renamed).

    Args:
        crf: H.264 quality (lower is better); MPEG-4 uses a fixed quantiser of 3 instead.
        codec: ``"auto"``, ``"mpeg4"`` or ``"libx264"``.
        gop: keyframe interval in frames.

    Raises:
        VideoReadError: the source cannot be read.
    """
    src, dst = Path(src), Path(dst)
    codec = _resize_codec(dst, codec)
    if gop is not None and gop < 1:
        raise ValueError(f"gop must be a positive number of frames or None, got {gop}")
    container, stream = _open(src)
    tmp = dst.with_name(f".{dst.stem}.part{dst.suffix}")
    dst.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    try:
        with container, av.open(str(tmp), mode="w") as out:
            ctx = stream.codec_context
            height, width = _resized_size(ctx.height, ctx.width, short_side)
            rate = stream.average_rate or stream.guessed_rate or 25
            encoder = out.add_stream(codec, rate=rate)
            encoder.width, encoder.height, encoder.pix_fmt = width, height, "yuv420p"
            if codec == "libx264":
                encoder.options = {"crf": str(crf)}
            else:
                encoder.codec_context.qscale = 3
            if gop is not None:
                encoder.codec_context.gop_size = gop
            try:
                for frame in container.decode(stream):
                    small = frame.reformat(
                        width=width, height=height, format="yuv420p", interpolation="AREA"
                    )
                    small.pts = None
                    out.mux(encoder.encode(small))
                    written += 1
            except av.FFmpegError as err:
                raise _decode_error(src, written, err) from None
            out.mux(encoder.encode())
        if written == 0:
            raise VideoReadError(src, "no frame could be decoded")
        os.replace(tmp, dst)
    finally:
        tmp.unlink(missing_ok=True)
    return dst


def resize_videos(
    src_root: PathLike,
    dst_root: PathLike,
    *,
    short_side: int = 128,
    crf: int = 18,
    codec: str = "auto",
    gop: int | None = RESIZE_GOP,
    progress: bool = True,
) -> dict[str, list[Path]]:
    """Pre-resize every video of a dataset root (short side ``short_side``), resumably.

    ``<src_root>/videos/<Class>/<file>`` becomes ``<dst_root>/videos/<Class>/<file>`` (same
    name; codec and keyframe interval as in :func:`resize_video`: MPEG-4 part 2 in ``.avi``,
    a keyframe every 16 frames); ``<src_root>/splits/`` is copied. Videos already present
    in ``dst_root`` are skipped, so an interrupted run continues where it stopped. Decoding
    small videos is several times faster than decoding UCF101's 320x240 originals, and the
    paper's 128x171 resize then changes almost nothing.

    Returns:
        ``{"written": [...], "skipped": [...], "failed": [...]}`` source paths; failures
        (unreadable sources) are also warned about and do not stop the run.
    """
    import shutil
    import warnings

    from tqdm.auto import tqdm

    src_root, dst_root = Path(src_root), Path(dst_root)
    if src_root.resolve() == dst_root.resolve():
        raise ValueError("dst_root must differ from src_root")
    videos = sorted(
        p for p in (src_root / "videos").rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES
    )
    if not videos:
        raise FileNotFoundError(f"no video files under {src_root / 'videos'}")
    if (src_root / "splits").is_dir():
        (dst_root / "splits").mkdir(parents=True, exist_ok=True)
        for split_file in (src_root / "splits").iterdir():
            if split_file.is_file() and not (dst_root / "splits" / split_file.name).exists():
                shutil.copyfile(split_file, dst_root / "splits" / split_file.name)
    result: dict[str, list[Path]] = {"written": [], "skipped": [], "failed": []}
    for src in tqdm(videos, desc="resizing videos", disable=not progress):
        dst = dst_root / "videos" / src.relative_to(src_root / "videos")
        if dst.exists():
            result["skipped"].append(src)
            continue
        try:
            resize_video(src, dst, short_side=short_side, crf=crf, codec=codec, gop=gop)
        except VideoReadError as err:
            warnings.warn(str(err), stacklevel=2)
            result["failed"].append(src)
            continue
        result["written"].append(src)
    return result


# --------------------------------------------------------------------------- JPEG folders


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

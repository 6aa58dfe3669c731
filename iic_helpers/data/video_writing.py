"""Writing and resizing video files (PyAV): one encoder for the whole package.

:func:`write_video` encodes frames; its ``deterministic`` mode (one x264 thread, no
macroblock-tree rate control) writes byte-identical files on every run, which the
synthetic dataset uses. :func:`resize_video` / :func:`resize_videos` re-encode a dataset
with a smaller short side and frequent keyframes, so that clips can be read by seeking.
"""

from __future__ import annotations

import os
import shutil
import warnings
from pathlib import Path

import av
import numpy as np
from tqdm.auto import tqdm

from .video_reading import VIDEO_SUFFIXES, VideoReadError, decode_error, open_video

__all__ = ["RESIZE_GOP", "resize_video", "resize_videos", "write_video"]

PathLike = str | os.PathLike


def write_video(
    path: PathLike,
    frames: np.ndarray,
    *,
    fps: int = 25,
    codec: str | None = None,
    lossless: bool = False,
    crf: int = 18,
    gop: int | None = None,
    deterministic: bool = False,
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
        deterministic: libx264 only: the same frames give the same bytes on every run and
            machine (one encoder thread, preset ``medium``, ``mbtree=0``, frames converted to
            yuv420p before encoding, timestamps 0, 1, ...). Measured: x264's output depends
            on its thread count, and its macroblock-tree rate control gave run-to-run
            different pixels on about one in five 32-frame clips (videos shorter than its
            40-frame lookahead); without it every file came out byte-identical, ~25 % larger
            and with a higher PSNR. The synthetic dataset is written this way.

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
    if deterministic and (codec != "libx264" or lossless):
        raise ValueError(f"deterministic=True needs codec libx264 (lossy), got {codec}")
    options = {}
    if codec.startswith("libx264"):
        options = {"qp": "0"} if lossless else {"crf": str(crf)}
    if deterministic:
        options |= {"preset": "medium", "x264-params": "mbtree=0"}
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
        if deterministic:
            stream.codec_context.thread_count = 1
        for index, array in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(array), format="rgb24")
            if deterministic:
                frame = frame.reformat(format="yuv420p")
                frame.pts = index
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


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
    container, stream = open_video(src)
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
                raise decode_error(src, written, err) from None
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

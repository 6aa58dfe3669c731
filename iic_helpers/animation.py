"""Animated GIFs of clips: motion that renders on static viewers (GitHub, nbviewer, HTML).

A matplotlib/JavaScript animation needs a live page; a GIF is a plain image. Clips follow
:func:`iic_helpers.viz.to_frames`: ``(C, T, H, W)`` in ``[0, 1]`` or ``(T, H, W, 3)`` uint8.

    show_gif({"RGB": clip, "residual": residual(clip)})      # views side by side
    show_gif(tile_clips([[a, b, c], [d, e, f]]))             # a grid of clips
    show_gif(tile_clips([[caption_clip(a, "MoveRight"), caption_clip(b, "Grow")]]))
    gif_data_uri(clip, max_size=96)                          # for <img src=...> tooltips
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from PIL import Image

from .viz import to_frames

__all__ = [
    "caption_clip",
    "gif_bytes",
    "gif_data_uri",
    "show_gif",
    "tile_clips",
    "to_uint8_frames",
]


def to_uint8_frames(clip: Any) -> np.ndarray:
    """A clip as ``(T, H, W, 3)`` uint8 (see :func:`iic_helpers.viz.to_frames`).

    A uint8 array ending in 3 channels is taken as ``(T, H, W, 3)`` whatever T is.
    """
    if _is_uint8_frames(clip):
        return clip
    return np.round(to_frames(clip) * 255.0).astype(np.uint8)


def tile_clips(
    grid: Sequence[Sequence[Any]] | Mapping[str, Any], *, pad: int = 2, background: int = 255
) -> np.ndarray:
    """Clips laid out in a grid, frame by frame: ``(T, H_total, W_total, 3)`` uint8.

    ``grid`` is a list of rows of clips (``None`` leaves a cell empty), or a mapping of view
    name to clip (one row). Clips may differ in size; each cell is as large as the largest
    clip. The result has as many frames as the shortest clip.
    """
    rows = [list(grid.values())] if isinstance(grid, Mapping) else [list(r) for r in grid]
    frames = [[None if c is None else to_uint8_frames(c) for c in row] for row in rows]
    present = [f for row in frames for f in row if f is not None]
    if not present:
        raise ValueError("tile_clips: the grid holds no clip")
    length = min(len(f) for f in present)
    cell_h = max(f.shape[1] for f in present)
    cell_w = max(f.shape[2] for f in present)
    n_cols = max(len(row) for row in frames)
    height = len(frames) * (cell_h + pad) - pad
    width = n_cols * (cell_w + pad) - pad
    out = np.full((length, height, width, 3), background, dtype=np.uint8)
    for r, row in enumerate(frames):
        for c, clip in enumerate(row):
            if clip is None:
                continue
            y, x = r * (cell_h + pad), c * (cell_w + pad)
            out[:, y : y + clip.shape[1], x : x + clip.shape[2]] = clip[:length]
    return out


def _resized(frames: np.ndarray, max_size: int | None, scale: float) -> list[Image.Image]:
    images = [Image.fromarray(f) for f in frames]
    h, w = frames.shape[1:3]
    factor = scale
    if max_size is not None:
        factor = min(factor, max_size / max(h, w))
    if factor != 1.0:
        size = (max(1, round(w * factor)), max(1, round(h * factor)))
        images = [im.resize(size, Image.Resampling.NEAREST) for im in images]
    return images


def gif_bytes(
    clip: Any,
    *,
    fps: float = 8.0,
    max_size: int | None = None,
    scale: float = 1.0,
    max_frames: int | None = None,
    compact: bool = False,
) -> bytes:
    """An endlessly looping GIF of a clip (or of a :func:`tile_clips` grid).

    ``max_size`` bounds the longer side in pixels, ``scale`` enlarges small clips (nearest
    neighbour, so pixels stay sharp), ``max_frames`` keeps evenly spaced frames. The bytes
    are the same for the same input (no timestamps).

    ``compact=True`` quantises every frame to one shared palette of 255 colours and stores
    each pixel that did not change since the previous frame as transparent, so a clip with
    a still background costs a fraction of the default (one palette per frame, every
    pixel stored); colours may then be off by a few levels.
    """
    frames = to_uint8_frames(clip)
    if max_frames is not None and len(frames) > max_frames:
        keep = np.linspace(0, len(frames) - 1, max_frames).round().astype(int)
        frames = frames[keep]
    images = _resized(frames, max_size, scale)
    if compact:
        return _compact_gif(images, fps)
    return _encode_gif(images, fps)


def _encode_gif(frames: list[Image.Image], fps: float, **options: Any) -> bytes:
    """The bytes of an endlessly looping GIF of ``frames`` (each ``H x W``) at ``fps``.

    Every frame lasts ``round(1000 / fps)`` ms, at least 20; ``options`` go to Pillow's GIF
    writer (e.g. ``transparency`` and ``disposal``).
    """
    buffer = io.BytesIO()
    frames[0].save(
        buffer,
        format="GIF",
        save_all=True,
        append_images=frames[1:],
        duration=max(20, round(1000 / fps)),
        loop=0,
        optimize=False,
        **options,
    )
    return buffer.getvalue()


_TRANSPARENT = 255  # palette index of "same as the previous frame" in compact GIFs


def _compact_gif(images: list[Image.Image], fps: float) -> bytes:
    """GIF with one shared palette; unchanged pixels are transparent (see :func:`gif_bytes`)."""
    w, h = images[0].size
    step = max(1, len(images) // 8)
    sample = Image.fromarray(np.concatenate([np.asarray(im) for im in images[::step]], axis=0))
    shared = sample.quantize(_TRANSPARENT, method=Image.Quantize.MEDIANCUT)
    palette = shared.getpalette()[: 3 * _TRANSPARENT]
    palette += [0] * (3 * 256 - len(palette))
    indices = [np.asarray(im.quantize(palette=shared, dither=Image.Dither.NONE)) for im in images]
    frames = []
    for t, index in enumerate(indices):
        out = index.copy()
        if t > 0:
            out[index == indices[t - 1]] = _TRANSPARENT
        frame = Image.fromarray(out.astype(np.uint8), mode="P")
        frame.putpalette(palette)
        frames.append(frame)
    return _encode_gif(frames, fps, transparency=_TRANSPARENT, disposal=1)


def _is_uint8_frames(clip: Any) -> bool:
    return (
        isinstance(clip, np.ndarray)
        and clip.dtype == np.uint8
        and clip.ndim == 4
        and clip.shape[-1] == 3
    )


def gif_data_uri(clip: Any, **options: Any) -> str:
    """``data:image/gif;base64,...`` for an ``<img>`` tag (options as :func:`gif_bytes`)."""
    return "data:image/gif;base64," + base64.b64encode(gif_bytes(clip, **options)).decode()


def show_gif(
    clips: Any,
    *,
    fps: float = 8.0,
    scale: float = 3.0,
    max_size: int | None = None,
    compact: bool = False,
):
    """Display clips as a GIF in a notebook, in a form every viewer renders.

    ``clips`` is one clip, a mapping of name to clip (side by side, left to right in order),
    or a ready grid from :func:`tile_clips`; ``compact`` as in :func:`gif_bytes`.

    Returns an ``IPython.display.Image`` (``.data`` holds the GIF bytes) whose notebook
    output is ``text/html``: an ``<img>`` with the GIF as a data URI. nbconvert, and so
    nbviewer, drop ``image/gif`` outputs (they fall back to text), but render HTML.
    """
    if isinstance(clips, Mapping):
        clips = tile_clips(clips)
    data = gif_bytes(clips, fps=fps, scale=scale, max_size=max_size, compact=compact)
    return _html_gif_class()(data=data, format="gif")


def _html_gif_class() -> type:
    """An ``IPython.display.Image`` subclass whose output is an HTML ``<img>`` of the GIF."""
    from IPython.display import Image as IPyImage

    class AnimatedGif(IPyImage):
        def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict:
            encoded = base64.b64encode(self.data).decode()
            width, height = Image.open(io.BytesIO(self.data)).size
            html = (
                f'<img src="data:image/gif;base64,{encoded}" width="{width}" '
                f'height="{height}" alt="animated GIF" />'
            )
            return {"text/html": html, "text/plain": f"<animated GIF {width}x{height}>"}

    return AnimatedGif


def caption_clip(
    clip: Any, text: str, *, height: int = 12, background: int = 255, color: int = 0
) -> np.ndarray:
    """A clip with a text band above every frame: ``(T, height + H, W, 3)`` uint8.

    A GIF has no title or axis labels; captioned clips laid out with :func:`tile_clips`
    say which clip is which. The text uses Pillow's built-in bitmap font (about 6 pixels
    per character; longer text is cut at the frame's width).
    """
    from PIL import ImageDraw, ImageFont

    if height < 1:
        raise ValueError(f"caption_clip: height must be at least 1 pixel, got {height}")
    frames = to_uint8_frames(clip)
    t, h, w, _ = frames.shape
    band = Image.new("RGB", (w, height), (background,) * 3)
    ImageDraw.Draw(band).text((1, 0), text, fill=(color,) * 3, font=ImageFont.load_default(10))
    out = np.empty((t, height + h, w, 3), dtype=np.uint8)
    out[:, :height] = np.asarray(band)
    out[:, height:] = frames
    return out

"""GIF helpers: frames, layout, size bounds, determinism."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
import torch
from PIL import Image

from iic_helpers.animation import (
    caption_clip,
    gif_bytes,
    gif_data_uri,
    show_gif,
    tile_clips,
    to_uint8_frames,
)


def _frames(data: bytes) -> list[np.ndarray]:
    image = Image.open(io.BytesIO(data))
    out = []
    for i in range(image.n_frames):
        image.seek(i)
        out.append(np.asarray(image.convert("RGB")))
    return out


def test_gif_keeps_every_frame_and_its_pixels() -> None:
    clip = torch.zeros(3, 4, 6, 8)
    for t in range(4):
        clip[:, t, :, 2 * t] = 1.0  # a white column moving right
    frames = _frames(gif_bytes(clip))
    assert len(frames) == 4
    for t, frame in enumerate(frames):
        assert frame.shape == (6, 8, 3)
        assert frame[:, 2 * t].min() == 255 and frame[:, 2 * t + 1].max() == 0


def test_gif_size_bound_scale_and_frame_subsampling() -> None:
    clip = torch.rand(3, 16, 40, 80)
    small = Image.open(io.BytesIO(gif_bytes(clip, max_size=20, scale=4.0, max_frames=5)))
    assert small.size == (20, 10) and small.n_frames == 5
    big = Image.open(io.BytesIO(gif_bytes(clip, scale=2.0)))
    assert big.size == (160, 80) and big.n_frames == 16


def test_gif_is_deterministic_and_data_uri_decodes() -> None:
    clip = torch.rand(3, 5, 8, 8, generator=torch.Generator().manual_seed(0))
    assert gif_bytes(clip) == gif_bytes(clip)
    uri = gif_data_uri(clip, max_size=8)
    assert uri.startswith("data:image/gif;base64,")
    assert base64.b64decode(uri.split(",", 1)[1]) == gif_bytes(clip, max_size=8)


def test_tile_clips_places_cells_and_truncates_to_shortest() -> None:
    a = np.zeros((5, 4, 4, 3), dtype=np.uint8)
    b = np.full((3, 2, 4, 3), 200, dtype=np.uint8)
    grid = tile_clips([[a, None], [None, b]], pad=1, background=7)
    assert grid.shape == (3, 9, 9, 3)
    assert (grid[:, :4, :4] == 0).all()
    assert (grid[:, 5:7, 5:9] == 200).all()
    assert (grid[:, 4, :] == 7).all() and (grid[:, 7:, 5:] == 7).all()
    row = tile_clips({"x": a, "y": b})
    assert row.shape == (3, 4, 10, 3)
    with pytest.raises(ValueError, match="no clip"):
        tile_clips([[None]])


def test_to_uint8_frames_accepts_both_layouts() -> None:
    clip = torch.full((1, 2, 3, 3), 0.5)
    assert to_uint8_frames(clip).shape == (2, 3, 3, 3)
    assert to_uint8_frames(clip).max() == 128
    raw = np.full((2, 3, 3, 3), 9, dtype=np.uint8)
    assert (to_uint8_frames(raw) == 9).all()


def test_show_gif_returns_a_gif_image() -> None:
    image = show_gif({"rgb": torch.rand(3, 4, 8, 8), "res": torch.rand(1, 4, 8, 8)}, scale=1.0)
    assert image.format == "gif"
    assert Image.open(io.BytesIO(image.data)).size == (18, 8)


def test_caption_clip_adds_a_text_band_and_keeps_the_frames() -> None:
    clip = torch.rand(3, 5, 10, 40, generator=torch.Generator().manual_seed(1))
    out = caption_clip(clip, "Grow", height=12)
    assert out.shape == (5, 22, 40, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out[:, 12:], to_uint8_frames(clip))
    band = out[:, :12]
    assert (band == band[:1]).all(), "the caption is the same in every frame"
    assert (band < 128).sum() > 10 and (band == 255).mean() > 0.5, "dark text on white"
    other = caption_clip(clip, "Shrink", height=12)
    assert not np.array_equal(other[:, :12], band)
    assert np.array_equal(caption_clip(clip, "Grow", height=12), out)
    with pytest.raises(ValueError, match="height"):
        caption_clip(clip, "x", height=0)


def _still_background_clip() -> np.ndarray:
    """A textured still background with a small square moving across: (16, 48, 48, 3)."""
    g = np.random.default_rng(0)
    background = (g.random((48, 48, 3)) * 200).astype(np.uint8)
    clip = np.repeat(background[None], 16, axis=0)
    for t in range(16):
        clip[t, 20:28, 2 * t : 2 * t + 8] = (255, 255, 0)
    return clip


def test_compact_gif_is_smaller_and_decodes_to_the_clip() -> None:
    clip = _still_background_clip()
    plain, compact = gif_bytes(clip, scale=2.0), gif_bytes(clip, scale=2.0, compact=True)
    assert len(compact) < 0.5 * len(plain)
    assert compact == gif_bytes(clip, scale=2.0, compact=True)
    frames, plain_frames = _frames(compact), _frames(plain)
    assert len(frames) == 16 and frames[0].shape == (96, 96, 3)
    for t, (frame, plain_frame) in enumerate(zip(frames, plain_frames, strict=True)):
        expected = clip[t].repeat(2, axis=0).repeat(2, axis=1).astype(int)
        error = np.abs(frame.astype(int) - expected).mean()
        # one palette for all frames costs little against one palette per frame
        assert error < 1.5 * np.abs(plain_frame.astype(int) - expected).mean() + 1, t
        # the moving square is where it should be in every frame, in its colour
        assert (frame[42:54, 4 * t + 2 : 4 * t + 14] >= (230, 230, 0)).all()
    few_colours = torch.zeros(3, 4, 6, 8)
    for t in range(4):
        few_colours[:, t, :, 2 * t] = 1.0
    for t, frame in enumerate(_frames(gif_bytes(few_colours, compact=True))):
        assert frame[:, 2 * t].min() == 255 and np.delete(frame, 2 * t, axis=1).max() == 0
    assert show_gif(clip, compact=True, scale=1.0).data == gif_bytes(clip, compact=True)


def test_show_gif_output_is_html_that_nbconvert_renders() -> None:
    """nbconvert (nbviewer) drops image/gif outputs; the <img> data URI survives."""
    import nbformat
    from nbconvert import HTMLExporter

    image = show_gif(torch.rand(3, 4, 8, 8), scale=2.0)
    bundle = image._repr_mimebundle_()
    assert "image/gif" not in bundle, "the GIF is stored once, inside the HTML"
    uri = "data:image/gif;base64," + base64.b64encode(image.data).decode()
    assert uri in bundle["text/html"] and 'width="16"' in bundle["text/html"]
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("show_gif(clip)")
    cell.outputs = [nbformat.v4.new_output("display_data", data=bundle)]
    nb.cells = [cell]
    html, _ = HTMLExporter().from_notebook_node(nb)
    assert uri in html
    old_style = nbformat.v4.new_output("display_data", data={"image/gif": uri.split(",")[1]})
    cell.outputs = [old_style]
    with pytest.warns(UserWarning, match="not able to be represented"):
        assert uri.split(",")[1] not in HTMLExporter().from_notebook_node(nb)[0]

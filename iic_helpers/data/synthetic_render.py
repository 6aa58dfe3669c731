"""Rendering the synthetic motion videos as frames (no file is written here).

:func:`render_synthetic_video` draws one video of :data:`SYNTHETIC_CLASSES`;
:mod:`iic_helpers.data.synthetic` writes a whole dataset of them to disk. Appearance depends
only on ``(seed, group)`` and the small per-video jitter only on ``(seed, group, clip)``,
never on the class or on the dataset size.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "SYNTHETIC_CLASSES",
    "SYNTHETIC_SHAPES",
    "SYNTHETIC_VERSION",
    "RenderOptions",
    "check_render_options",
    "render_synthetic_video",
    "render_video",
    "frame_size",
]

#: Class names in label order (label 0 = ``MoveRight``; classInd.txt numbers them from 1).
SYNTHETIC_CLASSES: tuple[str, ...] = (
    "MoveRight",
    "MoveLeft",
    "MoveUp",
    "MoveDown",
    "RotateClockwise",
    "RotateCounterclockwise",
    "Grow",
    "Shrink",
    "Oscillate",
    "Blink",
)

#: Object shapes a group may draw (none is rotationally symmetric, so rotation shows).
SYNTHETIC_SHAPES: tuple[str, ...] = ("bar", "ellipse", "triangle", "tee", "ell")

#: Bumped whenever the same options would produce different videos.
SYNTHETIC_VERSION = 2

_EDGE_PX = 1.5  # width of the anti-aliased edge ramp, pixels
_SIZE_LOW, _SIZE_RATIO = 0.7, 2.0  # object size factors span 0.7x .. 1.4x


@dataclass(frozen=True)
class RenderOptions:
    """Checked options of one rendered video (:func:`check_render_options`)."""

    num_frames: int
    height: int
    width: int
    seed: int
    distractors: int
    noise: float


def frame_size(size: int | Sequence[int]) -> tuple[int, int]:
    """Return ``(height, width)`` from an int or a ``(height, width)`` pair."""
    if isinstance(size, (int, np.integer)):
        return int(size), int(size)
    dims = tuple(size)
    if len(dims) != 2 or not all(isinstance(d, (int, np.integer)) for d in dims):
        raise ValueError(f"size must be an int or a (height, width) pair of ints, got {size!r}")
    return int(dims[0]), int(dims[1])


def check_render_options(
    *, num_frames: int, size: int | Sequence[int], seed: int, distractors: int, noise: float
) -> RenderOptions:
    """Check what rendering needs and return it as :class:`RenderOptions`.

    Raises:
        ValueError: a value out of range, naming it.
    """
    height, width = frame_size(size)
    if height < 16 or width < 16 or height % 2 or width % 2:
        raise ValueError(
            f"frame size must be even and at least 16 pixels (H.264 with yuv420p halves the "
            f"colour planes), got height={height}, width={width}"
        )
    if num_frames < 2:
        raise ValueError(
            f"num_frames must be at least 2 (motion needs two frames), got {num_frames}"
        )
    if distractors < 0:
        raise ValueError(f"distractors must be >= 0, got {distractors}")
    if not 0.0 <= noise <= 0.5:
        raise ValueError(f"noise is a standard deviation in [0, 0.5], got {noise}")
    if seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed}")
    return RenderOptions(
        num_frames=int(num_frames),
        height=height,
        width=width,
        seed=int(seed),
        distractors=int(distractors),
        noise=float(noise),
    )


# --------------------------------------------------------------------------------------
# Random appearance (per group) and jitter (per group and clip)
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Blob:
    """A static distractor: shape, centre (fractions of width/height), radius, colour."""

    shape: str
    cx: float
    cy: float
    radius: float  # fraction of the short side
    angle: float
    color: tuple[float, float, float]


@dataclass(frozen=True)
class _Look:
    """Everything a group shares: the scene and the object's appearance and speeds."""

    bg_color: tuple[float, float, float]
    waves: tuple[tuple[float, float, float, float], ...]  # (kx, ky, phase, amplitude)
    wave_tint: tuple[float, float, float]
    blobs: tuple[_Blob, ...]
    shape: str
    color: tuple[float, float, float]
    color2: tuple[float, float, float]  # the second colour of a blinking object
    shade: float
    radius: float  # object radius, fraction of the short side, before the size factor
    cx: float  # start centre, fractions of width / height
    cy: float
    angle: float  # start orientation, radians
    speed: float  # translation, fraction of the short side per frame
    spin: float  # rotation, radians per frame
    grow_period: float  # frames per grow (or shrink) cycle
    osc_period: float
    osc_amplitude: float  # fraction of the short side
    osc_axis: float  # radians
    blink_period: float
    blink_duty: float  # fraction of a blink period shown in the first colour


@dataclass(frozen=True)
class _Jitter:
    """Small per-video variation shared by every class of one (group, clip)."""

    dx: float  # centre offset, fraction of the short side
    dy: float
    dangle: float
    speed: float  # multiplies every speed
    size: float  # in [0, 1): size factor _SIZE_LOW * _SIZE_RATIO**size (as Grow's cycle)
    phase: float  # in [0, 1): phase of periodic motions


def _rng(seed: int, *keys: int) -> np.random.Generator:
    """An independent generator for (seed, keys): groups do not depend on `n_groups`."""
    return np.random.default_rng(np.random.SeedSequence([seed, *keys]))


def _luma(rgb: np.ndarray) -> float:
    """BT.601 luma of an RGB colour in [0, 1]."""
    return float(0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2])


def _hsv_to_rgb(h: float, s: float, v: float) -> np.ndarray:
    """Convert one HSV colour (all in [0, 1]) to RGB in [0, 1]."""
    k = (np.array([5.0, 3.0, 1.0]) + h * 6.0) % 6.0
    return v - v * s * np.clip(np.minimum(k, 4.0 - k), 0.0, 1.0)


def _color_far_from(rng: np.random.Generator, ref: np.ndarray, min_luma_gap: float) -> np.ndarray:
    """Draw a colour whose luma differs from `ref`'s by at least `min_luma_gap`."""
    for _ in range(100):
        color = _hsv_to_rgb(rng.random(), rng.uniform(0.3, 0.65), rng.uniform(0.2, 1.0))
        if abs(_luma(color) - _luma(ref)) >= min_luma_gap:
            return color
    # Dark backgrounds get a light object and vice versa (practically never reached).
    return np.full(3, 0.95 if _luma(ref) < 0.5 else 0.05)


def _second_color(rng: np.random.Generator, bg: np.ndarray, first: np.ndarray) -> np.ndarray:
    """A second object colour, as far from `bg` as the first and clearly unlike `first`."""
    for _ in range(100):
        color = _color_far_from(rng, bg, 0.3)
        if np.linalg.norm(color - first) >= 0.35:
            return color
    return 1.0 - first


def _tuple3(x: np.ndarray) -> tuple[float, float, float]:
    return (float(x[0]), float(x[1]), float(x[2]))


def _group_look(seed: int, group: int, distractors: int) -> _Look:
    """Draw the appearance of one group; deterministic in (seed, group, distractors)."""
    rng = _rng(seed, 1, group)
    bg = _hsv_to_rgb(rng.random(), rng.uniform(0.1, 0.45), rng.uniform(0.25, 0.75))
    waves = tuple(
        (
            float(rng.integers(-2, 3)),
            float(rng.integers(1, 3)),
            float(rng.uniform(0, 2 * math.pi)),
            float(rng.uniform(0.02, 0.05)),
        )
        for _ in range(3)
    )
    tint = rng.uniform(0.5, 1.0, size=3)
    color = _color_far_from(rng, bg, 0.3)
    color2 = _second_color(rng, bg, color)
    blobs = tuple(
        _Blob(
            shape=str(rng.choice(SYNTHETIC_SHAPES)),
            cx=float(rng.random()),
            cy=float(rng.random()),
            radius=float(rng.uniform(0.07, 0.12)),
            angle=float(rng.uniform(0, 2 * math.pi)),
            color=_tuple3(_color_far_from(rng, bg, 0.1)),
        )
        for _ in range(int(rng.integers(0, distractors + 1)))
    )
    return _Look(
        bg_color=_tuple3(bg),
        waves=waves,
        wave_tint=_tuple3(tint),
        blobs=blobs,
        shape=str(rng.choice(SYNTHETIC_SHAPES)),
        color=_tuple3(color),
        color2=_tuple3(color2),
        shade=float(rng.uniform(0.15, 0.3)),
        radius=float(rng.uniform(0.19, 0.24)),
        # Anywhere on the torus, for every class: a static object may straddle an edge as
        # a moving one does, so being cut by the frame border says nothing about the class.
        cx=float(rng.random()),
        cy=float(rng.random()),
        angle=float(rng.uniform(0, 2 * math.pi)),
        speed=float(rng.uniform(0.03, 0.05)),
        spin=math.radians(float(rng.uniform(8.0, 14.0))),
        grow_period=float(rng.uniform(8.0, 12.0)),
        osc_period=float(rng.uniform(8.0, 12.0)),
        osc_amplitude=float(rng.uniform(0.1, 0.13)),
        osc_axis=float(rng.uniform(0, math.pi)),
        blink_period=float(rng.uniform(6.0, 10.0)),
        blink_duty=float(rng.uniform(0.55, 0.7)),
    )


def _clip_jitter(seed: int, group: int, clip: int) -> _Jitter:
    """Draw the per-video variation of one (group, clip), shared by all classes."""
    rng = _rng(seed, 2, group, clip)
    return _Jitter(
        dx=float(rng.uniform(-0.06, 0.06)),
        dy=float(rng.uniform(-0.06, 0.06)),
        dangle=float(rng.uniform(-0.35, 0.35)),
        speed=float(rng.uniform(0.85, 1.15)),
        size=float(rng.random()),
        phase=float(rng.random()),
    )


# --------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------


def _box(u: np.ndarray, v: np.ndarray, cu: float, cv: float, hu: float, hv: float) -> np.ndarray:
    """Signed distance (approximate outside corners) to an axis-aligned box."""
    return np.maximum(np.abs(u - cu) - hu, np.abs(v - cv) - hv)


def _shape_sdf(shape: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Signed distance to a unit shape (inside a circle of radius 1), in shape units."""
    if shape == "bar":
        return _box(u, v, 0.0, 0.0, 0.92, 0.38)
    if shape == "ellipse":
        a, b = 1.0, 0.5
        k0 = np.hypot(u / a, v / b)
        k1 = np.hypot(u / a**2, v / b**2)
        return k0 * (k0 - 1.0) / np.maximum(k1, 1e-6)
    if shape == "triangle":  # pointing towards +u, vertices (1, 0), (-0.6, +-0.7)
        n = math.hypot(0.7, 1.6)
        return np.maximum.reduce(
            [-0.6 - u, (0.7 * u + 1.6 * v - 0.7) / n, (0.7 * u - 1.6 * v - 0.7) / n]
        )
    if shape == "tee":
        return np.minimum(_box(u, v, -0.15, 0.0, 0.65, 0.26), _box(u, v, 0.6, 0.0, 0.22, 0.62))
    if shape == "ell":
        return np.minimum(_box(u, v, -0.45, 0.0, 0.27, 0.72), _box(u, v, 0.0, 0.45, 0.72, 0.27))
    raise ValueError(f"unknown shape {shape!r}; choose from {list(SYNTHETIC_SHAPES)}")


def _draw(
    canvas: np.ndarray,
    shape: str,
    cx: np.ndarray,
    cy: np.ndarray,
    radius: np.ndarray,
    angle: np.ndarray,
    color: np.ndarray,
    shade: float,
) -> None:
    """Alpha-blend an anti-aliased shape into `canvas` ``(T, H, W, 3)`` in place.

    `cx`, `cy` (pixels), `radius` (pixels) and `angle` (radians, clockwise on screen) are
    ``(T,)`` arrays, `color` is ``(T, 3)`` in [0, 1]. Positions wrap around the frame edges
    (a torus), so an object leaving on the right comes back on the left.
    """
    _, height, width, _ = canvas.shape
    xs = np.arange(width, dtype=np.float32) + 0.5
    ys = np.arange(height, dtype=np.float32) + 0.5
    dx = (xs[None, None, :] - cx[:, None, None] + width / 2) % width - width / 2
    dy = (ys[None, :, None] - cy[:, None, None] + height / 2) % height - height / 2
    cos = np.cos(angle)[:, None, None]
    sin = np.sin(angle)[:, None, None]
    r = radius[:, None, None]
    u = (cos * dx + sin * dy) / r
    v = (cos * dy - sin * dx) / r
    alpha = np.clip(0.5 - _shape_sdf(shape, u, v) * r / _EDGE_PX, 0.0, 1.0)
    fill = color[:, None, None, :] * (1.0 + shade * np.clip(u, -1.0, 1.0))[..., None]
    a = alpha[..., None].astype(np.float32)
    canvas *= 1.0 - a
    canvas += a * np.clip(fill, 0.0, 1.0)


def _background(look: _Look, height: int, width: int) -> np.ndarray:
    """The static scene ``(H, W, 3)`` float32: colour, smooth waves, distractor shapes."""
    xs = (np.arange(width, dtype=np.float32) + 0.5) / width
    ys = (np.arange(height, dtype=np.float32) + 0.5) / height
    field = np.zeros((height, width), dtype=np.float32)
    for kx, ky, phase, amp in look.waves:
        field += amp * np.cos(2 * math.pi * (kx * xs[None, :] + ky * ys[:, None]) + phase)
    bg = np.asarray(look.bg_color, np.float32) + field[..., None] * np.asarray(look.wave_tint)
    canvas = np.clip(bg, 0.0, 1.0).astype(np.float32)[None]
    side = min(height, width)
    one = np.ones(1, dtype=np.float32)
    for blob in look.blobs:
        _draw(
            canvas,
            blob.shape,
            one * blob.cx * width,
            one * blob.cy * height,
            one * blob.radius * side,
            one * blob.angle,
            np.asarray([blob.color], dtype=np.float32),
            0.0,
        )
    return canvas[0]


def _trajectory(
    class_name: str, look: _Look, jit: _Jitter, num_frames: int, height: int, width: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-frame ``(cx, cy, radius, angle, flash)`` of the object, pixels and radians.

    ``flash`` is 1 where a blinking object shows its second colour, else 0. Every class
    but Grow and Shrink keeps the per-clip size factor; those two sweep the same factor
    range over time, so the object's size in one frame says nothing about the class.

    Time runs as ``tau = t - (T - 1) / 2``; each paired class uses ``-tau`` where its partner
    uses ``tau``, so the pair are exact time reversals of each other.
    """
    side = float(min(height, width))
    tau = (np.arange(num_frames, dtype=np.float32) - (num_frames - 1) / 2) * jit.speed
    ones = np.ones(num_frames, dtype=np.float32)
    cx = ones * (look.cx * width + jit.dx * side)
    cy = ones * (look.cy * height + jit.dy * side)
    radius = ones * (look.radius * side)
    size = ones * jit.size
    angle = ones * (look.angle + jit.dangle)
    flash = np.zeros(num_frames, dtype=np.float32)
    step = look.speed * side
    if class_name == "MoveRight":
        cx = cx + step * tau
    elif class_name == "MoveLeft":
        cx = cx - step * tau
    elif class_name == "MoveUp":
        cy = cy - step * tau
    elif class_name == "MoveDown":
        cy = cy + step * tau
    elif class_name == "RotateClockwise":  # y points down, so a growing angle turns clockwise
        angle = angle + look.spin * tau
    elif class_name == "RotateCounterclockwise":
        angle = angle - look.spin * tau
    elif class_name in ("Grow", "Shrink"):
        sign = 1.0 if class_name == "Grow" else -1.0
        size = (sign * tau / look.grow_period + jit.phase) % 1.0  # a sawtooth: grow, reset
    elif class_name == "Oscillate":
        offset = (
            look.osc_amplitude * side * np.sin(2 * math.pi * (tau / look.osc_period + jit.phase))
        )
        cx = cx + offset * math.cos(look.osc_axis)
        cy = cy + offset * math.sin(look.osc_axis)
    elif class_name == "Blink":
        cycle = (tau / look.blink_period + jit.phase) % 1.0
        flash = (cycle >= look.blink_duty).astype(np.float32)
    else:
        raise ValueError(f"unknown class {class_name!r}; choose from {list(SYNTHETIC_CLASSES)}")
    radius = radius * _SIZE_LOW * _SIZE_RATIO**size
    return cx, cy, radius, angle, flash


def render_synthetic_video(
    class_name: str,
    *,
    group: int = 1,
    clip: int = 1,
    num_frames: int = 32,
    size: int | Sequence[int] = 64,
    seed: int = 0,
    distractors: int = 2,
    noise: float = 0.0,
) -> np.ndarray:
    """Render one synthetic video as ``uint8`` RGB frames ``(T, H, W, 3)`` (no file written).

    The frames are what `make_synthetic_dataset` encodes for
    ``<Class>/v_<Class>_g{group:02d}_c{clip:02d}`` with the same options (before H.264
    compression). Appearance depends only on ``(seed, group)`` and the small per-video
    jitter only on ``(seed, group, clip)``, never on the class or on the dataset size.

    Args:
        class_name: one of `SYNTHETIC_CLASSES`.
        group: group number (>= 1); groups 1-7 are the test split by default.
        clip: clip number within the group (>= 1).
        num_frames: number of frames T.
        size: frame size, an int or ``(height, width)``; even, at least 16.
        seed: dataset seed.
        distractors: at most this many static distractor shapes per group.
        noise: standard deviation of per-frame Gaussian pixel noise (0 = none), in [0, 1]
            units.

    Returns:
        ``np.ndarray`` of dtype uint8 and shape ``(num_frames, height, width, 3)``.

    Example:
        >>> frames = render_synthetic_video("MoveLeft", group=3, num_frames=16, size=48)
        >>> frames.shape
        (16, 48, 48, 3)
    """
    opts = check_render_options(
        num_frames=num_frames, size=size, seed=seed, distractors=distractors, noise=noise
    )
    if class_name not in SYNTHETIC_CLASSES:
        raise ValueError(f"unknown class {class_name!r}; choose from {list(SYNTHETIC_CLASSES)}")
    if group < 1 or clip < 1:
        raise ValueError(f"group and clip numbers start at 1, got group={group}, clip={clip}")
    return render_video(opts, class_name, group, clip)


def render_video(opts: RenderOptions, class_name: str, group: int, clip: int) -> np.ndarray:
    """Render with already checked options (:func:`check_render_options`); see
    `render_synthetic_video`."""
    look = _group_look(opts.seed, group, opts.distractors)
    jit = _clip_jitter(opts.seed, group, clip)
    height, width = opts.height, opts.width
    canvas = np.repeat(_background(look, height, width)[None], opts.num_frames, axis=0)
    cx, cy, radius, angle, flash = _trajectory(
        class_name, look, jit, opts.num_frames, height, width
    )
    first, second = np.asarray(look.color, np.float32), np.asarray(look.color2, np.float32)
    color = first + flash[:, None] * (second - first)
    _draw(canvas, look.shape, cx, cy, radius, angle, color, look.shade)
    if opts.noise > 0:
        rng = _rng(opts.seed, 3, group, clip, SYNTHETIC_CLASSES.index(class_name))
        canvas += rng.normal(0.0, opts.noise, size=canvas.shape).astype(np.float32)
    return np.clip(np.rint(canvas * 255.0), 0, 255).astype(np.uint8)

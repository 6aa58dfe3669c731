"""A synthetic video dataset whose classes differ only in how an object moves.

`make_synthetic_dataset` writes a dataset root in the layout every dataset of this package
uses (see ``data/README.md``)::

    <root>/splits/classInd.txt, trainlist01.txt, testlist01.txt   (UCF101 format)
    <root>/videos/<Class>/v_<Class>_gXX_cYY.mp4                   (H.264 via PyAV)
    <root>/synthetic.json                                          (options + version)

Every video shows one large object on a plain-ish background. The *class* is the object's
motion (`SYNTHETIC_CLASSES`): translation in four directions, rotation both ways, growing,
shrinking, oscillating and blinking (flashing between two colours). The *appearance* —
background colour and texture, static distractor shapes, the object's shape, colours,
size, start position and speed — is drawn at random once per **group** and shared by every
class of that group, as UCF101's
groups share an actor and a scene. Within a (group, clip) pair all classes have exactly the
same appearance, and the paired classes are exact time reversals of each other
(``MoveLeft`` is ``MoveRight`` played backwards, and so on), so a single frame carries no
information about the class: only motion does. Groups 1-7 form the test split, as in
UCF101, so appearance never leaks from training to testing.

Example (the default dataset is ``make_synthetic_dataset("data/synthetic")``: 500 videos,
about 10 s; here a small one in a temporary folder):
    >>> import tempfile
    >>> root = make_synthetic_dataset(Path(tempfile.mkdtemp()) / "synthetic", n_groups=3,
    ...                               clips_per_group=1, test_groups=1, num_frames=8, size=32)
    >>> len(sorted((root / "videos").rglob("*.mp4")))  # 10 classes x 3 groups x 1 clip
    30
    >>> (root / "splits" / "trainlist01.txt").exists()
    True
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

__all__ = [
    "SYNTHETIC_CLASSES",
    "SYNTHETIC_SHAPES",
    "SYNTHETIC_VERSION",
    "make_synthetic_dataset",
    "render_synthetic_video",
    "synthetic_video_name",
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

_MANIFEST = "synthetic.json"
_CONTAINERS = {"mp4": "mp4", "avi": "avi", "mkv": "matroska"}
_MAX_INDEX = 99  # group and clip numbers are written with two digits, as in UCF101
_EDGE_PX = 1.5  # width of the anti-aliased edge ramp, pixels
_SIZE_LOW, _SIZE_RATIO = 0.7, 2.0  # object size factors span 0.7x .. 1.4x


# --------------------------------------------------------------------------------------
# Options
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Options:
    """Validated generator options; `asdict` of it is stored in the manifest."""

    n_groups: int
    clips_per_group: int
    num_frames: int
    height: int
    width: int
    seed: int
    classes: tuple[str, ...]
    test_groups: int
    ext: str
    crf: int
    fps: int
    distractors: int
    noise: float
    version: int = SYNTHETIC_VERSION


def _frame_size(size: int | Sequence[int]) -> tuple[int, int]:
    """Return ``(height, width)`` from an int or a ``(height, width)`` pair."""
    if isinstance(size, (int, np.integer)):
        return int(size), int(size)
    dims = tuple(size)
    if len(dims) != 2 or not all(isinstance(d, (int, np.integer)) for d in dims):
        raise ValueError(f"size must be an int or a (height, width) pair of ints, got {size!r}")
    return int(dims[0]), int(dims[1])


def _check_classes(classes: Sequence[str] | None) -> tuple[str, ...]:
    """Return the selected classes in canonical order, or raise ``ValueError``."""
    if classes is None:
        return SYNTHETIC_CLASSES
    if isinstance(classes, str):
        raise ValueError("classes must be a sequence of class names, not a single string")
    chosen = list(classes)
    unknown = [c for c in chosen if c not in SYNTHETIC_CLASSES]
    if unknown:
        raise ValueError(f"unknown classes {unknown}; choose from {list(SYNTHETIC_CLASSES)}")
    if len(set(chosen)) != len(chosen):
        raise ValueError(f"classes contains duplicates: {chosen}")
    if len(chosen) < 2:
        raise ValueError(f"need at least 2 classes for a classification task, got {chosen}")
    return tuple(c for c in SYNTHETIC_CLASSES if c in chosen)


def _check_options(
    *,
    n_groups: int,
    clips_per_group: int,
    num_frames: int,
    size: int | Sequence[int],
    seed: int,
    classes: Sequence[str] | None,
    test_groups: int,
    ext: str,
    crf: int,
    fps: int,
    distractors: int,
    noise: float,
) -> _Options:
    """Check every option and return them as an `_Options`; raise ``ValueError`` if bad."""
    height, width = _frame_size(size)
    if height < 16 or width < 16 or height % 2 or width % 2:
        raise ValueError(
            f"frame size must be even and at least 16 pixels (H.264 with yuv420p halves the "
            f"colour planes), got height={height}, width={width}"
        )
    if num_frames < 2:
        raise ValueError(
            f"num_frames must be at least 2 (motion needs two frames), got {num_frames}"
        )
    if not 1 <= test_groups <= _MAX_INDEX:
        raise ValueError(f"test_groups must be in 1..{_MAX_INDEX}, got {test_groups}")
    if n_groups <= test_groups:
        raise ValueError(
            f"n_groups={n_groups} leaves no training group: groups 1..{test_groups} are the "
            f"test split (test_groups={test_groups}), so n_groups must be at least "
            f"{test_groups + 1}"
        )
    if n_groups > _MAX_INDEX:
        raise ValueError(f"n_groups must be at most {_MAX_INDEX} (names use gXX), got {n_groups}")
    if not 1 <= clips_per_group <= _MAX_INDEX:
        raise ValueError(f"clips_per_group must be in 1..{_MAX_INDEX}, got {clips_per_group}")
    if ext not in _CONTAINERS:
        raise ValueError(f"ext must be one of {sorted(_CONTAINERS)}, got {ext!r}")
    if not 0 <= crf <= 51:
        raise ValueError(f"crf must be in 0..51 (libx264), got {crf}")
    if fps < 1:
        raise ValueError(f"fps must be positive, got {fps}")
    if distractors < 0:
        raise ValueError(f"distractors must be >= 0, got {distractors}")
    if not 0.0 <= noise <= 0.5:
        raise ValueError(f"noise is a standard deviation in [0, 0.5], got {noise}")
    if seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed}")
    return _Options(
        n_groups=int(n_groups),
        clips_per_group=int(clips_per_group),
        num_frames=int(num_frames),
        height=height,
        width=width,
        seed=int(seed),
        classes=_check_classes(classes),
        test_groups=int(test_groups),
        ext=ext,
        crf=int(crf),
        fps=int(fps),
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
    opts = _check_options(
        n_groups=_MAX_INDEX,
        clips_per_group=1,
        num_frames=num_frames,
        size=size,
        seed=seed,
        classes=None,
        test_groups=1,
        ext="mp4",
        crf=20,
        fps=25,
        distractors=distractors,
        noise=noise,
    )
    if class_name not in SYNTHETIC_CLASSES:
        raise ValueError(f"unknown class {class_name!r}; choose from {list(SYNTHETIC_CLASSES)}")
    if group < 1 or clip < 1:
        raise ValueError(f"group and clip numbers start at 1, got group={group}, clip={clip}")
    return _render(opts, class_name, group, clip)


def _render(opts: _Options, class_name: str, group: int, clip: int) -> np.ndarray:
    """Render with already validated options; see `render_synthetic_video`."""
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


# --------------------------------------------------------------------------------------
# Writing files
# --------------------------------------------------------------------------------------


def synthetic_video_name(class_name: str, group: int, clip: int, ext: str = "mp4") -> str:
    """Return the UCF101-style relative path ``<Class>/v_<Class>_gXX_cYY.<ext>``."""
    return f"{class_name}/v_{class_name}_g{group:02d}_c{clip:02d}.{ext}"


def _encode(path: Path, frames: np.ndarray, *, fps: int, crf: int, container: str) -> None:
    """Write ``(T, H, W, 3)`` uint8 frames as H.264 (libx264, yuv420p, one thread)."""
    import av  # imported here so that rendering works without PyAV

    with av.open(str(path), mode="w", format=container) as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width = frames.shape[2]
        stream.height = frames.shape[1]
        stream.pix_fmt = "yuv420p"
        # Determinism, measured: x264's output depends on its thread count, and its
        # macroblock-tree rate control (mbtree) gave run-to-run different pixels on about
        # one in five 32-frame clips (videos shorter than its 40-frame lookahead); without
        # it every file came out byte-identical, ~25 % larger and with a higher PSNR.
        stream.options = {"crf": str(crf), "preset": "medium", "x264-params": "mbtree=0"}
        stream.codec_context.thread_count = 1
        for index, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
            frame.pts = index
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))


def _video_jobs(opts: _Options) -> Iterator[tuple[str, int, int]]:
    """Yield ``(class_name, group, clip)`` for every video, in split-list order."""
    for class_name in opts.classes:
        for group in range(1, opts.n_groups + 1):
            for clip in range(1, opts.clips_per_group + 1):
                yield class_name, group, clip


def _write_splits(root: Path, opts: _Options) -> dict[str, int]:
    """Write classInd.txt, trainlist01.txt and testlist01.txt (CRLF, as the official lists)."""
    splits = root / "splits"
    splits.mkdir(parents=True, exist_ok=True)
    class_lines = [f"{i} {name}" for i, name in enumerate(opts.classes, start=1)]
    train: list[str] = []
    test: list[str] = []
    for class_name, group, clip in _video_jobs(opts):
        name = synthetic_video_name(class_name, group, clip, opts.ext)
        if group <= opts.test_groups:
            test.append(name)
        else:
            train.append(f"{name} {opts.classes.index(class_name) + 1}")
    for file_name, lines in (
        ("classInd.txt", class_lines),
        ("trainlist01.txt", train),
        ("testlist01.txt", test),
    ):
        (splits / file_name).write_bytes("".join(f"{line}\r\n" for line in lines).encode())
    return {"classes": len(class_lines), "train": len(train), "test": len(test)}


def _read_manifest(root: Path) -> dict | None:
    """Return the parsed manifest of `root`, or None when there is none or it is unreadable."""
    try:
        return json.loads((root / _MANIFEST).read_text())
    except (OSError, ValueError):
        return None


def _write_manifest(root: Path, opts: _Options, counts: dict[str, int], complete: bool) -> None:
    data = {
        "generator": "iic_helpers.data.synthetic.make_synthetic_dataset",
        "complete": complete,
        "options": _options_json(opts),
        "counts": counts,
    }
    tmp = root / (_MANIFEST + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    tmp.replace(root / _MANIFEST)


def _options_json(opts: _Options) -> dict:
    """The options as plain JSON values (tuples become lists)."""
    return json.loads(json.dumps(asdict(opts)))


def _is_up_to_date(root: Path, opts: _Options) -> bool:
    """True when `root` holds a complete dataset made with exactly `opts`, files present."""
    manifest = _read_manifest(root)
    if (
        not manifest
        or not manifest.get("complete")
        or manifest.get("options") != _options_json(opts)
    ):
        return False
    videos = root / "videos"
    return all(
        (videos / synthetic_video_name(*job, opts.ext)).is_file() for job in _video_jobs(opts)
    )


def _clear(root: Path) -> None:
    """Remove what the generator (and tools deriving from its videos) wrote under `root`."""
    for name in ("videos", "splits", "frames", "flow"):
        path = root / name
        if path.is_symlink():
            path.unlink()
        elif path.exists():
            shutil.rmtree(path)
    (root / _MANIFEST).unlink(missing_ok=True)


def make_synthetic_dataset(
    root: str | Path,
    *,
    n_groups: int = 25,
    clips_per_group: int = 2,
    num_frames: int = 32,
    size: int | Sequence[int] = 64,
    seed: int = 0,
    classes: Sequence[str] | None = None,
    test_groups: int = 7,
    overwrite: bool = False,
    ext: str = "mp4",
    crf: int = 20,
    fps: int = 25,
    distractors: int = 2,
    noise: float = 0.0,
    progress: bool = False,
) -> Path:
    """Write a synthetic motion dataset root and return its path.

    Layout: ``<root>/splits/{classInd,trainlist01,testlist01}.txt`` in UCF101 format (CRLF
    line ends, 1-based labels in the train list, none in the test list),
    ``<root>/videos/<Class>/v_<Class>_gXX_cYY.<ext>`` (H.264, yuv420p) and
    ``<root>/synthetic.json`` (the options, the generator version and the counts).

    With the defaults: 10 classes x 25 groups x 2 clips = 500 videos of 32 frames of
    64x64 — 360 train (groups 8-25) and 140 test (groups 1-7) — about 3.4 MB, written in
    10-15 s on 2 CPU cores.

    Re-running is cheap and safe: if `root` already holds a complete dataset made with the
    same options (manifest equal, every video present), nothing is written and `root` is
    returned at once. A root with a synthetic dataset made with other options is rebuilt
    only with ``overwrite=True``; one with the same options that is incomplete (an
    interrupted run), has missing videos or was made by an older generator version
    (`SYNTHETIC_VERSION`) is rebuilt without asking. A non-empty root
    that this function did not make is never touched, even with ``overwrite=True``.
    Rebuilding removes ``videos/``, ``splits/``, ``frames/`` and ``flow/`` (frames and
    optical flow derived from old videos would be stale) and the manifest.

    Args:
        root: dataset root directory (created if missing).
        n_groups: number of groups; groups ``1..test_groups`` are the test split.
        clips_per_group: videos per class and group.
        num_frames: frames per video.
        size: frame size, an int or ``(height, width)``; both even and at least 16.
        seed: random seed; the same seed gives the same frames.
        classes: a subset of `SYNTHETIC_CLASSES` (labels follow the canonical order);
            None for all ten.
        test_groups: how many leading groups form the test split (UCF101: 7).
        overwrite: rebuild a root that holds a synthetic dataset made with other options.
        ext: container, ``"mp4"``, ``"avi"`` or ``"mkv"`` (always H.264 inside).
        crf: libx264 constant rate factor (lower = better quality, larger files).
        fps: frame rate written in the files (UCF101: 25).
        distractors: at most this many static distractor shapes per group.
        noise: per-frame Gaussian pixel noise (standard deviation, [0, 1] units).
        progress: show a tqdm progress bar.

    Returns:
        The dataset root as a `Path`.

    Raises:
        ValueError: an option is out of range (odd frame size, no training group, ...).
        FileExistsError: `root` is not empty and holds something else, or a synthetic
            dataset made with other options while ``overwrite=False``.
    """
    opts = _check_options(
        n_groups=n_groups,
        clips_per_group=clips_per_group,
        num_frames=num_frames,
        size=size,
        seed=seed,
        classes=classes,
        test_groups=test_groups,
        ext=ext,
        crf=crf,
        fps=fps,
        distractors=distractors,
        noise=noise,
    )
    root = Path(root)
    if root.exists() and not root.is_dir():
        raise FileExistsError(f"{root} exists and is not a directory")
    _prepare_root(root, opts, overwrite)
    if _is_up_to_date(root, opts):
        return root

    counts = _write_splits(root, opts)
    _write_manifest(root, opts, counts, complete=False)
    jobs = list(_video_jobs(opts))
    if progress:
        from tqdm.auto import tqdm

        jobs = tqdm(jobs, desc="synthetic videos", unit="video")
    for class_name, group, clip in jobs:
        path = root / "videos" / synthetic_video_name(class_name, group, clip, opts.ext)
        path.parent.mkdir(parents=True, exist_ok=True)
        frames = _render(opts, class_name, group, clip)
        _encode(path, frames, fps=opts.fps, crf=opts.crf, container=_CONTAINERS[opts.ext])
    _write_manifest(root, opts, counts, complete=True)
    return root


def _prepare_root(root: Path, opts: _Options, overwrite: bool) -> None:
    """Create `root`, or decide whether its current content may be kept or replaced."""
    if not root.exists() or not any(root.iterdir()):
        root.mkdir(parents=True, exist_ok=True)
        return
    manifest = _read_manifest(root)
    if manifest is None:
        raise FileExistsError(
            f"{root} is not empty and has no {_MANIFEST}: it was not made by "
            f"make_synthetic_dataset, so nothing there is touched; choose an empty or new root"
        )
    if _is_up_to_date(root, opts):
        return
    old = dict(manifest.get("options") or {})
    old.pop("version", None)
    new = _options_json(opts)
    new.pop("version")
    # Same options (an older generator version, an interrupted run or missing videos):
    # the user asked for exactly this dataset, so rebuilding it needs no permission.
    if manifest.get("complete") and old != new and not overwrite:
        raise FileExistsError(
            f"{root} holds a synthetic dataset made with other options "
            f"({_options_diff(manifest.get('options', {}), _options_json(opts))}); pass "
            f"overwrite=True to rebuild it, or choose another root"
        )
    _clear(root)


def _options_diff(old: dict, new: dict) -> str:
    """Describe how two option dicts differ, e.g. ``"seed: 0 -> 1"``."""
    keys = sorted(set(old) | set(new))
    diffs = [f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in keys if old.get(k) != new.get(k)]
    return "; ".join(diffs)

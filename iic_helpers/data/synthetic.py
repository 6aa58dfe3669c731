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

Rendering the frames is :mod:`iic_helpers.data.synthetic_render`'s job; this module writes
the files (videos through the package's one encoder,
:func:`~iic_helpers.data.video_writing.write_video` in its deterministic mode, split lists
and the manifest). The rendering names are re-exported here.

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
import shutil
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from tqdm.auto import tqdm

from .synthetic_reference import warn_if_not_reference
from .synthetic_render import (
    SYNTHETIC_CLASSES,
    SYNTHETIC_SHAPES,
    SYNTHETIC_VERSION,
    RenderOptions,
    check_render_options,
    render_synthetic_video,
    render_video,
)
from .video_writing import write_video

__all__ = [
    "SYNTHETIC_CLASSES",
    "SYNTHETIC_SHAPES",
    "SYNTHETIC_VERSION",
    "make_synthetic_dataset",
    "render_synthetic_video",
    "synthetic_video_name",
]

_MANIFEST = "synthetic.json"
_CONTAINERS = ("avi", "mkv", "mp4")
_MAX_INDEX = 99  # group and clip numbers are written with two digits, as in UCF101


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

    def render(self) -> RenderOptions:
        """The options rendering one video needs."""
        return RenderOptions(
            num_frames=self.num_frames,
            height=self.height,
            width=self.width,
            seed=self.seed,
            distractors=self.distractors,
            noise=self.noise,
        )


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
    look = check_render_options(
        num_frames=num_frames, size=size, seed=seed, distractors=distractors, noise=noise
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
        raise ValueError(f"ext must be one of {list(_CONTAINERS)}, got {ext!r}")
    if not 0 <= crf <= 51:
        raise ValueError(f"crf must be in 0..51 (libx264), got {crf}")
    if fps < 1:
        raise ValueError(f"fps must be positive, got {fps}")
    return _Options(
        n_groups=int(n_groups),
        clips_per_group=int(clips_per_group),
        num_frames=look.num_frames,
        height=look.height,
        width=look.width,
        seed=look.seed,
        classes=_check_classes(classes),
        test_groups=int(test_groups),
        ext=ext,
        crf=int(crf),
        fps=int(fps),
        distractors=look.distractors,
        noise=look.noise,
    )


# --------------------------------------------------------------------------------------
# Writing files
# --------------------------------------------------------------------------------------


def synthetic_video_name(class_name: str, group: int, clip: int, ext: str = "mp4") -> str:
    """Return the UCF101-style relative path ``<Class>/v_<Class>_gXX_cYY.<ext>``."""
    return f"{class_name}/v_{class_name}_g{group:02d}_c{clip:02d}.{ext}"


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


def _write_manifest(
    root: Path,
    opts: _Options,
    counts: dict[str, int],
    complete: bool,
    reference: list[str] | None = None,
) -> None:
    """``synthetic.json``; ``reference``: the videos that differ from the reference set
    (recorded as ``differs_from_reference`` when the options are the reference set's)."""
    data: dict = {
        "generator": "iic_helpers.data.synthetic.make_synthetic_dataset",
        "complete": complete,
        "options": _options_json(opts),
        "counts": counts,
    }
    if reference is not None:
        data["differs_from_reference"] = reference
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

    Warns:
        SyntheticDataWarning: the default set came out different from the one the shipped
            results were made on (another CPU's float rounding; see
            :mod:`~iic_helpers.data.synthetic_reference`). The differing videos are listed
            in ``synthetic.json`` (``differs_from_reference``).

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
    render_opts = opts.render()
    if progress:
        jobs = tqdm(jobs, desc="synthetic videos", unit="video")
    for class_name, group, clip in jobs:
        path = root / "videos" / synthetic_video_name(class_name, group, clip, opts.ext)
        path.parent.mkdir(parents=True, exist_ok=True)
        frames = render_video(render_opts, class_name, group, clip)
        write_video(path, frames, fps=opts.fps, crf=opts.crf, codec="libx264", deterministic=True)
    differing = warn_if_not_reference(root, _options_json(opts))
    _write_manifest(root, opts, counts, complete=True, reference=differing)
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

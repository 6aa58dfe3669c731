"""Is a generated synthetic set the one the shipped results were made on? (SHA-256 per video)

The synthetic videos are rendered with numpy float32 math, and numpy picks its vectorized
kernels by CPU: with its AVX-512 kernels disabled (as on an AVX2-only CPU) the rendering
rounds differently (which functions was not narrowed down). For the default set this changed
one pixel by one grey level in each of the videos compared, and 4 of the 500 encoded files
differ. Another build of the encoder (PyAV / FFmpeg) could change the bytes too; the check
below does not depend on the cause. Training amplifies such
differences (the README's ablation runs and shipped checkpoints change beyond their printed
digits), so :func:`~iic_helpers.data.synthetic.make_synthetic_dataset` compares what it wrote
with the digests of the set those results were made on (``synthetic_reference.json``, made
on an AVX-512 CPU) and warns, naming the files, when they differ. Other options than the
default set's are not compared.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path
from typing import Any

__all__ = [
    "REFERENCE",
    "SyntheticDataWarning",
    "reference_differences",
    "video_digests",
    "warn_if_not_reference",
]

#: SHA-256 of every video of the default set, with the options and the CPU that made them.
REFERENCE = Path(__file__).with_name("synthetic_reference.json")


class SyntheticDataWarning(UserWarning):
    """The generated synthetic set differs from the one the shipped results were made on."""


def video_digests(root: str | Path) -> dict[str, str]:
    """SHA-256 of every file under ``<root>/videos``, keyed by its path relative to it."""
    videos = Path(root) / "videos"
    return {
        path.relative_to(videos).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(videos.rglob("*"))
        if path.is_file()
    }


def reference_differences(
    root: str | Path, options: dict[str, Any], reference: Path = REFERENCE
) -> list[str] | None:
    """Videos of ``root`` that differ from (or are missing in) the reference set, sorted.

    ``None`` when ``options`` (the set's options as in its ``synthetic.json``) are not the
    reference set's, so there is nothing to compare with.
    """
    ref = json.loads(Path(reference).read_text())
    if options != ref["options"]:
        return None
    mine = video_digests(root)
    names = sorted(set(ref["sha256"]) | set(mine))
    return [name for name in names if mine.get(name) != ref["sha256"].get(name)]


def warn_if_not_reference(
    root: str | Path, options: dict[str, Any], reference: Path = REFERENCE
) -> list[str] | None:
    """:func:`reference_differences`, with a :class:`SyntheticDataWarning` when any differ."""
    differing = reference_differences(root, options, reference)
    if differing:
        ref = json.loads(Path(reference).read_text())
        shown = ", ".join(differing[:4]) + (", ..." if len(differing) > 4 else "")
        warnings.warn(
            f"{len(differing)} of {len(ref['sha256'])} videos in {root} differ from the set the "
            f"shipped checkpoints and the README's tables were made on ({ref['made_on']}): "
            f"{shown}. Rendering rounds differently on some CPUs (numpy's vectorized kernels "
            "depend on the instruction set), and other encoder builds may write other bytes; "
            "training on this set gives other numbers than the shipped runs and the README's "
            "tables, by more than their last digit (README, 'Same data on every CPU?').",
            SyntheticDataWarning,
            stacklevel=3,
        )
    return differing

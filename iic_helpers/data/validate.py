"""Check a dataset root against its split lists before training on it.

``validate_dataset(root)`` looks at every video of the train and test lists: does it exist,
does it open and decode its first frame, how many frames (from stream metadata) and what
size. ``print(report)`` shows a summary table and names every bad file.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from .splits import VideoRecord, read_classes, read_split
from .video import VideoReadError, probe_video, read_frames

__all__ = ["VideoCheck", "ValidationReport", "validate_dataset", "check_video"]

Status = Literal["ok", "missing", "unreadable"]


@dataclass(frozen=True)
class VideoCheck:
    """Result for one listed video.

    Attributes:
        record: the split-list entry.
        subset: ``"train"`` or ``"test"``.
        status: ``"ok"``, ``"missing"`` or ``"unreadable"``.
        reason: why it is missing or unreadable (empty when ok).
        num_frames, height, width: stream facts (0 when unknown).
    """

    record: VideoRecord
    subset: str
    status: Status
    reason: str = ""
    num_frames: int = 0
    height: int = 0
    width: int = 0


def check_video(record: VideoRecord, subset: str = "train", *, exact: bool = False) -> VideoCheck:
    """Check one video: exists, opens, first frame decodes; frame count and size.

    Args:
        record: the video.
        subset: recorded in the result.
        exact: count frames by decoding all of them (slow) instead of from metadata.
    """
    if not record.path.exists():
        return VideoCheck(record, subset, "missing", "file not found")
    try:
        info = probe_video(record.path, exact=exact)
        read_frames(record.path, [0], seek=False)
    except VideoReadError as err:
        return VideoCheck(record, subset, "unreadable", err.reason)
    return VideoCheck(record, subset, "ok", "", info.num_frames, info.height, info.width)


def _stats(values: Sequence[int]) -> tuple[int, float, int] | None:
    if not values:
        return None
    return min(values), statistics.median(values), max(values)


@dataclass
class ValidationReport:
    """Outcome of :func:`validate_dataset`; ``str(report)`` is the printed summary.

    Attributes:
        root: dataset root.
        split: split number.
        clip_len: clip length used for the "too short" column.
        checks: one :class:`VideoCheck` per listed video, train list first, in list order.
        num_classes: classes named by the split files.
    """

    root: Path
    split: int
    clip_len: int
    checks: list[VideoCheck] = field(default_factory=list)
    num_classes: int = 0

    @property
    def found(self) -> list[VideoCheck]:
        """Videos that exist (readable or not)."""
        return [c for c in self.checks if c.status != "missing"]

    @property
    def missing(self) -> list[VideoCheck]:
        return [c for c in self.checks if c.status == "missing"]

    @property
    def unreadable(self) -> list[VideoCheck]:
        return [c for c in self.checks if c.status == "unreadable"]

    @property
    def readable(self) -> list[VideoCheck]:
        return [c for c in self.checks if c.status == "ok"]

    @property
    def too_short(self) -> list[VideoCheck]:
        """Readable videos with fewer than ``clip_len`` frames (``ClipDataset`` loops them)."""
        return [c for c in self.readable if c.num_frames < self.clip_len]

    @property
    def ok(self) -> bool:
        """True when every listed video exists and reads."""
        return not self.missing and not self.unreadable

    def counts(self) -> dict[str, dict[str, int]]:
        """``{subset: {listed, found, missing, unreadable, too_short}}``, plus ``"total"``."""
        out: dict[str, dict[str, int]] = {}
        subsets = list(dict.fromkeys(c.subset for c in self.checks)) + ["total"]
        for subset in subsets:
            rows = [c for c in self.checks if subset in ("total", c.subset)]
            out[subset] = {
                "listed": len(rows),
                "found": sum(c.status != "missing" for c in rows),
                "missing": sum(c.status == "missing" for c in rows),
                "unreadable": sum(c.status == "unreadable" for c in rows),
                "too_short": sum(c.status == "ok" and c.num_frames < self.clip_len for c in rows),
            }
        return out

    def format(self, max_listed: int | None = None) -> str:
        """The summary table; ``max_listed`` caps the bad files named per kind (None: all)."""
        lines = [f"Dataset {self.root} (split {self.split}, {self.num_classes} classes)"]
        if not (self.root / "videos").exists():
            lines.append(f"  NOTE: {self.root / 'videos'} does not exist: point it at the videos")
        header = ("subset", "listed", "found", "missing", "unreadable", f"< {self.clip_len} frames")
        lines.append("{:<8}{:>8}{:>8}{:>9}{:>12}{:>14}".format(*header))
        for subset, c in self.counts().items():
            values = (c["listed"], c["found"], c["missing"], c["unreadable"], c["too_short"])
            lines.append("{:<8}{:>8}{:>8}{:>9}{:>12}{:>14}".format(subset, *values))
        good = self.readable
        for name, values in (
            ("frames", [c.num_frames for c in good]),
            ("height", [c.height for c in good]),
            ("width", [c.width for c in good]),
        ):
            stats = _stats(values)
            if stats is not None:
                lines.append(
                    f"{name:<8}min {stats[0]:>6}   median {stats[1]:>8g}   max {stats[2]:>6}"
                )
        if good:
            sizes = Counter(f"{c.height}x{c.width}" for c in good).most_common(3)
            lines.append("sizes   " + ", ".join(f"{s} ({n} videos)" for s, n in sizes))
        lines.append("status  " + ("OK: every listed video reads" if self.ok else "PROBLEMS FOUND"))
        for title, rows, detail in (
            ("Missing", self.missing, lambda c: ""),
            ("Unreadable", self.unreadable, lambda c: f": {c.reason}"),
            (
                f"Too short for clip_len={self.clip_len} (looped)",
                self.too_short,
                lambda c: f": {c.num_frames} frames",
            ),
        ):
            if not rows:
                continue
            lines.append(f"{title} ({len(rows)}):")
            shown = rows if max_listed is None else rows[:max_listed]
            lines.extend(f"  [{c.subset}] {c.record.path}{detail(c)}" for c in shown)
            if len(shown) < len(rows):
                lines.append(f"  … and {len(rows) - len(shown)} more")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.format()


def validate_dataset(
    root: str | Path,
    split: int = 1,
    *,
    clip_len: int = 16,
    subsets: Sequence[str] = ("train", "test"),
    exact: bool = False,
    progress: bool = True,
) -> ValidationReport:
    """Check every video named by the split lists of a dataset root.

    Per video: exists, opens, first frame decodes, frame count (stream metadata unless
    ``exact``) and size. Fast: about a millisecond per small video.

    Args:
        root: dataset root (``splits/``, ``videos/``).
        split: split number.
        clip_len: videos with fewer frames are reported as too short.
        subsets: which lists to check.
        exact: count frames by decoding every frame (finds truncated files; slow).
        progress: show a tqdm progress bar.

    Returns:
        A :class:`ValidationReport`; ``print(report)`` shows the table.

    Raises:
        FileNotFoundError, SplitFormatError: the split lists themselves are missing or bad.
    """
    from tqdm.auto import tqdm

    root = Path(root)
    todo = [(subset, r) for subset in subsets for r in read_split(root, split, subset)]
    report = ValidationReport(root, int(split), int(clip_len))
    report.num_classes = len(read_classes(root, split))
    for subset, record in tqdm(todo, desc="checking videos", disable=not progress):
        report.checks.append(check_video(record, subset, exact=exact))
    return report

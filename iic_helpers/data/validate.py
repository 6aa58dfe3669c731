"""Check a dataset root against its split lists before training on it.

``validate_dataset(root)`` looks at every video of the train and test lists: does it exist,
does it open, how many frames decode (every video is decoded to its end, so a file cut after
an intact header is caught: its header promises more frames than decode) and what size. It
also checks the lists: an empty list, a video listed twice, a video in both the train and
the test list. ``print(report)`` shows a summary table and names every bad file.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from tqdm.auto import tqdm

from .splits import VideoRecord, read_classes, read_split
from .video import VideoReadError, probe_video, read_frames

__all__ = ["VideoCheck", "ValidationReport", "validate_dataset", "check_video", "list_problems"]

Status = Literal["ok", "missing", "unreadable", "truncated"]


@dataclass(frozen=True)
class VideoCheck:
    """Result for one listed video.

    Attributes:
        record: the split-list entry.
        subset: ``"train"`` or ``"test"``.
        status: ``"ok"``, ``"missing"``, ``"unreadable"`` or ``"truncated"`` (fewer frames
            decode than the header says).
        reason: why it is missing, unreadable or truncated (empty when ok).
        num_frames, height, width: stream facts (0 when unknown); ``num_frames`` is the
            decoded count when the check was exact.
        header_frames: the frame count the header states (0 when it states none).
    """

    record: VideoRecord
    subset: str
    status: Status
    reason: str = ""
    num_frames: int = 0
    height: int = 0
    width: int = 0
    header_frames: int = 0


def check_video(record: VideoRecord, subset: str = "train", *, exact: bool = True) -> VideoCheck:
    """Check one video: exists, opens, first frame decodes; frame count and size.

    Args:
        record: the video.
        subset: recorded in the result.
        exact: decode every frame (about as long as reading the video once) and compare the
            count with the header's, which finds truncated files; False trusts the header.
    """
    if not record.path.exists():
        return VideoCheck(record, subset, "missing", "file not found")
    try:
        info = probe_video(record.path)
        header = 0 if info.counted else info.num_frames
        read_frames(record.path, [0], seek=False)
        decoded = probe_video(record.path, exact=True).num_frames if exact else info.num_frames
    except VideoReadError as err:
        return VideoCheck(record, subset, "unreadable", err.reason)
    facts = (decoded, info.height, info.width, header)
    if header and decoded < header:
        reason = f"the header says {header} frames but only {decoded} decode"
        return VideoCheck(record, subset, "truncated", reason, *facts)
    return VideoCheck(record, subset, "ok", "", *facts)


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
    #: problems of the lists themselves (empty list, duplicates, train/test overlap)
    list_problems: list[str] = field(default_factory=list)
    #: True when frames were counted by decoding (``exact``)
    exact: bool = True

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
    def truncated(self) -> list[VideoCheck]:
        """Videos whose header promises more frames than decode."""
        return [c for c in self.checks if c.status == "truncated"]

    @property
    def count_mismatch(self) -> list[VideoCheck]:
        """Readable videos that decode more frames than their header states (harmless)."""
        return [c for c in self.readable if c.header_frames and c.num_frames != c.header_frames]

    @property
    def readable(self) -> list[VideoCheck]:
        return [c for c in self.checks if c.status == "ok"]

    @property
    def too_short(self) -> list[VideoCheck]:
        """Readable videos with fewer than ``clip_len`` frames (``ClipDataset`` loops them)."""
        return [c for c in self.readable if c.num_frames < self.clip_len]

    @property
    def ok(self) -> bool:
        """True when the lists are sound and every listed video exists and reads whole."""
        return not (self.missing or self.unreadable or self.truncated or self.list_problems)

    def counts(self) -> dict[str, dict[str, int]]:
        """``{subset: {listed, found, missing, unreadable, truncated, too_short}}``, plus
        ``"total"``."""
        out: dict[str, dict[str, int]] = {}
        subsets = list(dict.fromkeys(c.subset for c in self.checks)) + ["total"]
        for subset in subsets:
            rows = [c for c in self.checks if subset in ("total", c.subset)]
            out[subset] = {
                "listed": len(rows),
                "found": sum(c.status != "missing" for c in rows),
                "missing": sum(c.status == "missing" for c in rows),
                "unreadable": sum(c.status == "unreadable" for c in rows),
                "truncated": sum(c.status == "truncated" for c in rows),
                "too_short": sum(c.status == "ok" and c.num_frames < self.clip_len for c in rows),
            }
        return out

    def format(self, max_listed: int | None = None) -> str:
        """The summary table; ``max_listed`` caps the bad files named per kind (None: all)."""
        lines = [f"Dataset {self.root} (split {self.split}, {self.num_classes} classes)"]
        if not (self.root / "videos").exists():
            lines.append(f"  NOTE: {self.root / 'videos'} does not exist: point it at the videos")
        header = (
            "subset",
            "listed",
            "found",
            "missing",
            "unreadable",
            "truncated",
            f"< {self.clip_len} frames",
        )
        row = "{:<8}{:>8}{:>8}{:>9}{:>12}{:>11}{:>14}"
        lines.append(row.format(*header))
        for subset, c in self.counts().items():
            values = (
                c["listed"],
                c["found"],
                c["missing"],
                c["unreadable"],
                c["truncated"],
                c["too_short"],
            )
            lines.append(row.format(subset, *values))
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
        counted = "decoded to the end" if self.exact else "header counts only, --fast"
        lines.append(
            "status  "
            + (f"OK: every listed video reads ({counted})" if self.ok else "PROBLEMS FOUND")
        )
        lines.extend(f"List problem: {problem}" for problem in self.list_problems)
        for title, rows, detail in (
            ("Missing", self.missing, lambda c: ""),
            ("Unreadable", self.unreadable, lambda c: f": {c.reason}"),
            (
                "Truncated (fewer frames decode than the header says)",
                self.truncated,
                lambda c: f": {c.reason}",
            ),
            (
                "Header and decoded frame counts differ (more decode; harmless)",
                self.count_mismatch,
                lambda c: f": header {c.header_frames}, decoded {c.num_frames}",
            ),
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
    exact: bool = True,
    progress: bool = True,
) -> ValidationReport:
    """Check every video named by the split lists of a dataset root, and the lists.

    Per video: exists, opens, first frame decodes, frame count and size; with ``exact``
    (default) every frame is decoded and the count compared with the header's, which costs
    about one read of the dataset (UCF101's 13k videos: minutes on a few cores); without
    it, about a millisecond per small video but a truncated file passes. Per list: not
    empty, no video twice, no video in both the train and the test list.

    Args:
        root: dataset root (``splits/``, ``videos/``).
        split: split number.
        clip_len: videos with fewer frames are reported as too short.
        subsets: which lists to check.
        exact: count frames by decoding every frame (finds truncated files).
        progress: show a tqdm progress bar.

    Returns:
        A :class:`ValidationReport`; ``print(report)`` shows the table.

    Raises:
        FileNotFoundError, SplitFormatError: the split lists themselves are missing or bad.
    """

    root = Path(root)
    lists = {subset: read_split(root, split, subset) for subset in subsets}
    todo = [(subset, r) for subset in subsets for r in lists[subset]]
    report = ValidationReport(root, int(split), int(clip_len), exact=exact)
    report.num_classes = len(read_classes(root, split))
    report.list_problems = list_problems(lists)
    for subset, record in tqdm(todo, desc="checking videos", disable=not progress):
        report.checks.append(check_video(record, subset, exact=exact))
    return report


def list_problems(lists: dict[str, Sequence[VideoRecord]]) -> list[str]:
    """Empty lists, videos listed twice, and videos in both the train and the test list."""
    problems = []
    for subset, records in lists.items():
        if not records:
            problems.append(f"the {subset} list is empty")
        twice = [p for p, n in Counter(str(r.path) for r in records).items() if n > 1]
        if twice:
            shown = ", ".join(twice[:5]) + (" ..." if len(twice) > 5 else "")
            problems.append(f"{len(twice)} video(s) listed twice in the {subset} list: {shown}")
    if "train" in lists and "test" in lists:
        both = sorted({str(r.path) for r in lists["train"]} & {str(r.path) for r in lists["test"]})
        if both:
            shown = ", ".join(both[:5]) + (" ..." if len(both) > 5 else "")
            problems.append(
                f"{len(both)} video(s) in both the train and the test list (a test leak): {shown}"
            )
    return problems

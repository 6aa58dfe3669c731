"""Split lists of UCF101 and HMDB51 (and of the synthetic dataset).

A dataset root has one layout for every dataset::

    <root>/splits/   classInd.txt, trainlist0N.txt, testlist0N.txt   (UCF101 format), or
                     <class>_test_split<N>.txt                       (HMDB51's official files)
    <root>/videos/   <Class>/<video file>

Two formats are read:

* **UCF101 format** (also the synthetic dataset and the IIC authors' HMDB51 conversion):
  ``classInd.txt`` lines ``<1-based index> <ClassName>``; ``trainlist0N.txt`` lines
  ``Class/file.avi <1-based label>`` (the label is optional: the HMDB51 conversion has none);
  ``testlist0N.txt`` lines ``Class/file.avi``. The class always comes from the folder part
  and its 0-based label from its ``classInd.txt`` position; a label written in the list
  must agree with it. CRLF line endings (the official UCF101 archive) are fine.
* **HMDB51 official format**: one file per class, ``<class>_test_split<N>.txt``, lines
  ``video.avi <0|1|2>`` (1 = train, 2 = test, 0 = unused). Labels are the positions of the
  class names in sorted order; records come class by class (sorted), each in file order.

When a root has both, the UCF101-format lists win.

``read_split`` parses lists only: whether the videos exist is ``validate_dataset``'s business.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

__all__ = [
    "VideoRecord",
    "SplitFormatError",
    "read_split",
    "read_classes",
    "split_format",
]

Subset = Literal["train", "test"]
SplitFormat = Literal["ucf101", "hmdb51"]

_SUBSETS = ("train", "test")
_HMDB_FLAGS = {"train": "1", "test": "2"}
_GROUP_RE = re.compile(r"_g(\d+)_c(\d+)$")


class SplitFormatError(ValueError):
    """A split file is malformed; the message names the file and the line."""


@dataclass(frozen=True)
class VideoRecord:
    """One video named by a split list.

    Attributes:
        path: ``<root>/videos/<Class>/<file>`` (the file need not exist).
        label: 0-based class index.
        class_name: class name as in ``classInd.txt`` (UCF101 format) or the split file name
            (HMDB51 official format).
        video_id: file name without extension, e.g. ``v_ApplyEyeMakeup_g08_c01``; frame and
            flow folders are ``<root>/frames/<video_id>/``.
        rel_path: the entry as the list writes it, e.g. ``ApplyEyeMakeup/v_…_g08_c01.avi``.
        group: UCF101 group number (``_gXX_``), or ``None`` when the name has none.
    """

    path: Path
    label: int
    class_name: str
    video_id: str
    rel_path: str = ""
    group: int | None = None

    @property
    def root(self) -> Path:
        """The dataset root (``path`` is ``<root>/videos/<Class>/<file>``)."""
        return self.path.parents[2]


def _splits_dir(root: str | Path) -> Path:
    return Path(root) / "splits"


def _check_args(split: int, subset: str) -> int:
    if subset not in _SUBSETS:
        raise ValueError(f"subset must be one of {_SUBSETS}, got {subset!r}")
    try:
        split = int(split)
    except (TypeError, ValueError):
        raise ValueError(f"split must be a positive integer, got {split!r}") from None
    if split < 1:
        raise ValueError(f"split must be a positive integer, got {split}")
    return split


def _read_lines(path: Path) -> list[tuple[int, str]]:
    """Non-blank lines of a text file with their 1-based numbers, whitespace stripped."""
    if not path.is_file():
        raise FileNotFoundError(f"split file not found: {path}")
    # Universal newlines: CRLF and LF both end a line; a missing final newline is fine.
    text = path.read_text(encoding="utf-8-sig")
    return [(n, line.strip()) for n, line in enumerate(text.splitlines(), 1) if line.strip()]


def _hmdb_files(splits: Path, split: int) -> dict[str, Path]:
    """Class name -> ``<class>_test_split<N>.txt`` for HMDB51's official lists."""
    suffix = f"_test_split{split}.txt"
    files = {p.name[: -len(suffix)]: p for p in splits.glob(f"*{suffix}") if p.is_file()}
    return dict(sorted(files.items()))


def split_format(root: str | Path, split: int = 1) -> SplitFormat:
    """Which list format ``<root>/splits`` holds for ``split``: ``"ucf101"`` or ``"hmdb51"``.

    Raises:
        FileNotFoundError: no list for that split, naming what was looked for.
    """
    splits = _splits_dir(root)
    split = _check_args(split, "train")
    if (splits / f"trainlist{split:02d}.txt").is_file() or (
        splits / f"testlist{split:02d}.txt"
    ).is_file():
        return "ucf101"
    if _hmdb_files(splits, split):
        return "hmdb51"
    if not splits.is_dir():
        raise FileNotFoundError(f"split folder not found: {splits}")
    raise FileNotFoundError(
        f"no lists for split {split} in {splits}: expected trainlist{split:02d}.txt / "
        f"testlist{split:02d}.txt with classInd.txt (UCF101 format) or "
        f"<class>_test_split{split}.txt files (HMDB51 official format)"
    )


def _read_class_index(path: Path) -> list[str]:
    """``classInd.txt`` -> class names in label order (line ``i Name`` gives label i-1)."""
    entries: dict[int, str] = {}
    for n, line in _read_lines(path):
        parts = line.split()
        if len(parts) != 2 or not parts[0].isdigit():
            raise SplitFormatError(
                f"{path}, line {n}: expected '<index> <ClassName>', got {line!r}"
            )
        index, name = int(parts[0]), parts[1]
        if index in entries:
            raise SplitFormatError(f"{path}, line {n}: class index {index} appears twice")
        entries[index] = name
    if not entries:
        raise SplitFormatError(f"{path}: no classes")
    if sorted(entries) != list(range(1, len(entries) + 1)):
        raise SplitFormatError(f"{path}: class indices must be 1..{len(entries)} without gaps")
    names = [entries[i] for i in range(1, len(entries) + 1)]
    if len(set(names)) != len(names):
        raise SplitFormatError(f"{path}: a class name appears twice")
    return names


def read_classes(root: str | Path, split: int = 1) -> list[str]:
    """Class names in label order: ``classInd.txt`` order, or sorted names for HMDB51 files."""
    splits = _splits_dir(root)
    if split_format(root, split) == "ucf101":
        return _read_class_index(splits / "classInd.txt")
    return list(_hmdb_files(splits, int(split)))


def _group(video_id: str) -> int | None:
    match = _GROUP_RE.search(video_id)
    return int(match.group(1)) if match else None


def _record(root: Path, class_name: str, label: int, rel_path: str) -> VideoRecord:
    video_id = Path(rel_path).stem
    return VideoRecord(
        path=root / "videos" / rel_path,
        label=label,
        class_name=class_name,
        video_id=video_id,
        rel_path=rel_path,
        group=_group(video_id),
    )


def _read_ucf(root: Path, split: int, subset: str) -> list[VideoRecord]:
    splits = _splits_dir(root)
    classes = _read_class_index(splits / "classInd.txt")
    label_of = {name: i for i, name in enumerate(classes)}
    path = splits / f"{subset}list{split:02d}.txt"
    records = []
    for n, line in _read_lines(path):
        parts = line.split()
        if len(parts) > 2 or (len(parts) == 2 and not parts[1].lstrip("-").isdigit()):
            raise SplitFormatError(
                f"{path}, line {n}: expected 'Class/video.ext [label]', got {line!r}"
            )
        entry = parts[0].replace("\\", "/")
        class_name, _, file_name = entry.rpartition("/")
        if not class_name or not file_name:
            raise SplitFormatError(
                f"{path}, line {n}: expected 'Class/video.ext', got {entry!r} (no class folder)"
            )
        class_name = class_name.rsplit("/", 1)[-1]
        if class_name not in label_of:
            raise SplitFormatError(
                f"{path}, line {n}: class {class_name!r} is not in {splits / 'classInd.txt'}"
            )
        label = label_of[class_name]
        if len(parts) == 2 and int(parts[1]) != label + 1:
            raise SplitFormatError(
                f"{path}, line {n}: label {parts[1]} disagrees with classInd.txt, which gives "
                f"{class_name!r} index {label + 1}"
            )
        records.append(_record(root, class_name, label, entry))
    return records


def _read_hmdb(root: Path, split: int, subset: str) -> list[VideoRecord]:
    files = _hmdb_files(_splits_dir(root), split)
    wanted = _HMDB_FLAGS[subset]
    records = []
    for label, (class_name, path) in enumerate(files.items()):
        for n, line in _read_lines(path):
            parts = line.rsplit(None, 1)
            if len(parts) != 2 or parts[1] not in ("0", "1", "2"):
                raise SplitFormatError(
                    f"{path}, line {n}: expected 'video.avi <0|1|2>', got {line!r}"
                )
            if parts[1] == wanted:
                records.append(_record(root, class_name, label, f"{class_name}/{parts[0]}"))
    return records


def read_split(root: str | Path, split: int = 1, subset: Subset = "train") -> list[VideoRecord]:
    """Parse a split list of a dataset root, in list order.

    Args:
        root: dataset root holding ``splits/`` (and, for loading, ``videos/``).
        split: split number (1, 2 or 3 for UCF101/HMDB51).
        subset: ``"train"`` or ``"test"``.

    Returns:
        One :class:`VideoRecord` per listed video, with 0-based labels.

    Raises:
        FileNotFoundError: the split file (or ``classInd.txt``) is missing; names the path.
        SplitFormatError: a malformed line; names the file and the line number.
        ValueError: a bad ``split`` or ``subset`` argument.

    Example:
        The official UCF101 lists ship with this repository (``data/ucf101/splits``); the
        videos need not be there to read them:

        >>> import iic_helpers
        >>> repo = Path(iic_helpers.__file__).resolve().parents[1]
        >>> train = read_split(repo / "data" / "ucf101", split=1, subset="train")
        >>> len(train), train[0].class_name, train[0].label
        (9537, 'ApplyEyeMakeup', 0)
    """
    split = _check_args(split, subset)
    root = Path(root)
    if split_format(root, split) == "ucf101":
        return _read_ucf(root, split, subset)
    return _read_hmdb(root, split, subset)

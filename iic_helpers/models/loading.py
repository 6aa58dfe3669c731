"""Load weights into a backbone from any checkpoint this project or the original IIC made.

Accepted inputs (a path to a file holding one of them, or the object itself):

* this project's checkpoints: ``{"model": state_dict, "contrast": ..., "optimizer": ...,
  "scheduler": ..., "epoch": ..., "rng": ..., "config": ...}``;
* original IIC pre-training checkpoints: ``{"model": state_dict, "opt":
  argparse.Namespace(...), "contrast": ..., "optimizer": ..., "epoch": 240}``;
* original fine-tuned checkpoints: ``{"model": state_dict}`` (possibly with ``linear.*``);
* a raw state dict (``{name: tensor}``), or an ``nn.Module``.

A ``module.`` prefix (from ``nn.DataParallel``) is stripped. Files are read with
``torch.load(weights_only=True)``, allowing only the extra classes in :data:`SAFE_GLOBALS`,
so a pickle that would run code is refused with :class:`UnsafeCheckpointError`. A file that
is empty, truncated or not a checkpoint raises :class:`CorruptCheckpointError` naming it, as
does a checkpoint written by this package whose tensors no longer match their stored
SHA-256 digests; a checkpoint without digests (original format) loads with a one-line note.
"""

from __future__ import annotations

import argparse
import os
import pickle
import re
import sys
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

__all__ = [
    "SAFE_GLOBALS",
    "CheckpointMismatchError",
    "CorruptCheckpointError",
    "LoadReport",
    "UnsafeCheckpointError",
    "extract_state_dict",
    "load_weights",
    "read_checkpoint",
]

#: Classes (besides tensors and plain containers) a checkpoint may contain. The original
#: pre-training checkpoints store their command-line options as an ``argparse.Namespace``.
SAFE_GLOBALS: list[Any] = [argparse.Namespace]

#: Keys under which a checkpoint dict holds the model's state dict, in the order tried.
_STATE_KEYS = ("model", "state_dict")

_MAX_LISTED = 40


class UnsafeCheckpointError(pickle.UnpicklingError, RuntimeError):
    """A checkpoint file was refused because unpickling it could run code."""


class CorruptCheckpointError(RuntimeError):
    """A checkpoint file is empty, truncated, not a checkpoint, or fails its digest check."""


class CheckpointMismatchError(RuntimeError):
    """A strict load found missing, unexpected or wrongly shaped tensors.

    The first line of the message counts them and names the first few; the full
    :class:`LoadReport` follows (and is in ``.report``).
    """

    def __init__(self, report: LoadReport) -> None:
        super().__init__(f"{report.summary()}\n{report}")
        self.report = report


Shape = tuple[int, ...]


@dataclass
class LoadReport:
    """What :func:`load_weights` did.

    Attributes:
        loaded: model keys copied from the checkpoint.
        missing: model keys the checkpoint does not have (left unchanged).
        unexpected: checkpoint keys the model does not have (ignored).
        mismatched: ``(key, checkpoint shape, model shape)`` for keys present in both with
            different shapes (skipped).
        source: where the weights came from (a path, or a description).
    """

    loaded: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    mismatched: list[tuple[str, Shape, Shape]] = field(default_factory=list)
    source: str = "<state dict>"

    @property
    def ok(self) -> bool:
        """True when every model tensor was loaded and nothing was left over."""
        return not (self.missing or self.unexpected or self.mismatched)

    def summary(self) -> str:
        """One line: strict load failed, with the counts and the first differing keys."""
        parts = []
        for name, keys in (
            ("missing", self.missing),
            ("unexpected", self.unexpected),
            ("wrongly shaped", [k for k, _, _ in self.mismatched]),
        ):
            if keys:
                shown = ", ".join(keys[:3]) + (", ..." if len(keys) > 3 else "")
                parts.append(f"{len(keys)} {name} ({shown})")
        return (
            f"strict load of {self.source} failed, nothing was loaded: {'; '.join(parts)}"
            " (full key report below)"
        )

    def __str__(self) -> str:
        total = len(self.loaded) + len(self.missing) + len(self.mismatched)
        lines = [f"Loaded {len(self.loaded)} of {total} model tensors from {self.source}."]
        if self.missing:
            note = "not in the checkpoint, left as they were"
            if all(k.startswith("linear.") for k in self.missing):
                note += (
                    "; only the classifier head is missing, as expected when a classifier"
                    " starts from a pre-training checkpoint"
                )
            lines += [f"Missing ({len(self.missing)}, {note}):", *_listing(self.missing)]
        if self.unexpected:
            lines += [
                f"Unexpected ({len(self.unexpected)}, in the checkpoint but not in the model,"
                " ignored):",
                *_listing(self.unexpected),
            ]
        if self.mismatched:
            rows = [f"{k}: checkpoint {list(a)} vs model {list(b)}" for k, a, b in self.mismatched]
            lines += [f"Shape mismatches ({len(rows)}, skipped):", *_listing(rows)]
        if self.missing and self.unexpected and len(self.loaded) < len(self.missing):
            lines.append(
                "Most keys differ: the checkpoint is probably for another architecture"
                " (c3d / r3d / r21d / r3d18) or another width."
            )
        return "\n".join(lines)


def _listing(items: list[str]) -> list[str]:
    shown = [f"  {s}" for s in items[:_MAX_LISTED]]
    if len(items) > _MAX_LISTED:
        shown.append(f"  ... and {len(items) - _MAX_LISTED} more (see the report's lists)")
    return shown


def _model_device(model: nn.Module) -> torch.device:
    for t in model.parameters():
        return t.device
    for t in model.buffers():
        return t.device
    return torch.device("cpu")


#: Files already noted as carrying no digest (the note is printed once per file).
_NOTED: set[str] = set()


def read_checkpoint(path: str | os.PathLike[str], map_location: Any = "cpu") -> Any:
    """``torch.load`` a file safely (``weights_only=True`` plus :data:`SAFE_GLOBALS`) and
    check the tensor digests of a checkpoint written by this package.

    Raises:
        FileNotFoundError: the file does not exist.
        UnsafeCheckpointError: the file holds objects whose unpickling could run code.
        CorruptCheckpointError: empty, truncated or not a checkpoint, or a tensor whose bytes
            differ from its stored digest.
    """
    from ..checkpoint import corrupt_tensors

    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"checkpoint not found: {str(p)!r}")
    if p.stat().st_size == 0:
        raise CorruptCheckpointError(
            f"checkpoint {str(p)!r} is empty (0 bytes): the save was interrupted or the copy"
            " failed; use another checkpoint or train again"
        )
    obj = _torch_load(p, map_location)
    bad = corrupt_tensors(obj)
    if bad is None:
        if str(p.resolve()) not in _NOTED:
            _NOTED.add(str(p.resolve()))
            print(
                f"note: {p} carries no tensor digest (original format or an older version of"
                " this package): loaded without an integrity check",
                file=sys.stderr,
            )
    elif bad:
        shown = ", ".join(bad[:5]) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
        raise CorruptCheckpointError(
            f"checkpoint {str(p)!r} is corrupt: {len(bad)} tensor(s) differ from the SHA-256"
            f" digests stored when it was saved ({shown}); use another copy or train again"
        )
    return obj


def _torch_load(p: Path, map_location: Any) -> Any:
    try:
        with torch.serialization.safe_globals(SAFE_GLOBALS):
            return torch.load(p, map_location=map_location, weights_only=True)
    except (EOFError, zipfile.BadZipFile, KeyError, IndexError) as e:
        raise CorruptCheckpointError(
            f"checkpoint {str(p)!r} ({p.stat().st_size} bytes) is truncated or not a"
            f" checkpoint ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''});"
            " use another copy or train again"
        ) from e
    except RuntimeError as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise CorruptCheckpointError(
            f"checkpoint {str(p)!r} ({p.stat().st_size} bytes) cannot be read, it is"
            f" probably truncated or corrupt ({first}); use another copy or train again"
        ) from e
    except pickle.UnpicklingError as e:
        with p.open("rb") as handle:
            head = handle.read(2)
        if not zipfile.is_zipfile(p) and not head.startswith(b"\x80"):
            raise CorruptCheckpointError(
                f"{str(p)!r} is not a checkpoint (neither a torch zip archive nor a pickle);"
                " check the path"
            ) from e
        found = re.search(r"GLOBAL (\S+) was not an allowed global", str(e))
        what = f" (it references {found.group(1)})" if found else ""
        raise UnsafeCheckpointError(
            f"refused to load {str(p)!r} for safety: it contains pickled objects other than"
            f" tensors and plain containers{what}, and unpickling them could run arbitrary"
            " code. Only checkpoints made of tensors, numbers, strings, lists, dicts and"
            " argparse.Namespace are accepted."
        ) from e


def extract_state_dict(obj: Any) -> dict[str, torch.Tensor]:
    """The model state dict inside a checkpoint object, ``module.`` prefixes removed.

    ``obj`` is a checkpoint dict (state dict under ``"model"`` or ``"state_dict"``), a raw
    state dict, or an ``nn.Module``.
    """
    if isinstance(obj, nn.Module):
        obj = obj.state_dict()
    if not isinstance(obj, Mapping):
        raise ValueError(f"expected a checkpoint dict or a state dict, got {type(obj).__name__}")
    for key in _STATE_KEYS:
        if isinstance(obj.get(key), Mapping):
            obj = obj[key]
            break
    bad = [k for k, v in obj.items() if not (isinstance(k, str) and torch.is_tensor(v))]
    if bad:
        raise ValueError(
            "no state dict found: expected a dict with a 'model' state dict, or a dict of"
            f" tensors; found non-tensor entries {bad[:10]}"
        )
    return {k.removeprefix("module."): v for k, v in obj.items()}


def load_weights(
    model: nn.Module,
    path_or_state: str | os.PathLike[str] | Mapping[str, Any] | nn.Module,
    *,
    strict: bool = True,
) -> LoadReport:
    """Copy matching tensors from a checkpoint into ``model`` (in place).

    Args:
        model: the network (any device and float dtype; values are converted).
        path_or_state: a checkpoint file, a checkpoint dict, a state dict or a module.
        strict: if True, any missing, unexpected or wrongly shaped key raises
            :class:`CheckpointMismatchError` and nothing is loaded. If False, every tensor
            whose name and shape match is loaded and the rest is reported.

    Returns:
        A :class:`LoadReport`; ``print(report)`` lists what was loaded and what was not.

    Example:
        Pretrained features into a classifier: only the new head is reported missing.

        >>> from iic_helpers.models import build_backbone
        >>> pretrained = build_backbone("r3d", width=8).state_dict()
        >>> net = build_backbone("r3d", width=8, num_classes=101)
        >>> report = load_weights(net, pretrained, strict=False)
        >>> len(report.loaded), report.missing
        (72, ['linear.weight', 'linear.bias'])
    """
    if isinstance(path_or_state, (str, os.PathLike)):
        source = repr(str(path_or_state))
        obj = read_checkpoint(path_or_state, map_location=_model_device(model))
    else:
        source = f"<{type(path_or_state).__name__}>"
        obj = path_or_state
    state = extract_state_dict(obj)
    own = model.state_dict()
    report = LoadReport(source=source)
    to_load: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if key not in own:
            report.unexpected.append(key)
        elif tuple(value.shape) != tuple(own[key].shape):
            report.mismatched.append((key, tuple(value.shape), tuple(own[key].shape)))
        else:
            to_load[key] = value
    report.missing = [k for k in own if k not in state]
    report.loaded = [k for k in own if k in to_load]
    if strict and not report.ok:
        raise CheckpointMismatchError(report)
    model.load_state_dict(to_load, strict=False)
    return report

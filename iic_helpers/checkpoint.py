"""Checkpoints, the one way in: writing, reading, loading weights, building a backbone.

Everything that touches a checkpoint file goes through this module:

* :func:`save_checkpoint` writes a run checkpoint atomically, with ``digest``: the SHA-256 of
  each tensor (dtype, shape and bytes);
* :func:`read_checkpoint` is the only reader: ``torch.load(weights_only=True)`` plus
  :data:`SAFE_GLOBALS`, the digest checked on every load, so flipped bytes inside a tensor
  (``torch.load`` does not check the zip CRC) are reported as corruption instead of
  producing believable numbers; :func:`load_checkpoint` is the same for a run's own
  checkpoint, with a "train one first" hint when the file is missing;
* :func:`load_weights` copies a checkpoint's tensors into a network and reports what matched;
* :func:`load_backbone` is the entry point evaluation and fine-tuning use: it builds the
  backbone a checkpoint needs (:func:`backbone_for_checkpoint`) and loads it.

A run checkpoint is a dict with ``model`` (backbone state dict in the original key layout),
``contrast`` (memory banks), ``head``, ``optimizer``, ``scheduler``, ``epoch``, ``rng`` and
``config`` (plain types only), so that the safe unpickler can read all of it. Pretraining
adds ``history`` (the rows of ``history.csv``) and ``train_list`` (a fingerprint of the
ordered training list).

Accepted inputs for loading (a path to a file holding one of them, or the object itself):

* this project's checkpoints (above);
* original IIC pre-training checkpoints: ``{"model": state_dict, "opt":
  argparse.Namespace(...), "contrast": ..., "optimizer": ..., "epoch": 240}``;
* original fine-tuned checkpoints: ``{"model": state_dict}`` (possibly with ``linear.*``);
* a raw state dict (``{name: tensor}``), or an ``nn.Module``.

A ``module.`` prefix (from ``nn.DataParallel``) is stripped. A pickle that would run code is
refused with :class:`UnsafeCheckpointError`. A file that is empty, truncated or not a
checkpoint raises :class:`CorruptCheckpointError` naming it, as does a checkpoint written by
this package whose tensors no longer match their stored digests; a checkpoint without
digests (original format) loads with a one-line note.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import pickle
import random
import re
import sys
import tempfile
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .config import Config
from .models import build_backbone

__all__ = [
    "DIGEST_KEY",
    "SAFE_GLOBALS",
    "CheckpointMismatchError",
    "CorruptCheckpointError",
    "LoadReport",
    "UnsafeCheckpointError",
    "atomic_write_text",
    "backbone_for_checkpoint",
    "corrupt_tensors",
    "extract_state_dict",
    "load_backbone",
    "load_checkpoint",
    "load_weights",
    "model_source",
    "read_checkpoint",
    "rng_state",
    "save_checkpoint",
    "set_rng_state",
    "source_name",
    "tensor_digests",
]

#: Key of the per-tensor SHA-256 digests in a checkpoint dict.
DIGEST_KEY = "digest"


def _tensors(obj: Any, prefix: str = "") -> Iterator[tuple[str, torch.Tensor]]:
    """Every tensor inside nested dicts / lists / tuples, with a ``a/b/0``-style path."""
    if torch.is_tensor(obj):
        yield prefix, obj
    elif isinstance(obj, Mapping):
        for key in obj:
            if prefix == "" and key == DIGEST_KEY:
                continue
            yield from _tensors(obj[key], f"{prefix}/{key}" if prefix else str(key))
    elif isinstance(obj, (list, tuple)):
        for i, item in enumerate(obj):
            yield from _tensors(item, f"{prefix}/{i}" if prefix else str(i))


def _sha256(tensor: torch.Tensor) -> str:
    t = tensor.detach().cpu().contiguous().reshape(-1)
    h = hashlib.sha256(f"{t.dtype}|{tuple(tensor.shape)}|".encode())
    if t.numel():
        h.update(t.view(torch.uint8).numpy().data)
    return h.hexdigest()


def tensor_digests(state: Mapping[str, Any]) -> dict[str, str]:
    """``{path: sha256}`` of every tensor in a checkpoint dict (the digest entry excluded)."""
    return {path: _sha256(t) for path, t in _tensors(state)}


def corrupt_tensors(state: Mapping[str, Any]) -> list[str] | None:
    """Paths of the tensors whose bytes no longer match the stored digest.

    Returns ``None`` when the checkpoint carries no digest (an original-format file or one
    written before digests existed), else the (possibly empty) list of mismatches; a tensor
    added or removed since saving counts as a mismatch.
    """
    stored = state.get(DIGEST_KEY) if isinstance(state, Mapping) else None
    if not isinstance(stored, Mapping):
        return None
    now = tensor_digests(state)
    return sorted(k for k in set(stored) | set(now) if stored.get(k) != now.get(k))


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def save_checkpoint(state: dict[str, Any], path: str | os.PathLike[str]) -> Path:
    """Write ``state`` plus its tensor digests to ``path`` atomically.

    A temporary file in the same folder is written, flushed and renamed over ``path``, so a
    crash while writing leaves the previous checkpoint intact. The file gets the usual
    permissions (``0666 & ~umask``, like the run's other files).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v for k, v in state.items() if k != DIGEST_KEY}
    state[DIGEST_KEY] = tensor_digests(state)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as handle:
            torch.save(state, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write a text file atomically (temporary file in the same folder + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, 0o666 & ~_umask())
        with os.fdopen(fd, "w", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_checkpoint(
    path: str | os.PathLike[str], map_location: str | torch.device = "cpu"
) -> dict[str, Any]:
    """Read a run checkpoint written by :func:`save_checkpoint`: :func:`read_checkpoint`,
    with a hint to train one when the file does not exist."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"no checkpoint at {path}; train one first (python -m iic_helpers pretrain ...)"
        )
    return read_checkpoint(path, map_location=map_location)


def rng_state() -> dict[str, Any]:
    """Torch, CUDA, NumPy and Python RNG states as safe-to-load types."""
    np_state = np.random.get_state()  # noqa: NPY002 (the global state is what we save)
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]],
        "python": random.getstate(),
    }


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` saved."""
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    name, keys, *rest = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), *rest))  # noqa: NPY002
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))


# --------------------------------------------------------------------------- reading

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


# --------------------------------------------------------------------------- building a backbone


def source_name(checkpoint: Any) -> str:
    """How messages name a checkpoint argument (a path, an in-memory dict, or none)."""
    if checkpoint is None:
        return "a random network"
    if isinstance(checkpoint, (str, os.PathLike)):
        return f"checkpoint {checkpoint}"
    return "the given checkpoint object"


def model_source(model: nn.Module) -> str:
    """What a model's weights came from, for messages (set by :func:`load_backbone`)."""
    return str(getattr(model, "checkpoint_source", "the model"))


def backbone_for_checkpoint(checkpoint: Any, cfg: Config) -> tuple[str, int]:
    """``(backbone name, width)`` a checkpoint was trained with.

    This project's checkpoints carry their ``config``; original IIC pretraining
    checkpoints carry ``opt.model`` at width 64; otherwise ``cfg``'s values are used.
    """
    if isinstance(checkpoint, dict):
        saved = checkpoint.get("config")
        if isinstance(saved, dict) and "backbone" in saved:
            return str(saved["backbone"]), int(saved["width"])
        opt = checkpoint.get("opt")
        if opt is not None and hasattr(opt, "model"):
            return str(opt.model), 64
    return cfg.backbone, cfg.width


def load_backbone(
    cfg: Config,
    checkpoint: str | os.PathLike[str] | Mapping[str, Any] | None = None,
    *,
    strict: bool = True,
    num_classes: int | None = None,
    seed: bool = True,
) -> tuple[nn.Module, Any]:
    """The backbone a checkpoint holds (ours or original), or a random one: the entry point.

    Args:
        cfg: supplies the architecture and width when the checkpoint does not say
            (:func:`backbone_for_checkpoint`), and the seed.
        checkpoint: a file, an already-read checkpoint object, or None (random weights).
        strict: without ``num_classes``, refuse any missing, unexpected or wrongly shaped
            tensor (:class:`CheckpointMismatchError`); if False, load what matches.
        num_classes: add a ``linear`` classifier of that size (fine-tuning). Only
            ``linear.*`` tensors may then differ from the checkpoint; anything else raises
            ``ValueError`` (the checkpoint is for another architecture or width).
        seed: seed torch with ``cfg.seed`` before building, so random weights are
            reproducible (fine-tuning seeds earlier itself and passes False).

    Returns:
        ``(model, checkpoint object or None)``. The model's ``checkpoint_source`` names the
        checkpoint for messages and its ``load_report`` is the :class:`LoadReport` (None for
        random weights).
    """
    is_file = isinstance(checkpoint, (str, os.PathLike))
    obj = read_checkpoint(checkpoint) if is_file else checkpoint
    name, width = backbone_for_checkpoint(obj, cfg)
    if seed:
        torch.manual_seed(cfg.seed)
    model = build_backbone(name, width=width, num_classes=num_classes)
    model.checkpoint_source = source_name(checkpoint)
    model.load_report = None
    if obj is None:
        return model, obj
    if num_classes is None:
        model.load_report = load_weights(model, obj, strict=strict)
        return model, obj
    report = load_weights(model, obj, strict=False)
    head_only = all(k.startswith("linear.") for k in (*report.missing, *report.unexpected))
    if report.mismatched or not head_only:
        raise ValueError(
            f"checkpoint {checkpoint} does not fit a {name} (width {width}) backbone: {report}"
        )
    model.load_report = report
    return model, obj

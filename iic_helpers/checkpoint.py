"""Run checkpoints: written atomically, read back with ``torch.load(weights_only=True)``.

A checkpoint is a dict with ``model`` (backbone state dict in the original key layout),
``contrast`` (memory banks), ``head``, ``optimizer``, ``scheduler``, ``epoch``, ``rng`` and
``config`` (plain types only), so that the safe unpickler can read all of it. Pretraining
adds ``history`` (the rows of ``history.csv``) and ``train_list`` (a fingerprint of the
ordered training list).

Every checkpoint this package writes carries ``digest``: the SHA-256 of each tensor (dtype,
shape and bytes). :func:`~iic_helpers.models.loading.read_checkpoint` checks it on every
load, so flipped bytes inside a tensor (``torch.load`` does not check the zip CRC) are
reported as corruption instead of producing believable numbers.
"""

from __future__ import annotations

import hashlib
import os
import random
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = [
    "DIGEST_KEY",
    "save_checkpoint",
    "load_checkpoint",
    "rng_state",
    "set_rng_state",
    "tensor_digests",
    "corrupt_tensors",
    "atomic_write_text",
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
    """Read a checkpoint written by :func:`save_checkpoint` (``weights_only=True``, digest
    checked; see :func:`~iic_helpers.models.loading.read_checkpoint`)."""
    from .models.loading import read_checkpoint

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

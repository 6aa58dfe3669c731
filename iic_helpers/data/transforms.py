"""Clip transforms: one random crop (and flip) for every frame of a clip.

The original code re-seeded Python's ``random`` before each frame so that a per-frame
``RandomCrop`` would repeat its choice; since torchvision 0.8 crops draw from torch's RNG,
so every frame got its own crop and residual frames filled with edges (reference bug 10).
Here a clip is a ``torchvision.tv_tensors.Video`` laid out ``(T, C, H, W)``, and a
``transforms.v2`` transform draws its parameters once per call for the whole video.
Several views passed together (a dict or tuple) share the same draw: the same crop window
for the RGB, u and v clips.

Paper recipe (``reference/recipe.json``): resize every frame to exactly 128x171 (aspect
ratio not kept), random crop 112 for training, centre crop 112 for evaluation, values in
[0, 1], no mean/std normalization, no flip.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torchvision import tv_tensors
from torchvision.transforms import v2

__all__ = ["ClipTransform", "train_transform", "eval_transform", "to_video", "to_clip"]

Size = int | tuple[int, int]


def to_video(frames: np.ndarray | torch.Tensor) -> tv_tensors.Video:
    """``(T, H, W, C)`` frames (numpy or tensor) -> ``tv_tensors.Video`` ``(T, C, H, W)``.

    A ``tv_tensors.Video`` is returned unchanged (it is taken to be ``(T, C, H, W)``).
    """
    if isinstance(frames, tv_tensors.Video):
        return frames
    tensor = torch.as_tensor(np.asarray(frames) if not torch.is_tensor(frames) else frames)
    if tensor.ndim != 4:
        raise ValueError(f"expected frames shaped (T, H, W, C), got shape {tuple(tensor.shape)}")
    return tv_tensors.Video(tensor.permute(0, 3, 1, 2))


def to_clip(video: torch.Tensor) -> torch.Tensor:
    """``(T, C, H, W)`` video (uint8 or float in [0, 1]) -> contiguous float32 ``(C, T, H, W)``.

    uint8 values are divided by 255.
    """
    tensor = video.as_subclass(torch.Tensor).permute(1, 0, 2, 3)
    clip = torch.empty(tensor.shape, dtype=torch.float32)
    clip.copy_(tensor)  # one strided copy + cast, then an in-place scale on contiguous memory
    return clip.div_(255.0) if tensor.dtype == torch.uint8 else clip


def _map(structure: Any, fn: Callable[[Any], Any]) -> Any:
    if isinstance(structure, Mapping):
        return {key: fn(value) for key, value in structure.items()}
    if isinstance(structure, (list, tuple)):
        return type(structure)(fn(value) for value in structure)
    return fn(structure)


class ClipTransform:
    """Apply ``transforms.v2`` operations to whole clips, one random draw per call.

    Input: frames ``(T, H, W, 3)`` uint8 (numpy array or tensor), a ``tv_tensors.Video``
    ``(T, C, H, W)``, or a dict / list / tuple of these (several views of one clip, which
    all get the same crop and flip; give them the same frame size).

    Output: the same structure holding float32 clips ``(C, T, H, W)`` in ``[0, 1]``.

    Args:
        ops: v2 transforms applied in order to the ``(T, C, H, W)`` video (uint8 on input:
            ``Resize`` on uint8 is faster and matches PIL's resize closely).

    Example:
        >>> t = ClipTransform([v2.Resize((128, 171)), v2.RandomCrop(112)])
        >>> t(np.zeros((16, 240, 320, 3), np.uint8)).shape
        torch.Size([3, 16, 112, 112])
    """

    def __init__(self, ops: Sequence[Callable[..., Any]] | Callable[..., Any] = ()) -> None:
        ops = list(ops) if isinstance(ops, Sequence) else [ops]
        self.ops = ops
        self.transform = v2.Compose(ops) if ops else None

    def __call__(self, clip: Any) -> Any:
        videos = _map(clip, to_video)
        if self.transform is not None:
            videos = self.transform(videos)
        return _map(videos, to_clip)

    def __repr__(self) -> str:
        inner = ", ".join(repr(op) for op in self.ops)
        return f"{type(self).__name__}([{inner}])"


def _resize_ops(resize: Size | None) -> list[Callable[..., Any]]:
    return [] if resize is None else [v2.Resize(resize, antialias=True)]


def train_transform(
    resize: Size | None = (128, 171), crop: Size | None = 112, *, flip: bool = False
) -> ClipTransform:
    """Training clip transform: resize, one random crop per clip, optional flip.

    Args:
        resize: ``(H, W)`` to resize every frame to exactly (the paper's 128x171), an int to
            resize the short side, or ``None`` to keep the decoded size.
        crop: random crop size (the paper's 112), or ``None`` for no crop.
        flip: random horizontal flip (p=0.5) of the whole clip; off in the paper.

    Returns:
        A :class:`ClipTransform`: ``(T, H, W, 3)`` uint8 -> ``(3, T, crop, crop)`` float32.
    """
    ops = _resize_ops(resize)
    if crop is not None:
        ops.append(v2.RandomCrop(crop))
    if flip:
        ops.append(v2.RandomHorizontalFlip())
    return ClipTransform(ops)


def eval_transform(resize: Size | None = (128, 171), crop: Size | None = 112) -> ClipTransform:
    """Evaluation clip transform: resize, centre crop (deterministic).

    Returns:
        A :class:`ClipTransform`: ``(T, H, W, 3)`` uint8 -> ``(3, T, crop, crop)`` float32.
    """
    ops = _resize_ops(resize)
    if crop is not None:
        ops.append(v2.CenterCrop(crop))
    return ClipTransform(ops)

"""3D CNN backbones of IIC (C3D, R3D, R(2+1)D).

The networks keep the original IIC module names and state-dict layout, so at ``width=64``
the original checkpoints load with ``strict=True``.

Example:
    >>> import torch
    >>> net = build_backbone("r3d", width=8).eval()
    >>> net(torch.rand(2, 3, 16, 32, 32)).shape
    torch.Size([2, 64])

Loading weights into them is :mod:`iic_helpers.checkpoint`'s job; its names
(``load_weights``, ``read_checkpoint``, ...) are also reachable from here, as before.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from .c3d import C3D
from .r3d import R3DNet
from .r21d import R2Plus1DNet

__all__ = [
    "BACKBONES",
    "C3D",
    "CheckpointMismatchError",
    "LoadReport",
    "R2Plus1DNet",
    "R3DNet",
    "UnsafeCheckpointError",
    "build_backbone",
    "load_weights",
    "read_checkpoint",
]

#: Names re-exported from :mod:`iic_helpers.checkpoint` (their home since the checkpoint
#: code moved there).
_FROM_CHECKPOINT = frozenset(
    {
        "CheckpointMismatchError",
        "LoadReport",
        "UnsafeCheckpointError",
        "load_weights",
        "read_checkpoint",
    }
)


def __getattr__(name: str) -> Any:
    """The checkpoint names, imported on first use: ``iic_helpers.checkpoint`` imports
    ``build_backbone`` from this package, so importing it here at the top would be a cycle
    (checkpoint -> models -> checkpoint)."""
    if name in _FROM_CHECKPOINT:
        from .. import checkpoint

        return getattr(checkpoint, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


#: Valid names for :func:`build_backbone`.
BACKBONES: tuple[str, ...] = ("c3d", "r3d", "r21d", "r3d18")


def build_backbone(
    name: str,
    *,
    width: int = 64,
    num_classes: int | None = None,
    return_conv: bool = False,
    in_channels: int = 3,
) -> nn.Module:
    """Build a backbone by name.

    Args:
        name: ``"c3d"``, ``"r3d"``, ``"r21d"`` (layer sizes 1,1,1,1, as in the paper) or
            ``"r3d18"`` (2,2,2,2).
        width: base channel count (64 in the paper); the output has ``8 * width`` features.
        num_classes: if set, add a ``linear`` classifier and return logits.
        return_conv: return the original retrieval features instead: the conv5 map
            max-pooled by (1, 2, 2) and flattened (9216-d for 16x112x112 input at width 64).
            The classifier, if any, is skipped.
        in_channels: input channels (3 for RGB and residual clips, 2 for optical flow).

    Returns:
        A module mapping ``(B, C, T, H, W)`` clips to ``(B, 8 * width)`` features,
        ``(B, num_classes)`` logits, or ``(B, D)`` retrieval features. It also has
        ``forward_features`` (the conv5 map ``(B, 8w, T/8, H/16, W/16)``) and
        ``feature_dim`` (``8 * width``).

    Raises:
        ValueError: unknown name (the message lists the valid ones) or bad sizes.
    """
    key = name.lower() if isinstance(name, str) else name
    if key not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; valid names: {', '.join(BACKBONES)}")
    if not isinstance(width, int) or width < 1:
        raise ValueError(f"width must be a positive int, got {width!r}")
    if num_classes is not None and (not isinstance(num_classes, int) or num_classes < 1):
        raise ValueError(f"num_classes must be None or a positive int, got {num_classes!r}")
    opts = dict(
        width=width, num_classes=num_classes, return_conv=return_conv, in_channels=in_channels
    )
    if key == "c3d":
        return C3D(**opts)
    if key == "r21d":
        return R2Plus1DNet((1, 1, 1, 1), **opts)
    return R3DNet((2, 2, 2, 2) if key == "r3d18" else (1, 1, 1, 1), **opts)

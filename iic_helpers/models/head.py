"""The head shared by every backbone: conv5 map -> features, logits or retrieval features.

C3D, R3D and R(2+1)D differ only in their convolutional trunk (``forward_features``); this
base class owns what follows it, with the original module names (``pool``,
``feature_pool``, ``linear``) so that state dicts keep the original key layout.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = [
    "BackboneHead",
]


class BackboneHead(nn.Module):
    """Base of the backbones: subclasses build their trunk and implement
    :meth:`forward_features` ``(B, C, T, H, W) -> (B, 8w, T', H', W')``.

    Args:
        feature_dim: channels of the conv5 map (``8w``).
        num_classes: if set, a ``linear`` layer ``feature_dim -> num_classes`` gives logits.
        return_conv: return the retrieval features instead (see :meth:`forward`).
    """

    def __init__(self, feature_dim: int, num_classes: int | None, return_conv: bool) -> None:
        super().__init__()
        self.feature_dim = feature_dim
        self.num_classes = num_classes
        self.return_conv = return_conv

    def _build_head(self) -> None:
        """Create the head's modules; call after the trunk so that module order (and
        ``state_dict`` key order) stays the original's."""
        self.pool = nn.AdaptiveAvgPool3d(1)
        self.feature_pool = nn.MaxPool3d(kernel_size=(1, 2, 2), stride=(1, 2, 2))
        if self.num_classes is not None:
            self.linear = nn.Linear(self.feature_dim, self.num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The conv5 feature map ``(B, 8w, T', H', W')`` of clips ``(B, C, T, H, W)``."""
        raise NotImplementedError

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        """Conv5 map ``(B, 8w, T', H', W')`` to the output (see :meth:`forward`)."""
        if self.return_conv:
            return self.feature_pool(x).flatten(1)
        x = self.pool(x).flatten(1)
        if self.num_classes is not None:
            x = self.linear(x)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, T, H, W)`` clips to ``(B, 8w)`` features, ``(B, num_classes)`` logits,
        or, with ``return_conv``, ``(B, D)`` flattened max-pooled conv5 features (the
        classifier is then skipped)."""
        return self.forward_head(self.forward_features(x))

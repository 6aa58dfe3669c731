"""C3D with batch norm, laid out as in the original IIC ``models/c3d.py``.

Eight 3x3x3 convolutions (padding 1, with bias), each followed by BN and ReLU::

    conv1  3 -> w     pool1 (1,2,2)
    conv2  w -> 2w    pool2 (2,2,2)
    conv3a 2w -> 4w, conv3b 4w -> 4w    pool3 (2,2,2)
    conv4a 4w -> 8w, conv4b 8w -> 8w    pool4 (2,2,2)
    conv5a 8w -> 8w, conv5b 8w -> 8w    (no pool5: global average pool instead)

The original's fc6/fc7 are gone; the head is the same as R3D's (average pool to
``(B, 8w)``, optional ``linear``, or the ``return_conv`` max-pooled conv5 map).
"""

from __future__ import annotations

import torch
from torch import nn

from .head import BackboneHead

__all__ = [
    "C3D",
]


class C3D(BackboneHead):
    """C3D backbone.

    Args:
        width: channels of conv1 (64 in the original); later stages use 2w, 4w, 8w.
        num_classes: if set, a ``linear`` layer ``8w -> num_classes`` gives logits.
        return_conv: return the retrieval features instead (see :meth:`forward`).
        in_channels: input channels (3 for RGB or residual clips).

    Shapes: input ``(B, C, T, H, W)``; conv5 map ``(B, 8w, T/8, H/16, W/16)`` (floored);
    output ``(B, 8w)``, ``(B, num_classes)``, or with ``return_conv``
    ``(B, 8w * T/8 * floor(H/32) * floor(W/32))`` (9216 for ``16x112x112`` at w=64).
    """

    def __init__(
        self,
        *,
        width: int = 64,
        num_classes: int | None = None,
        return_conv: bool = False,
        in_channels: int = 3,
    ) -> None:
        super().__init__(8 * width, num_classes, return_conv)
        w = width
        spec = [
            ("1", in_channels, w),
            ("2", w, 2 * w),
            ("3a", 2 * w, 4 * w),
            ("3b", 4 * w, 4 * w),
            ("4a", 4 * w, 8 * w),
            ("4b", 8 * w, 8 * w),
            ("5a", 8 * w, 8 * w),
            ("5b", 8 * w, 8 * w),
        ]
        for name, cin, cout in spec:
            self.add_module(f"conv{name}", nn.Conv3d(cin, cout, kernel_size=3, padding=1))
            self.add_module(f"bn{name}", nn.BatchNorm3d(cout))
        self.relu = nn.ReLU()
        self.pool1 = nn.MaxPool3d(kernel_size=(1, 2, 2), stride=(1, 2, 2))
        self.pool2 = nn.MaxPool3d(kernel_size=2, stride=2)
        self.pool3 = nn.MaxPool3d(kernel_size=2, stride=2)
        self.pool4 = nn.MaxPool3d(kernel_size=2, stride=2)
        self._build_head()

    def _cbr(self, name: str, x: torch.Tensor) -> torch.Tensor:
        """``relu(bn<name>(conv<name>(x)))``."""
        return self.relu(getattr(self, f"bn{name}")(getattr(self, f"conv{name}")(x)))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The conv5 feature map: ``(B, C, T, H, W) -> (B, 8w, T/8, H/16, W/16)``."""
        x = self.pool1(self._cbr("1", x))
        x = self.pool2(self._cbr("2", x))
        x = self.pool3(self._cbr("3b", self._cbr("3a", x)))
        x = self.pool4(self._cbr("4b", self._cbr("4a", x)))
        return self._cbr("5b", self._cbr("5a", x))

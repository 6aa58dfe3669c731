"""R(2+1)D: the R3D residual net with every 3D convolution factored in space and time.

As in the original IIC ``models/r21d.py``, each convolution with kernel ``(kT, kH, kW)``
becomes ``spatial_conv`` (1, kH, kW) -> ``bn`` -> ReLU -> ``temporal_conv`` (kT, 1, 1) with

    M = floor(kT*kH*kW * C_in * C_out / (kH*kW * C_in + kT * C_out))

intermediate channels, chosen so the factored conv has about as many parameters as the full
one. The 1x1x1 projection shortcut is factored too, so it gains an inner BN + ReLU
(reference bug 23, kept for checkpoint compatibility).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn.modules.utils import _triple

from .r3d import IntOr3, R3DNet

__all__ = [
    "intermediate_channels",
    "FactoredConv3d",
    "R2Plus1DNet",
]


def intermediate_channels(in_channels: int, out_channels: int, kernel_size: IntOr3) -> int:
    """Width M of the (2+1)D factorisation, e.g. 83 for the 3 -> 64, 3x7x7 stem."""
    kt, kh, kw = _triple(kernel_size)
    num = kt * kh * kw * in_channels * out_channels
    return num // (kh * kw * in_channels + kt * out_channels)


class FactoredConv3d(nn.Module):
    """Factored (2+1)D convolution (no biases).

    ``(B, C_in, T, H, W)`` -> spatial conv -> ``(B, M, T, H', W')`` -> BN, ReLU ->
    temporal conv -> ``(B, C_out, T', H', W')``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: IntOr3,
        stride: IntOr3 = 1,
        padding: IntOr3 = 0,
        bias: bool = False,
    ) -> None:
        super().__init__()
        kt, kh, kw = _triple(kernel_size)
        st, sh, sw = _triple(stride)
        pt, ph, pw = _triple(padding)
        mid = intermediate_channels(in_channels, out_channels, (kt, kh, kw))
        self.spatial_conv = nn.Conv3d(
            in_channels, mid, (1, kh, kw), stride=(1, sh, sw), padding=(0, ph, pw), bias=bias
        )
        self.bn = nn.BatchNorm3d(mid)
        self.relu = nn.ReLU()
        self.temporal_conv = nn.Conv3d(
            mid, out_channels, (kt, 1, 1), stride=(st, 1, 1), padding=(pt, 0, 0), bias=bias
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C_in, T, H, W) -> (B, C_out, T', H', W')``."""
        return self.temporal_conv(self.relu(self.bn(self.spatial_conv(x))))


class R2Plus1DNet(R3DNet):
    """R(2+1)D backbone: :class:`~.r3d.R3DNet` with the factored convolution.

    Same arguments, module names and output shapes as :class:`~.r3d.R3DNet`: input
    ``(B, C, T, H, W)``, output ``(B, 8w)`` features, ``(B, num_classes)`` logits, or the
    flattened ``return_conv`` features.
    """

    def __init__(
        self,
        layer_sizes: Sequence[int] = (1, 1, 1, 1),
        *,
        width: int = 64,
        num_classes: int | None = None,
        return_conv: bool = False,
        in_channels: int = 3,
    ) -> None:
        super().__init__(
            layer_sizes,
            width=width,
            num_classes=num_classes,
            return_conv=return_conv,
            in_channels=in_channels,
            conv_type=FactoredConv3d,
        )

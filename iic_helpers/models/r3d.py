"""R3D: a ResNet of full 3D convolutions, laid out as in the original IIC code.

The network follows ``models/r3d.py`` of the official IIC (and VCOP) repository, with
the same module names so that original checkpoints load with ``strict=True``:

* stem ``conv1`` (3 -> w, kernel (3, 7, 7), stride (1, 2, 2)), ``bn1``, ReLU, no max-pool;
* ``conv2`` .. ``conv5``: :class:`SpatioTemporalResLayer` made of ``block1`` and, for
  deeper nets (R3D-18), further blocks in ``blocks``; ``conv3`` .. ``conv5`` halve T, H and
  W in their first block;
* head: global average pool to ``(B, 8w)``, optional ``linear`` classifier, or the
  ``return_conv`` retrieval features (max-pool (1, 2, 2) of the conv5 map, flattened).

The residual net is written once here and reused by R(2+1)D (:mod:`.r21d`), which only
swaps the convolution (``conv_type``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn
from torch.nn.modules.utils import _triple

from .head import BackboneHead

__all__ = [
    "FullConv3d",
    "SpatioTemporalResBlock",
    "SpatioTemporalResLayer",
    "R3DNet",
]

IntOr3 = int | Sequence[int]


class FullConv3d(nn.Module):
    """A plain (full) 3D convolution without bias, stored as ``temporal_spatial_conv``.

    The original docstring calls it a factored (2+1)D convolution; it is not (reference bug
    22). Input ``(B, C_in, T, H, W)``, output ``(B, C_out, T', H', W')``.
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
        self.temporal_spatial_conv = nn.Conv3d(
            in_channels,
            out_channels,
            _triple(kernel_size),
            stride=_triple(stride),
            padding=_triple(padding),
            bias=bias,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C_in, T, H, W) -> (B, C_out, T', H', W')``."""
        return self.temporal_spatial_conv(x)


ConvType = Callable[..., nn.Module]


class SpatioTemporalResBlock(nn.Module):
    """Basic residual block: ``ReLU(bn2(conv2(ReLU(bn1(conv1(x))))) + shortcut(x))``.

    With ``downsample=True`` the first conv has stride 2 in T, H and W and the shortcut is
    ``downsamplebn(downsampleconv(x))`` (1x1x1, stride 2); otherwise it is the identity.
    The shortcut modules are registered first, so the state-dict order is
    ``downsampleconv, downsamplebn, conv1, bn1, conv2, bn2``, as in the original.

    Input ``(B, C_in, T, H, W)``; output ``(B, C_out, T, H, W)``, or
    ``(B, C_out, ceil(T/2), ceil(H/2), ceil(W/2))`` when downsampling.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        downsample: bool = False,
        conv_type: ConvType = FullConv3d,
    ) -> None:
        super().__init__()
        self.downsample = downsample
        padding = kernel_size // 2
        stride = 2 if downsample else 1
        if downsample:
            self.downsampleconv = conv_type(in_channels, out_channels, 1, stride=2)
            self.downsamplebn = nn.BatchNorm3d(out_channels)
        self.conv1 = conv_type(
            in_channels, out_channels, kernel_size, stride=stride, padding=padding
        )
        self.bn1 = nn.BatchNorm3d(out_channels)
        self.relu1 = nn.ReLU()
        self.conv2 = conv_type(out_channels, out_channels, kernel_size, padding=padding)
        self.bn2 = nn.BatchNorm3d(out_channels)
        self.outrelu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C_in, T, H, W) -> (B, C_out, T', H', W')``."""
        res = self.relu1(self.bn1(self.conv1(x)))
        res = self.bn2(self.conv2(res))
        if self.downsample:
            x = self.downsamplebn(self.downsampleconv(x))
        return self.outrelu(x + res)


class SpatioTemporalResLayer(nn.Module):
    """``layer_size`` residual blocks: ``block1`` (which may downsample), then ``blocks``.

    Input ``(B, C_in, T, H, W)``; output ``(B, C_out, T', H', W')``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        layer_size: int,
        downsample: bool = False,
        conv_type: ConvType = FullConv3d,
    ) -> None:
        super().__init__()
        self.block1 = SpatioTemporalResBlock(
            in_channels, out_channels, kernel_size, downsample, conv_type=conv_type
        )
        self.blocks = nn.ModuleList(
            SpatioTemporalResBlock(out_channels, out_channels, kernel_size, conv_type=conv_type)
            for _ in range(layer_size - 1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C_in, T, H, W) -> (B, C_out, T', H', W')``."""
        x = self.block1(x)
        for block in self.blocks:
            x = block(x)
        return x


class R3DNet(BackboneHead):
    """R3D backbone (or, with another ``conv_type``, R(2+1)D).

    Args:
        layer_sizes: number of blocks in conv2..conv5; ``(1, 1, 1, 1)`` in the paper,
            ``(2, 2, 2, 2)`` for R3D-18.
        width: channels of the stem and conv2; conv3..conv5 use 2w, 4w, 8w (64 in the
            original).
        num_classes: if set, a ``linear`` layer ``8w -> num_classes`` gives logits.
        return_conv: return the retrieval features instead (see :meth:`forward`).
        in_channels: input channels (3 for RGB or residual clips, 2 for optical flow u/v).
        conv_type: the convolution module; :class:`FullConv3d` gives R3D.

    Shapes: input ``(B, C, T, H, W)``; conv5 map ``(B, 8w, T/8, H/16, W/16)`` (rounded
    up); output ``(B, 8w)``, ``(B, num_classes)``, or with ``return_conv``
    ``(B, 8w * T/8 * floor(H/32) * floor(W/32))`` (9216 for ``16x112x112`` at w=64).

    Example:
        >>> net = R3DNet((1, 1, 1, 1), width=8)
        >>> net(torch.zeros(1, 3, 16, 32, 32)).shape
        torch.Size([1, 64])
    """

    def __init__(
        self,
        layer_sizes: Sequence[int] = (1, 1, 1, 1),
        *,
        width: int = 64,
        num_classes: int | None = None,
        return_conv: bool = False,
        in_channels: int = 3,
        conv_type: ConvType = FullConv3d,
    ) -> None:
        super().__init__(8 * width, num_classes, return_conv)
        if len(layer_sizes) != 4 or min(layer_sizes) < 1:
            raise ValueError(f"layer_sizes must be 4 positive ints, got {tuple(layer_sizes)}")
        w = width
        self.conv1 = conv_type(in_channels, w, (3, 7, 7), stride=(1, 2, 2), padding=(1, 3, 3))
        self.bn1 = nn.BatchNorm3d(w)
        self.relu1 = nn.ReLU()
        self.conv2 = SpatioTemporalResLayer(w, w, 3, layer_sizes[0], conv_type=conv_type)
        self.conv3 = SpatioTemporalResLayer(w, 2 * w, 3, layer_sizes[1], True, conv_type)
        self.conv4 = SpatioTemporalResLayer(2 * w, 4 * w, 3, layer_sizes[2], True, conv_type)
        self.conv5 = SpatioTemporalResLayer(4 * w, 8 * w, 3, layer_sizes[3], True, conv_type)
        self._build_head()

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The conv5 feature map: ``(B, C, T, H, W) -> (B, 8w, T/8, H/16, W/16)``."""
        x = self.relu1(self.bn1(self.conv1(x)))
        x = self.conv2(x)
        x = self.conv3(x)
        x = self.conv4(x)
        return self.conv5(x)

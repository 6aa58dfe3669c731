"""Second views of a clip: residual frames.

The residual view is the frame difference of the RGB clip, rescaled to ``[0, 1]``.
It removes whatever is static (background, colour of a still object) and keeps
what moves, which is why IIC contrasts it with the RGB view.
"""

from __future__ import annotations

import torch

__all__ = ["residual", "TIME_DIM"]

#: Time axis of a clip laid out ``(C, T, H, W)``, counted from the end.
TIME_DIM = -3


def residual(clips: torch.Tensor) -> torch.Tensor:
    """Residual frames, exactly as the original pretraining and retrieval code.

    ``((x - roll(x, 1, time)) + 1) / 2``: frame ``t`` minus frame ``t - 1``, with frame 0
    differenced against the LAST frame (wrap-around, as ``torch.roll`` does), mapped from
    ``[-1, 1]`` to ``[0, 1]``. The original fine-tuning script fed the unscaled difference
    instead; this project uses this one formula everywhere.

    Args:
        clips: ``(..., C, T, H, W)`` float tensor in ``[0, 1]``: a clip ``(C, T, H, W)``, a
            batch ``(B, C, T, H, W)`` or a stack of clips ``(B, N, C, T, H, W)``.

    Returns:
        Tensor of the same shape and dtype, values in ``[0, 1]``; 0.5 where nothing changed.

    Example:
        >>> x = torch.zeros(3, 4, 2, 2); x[:, 2] = 1.0
        >>> residual(x)[0, :, 0, 0].tolist()
        [0.5, 0.5, 1.0, 0.0]
    """
    if clips.dim() < 4:
        raise ValueError(
            f"residual() expects (..., C, T, H, W) with at least 4 dimensions, got shape "
            f"{tuple(clips.shape)}"
        )
    if not clips.is_floating_point():
        raise TypeError(
            f"residual() expects a float tensor in [0, 1], got {clips.dtype}; "
            "convert uint8 frames with x.float() / 255 first"
        )
    shifted = torch.roll(clips, shifts=1, dims=TIME_DIM)
    return ((clips - shifted) + 1) / 2

"""Intra-negative clips: the same video with its temporal structure broken.

IIC's intra-negatives share the anchor's appearance but not its motion, so a network that
only looks at appearance cannot tell them from the positive. Two generators from the paper:

- ``"repeat"``: one frame of the clip, chosen uniformly, repeated over all ``T`` frames
  (a still video: appearance kept, motion gone).
- ``"shuffle"``: ``T`` cut into 4 equal chunks and two distinct chunks swapped (one of the
  6 transpositions, uniformly; never the identity), so local motion survives inside each
  chunk but the order of events is wrong.

Everything works on a whole batch at once, on any device, without a Python loop over
frames. Randomness comes from torch (pass a ``generator`` to make it reproducible).
"""

from __future__ import annotations

import itertools

import torch

__all__ = [
    "INTRA_NEGATIVE_KINDS",
    "SHUFFLE_CHUNKS",
    "SHUFFLE_SWAPS",
    "intra_negative",
    "intra_negative_with_info",
    "repeat_frame",
    "shuffle_chunks",
    "repeat_frame_index",
    "shuffle_chunk_order",
]

INTRA_NEGATIVE_KINDS = ("repeat", "shuffle")
SHUFFLE_CHUNKS = 4
#: The 6 transpositions ``(i, j)``, ``i < j``, of the 4 chunks; ``"shuffle"`` picks one uniformly.
SHUFFLE_SWAPS: tuple[tuple[int, int], ...] = tuple(itertools.combinations(range(SHUFFLE_CHUNKS), 2))


def _check_batch(clips: torch.Tensor) -> None:
    if clips.dim() != 5:
        raise ValueError(
            f"intra_negative() expects a batch (B, C, T, H, W), got shape {tuple(clips.shape)}; "
            "for a single clip use clip.unsqueeze(0)"
        )


def _check_shuffle_length(num_frames: int) -> None:
    if num_frames % SHUFFLE_CHUNKS != 0:
        raise ValueError(
            f"intra_negative(kind='shuffle') needs T divisible by {SHUFFLE_CHUNKS} to cut "
            f"the clip into equal chunks, got T={num_frames}; use a clip length such as 16 "
            "or kind='repeat'"
        )


def _randint(high: int, size: int, generator: torch.Generator | None, device: torch.device):
    """Uniform ints in ``[0, high)`` drawn on the generator's device, moved to ``device``."""
    draw_device = generator.device if generator is not None else device
    values = torch.randint(high, (size,), generator=generator, device=draw_device)
    return values.to(device)


def _gather_frames(clips: torch.Tensor, frame_index: torch.Tensor) -> torch.Tensor:
    """Pick frames per sample: ``out[b, :, t] = clips[b, :, frame_index[b, t]]``.

    Args:
        clips: ``(B, C, T, H, W)``.
        frame_index: ``(B, T)`` int64 on the clips' device.
    """
    b, c, t, h, w = clips.shape
    index = frame_index.view(b, 1, t, 1, 1).expand(b, c, t, h, w)
    return torch.gather(clips, 2, index)


def repeat_frame_index(
    batch: int, num_frames: int, generator: torch.Generator | None, device: torch.device
) -> torch.Tensor:
    """The frame each sample repeats: ``(B,)`` uniform over ``0..T-1``."""
    return _randint(num_frames, batch, generator, device)


def shuffle_chunk_order(
    batch: int, generator: torch.Generator | None, device: torch.device
) -> torch.Tensor:
    """Chunk order per sample, ``(B, 4)``: output chunk ``i`` is input chunk ``order[b, i]``.

    Each row is one of the 6 transpositions of ``[0, 1, 2, 3]``, uniformly.
    """
    swaps = torch.tensor(SHUFFLE_SWAPS, device=device)  # (6, 2)
    pick = _randint(len(SHUFFLE_SWAPS), batch, generator, device)
    order = torch.arange(SHUFFLE_CHUNKS, device=device).repeat(batch, 1)  # (B, 4)
    first, second = swaps[pick, 0], swaps[pick, 1]
    rows = torch.arange(batch, device=device)
    order[rows, first] = second
    order[rows, second] = first
    return order


def repeat_frame(clips: torch.Tensor, frame: torch.Tensor) -> torch.Tensor:
    """Each sample's frame ``frame[b]`` tiled over time.

    Args:
        clips: ``(B, C, T, H, W)``.
        frame: ``(B,)`` int frame indices in ``0..T-1``.

    Returns:
        ``(B, C, T, H, W)`` static clips.
    """
    _check_batch(clips)
    b, _, t, _, _ = clips.shape
    frame = torch.as_tensor(frame, device=clips.device).long().view(b, 1)
    return _gather_frames(clips, frame.expand(b, t))


def shuffle_chunks(clips: torch.Tensor, order: torch.Tensor) -> torch.Tensor:
    """Reorder 4 equal temporal chunks: output chunk ``i`` is input chunk ``order[b, i]``.

    Args:
        clips: ``(B, C, T, H, W)`` with ``T`` divisible by 4.
        order: ``(B, 4)`` permutations of ``0..3``.

    Returns:
        ``(B, C, T, H, W)``.
    """
    _check_batch(clips)
    b, _, t, _, _ = clips.shape
    _check_shuffle_length(t)
    order = torch.as_tensor(order, device=clips.device).long().view(b, SHUFFLE_CHUNKS)
    chunk = t // SHUFFLE_CHUNKS
    frames = torch.arange(t, device=clips.device)
    frame_index = order[:, frames // chunk] * chunk + frames % chunk  # (B, T)
    return _gather_frames(clips, frame_index)


def intra_negative_with_info(
    clips: torch.Tensor, kind: str, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Like :func:`intra_negative`, also returning what was drawn.

    Returns:
        ``(negatives, info)``: ``negatives`` ``(B, C, T, H, W)``; ``info`` is the repeated
        frame index ``(B,)`` for ``"repeat"`` and the chunk order ``(B, 4)`` for ``"shuffle"``.
    """
    _check_batch(clips)
    b, _, t, _, _ = clips.shape
    if kind == "repeat":
        frame = repeat_frame_index(b, t, generator, clips.device)
        return repeat_frame(clips, frame), frame
    if kind == "shuffle":
        _check_shuffle_length(t)
        order = shuffle_chunk_order(b, generator, clips.device)
        return shuffle_chunks(clips, order), order
    raise ValueError(f"unknown intra-negative kind {kind!r}; choose one of {INTRA_NEGATIVE_KINDS}")


def intra_negative(
    clips: torch.Tensor, kind: str, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Build intra-negative clips for a batch.

    Args:
        clips: ``(B, C, T, H, W)`` RGB batch (the augmented view 1, as in the original).
        kind: ``"repeat"`` or ``"shuffle"`` (see the module docstring).
        generator: optional ``torch.Generator`` for reproducible draws; it may live on another
            device than ``clips`` (draws are moved).

    Returns:
        ``(B, C, T, H, W)``, same dtype and device; a new tensor (the input is not modified).

    Raises:
        ValueError: wrong rank, unknown ``kind``, or ``"shuffle"`` with ``T % 4 != 0``.

    Example:
        >>> x = torch.rand(2, 3, 16, 8, 8)
        >>> intra_negative(x, "repeat").shape
        torch.Size([2, 3, 16, 8, 8])
    """
    return intra_negative_with_info(clips, kind, generator)[0]

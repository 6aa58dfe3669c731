"""Check for notebook 05's exercise: video-level accuracy from per-clip logits.

The reference is :func:`iic_helpers.finetune.video_accuracy` (logits averaged over each
video's clips, every video counted once) on held-out random logits; a wrong answer is
compared with typical mistakes to name the likely one.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..finetune import video_accuracy
from ._feedback import as_float_tensor, call, diagnose, report, same

__all__ = ["check_video_accuracy"]

AccuracyFn = Callable[[torch.Tensor, torch.Tensor], float]


def _inputs(seed: int, videos: int = 37, clips: int = 5, classes: int = 4):
    """Per-clip logits ``(N, clips, C)`` whose clips disagree often, and labels ``(N,)``."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, classes, (videos,), generator=g)
    logits = 1.5 * torch.randn(videos, clips, classes, generator=g)
    logits[torch.arange(videos), :, labels] += 0.8
    return logits, labels


def _mistakes(logits: torch.Tensor, labels: torch.Tensor) -> list[tuple[float, str]]:
    clip_pred = logits.argmax(2)  # (N, clips)
    votes = torch.nn.functional.one_hot(clip_pred, logits.shape[2]).sum(1)  # (N, C)
    batches = [
        (logits[i : i + 16].mean(1).argmax(1) == labels[i : i + 16]).float().mean()
        for i in range(0, len(labels), 16)
    ]
    right = video_accuracy(logits, labels)
    return [
        (
            (clip_pred == labels[:, None]).float().mean().item(),
            "this is clip accuracy (every clip counted); average each video's logits over "
            "its clips first, then take the argmax",
        ),
        (
            (votes.argmax(1) == labels).float().mean().item(),
            "a majority vote of the clips' predictions; the package averages the logits",
        ),
        (
            (logits[:, 0].argmax(1) == labels).float().mean().item(),
            "only the first clip of each video is used; average over all clips",
        ),
        (
            torch.stack(batches).mean().item(),
            "batches of 16 videos weighted equally (the original script's bug: the last, "
            "partial batch counts too much); count every video once",
        ),
        (100 * right, "a percentage; return a fraction in [0, 1]"),
        (1 - right, "this is the error rate; return the accuracy"),
    ]


def check_video_accuracy(fn: AccuracyFn) -> bool:
    """Check ``fn(logits (N, clips, C), labels (N,)) -> fraction of videos right``.

    Prints ✓ or the likely mistake; returns whether the answer is right.
    """
    name = "check_video_accuracy"
    for seed in (3, 4):
        logits, labels = _inputs(seed)
        want = video_accuracy(logits, labels)
        got, error = call(fn, logits.clone(), labels.clone())
        if error:
            return report(name, error)
        answer = as_float_tensor(got)
        if answer is None or answer.numel() != 1:
            shape = None if answer is None else tuple(answer.shape)
            return report(name, f"return one number (the accuracy), got shape {shape}")
        answer = answer.reshape(())
        if same(answer, torch.tensor(want, dtype=torch.float64), atol=1e-6):
            continue
        mistakes = [(torch.tensor(v, dtype=torch.float64), m) for v, m in _mistakes(logits, labels)]
        problem = diagnose(answer, mistakes)
        return report(name, problem or f"got {answer.item():.4f}, expected {want:.4f}")
    return report(name, None)

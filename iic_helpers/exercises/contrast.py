"""Checks for notebook 02's exercises: the 2k+2 scores and the memory-bank update.

The reference is the package (:class:`~iic_helpers.losses.MemoryBankNCE` in the tiny
preset's setting), run on held-out random inputs; a wrong answer is compared with typical
mistakes to name the likely one.

Example:
    >>> from iic_helpers.exercises.contrast import check_scores
    >>> check_scores(my_scores)  # doctest: +SKIP
    ✓ check_scores: correct
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.nn import functional as F

from ..losses import MemoryBankNCE, momentum_update
from ._feedback import as_float_tensor, call, diagnose, report, same

__all__ = ["check_scores", "check_bank_update", "reference_scores", "reference_bank_update"]

ScoresFn = Callable[..., torch.Tensor]
UpdateFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, float], torch.Tensor]


def _score_inputs(seed: int = 11, batch: int = 5, dim: int = 12, n: int = 40, k: int = 7):
    """Held-out unit features, banks and sampled rows (column 0 = own row)."""
    g = torch.Generator().manual_seed(seed)
    z = F.normalize(torch.randn(batch, dim, generator=g), dim=1)
    z_neg = F.normalize(torch.randn(batch, dim, generator=g), dim=1)
    bank = F.normalize(torch.randn(n, dim, generator=g), dim=1)
    bank_neg = F.normalize(torch.randn(n, dim, generator=g), dim=1)
    index = torch.randperm(n, generator=g)[:batch]
    idx = torch.randint(0, n, (batch, k + 1), generator=g)
    idx[:, 0] = index
    return z, z_neg, bank, bank_neg, idx


def reference_scores(
    z: torch.Tensor,
    z_neg: torch.Tensor,
    bank: torch.Tensor,
    bank_neg: torch.Tensor,
    idx: torch.Tensor,
    tau: float,
) -> torch.Tensor:
    """The package's scores for view-1 features ``z`` ``(B, D)``: ``(B, 2k+2)`` logits.

    ``bank`` ``(N, D)`` is the other view's memory, ``bank_neg`` ``(N, D)`` the
    intra-negative memory, ``idx`` ``(B, k+1)`` the rows (column 0 = own row), ``z_neg``
    ``(B, D)`` the current intra-negative features (column ``k+1``, with gradient).
    """
    n, dim = bank.shape
    with torch.random.fork_rng(devices=[]):  # the bank's random init leaves your RNG alone
        contrast = MemoryBankNCE(
            dim, n, k=idx.shape[1] - 1, temperature=tau, momentum=0.0, negative_gradient=True
        )
    contrast.memory_v2.copy_(bank)
    contrast.memory_neg.copy_(bank_neg)
    out_v1, _ = contrast(z, z, idx[:, 0], z_neg, sample_idx=idx)
    return out_v1[:, :, 0]


def check_scores(fn: ScoresFn) -> bool:
    """Check ``fn(z, z_neg, bank, bank_neg, idx, tau) -> (B, 2k+2)`` (see :func:`reference_scores`).

    Prints ✓ or the likely mistake; returns whether the answer is right.
    """
    name = "check_scores"
    tau = 0.25
    z, z_neg, bank, bank_neg, idx = _score_inputs()
    k = idx.shape[1] - 1
    want = reference_scores(z, z_neg, bank, bank_neg, idx, tau).detach()
    z_in, neg_in = z.clone().requires_grad_(True), z_neg.clone().requires_grad_(True)
    got, error = call(fn, z_in, neg_in, bank.clone(), bank_neg.clone(), idx.clone(), tau)
    if error:
        return report(name, error)
    answer = as_float_tensor(got)
    if answer is None:
        return report(name, f"return a tensor of scores, got {type(got).__name__}")
    if answer.dim() == 3 and answer.shape[2] == 1:
        answer = answer[:, :, 0]
    if answer.shape != want.shape:
        hint = (
            " (k+1 columns: the intra-negative bank is missing, that is CMC)"
            if tuple(answer.shape) == (want.shape[0], k + 1)
            else ""
        )
        return report(
            name, f"shape {tuple(answer.shape)}, expected (B, 2k+2) = {tuple(want.shape)}{hint}"
        )
    stored = want.clone()
    stored[:, k + 1] = (bank_neg[idx[:, 0]] * z).sum(1) / tau
    mistakes = [
        (want * tau, "the scores are not divided by the temperature tau"),
        (want * tau * tau, "the scores are multiplied by tau; divide by it"),
        (want * tau / 0.2, "a fixed temperature 0.2 is used; use the argument tau"),
        (want * tau / 0.07, "a fixed temperature 0.07 is used; use the argument tau"),
        (
            torch.cat([want[:, k + 1 :], want[:, : k + 1]], 1),
            "the intra-negative columns come first; the positive must be column 0",
        ),
        (torch.cat([want[:, 1:], want[:, :1]], 1), "the positive is last; it must be column 0"),
        (
            stored,
            "column k+1 uses the stored row bank_neg[i]; the tiny preset scores the "
            "current intra-negative z_neg there (with gradient)",
        ),
        (-want, "the scores have the wrong sign (similarities, not distances)"),
    ]
    if not same(answer, want):
        problem = diagnose(answer, mistakes)
        if problem is None and answer.std() == 0:
            problem = "every score is the same constant: compute dot products z . rows / tau"
        return report(
            name,
            problem
            or "values differ from the package's scores "
            "(column 0 = z . bank[idx[:, 0]] / tau, then the k drawn rows, "
            "then the intra-negative columns)",
        )
    if not isinstance(got, torch.Tensor) or not got.requires_grad:
        return report(name, "right values, but no gradient: keep the computation in torch")
    got.sum().backward()
    if neg_in.grad is None or not neg_in.grad.abs().sum() > 0:
        return report(
            name,
            "right values, but z_neg gets no gradient (detached?): column "
            "k+1 must pass gradient to the current intra-negative",
        )
    return report(name, None)


def reference_bank_update(
    memory: torch.Tensor, index: torch.Tensor, feat: torch.Tensor, momentum: float
) -> torch.Tensor:
    """The package's update: ``memory[index] <- normalize(m * memory[index] + (1-m) * feat)``.

    ``memory`` ``(N, D)``, ``index`` ``(B,)`` distinct rows, ``feat`` ``(B, D)``; returns a
    new ``(N, D)`` tensor (the input is left unchanged).
    """
    out = memory.clone()
    momentum_update(out, index, feat, momentum)
    return out


def check_bank_update(fn: UpdateFn) -> bool:
    """Check ``fn(memory, index, feat, momentum) -> updated memory (N, D)``.

    Tried with momentum 0.3 and 0 (the tiny preset). Prints ✓ or the likely mistake.
    """
    name = "check_bank_update"
    g = torch.Generator().manual_seed(23)
    n, dim, batch = 30, 10, 6
    memory = F.normalize(torch.randn(n, dim, generator=g), dim=1)
    index = torch.randperm(n, generator=g)[:batch]
    feat = F.normalize(torch.randn(batch, dim, generator=g), dim=1) * 1.7
    for momentum in (0.3, 0.0):
        want = reference_bank_update(memory, index, feat, momentum)
        got, error = call(fn, memory.clone(), index.clone(), feat.clone(), momentum)
        if error:
            return report(name, error)
        if got is None:
            return report(name, "the function returned None: return the updated memory")
        answer = as_float_tensor(got)
        if answer is None or answer.shape != want.shape:
            shape = None if answer is None else tuple(answer.shape)
            return report(name, f"return the whole memory {tuple(want.shape)}, got {shape}")
        if same(answer, want):
            continue
        mixed = momentum * memory[index] + (1 - momentum) * feat
        swapped = memory.clone()
        swapped[index] = F.normalize(momentum * feat + (1 - momentum) * memory[index], dim=1)
        unnormalized = memory.clone()
        unnormalized[index] = mixed
        first_rows = memory.clone()
        first_rows[:batch] = F.normalize(momentum * memory[:batch] + (1 - momentum) * feat, dim=1)
        no_momentum = memory.clone()
        no_momentum[index] = F.normalize(feat, dim=1)
        mistakes = [
            (unnormalized, "the updated rows are not L2-normalized"),
            (swapped, "momentum weights the wrong term: m * old row + (1 - m) * new feature"),
            (first_rows, "rows 0..B-1 were updated; update the rows named by index"),
            (no_momentum, "the momentum is ignored (only right when momentum = 0)"),
            (memory, "the memory did not change"),
        ]
        problem = diagnose(answer, mistakes)
        if problem is None and answer.std() == 0:
            problem = "every entry is the same constant: update the rows from the features"
        if problem is None:
            others = torch.ones(n, dtype=torch.bool)
            others[index] = False
            if not same(answer[others], memory[others]):
                problem = "rows outside index changed; only the batch's rows are updated"
        return report(
            name, (problem or "values differ from the package's update") + f" (momentum {momentum})"
        )
    return report(name, None)

"""Memory-bank contrast (CMC-style) with IIC's intra-negative bank, and its criteria.

Notation (the paper's): for a training video ``i`` the anchor is its RGB clip (view 1,
feature ``v1``), the positive its second view (residual frames or flow, feature ``v2``),
inter-negatives are other videos and intra-negatives are clips of the same video with
broken temporal structure. Instead of encoding negatives in every step, a **memory bank**
keeps one slowly updated, L2-normalized feature per training video and view.

For a batch with memory-bank rows ``index`` and ``k`` sampled rows per sample
(column 0 = the sample's own row), with ``tau`` the temperature::

    out_v1[b] = [ memory_v2[idx_b] ; memory_neg[idx_b] ] . v1_b / tau      # (2k+2,)
    out_v2[b] = [ memory_v1[idx_b] ; memory_neg[idx_b] ] . v2_b / tau

so column 0 is the positive (the other view of the same video), columns ``1..k`` are
inter-negatives, column ``k+1`` is the sample's own stored intra-negative and the rest are
other videos' intra-negatives. The loss is a softmax cross-entropy with target 0
(:class:`NCESoftmaxLoss`) or, with ``softmax=False``, the NCE loss of Wu et al.
(:class:`NCECriterion`) on ``exp(s / tau) / Z``.

The numbers equal the original ``NCEAverage`` / ``NCEAverage_ori`` and its criteria
(checked against ``tests/fixtures/nce.npz``): features are used as they come (no L2
normalization), the current intra-negative features only update ``memory_neg`` (no
gradient), negatives are drawn with replacement from all rows. Options that depart from
the original are off by default: ``normalize`` (L2-normalize features before scoring) and
``negative_gradient`` (score the current intra-negative, with gradient, in place of the
stored one in column ``k+1``).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["momentum_update", "MemoryBankNCE", "NCESoftmaxLoss", "NCECriterion", "NCE_EPS"]

#: Constant of the original ``NCECriterion``.
NCE_EPS = 1e-7


class MemoryBankNCE(nn.Module):
    """Scores two views against a memory bank of the other view (and of intra-negatives).

    Args:
        feat_dim: feature size ``D`` (512 for the paper's backbones).
        n_data: number of training videos (rows of each memory bank).
        k: negatives drawn per sample (with replacement, uniform over all rows).
        temperature: ``tau``; stored in float32 as in the original.
        momentum: memory update ``m``: ``row <- normalize(m * row + (1 - m) * feature)``.
        softmax: ``True`` returns ``s / tau`` for :class:`NCESoftmaxLoss`; ``False`` returns
            ``exp(s / tau) / Z`` for :class:`NCECriterion`, ``Z`` fixed at the first call
            from that batch (``mean * n_data``), as the original.
        intra_negative: keep the ``memory_neg`` bank (IIC, ``2k+2`` columns); ``False`` is
            the CMC baseline (``k+1`` columns, no ``memory_neg`` buffer).
        normalize: L2-normalize the features before scoring and updating (not in the original).
        negative_gradient: column ``k+1`` uses the current batch's intra-negative feature
            (so it receives gradient) instead of its stored copy (not in the original).

    Buffers: ``memory_v1``, ``memory_v2`` (and ``memory_neg``), each ``(n_data, D)`` uniform
    in ``[-s, s]`` with ``s = 1 / sqrt(D / 3)`` (drawn in that order from torch's RNG), and
    ``params`` = ``[k, tau, Z_v1, Z_v2, momentum]`` (``Z`` is ``-1`` until set).

    Example:
        >>> contrast = MemoryBankNCE(8, 50, k=6)
        >>> v1, v2, neg = torch.randn(4, 8), torch.randn(4, 8), torch.randn(4, 8)
        >>> out_v1, out_v2 = contrast(v1, v2, torch.tensor([3, 17, 29, 41]), neg)
        >>> out_v1.shape  # (B, 2k + 2, 1)
        torch.Size([4, 14, 1])
    """

    memory_v1: torch.Tensor
    memory_v2: torch.Tensor
    params: torch.Tensor

    def __init__(
        self,
        feat_dim: int,
        n_data: int,
        *,
        k: int = 1024,
        temperature: float = 0.07,
        momentum: float = 0.5,
        softmax: bool = True,
        intra_negative: bool = True,
        normalize: bool = False,
        negative_gradient: bool = False,
    ) -> None:
        super().__init__()
        if feat_dim < 1 or n_data < 1 or k < 1:
            raise ValueError(
                f"feat_dim, n_data and k must be positive, got {feat_dim}, {n_data}, {k}"
            )
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}")
        if negative_gradient and not intra_negative:
            raise ValueError("negative_gradient=True needs intra_negative=True")
        self.feat_dim = feat_dim
        self.n_data = n_data
        self.k = k
        self.softmax = softmax
        self.intra_negative = intra_negative
        self.normalize = normalize
        self.negative_gradient = negative_gradient
        self.register_buffer("params", torch.tensor([k, temperature, -1.0, -1.0, momentum]))
        stdv = 1.0 / math.sqrt(feat_dim / 3)
        self.register_buffer("memory_v1", _uniform_memory(n_data, feat_dim, stdv))
        self.register_buffer("memory_v2", _uniform_memory(n_data, feat_dim, stdv))
        if intra_negative:
            self.register_buffer("memory_neg", _uniform_memory(n_data, feat_dim, stdv))

    @property
    def temperature(self) -> float:
        """``tau`` as the original uses it (the float32 value, e.g. 0.07000000029802322)."""
        return self.params[1].item()

    @property
    def momentum(self) -> float:
        return self.params[4].item()

    @property
    def num_columns(self) -> int:
        """Scores per sample: ``2k+2`` with the intra-negative bank, else ``k+1``."""
        return 2 * (self.k + 1) if self.intra_negative else self.k + 1

    def sample_indices(self, index: torch.Tensor) -> torch.Tensor:
        """Rows to score, ``(B, k+1)``: column 0 is ``index``, the rest uniform with replacement.

        Uses torch's global RNG on the device of the memory buffers.
        """
        device = self.memory_v1.device
        idx = torch.randint(0, self.n_data, (index.numel(), self.k + 1), device=device)
        idx[:, 0] = index.to(device).view(-1)
        return idx

    def forward(
        self,
        feat_v1: torch.Tensor,
        feat_v2: torch.Tensor,
        index: torch.Tensor,
        feat_neg: torch.Tensor | None = None,
        sample_idx: torch.Tensor | None = None,
        *,
        update: bool = True,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Score both views and update the memory.

        Args:
            feat_v1: ``(B, D)`` view-1 (RGB) features.
            feat_v2: ``(B, D)`` view-2 features.
            index: ``(B,)`` int64 memory rows of the samples (their dataset indices).
            feat_neg: ``(B, D)`` intra-negative features; required with ``intra_negative``.
            sample_idx: optional ``(B, k+1)`` rows to score, overriding the random draw
                (column 0 should equal ``index``).
            update: update the memory with this batch (``False``: the caller calls
                :meth:`update_memory`, e.g. with the features of every rank).

        Returns:
            ``(out_v1, out_v2)``, each ``(B, C, 1)`` with ``C = 2k+2`` (IIC) or ``k+1``
            (CMC), column 0 the positive: logits ``s / tau`` in softmax mode, else
            ``exp(s / tau) / Z``.
        """
        batch = feat_v1.shape[0]
        if (
            feat_v1.shape != feat_v2.shape
            or feat_v1.dim() != 2
            or feat_v1.shape[1] != self.feat_dim
        ):
            raise ValueError(
                f"feat_v1 and feat_v2 must both be (B, {self.feat_dim}), got "
                f"{tuple(feat_v1.shape)} and {tuple(feat_v2.shape)}"
            )
        index = torch.as_tensor(index, device=self.memory_v1.device).long().view(-1)
        if index.numel() != batch:
            raise ValueError(f"index must have B={batch} entries, got {index.numel()}")
        if self.intra_negative:
            if feat_neg is None:
                raise ValueError(
                    "this MemoryBankNCE keeps an intra-negative bank: pass feat_neg (B, D), "
                    "or build it with intra_negative=False for the CMC baseline"
                )
            if feat_neg.shape != feat_v1.shape:
                raise ValueError(
                    f"feat_neg must be {tuple(feat_v1.shape)}, got {tuple(feat_neg.shape)}"
                )
        if sample_idx is None:
            idx = self.sample_indices(index)
        else:
            idx = torch.as_tensor(sample_idx, device=self.memory_v1.device).long()
            if idx.shape != (batch, self.k + 1):
                raise ValueError(
                    f"sample_idx must be (B, k+1) = {(batch, self.k + 1)}, got {tuple(idx.shape)}"
                )

        if self.normalize:
            feat_v1 = F.normalize(feat_v1, dim=1)
            feat_v2 = F.normalize(feat_v2, dim=1)
            if feat_neg is not None:
                feat_neg = F.normalize(feat_neg, dim=1)

        tau = self.temperature
        scores_v1 = _bank_scores(self.memory_v2, idx, feat_v1)  # (B, k+1, 1)
        scores_v2 = _bank_scores(self.memory_v1, idx, feat_v2)
        if self.intra_negative:
            neg_v1 = _bank_scores(self.memory_neg, idx, feat_v1)
            neg_v2 = _bank_scores(self.memory_neg, idx, feat_v2)
            if self.negative_gradient:
                own_v1 = (feat_neg * feat_v1).sum(1).view(batch, 1, 1)
                own_v2 = (feat_neg * feat_v2).sum(1).view(batch, 1, 1)
                neg_v1 = torch.cat([own_v1, neg_v1[:, 1:]], dim=1)
                neg_v2 = torch.cat([own_v2, neg_v2[:, 1:]], dim=1)
            scores_v1 = torch.cat([scores_v1, neg_v1], dim=1)
            scores_v2 = torch.cat([scores_v2, neg_v2], dim=1)

        if self.softmax:
            out_v1 = torch.div(scores_v1, tau).contiguous()
            out_v2 = torch.div(scores_v2, tau).contiguous()
        else:
            out_v1 = torch.exp(torch.div(scores_v1, tau))
            out_v2 = torch.exp(torch.div(scores_v2, tau))
            z_v1 = self._normalization_constant(2, out_v1)
            z_v2 = self._normalization_constant(3, out_v2)
            out_v1 = torch.div(out_v1, z_v1).contiguous()
            out_v2 = torch.div(out_v2, z_v2).contiguous()

        if update:
            self._update_memory(index, feat_v1, feat_v2, feat_neg)
        return out_v1, out_v2

    @torch.no_grad()
    def update_memory(
        self,
        index: torch.Tensor,
        feat_v1: torch.Tensor,
        feat_v2: torch.Tensor,
        feat_neg: torch.Tensor | None = None,
    ) -> None:
        """The memory update :meth:`forward` does, for features ``(B, D)`` and rows ``(B,)``.

        Used by data-parallel training with the batch gathered from every rank.
        """
        index = torch.as_tensor(index, device=self.memory_v1.device).long().view(-1)
        if self.normalize:
            feat_v1, feat_v2 = F.normalize(feat_v1, dim=1), F.normalize(feat_v2, dim=1)
            if feat_neg is not None:
                feat_neg = F.normalize(feat_neg, dim=1)
        self._update_memory(index, feat_v1, feat_v2, feat_neg)

    def _normalization_constant(self, slot: int, out: torch.Tensor) -> float:
        """``Z`` for one view: set from the first batch (``mean(out) * n_data``), then fixed.

        The value goes through the float32 ``params`` buffer, as in the original (which
        also printed it). Unlike the original, the buffer does not join the autograd graph.
        """
        if self.params[slot].item() < 0:
            with torch.no_grad():
                self.params[slot] = out.mean() * self.n_data
        return self.params[slot].item()

    @torch.no_grad()
    def _update_memory(
        self,
        index: torch.Tensor,
        feat_v1: torch.Tensor,
        feat_v2: torch.Tensor,
        feat_neg: torch.Tensor | None,
    ) -> None:
        momentum = self.momentum
        momentum_update(self.memory_v1, index, feat_v1, momentum)
        momentum_update(self.memory_v2, index, feat_v2, momentum)
        if self.intra_negative and feat_neg is not None:
            momentum_update(self.memory_neg, index, feat_neg, momentum)

    def reset_normalization(self) -> None:
        """Forget ``Z`` (NCE mode) so that the next call sets it again."""
        self.params[2] = -1.0
        self.params[3] = -1.0

    def extra_repr(self) -> str:
        return (
            f"feat_dim={self.feat_dim}, n_data={self.n_data}, k={self.k}, "
            f"temperature={self.temperature:.4g}, momentum={self.momentum:.4g}, "
            f"softmax={self.softmax}, intra_negative={self.intra_negative}, "
            f"normalize={self.normalize}, negative_gradient={self.negative_gradient}"
        )


def _uniform_memory(rows: int, dim: int, stdv: float) -> torch.Tensor:
    """``(rows, dim)`` uniform in ``[-stdv, stdv]``, drawn as the original does."""
    return torch.rand(rows, dim).mul_(2 * stdv).add_(-stdv)


def _bank_scores(memory: torch.Tensor, idx: torch.Tensor, feat: torch.Tensor) -> torch.Tensor:
    """Dot products of ``feat`` with memory rows: ``(B, k+1, 1)``.

    Args:
        memory: ``(N, D)`` bank (detached).
        idx: ``(B, k+1)`` rows.
        feat: ``(B, D)`` features.
    """
    batch, columns = idx.shape
    weight = torch.index_select(memory, 0, idx.view(-1)).detach()
    weight = weight.view(batch, columns, -1).to(dtype=feat.dtype, device=feat.device)
    return torch.bmm(weight, feat.view(batch, -1, 1))


def momentum_update(
    memory: torch.Tensor, index: torch.Tensor, feat: torch.Tensor, momentum: float
) -> None:
    """``memory[index] <- normalize(m * memory[index] + (1 - m) * feat)`` in place."""
    rows = torch.index_select(memory, 0, index)
    rows.mul_(momentum)
    rows.add_(torch.mul(feat.detach().to(memory.dtype), 1 - momentum))
    norm = rows.pow(2).sum(1, keepdim=True).pow(0.5)
    memory.index_copy_(0, index, rows.div(norm))


def _scores_2d(x: torch.Tensor) -> torch.Tensor:
    """``(B, C, 1)`` or ``(B, C)`` scores as ``(B, C)``; batch size 1 stays 2-D."""
    if x.dim() == 3 and x.shape[2] == 1:
        return x[:, :, 0]
    if x.dim() == 2:
        return x
    raise ValueError(f"expected scores shaped (B, C, 1) or (B, C), got {tuple(x.shape)}")


class NCESoftmaxLoss(nn.Module):
    """Cross-entropy with the positive in column 0, averaged over the batch.

    Input ``(B, C, 1)`` or ``(B, C)`` logits; output a scalar ``()``. When every score in a
    row is equal the loss is ``log(C)``: ``log(2k+2)`` for the IIC bank. Unlike the
    original, batch size 1 works and the target lives on the input's device.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = _scores_2d(x)
        target = torch.zeros(logits.shape[0], dtype=torch.long, device=logits.device)
        return F.cross_entropy(logits, target)


class NCECriterion(nn.Module):
    """The NCE loss of the original (``lib/NCECriterion.py``), for ``softmax=False``.

    With ``m = C - 1`` noise samples, noise probability ``Pn = 1 / n_data`` and
    ``eps = 1e-7``::

        loss = -[ sum_b log(x_b0 / (x_b0 + m Pn + eps))
                  + sum_b sum_{j>=1} log(m Pn / (x_bj + m Pn + eps)) ] / B

    Input ``(B, C, 1)`` or ``(B, C)`` (``exp(s / tau) / Z``); output shape ``(1,)`` as the
    original.
    """

    def __init__(self, n_data: int) -> None:
        super().__init__()
        if n_data < 1:
            raise ValueError(f"n_data must be positive, got {n_data}")
        self.n_data = n_data

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        probs = _scores_2d(x)
        batch = probs.shape[0]
        m = probs.shape[1] - 1
        noise = m * (1.0 / float(self.n_data))
        p_pos = probs[:, 0]
        log_d1 = torch.div(p_pos, p_pos.add(noise + NCE_EPS)).log()
        p_neg = probs[:, 1:]
        log_d0 = torch.div(torch.full_like(p_neg, noise), p_neg.add(noise + NCE_EPS)).log()
        return -(log_d1.sum(0, keepdim=True) + log_d0.reshape(-1, 1).sum(0)) / batch

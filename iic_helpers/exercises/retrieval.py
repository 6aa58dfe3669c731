"""Check for notebook 03's exercise: top-k retrieval accuracy written by hand.

The reference is :func:`iic_helpers.retrieval.topk_retrieval` on held-out random features
(no exact ties); a wrong answer is compared with typical mistakes to name the likely one.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.nn import functional as F

from ..retrieval import topk_retrieval
from ._feedback import as_float_tensor, call, diagnose, report, same

__all__ = ["check_topk"]

TopkFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, int], float]


def _inputs(seed: int, n_query: int = 30, n_gallery: int = 50, dim: int = 6, classes: int = 4):
    """Features whose lengths vary a lot (so cosine and Euclidean neighbours differ)."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(classes, dim, generator=g)
    gl = torch.randint(0, classes, (n_gallery,), generator=g)
    ql = torch.randint(0, classes, (n_query,), generator=g)
    gallery = centres[gl] + 0.9 * torch.randn(n_gallery, dim, generator=g)
    gallery = gallery * torch.empty(n_gallery, 1).uniform_(0.2, 5.0, generator=g)
    query = centres[ql] + 0.9 * torch.randn(n_query, dim, generator=g)
    query = query * torch.empty(n_query, 1).uniform_(0.2, 5.0, generator=g)
    return query, ql, gallery, gl


def _variants(query, ql, gallery, gl, k: int) -> list[tuple[float, str]]:
    """Results of typical mistakes, with the message naming each."""
    cos = F.normalize(query, dim=1) @ F.normalize(gallery, dim=1).T  # (Q, G)
    euclid = torch.cdist(query, gallery)
    right = float(topk_retrieval(query, ql, gallery, gl, ks=(k,))[k])

    def any_hit(order: torch.Tensor) -> float:
        return (gl[order] == ql[:, None]).any(1).float().mean().item()

    nearest = cos.topk(k + 1, dim=1).indices
    return [
        (
            any_hit(euclid.topk(k, dim=1, largest=False).indices),
            "Euclidean distance on raw features; retrieval uses cosine (normalize the rows first)",
        ),
        (
            any_hit(cos.topk(k, dim=1, largest=False).indices),
            "these are the k *least* similar videos; take the largest cosine similarities",
        ),
        (
            any_hit((-euclid).topk(k, dim=1, largest=False).indices),
            "these are the k farthest videos; take the smallest distances",
        ),
        (
            (gl[cos.topk(k, dim=1).indices] == ql[:, None]).float().mean().item(),
            "this is the fraction of correct neighbours (precision at k); a query is a hit "
            "when ANY of its k neighbours has its class",
        ),
        (
            any_hit(nearest[:, 1:]),
            "the nearest neighbour is skipped: queries and gallery "
            "are different videos, nothing to leave out",
        ),
        (any_hit(nearest), "k+1 neighbours were used"),
        (100 * right, "a percentage; return a fraction in [0, 1]"),
    ]


def check_topk(fn: TopkFn) -> bool:
    """Check ``fn(query_feats (Q, D), query_labels (Q,), gallery_feats (G, D),
    gallery_labels (G,), k) -> fraction of queries with a hit at k``.

    Tried with k = 1 and 5 on held-out features. Prints ✓ or the likely mistake.
    """
    name = "check_topk"
    for seed, k in ((5, 1), (6, 5)):
        query, ql, gallery, gl = _inputs(seed)
        want = float(topk_retrieval(query, ql, gallery, gl, ks=(k,))[k])
        got, error = call(fn, query.clone(), ql.clone(), gallery.clone(), gl.clone(), k)
        if error:
            return report(name, error)
        answer = as_float_tensor(got)
        if answer is None or answer.numel() != 1:
            shape = None if answer is None else tuple(answer.shape)
            return report(name, f"return one number (the fraction of hits), got shape {shape}")
        answer = answer.reshape(())
        if same(answer, torch.tensor(want, dtype=torch.float64), atol=1e-6):
            continue
        mistakes = [
            (torch.tensor(v, dtype=torch.float64), m)
            for v, m in _variants(query, ql, gallery, gl, k)
        ]
        problem = diagnose(answer, mistakes)
        return report(
            name, (problem or f"got {answer.item():.4f}, expected {want:.4f}") + f" (k={k})"
        )
    return report(name, None)

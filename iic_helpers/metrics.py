"""The retrieval metric: top-k accuracy and nearest neighbours by cosine distance.

The protocol of the original ``retrieve_clips.py``: each test video (query) looks up its
nearest training videos (gallery) by cosine distance between clip-averaged features, and
scores a hit at ``k`` when any of its ``k`` nearest gallery videos has its label. Unlike
the original, no video is dropped (its loader used ``drop_last=True``), and the distance
matrix is computed in chunks of queries so that memory stays bounded for any gallery.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch

__all__ = [
    "DEFAULT_KS",
    "DEFAULT_MAX_ELEMENTS",
    "chance_top1",
    "chance_topk",
    "nearest_neighbours",
    "retrieval_hits",
    "topk_retrieval",
    "video_features",
    "video_labels",
]

DEFAULT_KS: tuple[int, ...] = (1, 5, 10, 20, 50)
#: Distance-matrix elements computed at once (chunk of queries x gallery): 64 MB in float32.
DEFAULT_MAX_ELEMENTS = 1 << 24

ArrayLike = np.ndarray | torch.Tensor


def _as_tensor(x: ArrayLike) -> torch.Tensor:
    t = x if isinstance(x, torch.Tensor) else torch.from_numpy(np.asarray(x))
    return t.detach().cpu()


def video_features(feats: ArrayLike) -> torch.Tensor:
    """Clip-averaged video features ``(N, D)`` from ``(N, clips, D)`` or ``(N, D)``.

    Float64 stays float64; other float dtypes compute in float32. Clips are averaged
    without normalization, as in the original.
    """
    t = _as_tensor(feats)
    if not t.is_floating_point():
        raise TypeError(f"features must be floating point, got {t.dtype}")
    if t.dtype != torch.float64:
        t = t.float()
    if t.dim() == 3:
        return t.mean(dim=1)
    if t.dim() == 2:
        return t
    raise ValueError(f"features must be (N, clips, D) or (N, D), got shape {tuple(t.shape)}")


def video_labels(labels: ArrayLike) -> torch.Tensor:
    """Video labels ``(N,)`` int64; clip-level labels ``(N, clips)`` use clip 0's label."""
    t = _as_tensor(labels)
    if t.dim() == 2:
        t = t[:, 0]
    if t.dim() != 1:
        raise ValueError(f"labels must be (N,) (or (N, clips)), got shape {tuple(t.shape)}")
    return t.long()


def _unit_rows(x: torch.Tensor) -> torch.Tensor:
    """Rows scaled to unit L2 norm; all-zero rows stay zero (distance 1 to everything)."""
    norm = x.norm(dim=1, keepdim=True)
    return x / torch.where(norm > 0, norm, torch.ones_like(norm))


def _neighbour_chunks(
    query: torch.Tensor, gallery: torch.Tensor, k: int, max_elements: int
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield ``(indices, distances)`` of the ``k`` nearest gallery rows, chunk by chunk.

    No normalized or transposed copy of the gallery is made: each chunk of unit-norm query
    rows is multiplied with the raw gallery (NumPy's matmul, faster than torch's on this
    CPU kind, see ``benchmarks/RESULTS.md``) and divided by the gallery norms.

    Args:
        query: ``(Nq, D)`` features. gallery: ``(Ng, D)`` features. ``k <= Ng``.

    Yields:
        ``(rows, k)`` int64 indices and cosine distances, nearest first.
    """
    norms = gallery.norm(dim=1)
    inv_norms = 1.0 / torch.where(norms > 0, norms, torch.ones_like(norms))
    gallery_t = gallery.numpy().T  # a view
    rows_per_chunk = max(1, max_elements // max(1, gallery.shape[0]))
    for start in range(0, query.shape[0], rows_per_chunk):
        chunk = _unit_rows(query[start : start + rows_per_chunk]).numpy()
        sims = torch.from_numpy(chunk @ gallery_t).mul_(inv_norms)
        top_sims, top_idx = torch.topk(sims, k, dim=1, largest=True, sorted=True)
        yield top_idx, (1.0 - top_sims).clamp_(0.0, 2.0)


def _check_pair(query: torch.Tensor, gallery: torch.Tensor) -> None:
    if query.shape[1] != gallery.shape[1]:
        raise ValueError(
            f"query and gallery feature sizes differ: {query.shape[1]} vs {gallery.shape[1]}"
        )
    if gallery.shape[0] == 0:
        raise ValueError("the gallery is empty")
    if query.dtype != gallery.dtype:
        dtype = torch.promote_types(query.dtype, gallery.dtype)
        raise ValueError(f"cast query and gallery to one dtype (e.g. {dtype})")


def nearest_neighbours(
    query_feats: ArrayLike,
    gallery_feats: ArrayLike,
    k: int,
    *,
    max_elements: int = DEFAULT_MAX_ELEMENTS,
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest gallery videos of every query by cosine distance.

    Args:
        query_feats: ``(Nq, clips, D)`` or ``(Nq, D)``.
        gallery_feats: ``(Ng, clips, D)`` or ``(Ng, D)``.
        k: neighbours per query (capped at ``Ng``).
        max_elements: distance-matrix entries held at once (memory bound).

    Returns:
        ``(indices, distances)``: numpy ``(Nq, k)`` int64 gallery indices, nearest first, and
        their cosine distances ``1 - cos`` in ``[0, 2]``.
    """
    query = video_features(query_feats)
    gallery = video_features(gallery_feats)
    _check_pair(query, gallery)
    k = min(int(k), gallery.shape[0])
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    parts = list(_neighbour_chunks(query, gallery, k, max_elements))
    if not parts:
        return np.zeros((0, k), dtype=np.int64), np.zeros((0, k), dtype=np.float64)
    indices = torch.cat([p[0] for p in parts]).numpy()
    distances = torch.cat([p[1] for p in parts]).numpy()
    return indices, distances


def retrieval_hits(
    query_feats: ArrayLike,
    query_labels: ArrayLike,
    gallery_feats: ArrayLike,
    gallery_labels: ArrayLike,
    ks: Sequence[int] = DEFAULT_KS,
    *,
    max_elements: int = DEFAULT_MAX_ELEMENTS,
) -> dict[int, np.ndarray]:
    """Per-query hits: ``{k: (Nq,) bool}``, True when a label match is among the k nearest.

    Arguments as :func:`topk_retrieval`. ``k`` larger than the gallery uses the whole gallery.
    """
    query = video_features(query_feats)
    gallery = video_features(gallery_feats)
    _check_pair(query, gallery)
    q_labels, g_labels = video_labels(query_labels), video_labels(gallery_labels)
    if q_labels.shape[0] != query.shape[0] or g_labels.shape[0] != gallery.shape[0]:
        raise ValueError(
            f"labels do not match features: {q_labels.shape[0]} query labels for "
            f"{query.shape[0]} videos, {g_labels.shape[0]} gallery labels for "
            f"{gallery.shape[0]} videos"
        )
    ks = [int(k) for k in ks]
    if not ks or min(ks) < 1:
        raise ValueError(f"ks must be positive integers, got {ks}")
    k_max = min(max(ks), gallery.shape[0])
    hits: dict[int, list[torch.Tensor]] = {k: [] for k in ks}
    start = 0
    for idx, _ in _neighbour_chunks(query, gallery, k_max, max_elements):
        match = g_labels[idx] == q_labels[start : start + idx.shape[0], None]  # (rows, k_max)
        first_match = torch.where(match.any(1), match.float().argmax(1), k_max)
        for k in ks:
            hits[k].append(first_match < min(k, k_max))
        start += idx.shape[0]
    return {k: torch.cat(v).numpy() if v else np.zeros(0, bool) for k, v in hits.items()}


def topk_retrieval(
    query_feats: ArrayLike,
    query_labels: ArrayLike,
    gallery_feats: ArrayLike,
    gallery_labels: ArrayLike,
    ks: Sequence[int] = DEFAULT_KS,
    *,
    max_elements: int = DEFAULT_MAX_ELEMENTS,
) -> dict[int, float]:
    """Top-k retrieval accuracy, the paper's video retrieval metric.

    Args:
        query_feats: test-set features ``(Nq, clips, D)`` (clips averaged) or ``(Nq, D)``;
            numpy or torch, any float dtype.
        query_labels: ``(Nq,)`` int labels (``(Nq, clips)`` uses clip 0, as the original).
        gallery_feats: training-set features ``(Ng, clips, D)`` or ``(Ng, D)``.
        gallery_labels: ``(Ng,)``.
        ks: the k values (the paper: 1, 5, 10, 20, 50).
        max_elements: distance-matrix entries held at once (memory bound).

    Returns:
        ``{k: fraction of queries with a hit at k}`` (every query counts; none dropped).

    Example:
        >>> g = np.eye(3); q = np.eye(3) + 0.1
        >>> topk_retrieval(q, [0, 1, 2], g, [0, 1, 2], ks=(1,))
        {1: 1.0}
    """
    hits = retrieval_hits(
        query_feats, query_labels, gallery_feats, gallery_labels, ks, max_elements=max_elements
    )
    return {k: float(h.mean()) if h.size else 0.0 for k, h in hits.items()}


def chance_top1(query_labels: np.ndarray, gallery_labels: np.ndarray) -> float:
    """Expected top-1 of a random ranking: mean gallery frequency of each query's label."""
    counts = np.bincount(
        gallery_labels, minlength=int(max(query_labels.max(), gallery_labels.max())) + 1
    )
    return float((counts[query_labels] / len(gallery_labels)).mean())


def chance_topk(
    query_labels: ArrayLike, gallery_labels: ArrayLike, ks: Sequence[int] = DEFAULT_KS
) -> dict[int, float]:
    """Expected top-k of a random ranking of this gallery: ``{k: fraction of queries}``.

    A random ranking's k nearest are k gallery videos drawn without replacement, so a query
    of class ``c`` misses with probability ``C(G - n_c, k) / C(G, k)`` (``G`` gallery videos,
    ``n_c`` of class ``c``); the result averages ``1 - miss`` over the queries. ``k = 1`` is
    the class frequency; with 10 balanced classes top-5 is already about 41 %.
    """
    q_labels = video_labels(query_labels).numpy()
    g_labels = video_labels(gallery_labels).numpy()
    size = int(max(q_labels.max(initial=0), g_labels.max(initial=0))) + 1
    counts = np.bincount(g_labels, minlength=size)[q_labels].astype(np.float64)  # n_c per query
    total = len(g_labels)
    out = {}
    for k in ks:
        if k < 1:
            raise ValueError(f"ks must be positive integers, got {k}")
        miss = np.ones_like(counts)
        for i in range(min(int(k), total)):
            miss *= np.clip(total - counts - i, 0, None) / (total - i)
        out[int(k)] = float((1.0 - miss).mean()) if len(q_labels) else 0.0
    return out

"""2-D projections of embeddings (t-SNE, UMAP) and numbers to put beside them.

A picture of an embedding can flatter or hide structure; print a number with it:
leave-one-out kNN accuracy (cosine) and the silhouette score of the classes.
"""

from __future__ import annotations

import numpy as np
import torch

from .negatives import intra_negative

__all__ = [
    "PCA_DIMS",
    "PROJECTIONS",
    "knn_accuracy",
    "negative_similarity",
    "pca_reduce",
    "project",
    "silhouette",
]

PROJECTIONS = ("tsne", "umap", "pca")
#: Dimensions kept by PCA before t-SNE / UMAP (9216-d paper features would be slow otherwise).
PCA_DIMS = 50


def _as_2d(features: np.ndarray, dtype: type = np.float64) -> np.ndarray:
    x = np.asarray(features, dtype=dtype)
    if x.ndim == 3:  # (N, clips, D): average the clips
        x = x.mean(axis=1)
    if x.ndim != 2:
        raise ValueError(f"features must be (N, D) or (N, clips, D), got {x.shape}")
    return x


def _unit(x: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norm > 0, norm, 1.0)


def pca_reduce(x: np.ndarray, dims: int = PCA_DIMS, *, seed: int = 0) -> np.ndarray:
    """``(N, D)`` -> ``(N, min(dims, N, D))`` principal components (seeded randomized SVD).

    Rows are kept as given (no normalization); ``D <= dims`` returns ``x`` unchanged.
    """
    from sklearn.decomposition import PCA

    dims = min(dims, x.shape[0], x.shape[1])
    if x.shape[1] <= dims:
        return x
    if x.shape[0] <= 2000:
        return PCA(dims, svd_solver="full").fit_transform(x)
    # 4 power iterations instead of sklearn's 7: the leading 50 components of 13,320 x 9216
    # features in half the time, plenty for a picture (benchmarks/RESULTS.md)
    return PCA(dims, svd_solver="randomized", iterated_power=4, random_state=seed).fit_transform(x)


def _exact_knn(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, None]:
    """Exact Euclidean k nearest neighbours of every row, itself first (umap-learn's format).

    On PCA-reduced rows this takes a few seconds for 13,320 points, where umap-learn's
    approximate search (NN-descent) took over a minute on structureless data.
    """
    from sklearn.neighbors import NearestNeighbors

    index = NearestNeighbors(n_neighbors=k, algorithm="brute").fit(x)
    distances, indices = index.kneighbors(x, k)
    return indices, distances.astype(np.float32), None


def project(
    features: np.ndarray, method: str = "tsne", *, seed: int = 0, pca_dims: int = PCA_DIMS
) -> np.ndarray:
    """Project ``(N, D)`` (or ``(N, clips, D)``) features to ``(N, 2)``.

    Features are L2-normalized first (the retrieval metric is cosine), then reduced to
    ``pca_dims`` principal components when ``D`` is larger. ``"tsne"`` uses scikit-learn
    (perplexity ``min(30, (N - 1) / 3)``); ``"umap"`` uses umap-learn, whose first call in a
    process compiles with numba (about 10-25 s on a 2-core CPU); ``"pca"`` keeps the first
    two principal components. The same ``seed`` gives the same coordinates.
    """
    if method not in PROJECTIONS:
        raise ValueError(f"method must be one of {PROJECTIONS}, got {method!r}")
    x = _unit(_as_2d(features, np.float32))  # float32: 13,320 x 9216 paper features fit
    if len(x) < 5:
        raise ValueError(f"need at least 5 points to project, got {len(x)}")
    if method == "pca":
        return pca_reduce(x, 2, seed=seed) if x.shape[1] > 2 else x
    x = pca_reduce(x, pca_dims, seed=seed)
    if method == "tsne":
        from sklearn.manifold import TSNE

        perplexity = float(min(30.0, (len(x) - 1) / 3))
        return TSNE(2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(x)
    import warnings

    import umap

    n_neighbors = min(15, len(x) - 1)
    options: dict = {}
    if len(x) >= 4096:  # umap-learn is exact below 4096 points; stay exact (and fast) above
        options["precomputed_knn"] = _exact_knn(x, n_neighbors)
    reducer = umap.UMAP(n_components=2, n_neighbors=n_neighbors, random_state=seed, **options)
    with warnings.catch_warnings():  # "n_jobs overridden to 1 by setting random_state": intended
        warnings.filterwarnings("ignore", message="n_jobs value", category=UserWarning)
        warnings.filterwarnings("ignore", message="precomputed_knn", category=UserWarning)
        return np.asarray(reducer.fit_transform(x))


def knn_accuracy(
    features: np.ndarray,
    labels: np.ndarray,
    k: int = 5,
    *,
    gallery: np.ndarray | None = None,
    gallery_labels: np.ndarray | None = None,
) -> float:
    """k-nearest-neighbour accuracy (cosine similarity, majority vote, ties to the smaller label).

    Without ``gallery``: leave-one-out within ``features`` ``(N, D)``. With ``gallery``
    ``(Ng, D)`` and ``gallery_labels``: each row of ``features`` (the test videos) votes among
    its ``k`` nearest gallery rows (the training videos), as retrieval ranks them.
    """
    x = _unit(_as_2d(features))
    labels = np.asarray(labels).ravel()
    if gallery is None:
        g, g_labels = x, labels
        sims = x @ x.T
        np.fill_diagonal(sims, -np.inf)
    else:
        if gallery_labels is None:
            raise ValueError("gallery_labels are needed with gallery")
        g, g_labels = _unit(_as_2d(gallery)), np.asarray(gallery_labels).ravel()
        sims = x @ g.T
    k = min(k, len(g) - (1 if gallery is None else 0))
    neighbours = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    votes = g_labels[neighbours]
    predicted = np.array([np.bincount(row).argmax() for row in votes])
    return float((predicted == labels).mean())


def silhouette(features: np.ndarray, labels: np.ndarray) -> float:
    """Silhouette score of the classes under cosine distance (-1 .. 1; higher = tighter)."""
    from sklearn.metrics import silhouette_score

    return float(silhouette_score(_as_2d(features), np.asarray(labels).ravel(), metric="cosine"))


def negative_similarity(
    model: torch.nn.Module,
    clips: torch.Tensor,
    kind: str = "repeat",
    *,
    seed: int = 0,
) -> np.ndarray:
    """Cosine similarity between each clip's pooled feature and its own intra-negative's.

    Args:
        model: a backbone (set to eval mode here).
        clips: ``(B, C, T, H, W)`` RGB clips.
        kind: ``"repeat"`` or ``"shuffle"``.

    Returns:
        ``(B,)`` similarities; near 1 means the network cannot tell the clip from its
        motion-broken version (appearance only), lower means it encodes motion.
    """
    model.eval()
    negatives = intra_negative(clips, kind, torch.Generator().manual_seed(seed))
    with torch.no_grad():
        anchor = model.forward_features(clips).mean(dim=(2, 3, 4))
        negative = model.forward_features(negatives).mean(dim=(2, 3, 4))
    return torch.nn.functional.cosine_similarity(anchor, negative, dim=1).numpy()

"""Notebook 04's exercise: k-nearest-neighbour classification train -> test, as retrieval ranks.

The student writes ``knn_predict(gallery, gallery_labels, query, k)``: for each query video,
the majority label among its ``k`` nearest gallery videos by **cosine** similarity (ties go
to the smallest label). :func:`check_knn_predict` runs it on held-out inputs and names the
likely mistake.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["check_knn_predict", "knn_predict_reference"]


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True).clip(min=1e-12)


def _vote(neighbour_labels: np.ndarray, n_classes: int) -> np.ndarray:
    return np.array([np.bincount(row, minlength=n_classes).argmax() for row in neighbour_labels])


def knn_predict_reference(
    gallery: np.ndarray, gallery_labels: np.ndarray, query: np.ndarray, k: int = 5
) -> np.ndarray:
    """Majority label of each query's ``k`` nearest gallery rows by cosine similarity.

    Args: gallery ``(Ng, D)``, gallery_labels ``(Ng,)`` ints, query ``(Nq, D)``.
    Returns: ``(Nq,)`` int predictions.
    """
    sims = _unit(np.asarray(query, float)) @ _unit(np.asarray(gallery, float)).T
    nearest = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    labels = np.asarray(gallery_labels)
    return _vote(labels[nearest], int(labels.max()) + 1)


def _euclidean(gallery, gallery_labels, query, k):
    d = ((query[:, None, :] - gallery[None, :, :]) ** 2).sum(-1)
    return _vote(gallery_labels[np.argsort(d, axis=1)[:, :k]], int(gallery_labels.max()) + 1)


def _inputs(seed: int = 123) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Clustered features whose rows have very different norms (so cosine != Euclidean)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(4, 16))
    g_labels = np.repeat(np.arange(4), 15)
    q_labels = np.repeat(np.arange(4), 6)
    gallery = centres[g_labels] + 0.9 * rng.normal(size=(60, 16))
    query = centres[q_labels] + 0.9 * rng.normal(size=(24, 16))
    gallery *= rng.uniform(0.1, 10.0, size=(60, 1))
    query *= rng.uniform(0.1, 10.0, size=(24, 1))
    return gallery, g_labels, query, q_labels


def check_knn_predict(fn: Callable[..., np.ndarray], k: int = 5) -> bool:
    """Check a student's ``knn_predict``; prints ✓ or raises ``AssertionError`` saying why."""
    gallery, g_labels, query, _ = _inputs()
    try:
        got = fn(gallery.copy(), g_labels.copy(), query.copy(), k)
    except NotImplementedError:
        raise AssertionError(
            "knn_predict is not written yet: replace `raise NotImplementedError` with code"
        ) from None
    got = np.asarray(got).ravel()
    if got.shape != (len(query),):
        raise AssertionError(f"return one label per query: shape ({len(query)},), got {got.shape}")
    expected = knn_predict_reference(gallery, g_labels, query, k)
    if np.array_equal(got, expected):
        print(f"✓ knn_predict agrees with the reference on {len(query)} held-out queries")
        return True
    if len(np.unique(got)) == 1:
        raise AssertionError(
            f"every query gets class {got[0]}: vote among each query's own k nearest gallery "
            "videos (np.bincount(labels).argmax() per row)"
        )
    if np.array_equal(got, _euclidean(gallery, g_labels, query, k)):
        raise AssertionError(
            "you ranked by Euclidean distance: retrieval ranks by cosine similarity; divide "
            "every row by its L2 norm first, then take the largest dot products"
        )
    sims = _unit(query) @ _unit(gallery).T
    farthest = _vote(g_labels[np.argsort(sims, axis=1)[:, :k]], 4)
    if np.array_equal(got, farthest):
        raise AssertionError(
            "you took the k *least* similar videos: sort similarities in descending order"
        )
    wrong = int((got != expected).sum())
    raise AssertionError(
        f"{wrong} of {len(query)} predictions differ from the reference: use cosine similarity "
        f"of query rows to gallery rows, the k = {k} largest, and the majority label"
    )

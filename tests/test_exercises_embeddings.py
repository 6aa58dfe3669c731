"""Notebook 04's exercise check passes on the solution and fails helpfully otherwise."""

from __future__ import annotations

import numpy as np
import pytest

from iic_helpers.exercises.embeddings import check_knn_predict, knn_predict_reference


def solution(gallery, gallery_labels, query, k):
    """The notebook's solution cell, written independently of the reference."""
    g = gallery / np.linalg.norm(gallery, axis=1, keepdims=True)
    q = query / np.linalg.norm(query, axis=1, keepdims=True)
    nearest = np.argsort(-(q @ g.T), axis=1)[:, :k]
    return np.array([np.bincount(gallery_labels[row]).argmax() for row in nearest])


def test_the_solution_passes(capsys) -> None:
    assert check_knn_predict(solution)
    assert "✓" in capsys.readouterr().out


def test_reference_on_a_tiny_case() -> None:
    gallery = np.array([[1.0, 0.0], [10.0, 0.5], [0.0, 1.0], [0.1, 5.0]])
    labels = np.array([0, 0, 1, 1])
    # by cosine the query (5, 1) is class 0; by Euclidean its nearest are (1,0) and (0.1, 5)
    assert knn_predict_reference(gallery, labels, np.array([[5.0, 1.0]]), k=1).tolist() == [0]


def _blank(gallery, gallery_labels, query, k):
    raise NotImplementedError


def _constant(gallery, gallery_labels, query, k):
    return np.zeros(len(query), dtype=int)


def _euclidean(gallery, gallery_labels, query, k):
    d = ((query[:, None] - gallery[None]) ** 2).sum(-1)
    return np.array([np.bincount(gallery_labels[r]).argmax() for r in np.argsort(d, 1)[:, :k]])


def _ascending(gallery, gallery_labels, query, k):
    g = gallery / np.linalg.norm(gallery, axis=1, keepdims=True)
    q = query / np.linalg.norm(query, axis=1, keepdims=True)
    nearest = np.argsort(q @ g.T, axis=1)[:, :k]
    return np.array([np.bincount(gallery_labels[row]).argmax() for row in nearest])


@pytest.mark.parametrize(
    ("wrong", "message"),
    [
        (_blank, "not written yet"),
        (_constant, "every query gets class 0"),
        (_euclidean, "Euclidean"),
        (_ascending, "least"),
    ],
)
def test_wrong_answers_fail_with_a_helpful_message(wrong, message: str) -> None:
    with pytest.raises(AssertionError, match=message):
        check_knn_predict(wrong)

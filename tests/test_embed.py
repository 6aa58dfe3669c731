"""Embedding projections and the numbers printed beside them."""

from __future__ import annotations

import numpy as np
import pytest

from iic_helpers.embed import knn_accuracy, project, silhouette


def _clusters(n: int = 20, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = np.eye(3, 8) * 5
    labels = np.repeat(np.arange(3), n)
    return centres[labels] + rng.normal(size=(3 * n, 8)) * 0.3, labels


def test_knn_and_silhouette_on_separated_and_random_clusters() -> None:
    x, y = _clusters()
    assert knn_accuracy(x, y) == 1.0
    assert silhouette(x, y) > 0.8
    rng = np.random.default_rng(1)
    noise = rng.normal(size=x.shape)
    assert knn_accuracy(noise, y) < 0.6
    assert abs(silhouette(noise, y)) < 0.2


def test_clip_axis_is_averaged() -> None:
    x, y = _clusters()
    stacked = np.stack([x, x], axis=1)  # (N, 2 clips, D)
    assert knn_accuracy(stacked, y) == knn_accuracy(x, y)


def test_tsne_projection_is_seeded() -> None:
    x, _ = _clusters(10)
    a, b = project(x, "tsne", seed=0), project(x, "tsne", seed=0)
    assert a.shape == (30, 2)
    np.testing.assert_allclose(a, b)
    with pytest.raises(ValueError, match="method"):
        project(x, "bogus")


def test_negative_similarity_is_one_for_a_static_clip() -> None:
    import torch

    from iic_helpers.embed import negative_similarity
    from iic_helpers.models import build_backbone

    torch.manual_seed(0)
    model = build_backbone("r3d", width=4)
    static = torch.rand(3, 3, 1, 16, 16).expand(3, 3, 8, 16, 16).contiguous()
    np.testing.assert_allclose(negative_similarity(model, static, "repeat"), 1.0, atol=1e-5)
    moving = torch.rand(3, 3, 8, 16, 16)
    assert (negative_similarity(model, moving, "shuffle") < 1.0 - 1e-4).all()


def test_knn_train_to_test_uses_the_gallery() -> None:
    from iic_helpers.exercises.embeddings import knn_predict_reference

    x, y = _clusters()
    rng = np.random.default_rng(3)
    query = x + rng.normal(size=x.shape) * 2.0
    expected = (knn_predict_reference(x, y, query, 5) == y).mean()
    assert knn_accuracy(query, y, 5, gallery=x, gallery_labels=y) == expected
    shuffled = rng.permutation(y)  # gallery labels that say nothing: near chance
    assert knn_accuracy(query, y, 5, gallery=x, gallery_labels=shuffled) < 0.6


def test_pca_first_for_wide_features_and_pca_projection() -> None:
    from iic_helpers.embed import PCA_DIMS, _unit, pca_reduce

    rng = np.random.default_rng(0)
    wide = rng.normal(size=(80, 300)).astype(np.float32)
    reduced = pca_reduce(_unit(wide), PCA_DIMS)
    assert reduced.shape == (80, 50)
    narrow = rng.normal(size=(80, 8))
    assert pca_reduce(narrow, PCA_DIMS) is narrow  # D <= 50: unchanged
    xy = project(wide, "pca")
    np.testing.assert_allclose(np.abs(xy), np.abs(reduced[:, :2]), rtol=1e-3, atol=1e-4)
    assert xy.shape == (80, 2)

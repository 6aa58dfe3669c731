"""Top-k retrieval against the original retrieve_clips.topk_retrieval (tests/fixtures)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import FIXTURES, load_npz, small_config

from iic_helpers.retrieval import nearest_neighbours, retrieval_hits, topk_retrieval

REF = load_npz("retrieval_inputs.npz")
REF_JSON = json.loads((FIXTURES / "retrieval.json").read_text())


def test_accuracy_matches_original() -> None:
    acc = topk_retrieval(REF["X_test"], REF["y_test"], REF["X_train"], REF["y_train"])
    expected = {int(k): v for k, v in REF_JSON["accuracy"].items()}
    assert acc == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("max_elements", [1, 40 * 3, 1 << 24])
def test_per_video_hits_match_original_for_any_chunking(max_elements: int) -> None:
    hits = retrieval_hits(
        REF["X_test"],
        REF["y_test"][:, 0],
        REF["X_train"],
        REF["y_train"][:, 0],
        max_elements=max_elements,
    )
    for k in (1, 5, 10, 20, 50):
        np.testing.assert_array_equal(hits[k].astype(int), REF[f"hit_top{k}"], err_msg=f"k={k}")


def test_neighbours_match_sklearn_distances_and_argsort() -> None:
    idx, dist = nearest_neighbours(REF["X_test"], REF["X_train"], 40)
    np.testing.assert_array_equal(idx, REF["argsort_indices"])
    np.testing.assert_allclose(dist, np.sort(REF["cosine_distances"], axis=1), atol=1e-12)


def test_no_video_dropped_with_odd_counts() -> None:
    """The original dropped the last partial batch of 8; every query must count here."""
    rng = np.random.default_rng(0)
    gallery = rng.normal(size=(13, 6)).astype(np.float32)
    query = gallery[:11] + 0.01 * rng.normal(size=(11, 6)).astype(np.float32)
    labels = np.arange(13)
    hits = retrieval_hits(query, labels[:11], gallery, labels, ks=(1,))
    assert hits[1].shape == (11,) and hits[1].all()
    # The 11th query alone decides between 10/11 and 11/11: make it miss.
    wrong = labels[:11].copy()
    wrong[10] = 12
    assert topk_retrieval(query, wrong, gallery, labels, ks=(1,))[1] == pytest.approx(10 / 11)


def test_accepts_torch_any_float_dtype_and_clip_axis() -> None:
    """Half-precision tensors go in as they are and score like the same values in float64."""
    x_test = torch.tensor(REF["X_test"], dtype=torch.float16)
    x_train = torch.tensor(REF["X_train"], dtype=torch.bfloat16)
    y_test, y_train = torch.tensor(REF["y_test"][:, 0]), REF["y_train"]
    acc = topk_retrieval(x_test, y_test, x_train, y_train)
    assert acc == topk_retrieval(x_test.double(), y_test, x_train.double(), y_train)
    assert set(acc) == {1, 5, 10, 20, 50}
    # the clip axis of (N, clips, D) is averaged: every clip twice scores the same
    twice = topk_retrieval(torch.cat([x_test, x_test], 1), y_test, x_train, y_train)
    assert twice == acc


def test_errors_and_k_beyond_gallery() -> None:
    g, q = np.eye(4), np.eye(4)
    assert topk_retrieval(q, [0, 1, 2, 3], g, [0, 1, 2, 3], ks=(1, 100)) == {1: 1.0, 100: 1.0}
    with pytest.raises(ValueError, match="labels do not match"):
        topk_retrieval(q, [0, 1], g, [0, 1, 2, 3])
    with pytest.raises(ValueError, match="feature sizes differ"):
        topk_retrieval(np.eye(3), [0, 1, 2], g, [0, 1, 2, 3])


def test_chunked_neighbours_equal_unchunked_on_a_large_gallery() -> None:
    """A query x gallery product chunked to 1/8 of the full matrix gives the same neighbours
    (what bounds the memory; its size is measured in ``benchmarks/bench_retrieval.py``)."""
    gen = torch.Generator().manual_seed(0)
    gallery = torch.randn(4000, 32, generator=gen)
    query = torch.randn(64, 32, generator=gen)
    full_idx, _ = nearest_neighbours(query, gallery, 5, max_elements=64 * 4000)
    small_idx, _ = nearest_neighbours(query, gallery, 5, max_elements=8 * 4000)
    np.testing.assert_array_equal(full_idx, small_idx)


def test_chance_topk_is_the_hypergeometric_hit_rate() -> None:
    from iic_helpers.retrieval import chance_topk

    gallery = [0, 0, 1, 1, 2]
    # class 0: miss both draws with C(3,2)/C(5,2) = 0.3; class 2: C(4,2)/C(5,2) = 0.6
    assert chance_topk([0, 2], gallery, ks=(1, 2, 4, 9)) == pytest.approx(
        {1: (0.4 + 0.2) / 2, 2: (0.7 + 0.4) / 2, 4: (1.0 + 0.8) / 2, 9: 1.0}
    )
    # a random ranking, simulated: the closed form is its expectation
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, 200)
    queries = rng.integers(0, 10, 50)
    sims = [
        np.mean([(labels[rng.permutation(200)[:5]] == q).any() for q in queries])
        for _ in range(400)
    ]
    assert np.mean(sims) == pytest.approx(chance_topk(queries, labels, ks=(5,))[5], abs=0.01)
    with pytest.raises(ValueError, match="positive"):
        chance_topk([0], gallery, ks=(0,))


def test_features_file_paths_are_relative_to_the_dataset_root(
    tiny_root, tmp_path, monkeypatch
) -> None:
    """``retrieval_features.npz`` names videos relative to the dataset root, not to the
    working directory, and the reader resolves them from any working directory."""
    import os

    from iic_helpers.config import make_config
    from iic_helpers.retrieval import load_retrieval_features, run_retrieval

    monkeypatch.chdir(tiny_root.parent)
    cfg = make_config(
        "tiny", data_root=tiny_root.name, **small_config(eval_clips=1, retrieval_features="pool")
    )
    run_retrieval(cfg, None, tmp_path / "run", max_videos=4, progress=False)
    with np.load(tmp_path / "run" / "retrieval_features.npz") as saved:
        stored = [str(p) for p in saved["query_paths"]]
    assert stored and all(p.startswith("videos" + os.sep) for p in stored)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    for given in (None, tiny_root):  # the root it was computed on, or one named explicitly
        feats = load_retrieval_features(tmp_path / "run", data_root=given)
        paths = [*feats["query_paths"], *feats["gallery_paths"]]
        assert all(Path(p).is_file() for p in paths)

"""Residual frames and intra-negatives: golden values (tests/fixtures/views.npz) and properties."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from conftest import load_npz

from iic_helpers.negatives import (
    SHUFFLE_SWAPS,
    intra_negative,
    intra_negative_with_info,
    repeat_frame,
    shuffle_chunks,
)
from iic_helpers.views import residual

REF = load_npz("views.npz")


def test_residual_matches_original_train_ssl_diff() -> None:
    out = residual(torch.from_numpy(REF["x"]))
    np.testing.assert_allclose(out.numpy(), REF["diff_train_ssl"], rtol=0, atol=1e-7)


def test_residual_is_not_the_unscaled_finetuning_variant() -> None:
    out = residual(torch.from_numpy(REF["x"]))
    assert not np.allclose(out.numpy(), REF["diff_ft_classify"], atol=1e-3)


def test_residual_wraps_frame_zero_and_keeps_range() -> None:
    x = torch.rand(3, 16, 5, 5, dtype=torch.float64)
    out = residual(x)
    assert out.dtype == torch.float64 and out.shape == x.shape
    torch.testing.assert_close(out[:, 0], (x[:, 0] - x[:, 15] + 1) / 2)
    torch.testing.assert_close(out[:, 5], (x[:, 5] - x[:, 4] + 1) / 2)
    assert out.min() >= 0 and out.max() <= 1
    static = torch.rand(3, 1, 4, 4).expand(3, 8, 4, 4)
    assert torch.all(residual(static) == 0.5)  # nothing moves -> constant grey


def test_residual_batched_and_stacked_shapes() -> None:
    x = torch.rand(2, 4, 3, 8, 6, 6)
    torch.testing.assert_close(residual(x)[1, 2], residual(x[1, 2]))
    with pytest.raises(ValueError, match="C, T, H, W"):
        residual(torch.rand(8, 6, 6))
    with pytest.raises(TypeError, match="uint8"):
        residual(torch.zeros(3, 4, 2, 2, dtype=torch.uint8))


def test_repeat_matches_original_for_its_frame_choice() -> None:
    x = torch.from_numpy(REF["x"])
    out = repeat_frame(x, torch.from_numpy(REF["repeat_seed0_frame_idx"]))
    np.testing.assert_array_equal(out.numpy(), REF["repeat_seed0"])


def test_shuffle_matches_original_for_its_chunk_order() -> None:
    x = torch.from_numpy(REF["x"])
    out = shuffle_chunks(x, torch.from_numpy(REF["shuffle_seed0_chunk_order"]))
    np.testing.assert_array_equal(out.numpy(), REF["shuffle_seed0"])


def test_repeat_property_every_frame_is_one_original_frame() -> None:
    x = torch.rand(6, 3, 8, 4, 4)
    neg, frame = intra_negative_with_info(x, "repeat", torch.Generator().manual_seed(0))
    assert neg.shape == x.shape
    for b in range(6):
        for t in range(8):
            assert torch.equal(neg[b, :, t], x[b, :, frame[b]])


def test_shuffle_property_exactly_two_distinct_chunks_swapped() -> None:
    x = torch.rand(64, 2, 16, 3, 3)
    neg, order = intra_negative_with_info(x, "shuffle", torch.Generator().manual_seed(0))
    chunks_in = x.view(64, 2, 4, 4, 3, 3)
    chunks_out = neg.view(64, 2, 4, 4, 3, 3)
    for b in range(64):
        moved = [i for i in range(4) if not torch.equal(chunks_out[b, :, i], chunks_in[b, :, i])]
        assert len(moved) == 2, f"sample {b}: chunks {moved} differ"
        i, j = moved
        assert torch.equal(chunks_out[b, :, i], chunks_in[b, :, j])
        assert torch.equal(chunks_out[b, :, j], chunks_in[b, :, i])
        assert order[b].tolist() != [0, 1, 2, 3]


def test_choices_are_roughly_uniform() -> None:
    gen = torch.Generator().manual_seed(1)
    x = torch.arange(16.0).view(1, 1, 16, 1, 1).expand(6000, 1, 16, 1, 1)
    _, frames = intra_negative_with_info(x, "repeat", gen)
    counts = torch.bincount(frames, minlength=16).float()
    assert counts.min() > 0.8 * 375 and counts.max() < 1.2 * 375
    _, orders = intra_negative_with_info(x, "shuffle", gen)
    swaps = [tuple(i for i in range(4) if row[i] != i) for row in orders.tolist()]
    counts = {pair: swaps.count(pair) for pair in SHUFFLE_SWAPS}
    assert set(counts) == set(itertools.combinations(range(4), 2))
    assert min(counts.values()) > 0.85 * 1000 and max(counts.values()) < 1.15 * 1000


def test_generator_makes_it_reproducible_and_input_untouched() -> None:
    x = torch.rand(4, 3, 16, 5, 5)
    before = x.clone()
    for kind in ("repeat", "shuffle"):
        a = intra_negative(x, kind, torch.Generator().manual_seed(5))
        b = intra_negative(x, kind, torch.Generator().manual_seed(5))
        assert torch.equal(a, b)
    assert torch.equal(x, before)


def test_batch_size_one_and_float64() -> None:
    x = torch.rand(1, 3, 8, 4, 4, dtype=torch.float64)
    for kind in ("repeat", "shuffle"):
        out = intra_negative(x, kind)
        assert out.shape == x.shape and out.dtype == torch.float64


def test_errors_are_clear() -> None:
    with pytest.raises(ValueError, match="divisible by 4"):
        intra_negative(torch.rand(2, 3, 15, 4, 4), "shuffle")
    with pytest.raises(ValueError, match="unknown intra-negative kind 'blur'"):
        intra_negative(torch.rand(2, 3, 16, 4, 4), "blur")
    with pytest.raises(ValueError, match=r"\(B, C, T, H, W\)"):
        intra_negative(torch.rand(3, 16, 4, 4), "repeat")

"""MemoryBankNCE and its criteria against the original NCEAverage (tests/fixtures/nce.npz)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from conftest import load_npz

from iic_helpers.losses import MemoryBankNCE, NCECriterion, NCESoftmaxLoss

REF = load_npz("nce.npz")
VARIANTS = {  # tag: (softmax, intra_negative)
    "sm_iic": (True, True),
    "sm_ori": (True, False),
    "nce_iic": (False, True),
    "nce_ori": (False, False),
}


def _build(tag: str) -> tuple[MemoryBankNCE, torch.nn.Module]:
    softmax, intra = VARIANTS[tag]
    torch.manual_seed(1)  # as the reference: memory_v1, memory_v2, memory_neg drawn in order
    contrast = MemoryBankNCE(
        int(REF["feat_dim"]),
        int(REF["n_data"]),
        k=int(REF["K"]),
        temperature=float(REF["T"]),
        momentum=float(REF["momentum"]),
        softmax=softmax,
        intra_negative=intra,
    )
    criterion = NCESoftmaxLoss() if softmax else NCECriterion(int(REF["n_data"]))
    return contrast, criterion


def _inputs():
    v1_in = torch.tensor(REF["l"], requires_grad=True)
    ab = torch.tensor(REF["ab"], requires_grad=True)
    neg = torch.tensor(REF["neg"], requires_grad=True)
    return v1_in, ab, neg, torch.tensor(REF["y"]), torch.tensor(REF["idx"])


def _close(actual: torch.Tensor, key: str, rtol: float = 1e-5, atol: float = 1e-6) -> None:
    np.testing.assert_allclose(actual.detach().numpy(), REF[key], rtol=rtol, atol=atol, err_msg=key)


def _run(tag: str, contrast, criterion, v1_in, ab, neg, y, idx):
    neg_arg = neg if contrast.intra_negative else None
    out_v1, out_v2 = contrast(v1_in, ab, y, neg_arg, sample_idx=idx)
    return out_v1, out_v2, criterion(out_v1), criterion(out_v2)


@pytest.mark.parametrize("tag", list(VARIANTS))
def test_memory_init_matches_reference(tag: str) -> None:
    contrast, _ = _build(tag)
    _close(contrast.memory_v1, f"{tag}__memory_l_init", rtol=0, atol=0)
    _close(contrast.memory_v2, f"{tag}__memory_ab_init", rtol=0, atol=0)
    if contrast.intra_negative:
        _close(contrast.memory_neg, f"{tag}__memory_neg_init", rtol=0, atol=0)
    else:
        assert not hasattr(contrast, "memory_neg")
    _close(contrast.params, f"{tag}__params_init", rtol=0, atol=0)


@pytest.mark.parametrize("tag", list(VARIANTS))
def test_two_calls_match_reference(tag: str) -> None:
    contrast, criterion = _build(tag)
    v1_in, ab, neg, y, idx = _inputs()
    out_v1, out_v2, loss_v1, loss_v2 = _run(tag, contrast, criterion, v1_in, ab, neg, y, idx)
    _close(out_v1, f"{tag}__out_l")
    _close(out_v2, f"{tag}__out_ab")
    assert out_v1.shape == REF[f"{tag}__out_l"].shape
    _close(loss_v1, f"{tag}__loss_l")
    _close(loss_v2, f"{tag}__loss_ab")
    assert tuple(loss_v1.shape) == REF[f"{tag}__loss_l"].shape
    (loss_v1 + loss_v2).sum().backward()
    _close(v1_in.grad, f"{tag}__grad_l", atol=1e-6)
    _close(ab.grad, f"{tag}__grad_ab", atol=1e-6)
    assert neg.grad is None  # the intra-negative features get no gradient (original behaviour)
    _close(contrast.memory_v1, f"{tag}__memory_l_after")
    _close(contrast.memory_v2, f"{tag}__memory_ab_after")
    if contrast.intra_negative:
        _close(contrast.memory_neg, f"{tag}__memory_neg_after")
    _close(contrast.params, f"{tag}__params_after")
    assert not contrast.params.requires_grad  # bug 5 of the original, not reproduced

    out_v1, out_v2, loss_v1, loss_v2 = _run(tag, contrast, criterion, v1_in, ab, neg, y, idx)
    _close(out_v1, f"{tag}__call2_out_l")
    _close(out_v2, f"{tag}__call2_out_ab")
    _close(loss_v1, f"{tag}__call2_loss_l")
    _close(loss_v2, f"{tag}__call2_loss_ab")
    _close(contrast.memory_v1, f"{tag}__memory_l_after_call2")
    _close(contrast.memory_v2, f"{tag}__memory_ab_after_call2")
    _close(contrast.params, f"{tag}__params_after_call2")


def _slow_reference(contrast: MemoryBankNCE, v1, v2, neg, y, idx):
    """A literal, loop-per-sample re-implementation of the documented formulas (float64)."""
    tau = contrast.temperature
    mem1, mem2 = contrast.memory_v1.double(), contrast.memory_v2.double()
    memn = contrast.memory_neg.double() if contrast.intra_negative else None
    rows_v1, rows_v2 = [], []
    for b in range(v1.shape[0]):
        s1 = [float(mem2[j] @ v1[b]) for j in idx[b]]
        s2 = [float(mem1[j] @ v2[b]) for j in idx[b]]
        if memn is not None:
            s1 += [float(memn[j] @ v1[b]) for j in idx[b]]
            s2 += [float(memn[j] @ v2[b]) for j in idx[b]]
        rows_v1.append(s1)
        rows_v2.append(s2)
    s1 = torch.tensor(rows_v1, dtype=torch.float64) / tau
    s2 = torch.tensor(rows_v2, dtype=torch.float64) / tau
    loss = sum(-(s[:, 0] - torch.logsumexp(s, dim=1)).mean() for s in (s1, s2))
    new = {}
    for name, mem, feat in (("v1", mem1, v1), ("v2", mem2, v2), ("neg", memn, neg)):
        if mem is None:
            continue
        mem = mem.clone()
        for b in range(v1.shape[0]):
            row = 0.5 * mem[y[b]] + 0.5 * feat[b]
            mem[y[b]] = row / math.sqrt(float(row @ row))
        new[name] = mem
    return s1, s2, float(loss), new


@pytest.mark.parametrize("intra", [True, False])
def test_matches_slow_reimplementation(intra: bool) -> None:
    torch.manual_seed(3)
    contrast = MemoryBankNCE(16, 30, k=9, intra_negative=intra)
    v1, v2, neg = (torch.randn(5, 16, dtype=torch.float64) for _ in range(3))
    y = torch.tensor([0, 7, 12, 20, 29])
    idx = contrast.sample_indices(y)
    s1, s2, loss, new = _slow_reference(contrast, v1, v2, neg, y, idx)
    out_v1, out_v2 = contrast(v1, v2, y, neg if intra else None, sample_idx=idx)
    assert out_v1.dtype == torch.float64
    torch.testing.assert_close(out_v1[:, :, 0], s1, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(out_v2[:, :, 0], s2, rtol=1e-5, atol=1e-5)
    ours = float(NCESoftmaxLoss()(out_v1) + NCESoftmaxLoss()(out_v2))
    assert ours == pytest.approx(loss, rel=1e-5)
    torch.testing.assert_close(contrast.memory_v1.double(), new["v1"], rtol=1e-5, atol=1e-6)
    if intra:
        torch.testing.assert_close(contrast.memory_neg.double(), new["neg"], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("intra,columns", [(True, 2 * 7 + 2), (False, 7 + 1)])
def test_equal_scores_give_log_columns(intra: bool, columns: int) -> None:
    """Zero features score 0 against every row: the softmax loss is log(2k+2) or log(k+1)."""
    contrast = MemoryBankNCE(8, 20, k=7, intra_negative=intra)
    zeros = torch.zeros(3, 8)
    out_v1, out_v2 = contrast(zeros, zeros, torch.tensor([0, 1, 2]), zeros if intra else None)
    assert out_v1.shape == (3, columns, 1) == (3, contrast.num_columns, 1)
    assert float(NCESoftmaxLoss()(out_v1)) == pytest.approx(math.log(columns), rel=1e-6)


def test_aligned_features_closed_form() -> None:
    """Memory rows set by hand: positive row aligned with the feature, negatives orthogonal."""
    k, tau = 4, 0.5
    contrast = MemoryBankNCE(3, 10, k=k, temperature=tau, intra_negative=False)
    e0, e1 = torch.eye(3)[0], torch.eye(3)[1]
    contrast.memory_v2[:] = e1
    contrast.memory_v2[2] = e0  # row 2 holds the sample's positive
    feat = e0.view(1, 3)
    out_v1, _ = contrast(feat, feat, torch.tensor([2]), sample_idx=torch.tensor([[2, 0, 1, 3, 4]]))
    expected = -math.log(math.exp(1 / tau) / (math.exp(1 / tau) + k))
    # tau goes through float32, as in the original
    assert float(NCESoftmaxLoss()(out_v1)) == pytest.approx(expected, rel=1e-6)


def test_batch_size_one_and_criteria_shapes() -> None:
    contrast = MemoryBankNCE(8, 20, k=5)
    v = torch.randn(1, 8, requires_grad=True)
    out_v1, out_v2 = contrast(v, v * 2, torch.tensor([4]), torch.randn(1, 8))
    loss = NCESoftmaxLoss()(out_v1) + NCESoftmaxLoss()(out_v2)
    assert loss.shape == ()
    loss.backward()
    assert v.grad is not None and torch.isfinite(v.grad).all()
    nce = MemoryBankNCE(8, 20, k=5, softmax=False)
    out_v1, _ = nce(v.detach(), v.detach(), torch.tensor([4]), torch.randn(1, 8))
    assert NCECriterion(20)(out_v1).shape == (1,)


def test_negative_gradient_option_routes_gradient_to_negative() -> None:
    torch.manual_seed(0)
    contrast = MemoryBankNCE(8, 20, k=5, negative_gradient=True)
    v1, v2, neg = (torch.randn(2, 8, requires_grad=True) for _ in range(3))
    out_v1, out_v2 = contrast(v1, v2, torch.tensor([1, 2]), neg)
    (NCESoftmaxLoss()(out_v1) + NCESoftmaxLoss()(out_v2)).backward()
    assert neg.grad is not None and neg.grad.abs().sum() > 0
    # column k+1 is the current intra-negative's score, not the stored one
    expected = (neg * v1).sum(1) / contrast.temperature
    torch.testing.assert_close(out_v1[:, contrast.k + 1, 0], expected)


def test_normalize_option_makes_scores_scale_free() -> None:
    torch.manual_seed(0)
    a = MemoryBankNCE(8, 20, k=5, normalize=True)
    b = MemoryBankNCE(8, 20, k=5, normalize=True)
    b.load_state_dict(a.state_dict())
    v1, v2, neg = torch.randn(2, 8), torch.randn(2, 8), torch.randn(2, 8)
    idx = a.sample_indices(torch.tensor([1, 2]))
    out_a = a(v1, v2, torch.tensor([1, 2]), neg, sample_idx=idx)[0]
    out_b = b(10 * v1, 10 * v2, torch.tensor([1, 2]), 10 * neg, sample_idx=idx)[0]
    torch.testing.assert_close(out_a, out_b)
    torch.testing.assert_close(a.memory_v1, b.memory_v1)


def test_sampling_is_seeded_and_uniform() -> None:
    contrast = MemoryBankNCE(4, 10, k=5000)
    torch.manual_seed(7)
    first = contrast.sample_indices(torch.tensor([3, 4]))
    torch.manual_seed(7)
    again = contrast.sample_indices(torch.tensor([3, 4]))
    assert torch.equal(first, again)
    assert first[:, 0].tolist() == [3, 4]
    counts = torch.bincount(first[:, 1:].reshape(-1), minlength=10).float()
    assert counts.min() > 0.85 * counts.mean() and counts.max() < 1.15 * counts.mean()


def test_argument_errors() -> None:
    with pytest.raises(ValueError, match="feat_neg"):
        MemoryBankNCE(4, 10, k=3)(torch.randn(2, 4), torch.randn(2, 4), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="temperature"):
        MemoryBankNCE(4, 10, temperature=0)
    with pytest.raises(ValueError, match=r"\(B, 4\)"):
        MemoryBankNCE(4, 10, k=3)(torch.randn(2, 5), torch.randn(2, 5), torch.tensor([0, 1]))


def test_module_follows_its_device_and_dtype() -> None:
    contrast = MemoryBankNCE(4, 10, k=3).double()
    assert contrast.memory_v1.dtype == torch.float64
    v = torch.randn(2, 4, dtype=torch.float64)
    out_v1, _ = contrast(v, v, torch.tensor([0, 1]), v)
    assert out_v1.dtype == torch.float64


def test_loss_decreases_with_gradient_steps() -> None:
    """A few SGD steps on free features lower the loss (the objective is trainable)."""
    torch.manual_seed(0)
    contrast = MemoryBankNCE(8, 16, k=8, normalize=True)
    feats = torch.nn.Parameter(torch.randn(16, 8))
    opt = torch.optim.SGD([feats], lr=0.5)
    index = torch.arange(16)
    losses = []
    for _ in range(30):
        out_v1, out_v2 = contrast(feats, feats, index, feats.detach().flip(1))
        loss = NCESoftmaxLoss()(out_v1) + NCESoftmaxLoss()(out_v2)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] - 1.0

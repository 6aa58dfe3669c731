"""Notebook 02's exercise checks pass the solution and catch blanks, constants and typical
mistakes with a message naming them."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from iic_helpers.exercises.contrast import check_bank_update, check_scores


def solution_scores(z, z_neg, bank, bank_neg, idx, tau):
    pos_inter = torch.einsum("bkd,bd->bk", bank[idx], z)
    intra = torch.einsum("bkd,bd->bk", bank_neg[idx], z)
    own = (z * z_neg).sum(1, keepdim=True)
    return torch.cat([pos_inter, own, intra[:, 1:]], 1) / tau


def no_temperature(z, z_neg, bank, bank_neg, idx, tau):
    return solution_scores(z, z_neg, bank, bank_neg, idx, tau) * tau


def intra_first(z, z_neg, bank, bank_neg, idx, tau):
    s = solution_scores(z, z_neg, bank, bank_neg, idx, tau)
    k1 = idx.shape[1]
    return torch.cat([s[:, k1:], s[:, :k1]], 1)


def stored_negative(z, z_neg, bank, bank_neg, idx, tau):
    return solution_scores(z, bank_neg[idx[:, 0]], bank, bank_neg, idx, tau)


def detached_negative(z, z_neg, bank, bank_neg, idx, tau):
    return solution_scores(z, z_neg.detach(), bank, bank_neg, idx, tau)


def cmc_only(z, z_neg, bank, bank_neg, idx, tau):
    return torch.einsum("bkd,bd->bk", bank[idx], z) / tau


def blank(*args):
    raise NotImplementedError


def constant_scores(z, z_neg, bank, bank_neg, idx, tau):
    return torch.ones(z.shape[0], 2 * idx.shape[1])


def test_check_scores_passes_the_solution(capsys) -> None:
    state = torch.random.get_rng_state()
    assert check_scores(solution_scores)
    assert torch.equal(state, torch.random.get_rng_state()), "the check must not move the RNG"
    assert "✓" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("fn", "message"),
    [
        (no_temperature, "temperature"),
        (intra_first, "column 0"),
        (stored_negative, "current intra-negative"),
        (detached_negative, "no gradient"),
        (cmc_only, "CMC"),
        (blank, "not written yet"),
        (constant_scores, "constant"),
    ],
)
def test_check_scores_names_the_mistake(fn, message, capsys) -> None:
    assert not check_scores(fn)
    out = capsys.readouterr().out
    assert "✗" in out and message in out, out


def solution_update(memory, index, feat, momentum):
    memory = memory.clone()
    memory[index] = F.normalize(momentum * memory[index] + (1 - momentum) * feat, dim=1)
    return memory


def unnormalized_update(memory, index, feat, momentum):
    memory = memory.clone()
    memory[index] = momentum * memory[index] + (1 - momentum) * feat
    return memory


def swapped_momentum(memory, index, feat, momentum):
    memory = memory.clone()
    memory[index] = F.normalize((1 - momentum) * memory[index] + momentum * feat, dim=1)
    return memory


def in_place_without_return(memory, index, feat, momentum):
    memory[index] = F.normalize(momentum * memory[index] + (1 - momentum) * feat, dim=1)


def constant_memory(memory, index, feat, momentum):
    return torch.zeros_like(memory)


def test_check_bank_update_passes_the_solution(capsys) -> None:
    assert check_bank_update(solution_update)
    assert "✓" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("fn", "message"),
    [
        (unnormalized_update, "normalized"),
        (swapped_momentum, "wrong term"),
        (in_place_without_return, "return the updated memory"),
        (blank, "not written yet"),
        (constant_memory, "constant"),
    ],
)
def test_check_bank_update_names_the_mistake(fn, message, capsys) -> None:
    assert not check_bank_update(fn)
    out = capsys.readouterr().out
    assert "✗" in out and message in out, out

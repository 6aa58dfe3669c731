"""Notebook 01's residual check: passes a correct answer, names typical mistakes."""

from __future__ import annotations

import pytest
import torch

from iic_helpers.exercises.residuals import check_residual, held_out_clips
from iic_helpers.views import residual


def by_hand(clip: torch.Tensor) -> torch.Tensor:
    """The notebook's solution: frame t minus frame t-1, frame 0 minus the last frame."""
    previous = torch.cat([clip[:, -1:], clip[:, :-1]], dim=1)
    return (clip - previous + 1) / 2


def blank(clip: torch.Tensor) -> torch.Tensor:
    raise NotImplementedError


def wrong_direction(clip: torch.Tensor) -> torch.Tensor:
    return (clip - torch.roll(clip, -1, dims=1) + 1) / 2


def no_scaling(clip: torch.Tensor) -> torch.Tensor:
    return clip - torch.roll(clip, 1, dims=1)


def no_halving(clip: torch.Tensor) -> torch.Tensor:
    return clip - torch.roll(clip, 1, dims=1) + 1


def flipped_sign(clip: torch.Tensor) -> torch.Tensor:
    return (torch.roll(clip, 1, dims=1) - clip + 1) / 2


def frame0_grey(clip: torch.Tensor) -> torch.Tensor:
    out = torch.full_like(clip, 0.5)
    out[:, 1:] = (clip[:, 1:] - clip[:, :-1] + 1) / 2
    return out


def drops_frame0(clip: torch.Tensor) -> torch.Tensor:
    return (clip[:, 1:] - clip[:, :-1] + 1) / 2


def wrong_axis(clip: torch.Tensor) -> torch.Tensor:
    return (clip - torch.roll(clip, 1, dims=3) + 1) / 2


def constant(clip: torch.Tensor) -> torch.Tensor:
    return torch.full_like(clip, 0.5)


def hard_coded_16(clip: torch.Tensor) -> torch.Tensor:
    return (clip - clip[:, [15] + list(range(15))] + 1) / 2


def returns_numpy(clip: torch.Tensor):
    return residual(clip).numpy()


@pytest.mark.parametrize("fn", [residual, by_hand])
def test_correct_answers_pass(fn, capsys) -> None:
    assert check_residual(fn) is True
    assert capsys.readouterr().out.startswith("✓")


@pytest.mark.parametrize(
    ("fn", "hint"),
    [
        (blank, "NotImplementedError"),
        (wrong_direction, "wrong roll direction"),
        (no_scaling, "missing the scaling"),
        (no_halving, "missing the / 2"),
        (flipped_sign, "sign flipped"),
        (frame0_grey, "frame 0"),
        (drops_frame0, "dropped a frame"),
        (wrong_axis, "width axis"),
        (constant, "same value everywhere"),
        (hard_coded_16, "IndexError"),
        (returns_numpy, "torch.Tensor"),
    ],
)
def test_typical_mistakes_fail_with_a_hint(fn, hint, capsys) -> None:
    assert check_residual(fn) is False
    out = capsys.readouterr().out
    assert out.startswith("✗") and hint in out, out


def test_held_out_clips_are_not_the_notebooks_and_leave_inputs_alone() -> None:
    clips = held_out_clips()
    assert [c.shape[1] for c in clips] != [16] * len(clips)  # the notebook's clip length
    before = [c.clone() for c in held_out_clips()]

    def mutating(clip: torch.Tensor) -> torch.Tensor:
        out = residual(clip)
        clip.zero_()
        return out

    assert check_residual(mutating, verbose=False)
    assert all(torch.equal(a, b) for a, b in zip(before, held_out_clips(), strict=True))

"""Notebook 05's exercise check passes the solution and names typical mistakes."""

from __future__ import annotations

import pytest

from iic_helpers.exercises.finetune import check_video_accuracy


def solution(logits, labels):
    return (logits.mean(1).argmax(1) == labels).float().mean().item()


def clip_accuracy(logits, labels):
    return (logits.argmax(2) == labels[:, None]).float().mean().item()


def first_clip(logits, labels):
    return (logits[:, 0].argmax(1) == labels).float().mean().item()


def percent(logits, labels):
    return 100 * solution(logits, labels)


def blank(logits, labels):
    raise NotImplementedError


def constant(logits, labels):
    return 0.25


def test_check_video_accuracy_passes_the_solution(capsys) -> None:
    assert check_video_accuracy(solution)
    assert "✓" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("fn", "message"),
    [
        (clip_accuracy, "clip accuracy"),
        (first_clip, "first clip"),
        (percent, "percentage"),
        (blank, "not written yet"),
        (constant, "expected"),
    ],
)
def test_check_video_accuracy_names_the_mistake(fn, message, capsys) -> None:
    assert not check_video_accuracy(fn)
    out = capsys.readouterr().out
    assert "✗" in out and message in out, out

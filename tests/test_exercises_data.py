"""Notebook 00's split-line check: passes a correct parser, names typical mistakes."""

from __future__ import annotations

import re
from collections.abc import Sequence

import pytest

from iic_helpers.exercises.data import HELD_OUT_CLASSES, check_parse_split_line, held_out_lines


def solution(line: str, classes: Sequence[str]) -> tuple[str, int, int]:
    """The notebook's solution."""
    entry = line.split()[0]
    class_name = entry.split("/")[0]
    group = int(re.search(r"_g(\d+)_c\d+", entry).group(1))
    return class_name, list(classes).index(class_name), group


def blank(line, classes):
    raise NotImplementedError


def one_based(line, classes):
    name, label, group = solution(line, classes)
    return name, label + 1, group


def label_from_list(line, classes):  # crashes on test lines, which have no label
    name, _, group = solution(line, classes)
    return name, int(line.split()[1]) - 1, group


def clip_as_group(line, classes):
    name, label, _ = solution(line, classes)
    return name, label, int(re.search(r"_c(\d+)", line).group(1))


def group_as_text(line, classes):
    name, label, group = solution(line, classes)
    return name, label, f"{group:02d}"


def split_on_underscore(line, classes):  # v_brush_hair_g12_c03 breaks this
    name, label, _ = solution(line, classes)
    return name, label, int(line.split("/")[1].split("_")[2][1:])


def constant(line, classes):
    return ("Archery", 0, 1)


def class_from_file_name(line, classes):
    _, label, group = solution(line, classes)
    return line.split("/")[1].split("_")[1], label, group


def test_held_out_lines_come_from_read_split() -> None:
    cases = held_out_lines()
    assert len(cases) == 6 and any(len(line.split()) == 1 for line, *_ in cases)
    assert ("brush_hair/v_brush_hair_g12_c03.avi 2", "brush_hair", 1, 12) in cases
    assert "MoveRight" not in HELD_OUT_CLASSES  # not the notebook's synthetic classes


def test_solution_passes(capsys) -> None:
    assert check_parse_split_line(solution) is True
    assert capsys.readouterr().out.startswith("✓")


@pytest.mark.parametrize(
    ("fn", "hint"),
    [
        (blank, "NotImplementedError"),
        (one_based, "count from 1"),
        (label_from_list, "test-list lines have no label"),
        (clip_as_group, "clip number"),
        (group_as_text, "return it as an int"),
        (split_on_underscore, "after '_g'"),
        (constant, "same answer"),
        (class_from_file_name, "folder part"),
    ],
)
def test_typical_mistakes_fail_with_a_hint(fn, hint, capsys) -> None:
    assert check_parse_split_line(fn) is False
    out = capsys.readouterr().out
    assert out.startswith("✗") and hint in out, out

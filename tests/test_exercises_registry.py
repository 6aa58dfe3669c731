"""Every answer check, found through the flat registry: none passes a blank or a constant."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest
import torch

import iic_helpers.exercises as exercises


def _blank(*args, **kwargs):
    raise NotImplementedError("Exercise: not written yet")


def _constant(value):
    def answer(*args, **kwargs):
        return value

    answer.__name__ = f"constant_{type(value).__name__}"
    return answer


ANSWERS = {
    "blank": _blank,
    "none": _constant(None),
    "zero": _constant(0),
    "half": _constant(0.5),
    "tensor": _constant(torch.zeros(3)),
    "array": _constant(np.zeros(3)),
    "tuple": _constant(("MoveRight", 0, 1)),
}


def test_registry_finds_every_check_of_every_submodule() -> None:
    import importlib
    import pkgutil

    found = set()
    for info in pkgutil.iter_modules(exercises.__path__):
        if not info.name.startswith("_"):
            module = importlib.import_module(f"iic_helpers.exercises.{info.name}")
            found |= {n for n in dir(module) if n.startswith("check_")}
    assert found and found == set(exercises.CHECKS)
    for name, fn in exercises.CHECKS.items():
        assert getattr(exercises, name) is fn and name in exercises.__all__


def _passes(check, answer) -> bool:
    with contextlib.redirect_stdout(io.StringIO()):
        try:
            return check(answer) is True
        except Exception:  # a check may fail by raising (AssertionError with its message)
            return False


@pytest.mark.parametrize("answer", list(ANSWERS), ids=str)
@pytest.mark.parametrize("name", sorted(exercises.CHECKS))
def test_no_check_passes_a_blank_or_a_constant_answer(name: str, answer: str) -> None:
    assert not _passes(exercises.CHECKS[name], ANSWERS[answer]), f"{name} passed {answer}"


def test_the_registry_test_can_fail() -> None:
    """A check that accepts anything is caught."""
    assert _passes(lambda fn: True, ANSWERS["blank"])


@pytest.mark.parametrize("name", sorted(exercises.CHECKS))
def test_a_student_blank_stops_at_the_check_naming_its_exercise(name: str) -> None:
    """The NotImplementedError of a `make student` blank propagates, after the check's report;
    a bare NotImplementedError (not a generated blank) is only reported."""
    import importlib

    module = importlib.import_module(f"iic_helpers.exercises.{exercises.CHECK_MODULES[name]}")
    assert getattr(module, name) is exercises.CHECKS[name], "notebooks import the wrapped check"

    def blank(*args, **kwargs):
        raise NotImplementedError("Exercise 7: write it")

    with (
        contextlib.redirect_stdout(io.StringIO()),
        pytest.raises(NotImplementedError, match="Exercise 7"),
    ):
        exercises.CHECKS[name](blank)

    def bare(*args, **kwargs):
        raise NotImplementedError

    with contextlib.redirect_stdout(io.StringIO()):
        assert not _passes(exercises.CHECKS[name], bare)

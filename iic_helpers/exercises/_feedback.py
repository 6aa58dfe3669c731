"""Shared plumbing of the exercise checks: call the student's function, compare, report."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

__all__ = ["call", "report", "same", "diagnose", "as_float_tensor"]

NOT_WRITTEN = "not written yet: replace `raise NotImplementedError` with your code"


def call(fn: Callable[..., Any], *args: Any) -> tuple[Any, str | None]:
    """``(result, None)``, or ``(None, what went wrong)`` when ``fn`` raised."""
    try:
        return fn(*args), None
    except NotImplementedError:
        return None, NOT_WRITTEN
    except Exception as err:  # noqa: BLE001 - any failure of student code becomes feedback
        return None, f"your function raised {type(err).__name__}: {err}"


def as_float_tensor(x: Any) -> torch.Tensor | None:
    """``x`` as a float64 tensor (numpy, torch, Python numbers), or ``None`` if impossible."""
    try:
        if isinstance(x, torch.Tensor):
            return x.detach().double().cpu()
        return torch.as_tensor(np.asarray(x, dtype=np.float64))
    except (TypeError, ValueError):
        return None


def same(a: Any, b: Any, atol: float = 1e-5) -> bool:
    """Equal shape and values (to ``atol``), whatever the container."""
    a, b = as_float_tensor(a), as_float_tensor(b)
    return (
        a is not None
        and b is not None
        and a.shape == b.shape
        and bool(torch.allclose(a, b, atol=atol, rtol=1e-5))
    )


def diagnose(answer: Any, mistakes: Sequence[tuple[Any, str]]) -> str | None:
    """The message of the first typical mistake whose result equals ``answer``."""
    for wrong, message in mistakes:
        if same(answer, wrong):
            return message
    return None


def report(name: str, problem: str | None) -> bool:
    """Print ✓ (``problem is None``) or ✗ with the problem; return whether it passed."""
    print(f"✓ {name}: correct" if problem is None else f"✗ {name}: {problem}")
    return problem is None

"""Automatic answer checks for the notebooks' coding exercises.

One submodule per notebook topic (e.g. ``iic_helpers.exercises.residuals``); each check
runs a student's function on held-out inputs against the package's implementation and
prints ✓ or a message pointing at the likely mistake.

Every public ``check_*`` function of every submodule is also available here, flat
(``from iic_helpers.exercises import check_residual``), and listed in :data:`CHECKS`
(name -> function), which the tests walk to make sure that no check passes a blank
(``raise NotImplementedError``) or a constant answer. A new submodule is picked up
without editing this file.

A blank of a student notebook (``make student``) raises
``NotImplementedError("Exercise N: …")``. Checks report a blank as "not written yet"; each
check is wrapped here (also where the notebook imports it from its submodule) so that, after
its report, such a blank's error propagates: the student notebook then stops at the first
blank with the error naming the exercise. A bare ``NotImplementedError`` is only reported.

    >>> "check_residual" in CHECKS and CHECKS["check_residual"] is check_residual
    True
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
from collections.abc import Callable
from typing import Any

#: Every answer check, by name, from every submodule (sorted by name).
CHECKS: dict[str, Callable[..., object]] = {}
#: The submodule that defines each check (e.g. ``"check_residual": "residuals"``).
CHECK_MODULES: dict[str, str] = {}


def _stop_at_blanks(check: Callable[..., Any]) -> Callable[..., Any]:
    """``check`` that re-raises a student blank's ``NotImplementedError("Exercise …")``."""
    if getattr(check, "_stops_at_blanks", False):
        return check

    @functools.wraps(check)
    def wrapped(fn: Any, *args: Any, **kwargs: Any) -> Any:
        blanks: list[NotImplementedError] = []

        def student(*a: Any, **k: Any) -> Any:
            try:
                return fn(*a, **k)
            except NotImplementedError as err:
                if str(err).startswith("Exercise"):
                    blanks.append(err)
                raise

        if callable(fn):
            functools.update_wrapper(student, fn)
        try:
            result = check(student if callable(fn) else fn, *args, **kwargs)
        except Exception:
            if blanks:
                raise blanks[0] from None
            raise
        if blanks:
            raise blanks[0]
        return result

    wrapped._stops_at_blanks = True  # type: ignore[attr-defined]
    return wrapped


def _collect() -> None:
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        for name in getattr(module, "__all__", dir(module)):
            value = getattr(module, name)
            if name.startswith("check_") and callable(value):
                value = _stop_at_blanks(value)
                setattr(module, name, value)  # also for `from .residuals import check_…`
                if name in CHECKS and CHECKS[name] is not value:
                    raise ImportError(f"iic_helpers.exercises: two checks named {name}")
                CHECKS[name] = value
                CHECK_MODULES[name] = info.name
                globals()[name] = value


_collect()
__all__ = ["CHECKS", "CHECK_MODULES", *sorted(CHECKS)]

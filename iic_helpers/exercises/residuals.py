"""Answer check for notebook 01's coding exercise: residual frames written by hand.

:func:`check_residual` runs a student's ``fn(clip) -> residual`` on held-out clips (not the
notebook's) and compares it with :func:`iic_helpers.views.residual`. On a mismatch it names
the likely mistake: the wrong roll direction, a flipped sign, a missing ``+ 1`` or ``/ 2``,
frame 0 not wrapped around to the last frame, the wrong axis, a constant answer.

    >>> from iic_helpers.views import residual
    >>> check_residual(residual)
    ✓ residual: matches iic_helpers.views.residual on 3 held-out clips
    True
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..views import TIME_DIM, residual

__all__ = ["check_residual", "held_out_clips"]

ResidualFn = Callable[[torch.Tensor], torch.Tensor]


def held_out_clips() -> list[torch.Tensor]:
    """Three clips ``(C, T, H, W)`` in ``[0, 1]`` that no notebook uses.

    Random clips of two lengths (so a hard-coded ``T = 16`` fails) and a bright square
    moving right on a grey background (so the time direction is unambiguous).
    """
    g = torch.Generator().manual_seed(20_201_012)
    moving = torch.full((3, 6, 8, 8), 0.3)
    for t in range(6):
        moving[:, t, 2:5, t : t + 3] = 0.9
    return [
        torch.rand(3, 8, 5, 6, generator=g),
        torch.rand(1, 5, 4, 7, generator=g),
        moving,
    ]


def _close(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.shape == b.shape and torch.allclose(a.float(), b.float(), atol=1e-5)


def _diagnose(clip: torch.Tensor, out: torch.Tensor, name: str) -> str:
    """The likeliest mistake that turns ``clip`` into ``out`` (the shapes already agree)."""
    t = TIME_DIM
    diff = clip - torch.roll(clip, 1, t)
    guesses = [
        (
            (clip - torch.roll(clip, -1, t) + 1) / 2,
            "wrong roll direction: you computed frame t minus frame t+1. The residual is "
            "frame t minus frame t-1: torch.roll(x, shifts=1, dims=1)",
        ),
        (
            (torch.roll(clip, 1, t) - clip + 1) / 2,
            "sign flipped: you computed x[t-1] - x[t]; the residual is x[t] - x[t-1]",
        ),
        (
            diff,
            "missing the scaling: the difference lies in [-1, 1]; map it to [0, 1] with "
            "(difference + 1) / 2",
        ),
        (diff + 1, "missing the / 2 after the + 1: values must lie in [0, 1]"),
        (diff / 2, "missing the + 1 before the / 2: 'no change' must be 0.5, not 0"),
        (diff / 2 + 1, "+ 1 added after halving: use (difference + 1) / 2"),
    ]
    for dim, axis in ((0, "channel"), (2, "height"), (3, "width")):
        guesses.append(
            (
                (clip - torch.roll(clip, 1, dim) + 1) / 2,
                f"rolled along the {axis} axis (dim {dim}): time is dim 1 of (C, T, H, W)",
            )
        )
    for guess, message in guesses:
        if _close(out, guess):
            return message
    expected = residual(clip)
    if _close(out[:, 1:], expected[:, 1:]):
        return (
            "frames 1..T-1 are right but frame 0 is not: frame 0 is differenced against the "
            "LAST frame (wrap-around, as torch.roll does), not set to 0.5 or copied"
        )
    error = (out.float() - expected).abs()
    frame = int(error.amax(dim=(0, 2, 3)).argmax())
    return (
        f"wrong values (largest error {error.max().item():.3g}, at frame {frame}); try "
        f"{name} on a clip of 3 frames and compare with ((x[t] - x[t-1]) + 1) / 2 by hand"
    )


def check_residual(fn: ResidualFn, *, verbose: bool = True) -> bool:
    """Check a hand-written residual ``fn(clip (C, T, H, W)) -> (C, T, H, W)``.

    Args:
        fn: the student's function; it gets float clips in ``[0, 1]`` shaped
            ``(C, T, H, W)`` with various ``C``, ``T``, ``H``, ``W``.
        verbose: print ✓ or ✗ with the likely mistake.

    Returns:
        True when ``fn`` matches :func:`iic_helpers.views.residual` on every held-out clip.
    """
    name = getattr(fn, "__name__", "your function")

    def fail(message: str) -> bool:
        if verbose:
            print(f"✗ {name}: {message}")
        return False

    outputs = []
    for clip in held_out_clips():
        shape = tuple(clip.shape)
        try:
            out = fn(clip.clone())
        except NotImplementedError:
            return fail("not written yet (it raises NotImplementedError): replace that line")
        except Exception as err:  # noqa: BLE001 (the student's error is the message)
            return fail(f"raised {type(err).__name__}: {err} (on a clip of shape {shape})")
        if not isinstance(out, torch.Tensor):
            return fail(f"returned {type(out).__name__}; return a torch.Tensor")
        if out.shape != clip.shape:
            hint = ""
            if out.dim() == 4 and out.shape[1] == clip.shape[1] - 1:
                hint = (
                    ": you dropped a frame; keep all T frames and difference frame 0 against "
                    "the last frame (torch.roll wraps around)"
                )
            return fail(f"returned shape {tuple(out.shape)} for a clip of shape {shape}{hint}")
        outputs.append((clip, out))
    if all(torch.equal(out, outputs[0][1].flatten()[0].expand_as(out)) for _, out in outputs):
        return fail("the same value everywhere whatever the clip: compute it from the frames")
    for clip, out in outputs:
        if not _close(out, residual(clip)):
            return fail(_diagnose(clip, out, name))
    if verbose:
        print(f"✓ {name}: matches iic_helpers.views.residual on {len(outputs)} held-out clips")
    return True

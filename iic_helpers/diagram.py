"""The IIC pipeline as a diagram drawn by code (notebook 02), so it is reproducible and can
follow the preset's values.

anchor / positive / intra-negative -> one shared 3D CNN -> features -> memory banks ->
``2k+2`` scores -> loss, with the bank update after the step.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.patches import FancyBboxPatch

__all__ = ["draw_iic_pipeline"]

_INPUT = "#dbe9f6"
_NET = "#fde4c8"
_FEAT = "#e2f0d9"
_BANK = "#eadcf0"
_LOSS = "#f8d7da"


def _box(ax: plt.Axes, x: float, y: float, w: float, h: float, text: str, color: str) -> None:
    """A rounded box with its lower-left corner at ``(x, y)`` and centred text."""
    ax.add_patch(
        FancyBboxPatch(
            (x, y), w, h, boxstyle="round,pad=0.02,rounding_size=0.08", fc=color, ec="0.3", lw=1
        )
    )
    ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=8.5)


def _arrow(
    ax: plt.Axes,
    start: tuple[float, float],
    end: tuple[float, float],
    *,
    style: str = "-|>",
    color: str = "0.25",
    dashed: bool = False,
    text: str | None = None,
    text_below: bool = False,
) -> None:
    ax.annotate(
        "",
        xy=end,
        xytext=start,
        arrowprops={
            "arrowstyle": style,
            "color": color,
            "lw": 1.2,
            "linestyle": "--" if dashed else "-",
            "shrinkA": 0,
            "shrinkB": 0,
        },
    )
    if text:
        ax.text(
            (start[0] + end[0]) / 2,
            min(start[1], end[1]) - 0.3 if text_below else max(start[1], end[1]) + 0.12,
            text,
            ha="center",
            fontsize=7.5,
            color=color,
        )


def draw_iic_pipeline(
    ax: plt.Axes | None = None,
    *,
    k: int | str = "k",
    temperature: float | str = "τ",
    momentum: float | str = "m",
    normalized: bool = True,
    centered: bool = True,
    negative_gradient: bool = True,
) -> plt.Figure:
    """Draw one IIC training step as boxes and arrows.

    Args:
        ax: axes to draw on (a new ``(12, 4.6)`` figure when ``None``).
        k: inter-negatives drawn per sample (a number, e.g. ``cfg.k``, or a symbol).
        temperature: ``tau`` shown in the score box.
        momentum: memory-bank momentum shown on the update arrow.
        normalized, centered: whether the feature box says "centre" / "L2-normalize"
            (the tiny preset does both; the paper's recipe neither).
        negative_gradient: column ``k+1`` scores the current intra-negative feature (with
            gradient, the tiny preset) rather than its stored bank row (the paper).

    Returns:
        The figure (axes without ticks; data coordinates 0..12 by 0..4.6).
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(12, 4.6))
    fig = ax.figure
    ax.set_xlim(0, 12)
    ax.set_ylim(0, 4.6)
    ax.axis("off")
    columns = f"{2 * k + 2}" if isinstance(k, int) else "2k+2"
    rows = [  # (y, input, feature, role in the scores)
        (3.1, "anchor\nRGB clip $x_i$", "$z^1_i$", "anchor"),
        (1.8, "positive\nresidual $r(x_i)$", "$z^2_i$", "positive"),
        (0.5, "intra-negative\n$\\tilde{x}_i$ (repeat/shuffle)", "$z^n_i$", "intra"),
    ]
    steps = [s for s, on in (("centre", centered), ("L2-normalize", normalized)) if on]
    feature_text = "features: " + (" + ".join(steps) if steps else "as they come")
    _box(ax, 2.6, 0.45, 1.5, 3.3, "shared\n3D CNN $f$\n(one set of\nweights,\n3 passes)", _NET)
    for y, name, feat, _ in rows:
        _box(ax, 0.1, y, 1.9, 0.75, name, _INPUT)
        _arrow(ax, (2.0, y + 0.37), (2.6, y + 0.37))
        _box(ax, 4.7, y, 1.4, 0.75, f"{feat}\n(B, D)", _FEAT)
        _arrow(ax, (4.1, y + 0.37), (4.7, y + 0.37))
    ax.text(5.4, 0.15, feature_text, ha="center", va="center", fontsize=8)
    _box(
        ax,
        6.9,
        1.55,
        1.8,
        2.2,
        "memory banks\n$m^1, m^2, m^n$\n(one row per video)\n\n"
        f"rows: own $i$ +\n{k} drawn at random",
        _BANK,
    )
    for y, _, _, _ in rows[:2]:
        _arrow(ax, (6.1, y + 0.37), (6.9, min(max(y + 0.37, 1.7), 3.6)))
    _box(
        ax,
        9.2,
        1.55,
        1.3,
        2.2,
        f"{columns} scores\nper view\n÷ τ = {temperature}\n\n"
        f"col 0: positive\ncol {k}+1: own\nintra-negative"
        + ("" if negative_gradient else "\n(stored row)"),
        _LOSS,
    )
    _arrow(ax, (8.7, 2.65), (9.2, 2.65))
    if negative_gradient:
        _arrow(
            ax,
            (6.1, 0.87),
            (9.85, 1.55),
            text="current $z^n_i$ (with gradient) in column k+1",
            text_below=True,
        )
    _box(ax, 10.9, 2.1, 1.0, 1.1, "softmax\ncross-\nentropy,\ntarget 0", _LOSS)
    _arrow(ax, (10.5, 2.65), (10.9, 2.65))
    _arrow(
        ax,
        (5.4, 3.85),
        (7.8, 3.75),
        style="-|>",
        dashed=True,
        color="tab:purple",
        text=f"after the step: rows $i$ ← features (momentum {momentum})",
    )
    ax.set_title("One IIC training step", fontsize=11)
    return fig

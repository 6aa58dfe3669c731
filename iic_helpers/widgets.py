"""ipywidgets viewers for the notebooks (they also render, inertly, in headless runs)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import matplotlib.pyplot as plt

from .viz import to_frames

__all__ = ["clip_viewer"]


def clip_viewer(views: Mapping[str, Any], *, scale: float = 3.0):
    """Scrub through the frames of a clip and switch between its views.

    Args:
        views: view name -> clip (``(C, T, H, W)`` tensor or ``(T, H, W, 3)`` uint8).

    Returns:
        An ``ipywidgets.VBox`` (display it as the cell's last expression).
    """
    import ipywidgets as widgets

    clips = {name: to_frames(clip) for name, clip in views.items()}
    length = min(len(c) for c in clips.values())
    frame = widgets.IntSlider(value=0, min=0, max=length - 1, description="frame t")
    view = widgets.ToggleButtons(options=list(clips), description="view")
    output = widgets.Output()

    def draw(*_: Any) -> None:
        with output:
            output.clear_output(wait=True)
            fig, ax = plt.subplots(figsize=(scale, scale))
            ax.imshow(clips[view.value][frame.value], interpolation="nearest")
            ax.set_title(f"{view.value}, frame {frame.value}")
            ax.axis("off")
            plt.show()

    frame.observe(draw, names="value")
    view.observe(draw, names="value")
    draw()
    return widgets.VBox([widgets.HBox([view, frame]), output])

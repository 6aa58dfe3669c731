"""Embedding explorer: any checkpoint's video embeddings as one interactive, offline HTML page.

    python -m iic_helpers explore --checkpoint runs/iic/checkpoint.pt --out explorer.html

Per checkpoint a panel with a 2-D projection (PCA to at most 50 dimensions, then UMAP,
t-SNE or PCA) of the retrieval features; hover shows a video's looping thumbnail, a click
lists its nearest videos in every panel; colour by class, group or split; optional extra
points for each video's intra-negatives (repeat, shuffle) and residual view.
"""

from __future__ import annotations

import html as _html
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..paths import RUNS
from .data import (
    EXTRA_KINDS,
    SPLITS,
    VIEWS,
    Panel,
    VideoTable,
    add_thumbnails,
    panel_for_checkpoint,
    thumbnail_sample,
    video_table,
)
from .page import COLOR_MODES, build_layout, check_writable, page_html, write_page

__all__ = [
    "COLOR_MODES",
    "EXTRA_KINDS",
    "SPLITS",
    "VIEWS",
    "Panel",
    "VideoTable",
    "build_explorer",
    "explore",
    "iframe",
    "thumbnail_sample",
]

DEFAULT_CACHE = RUNS / "explore-cache"  # the repository's runs/, whatever the CWD


def build_explorer(
    cfg: Any,
    checkpoints: Sequence[str | Path],
    *,
    names: Sequence[str] | None = None,
    split: str = "test",
    view: str = "merged",
    method: str = "umap",
    color_by: str = "class",
    extras: Sequence[str] = (),
    k: int = 5,
    thumbnails: int = 600,
    thumb_size: int = 48,
    thumb_frames: int = 8,
    max_videos: int | None = None,
    cache_root: str | Path = DEFAULT_CACHE,
    progress: bool = True,
) -> tuple[Any, VideoTable, list[Panel]]:
    """The Bokeh layout for ``checkpoints`` (``"random"``: a random network), with its data.

    Returns ``(layout, table, panels)``; ``table`` holds the videos, ``panels`` one
    :class:`Panel` per checkpoint (coordinates ``(N, 2)``, neighbours ``(N, k)``).
    """
    if not checkpoints:
        raise ValueError("pass at least one --checkpoint (a file, or 'random')")
    cache_root = Path(cache_root)
    table = video_table(cfg, split, max_videos=max_videos)
    names = list(names) if names is not None else [None] * len(checkpoints)
    panels = [
        panel_for_checkpoint(
            cfg,
            ckpt,
            cache_root=cache_root,
            split=split,
            view=view,
            method=method,
            extras=extras,
            k=k,
            max_videos=max_videos,
            progress=progress,
            name=name,
        )  # fmt: skip
        for ckpt, name in zip(checkpoints, names, strict=True)
    ]
    add_thumbnails(
        table, cache_root, n_thumbnails=thumbnails, max_size=thumb_size,
        max_frames=thumb_frames, progress=progress,
    )  # fmt: skip
    title = f"{cfg.preset} preset · {split} videos · {view} features · {method}"
    layout = build_layout(table, panels, color_by=color_by, title=title, thumb_px=thumb_size)
    return layout, table, panels


def explore(cfg: Any, checkpoints: Sequence[str | Path], out: str | Path, **options: Any) -> Path:
    """Write the explorer page for ``checkpoints`` to ``out`` (atomically); returns ``out``.

    ``options`` as :func:`build_explorer`. The output path is checked before any work.
    """
    check_writable(Path(out))
    layout, _, _ = build_explorer(cfg, checkpoints, **options)
    return write_page(page_html(layout), out)


def iframe(page: str | Path, height: int = 1000) -> Any:
    """A notebook output showing a written page inline (an ``<iframe srcdoc>``: interactive
    in JupyterLab, Notebook and VS Code, no server route needed)."""
    import warnings

    from IPython.display import HTML

    text = Path(page).read_text(encoding="utf-8")
    markup = (
        f'<iframe srcdoc="{_html.escape(text, quote=True)}" width="100%" height="{height}" '
        'style="border: 1px solid #ddd"></iframe>'
    )
    with warnings.catch_warnings():  # "Consider using IPython.display.IFrame": it needs a URL
        warnings.filterwarnings("ignore", message="Consider using IPython.display.IFrame")
        return HTML(markup)

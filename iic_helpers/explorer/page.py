"""The explorer page: linked Bokeh scatter panels, GIF tooltips, neighbour lists (one HTML file).

Bokeh was chosen over Plotly after measuring both on the tiny preset (``benchmarks/
bench_explorer.py``): its inlined JavaScript is several times smaller, and its tooltips
take HTML templates (an ``<img>`` with a GIF), which Plotly's hover labels do not.
All panels share one data source, so selecting a video highlights it in every panel.
"""

from __future__ import annotations

import html
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .data import Panel, VideoTable

__all__ = [
    "COLOR_MODES",
    "build_layout",
    "page_html",
    "write_page",
    "check_writable",
]

COLOR_MODES = ("class", "group", "split")
EXTRA_MARKERS = {"repeat": "x", "shuffle": "triangle", "residual": "square"}

# Bokeh draws every Div in its own shadow DOM, so styles are inline, not in a stylesheet.
_SWATCH = "display:inline-block;width:10px;height:10px;margin:0 3px 0 10px;background:{}"

_TOOLTIP = """
<div class="iic-tip" style="max-width: 220px">
  @thumb{safe}
  <div><b>@class_name</b></div>
  <div>group @group · @split</div>
  <div style="font-size: 11px; color: #555">@video_id</div>
</div>
"""

# Selecting a video (tap) lists its neighbours in every panel, with thumbnails and a mark
# saying whether they share its class.
_ON_SELECT = r"""
const i = source.selected.indices.length ? source.selected.indices[0] : null;
if (i === null) { div.text = hint; return; }
const d = source.data;
const esc = (s) => String(s).replace(
  /[&<>"]/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"})[c]);
const small = (t) => t.replace(/width="\d+" height="\d+"/, 'width="48" height="48"');
let out = `<div class="iic-neighbours" style="font-size:13px"><b>${esc(d.video_id[i])}</b> ` +
  `(${esc(d.class_name[i])}, group ${esc(d.group[i])}, ${esc(d.split[i])}) ${small(d.thumb[i])}` +
  `<div style="display:flex;gap:24px;flex-wrap:wrap">`;
for (let p = 0; p < names.length; p++) {
  out += `<div><div><b>${esc(names[p])}</b>: ${k} nearest videos ` +
    `(cosine, full feature space)</div>` +
    `<ol style="margin:2px 0;padding-left:22px">`;
  for (const j of d["nn" + p][i]) {
    const same = d.class_name[j] === d.class_name[i];
    const mark = same ? '<span style="color:#1a7f37;font-weight:bold">✓ same class</span>'
                      : '<span style="color:#cf222e">✗ other class</span>';
    out += `<li class="iic-neighbour" style="margin:2px 0">` +
      `${small(d.thumb[j])} ${esc(d.video_id[j])} ` +
      `(${esc(d.class_name[j])}, group ${esc(d.group[j])}) ${mark}</li>`;
  }
  out += "</ol></div>";
}
div.text = out + "</div></div>";
"""

_ON_COLOR = """
const mode = select.value;
for (const src of sources) {
  src.data.color = src.data["color_" + mode];
  src.change.emit();
}
legend.text = legends[mode];
"""


def _palette(n: int) -> list[str]:
    from bokeh.palettes import Category10, Category20, Turbo256

    if n <= 10:
        return list(Category10[10][:n])
    if n <= 20:
        return list(Category20[20][:n])
    return [Turbo256[int(round(i * 255 / max(1, n - 1)))] for i in range(n)]


def _colors(
    values: Sequence[str], order: Sequence[str] | None = None
) -> tuple[list[str], dict[str, str]]:
    """A colour per value; ``order`` fixes the palette order (classes: label order, so that
    a class has the colour :func:`iic_helpers.viz.class_colors` gives it in the notebooks)."""
    levels = list(order) if order is not None else sorted(set(values), key=lambda v: (len(v), v))
    mapping = dict(zip(levels, _palette(len(levels)), strict=True))
    return [mapping[v] for v in values], mapping


def _legend_html(mapping: dict[str, str], limit: int = 40) -> str:
    items = list(mapping.items())
    shown = "".join(
        f'<span style="{_SWATCH.format(c)}"></span>{html.escape(v)}' for v, c in items[:limit]
    )
    more = f" … and {len(items) - limit} more (hover a point)" if len(items) > limit else ""
    return f"<div>{shown}{more}</div>"


def build_layout(
    table: VideoTable,
    panels: Sequence[Panel],
    *,
    color_by: str = "class",
    title: str = "Embedding explorer",
    thumb_px: int = 48,
    width: int = 420,
    height: int = 400,
) -> Any:
    """The Bokeh layout: a colour selector, one scatter per panel, a neighbour list."""
    from bokeh.layouts import column, row
    from bokeh.models import ColumnDataSource, CustomJS, Div, HoverTool, Select, TapTool
    from bokeh.plotting import figure

    if color_by not in COLOR_MODES:
        raise ValueError(f"color_by must be one of {COLOR_MODES}, got {color_by!r}")
    if not panels:
        raise ValueError("no panel to draw: pass at least one checkpoint")
    n = len(table)
    size = 2 * thumb_px
    thumbs = [
        f'<img class="iic-thumb" src="{uri}" width="{size}" height="{size}" '
        'style="image-rendering: pixelated; vertical-align: middle">'
        if uri
        else ""
        for uri in (table.thumbnails or [""] * n)
    ]
    color_cols, legends = {}, {}
    by_label = dict(sorted(zip(table.label.tolist(), table.class_name, strict=True)))
    modes = {"class": table.class_name, "group": table.group, "split": table.split}
    for mode, values in modes.items():
        order = list(by_label.values()) if mode == "class" else None
        color_cols[f"color_{mode}"], mapping = _colors(values, order)
        legends[mode] = _legend_html(mapping)
    data: dict[str, Any] = {
        "video_id": table.video_id,
        "class_name": table.class_name,
        "group": table.group,
        "split": table.split,
        "thumb": thumbs,
        "color": color_cols[f"color_{color_by}"],
        **color_cols,
    }
    for p, panel in enumerate(panels):
        if panel.xy.shape != (n, 2):
            raise ValueError(f"panel {panel.name!r}: {panel.xy.shape} coordinates for {n} videos")
        data[f"x{p}"], data[f"y{p}"] = panel.xy[:, 0].tolist(), panel.xy[:, 1].tolist()
        data[f"nn{p}"] = panel.neighbours.tolist()
    source = ColumnDataSource(data, name="videos")

    kinds = list(panels[0].extras)
    extra_source = None
    if kinds:
        owner = np.tile(np.arange(n), len(kinds))
        extra: dict[str, Any] = {
            "kind": [kind for kind in kinds for _ in range(n)],
            "marker": [EXTRA_MARKERS[kind] for kind in kinds for _ in range(n)],
            "video_id": [table.video_id[i] for i in owner],
            "class_name": [table.class_name[i] for i in owner],
            **{col: [values[i] for i in owner] for col, values in color_cols.items()},
        }
        extra["color"] = extra[f"color_{color_by}"]
        for p, panel in enumerate(panels):
            coords = np.concatenate([panel.extras[kind] for kind in kinds])
            extra[f"x{p}"], extra[f"y{p}"] = coords[:, 0].tolist(), coords[:, 1].tolist()
        extra_source = ColumnDataSource(extra, name="extras")

    hint = "<i>Click a point to list its nearest videos.</i>"
    neighbours = Div(text=hint, name="neighbours", width=width * min(len(panels), 3))
    figures = []
    for p, panel in enumerate(panels):
        fig = figure(
            width=width, height=height, title=panel.name, name=f"panel-{p}",
            tools="pan,wheel_zoom,box_zoom,reset,save", toolbar_location="above",
        )  # fmt: skip
        fig.xaxis.visible = fig.yaxis.visible = False
        renderer = fig.scatter(
            f"x{p}", f"y{p}", source=source, size=7, color="color", alpha=0.85,
            line_color="white", line_width=0.5, name=f"points-{p}",
            selection_line_color="black", selection_line_width=2, selection_alpha=1.0,
            nonselection_alpha=0.25,
        )  # fmt: skip
        if extra_source is not None:
            fig.scatter(
                f"x{p}", f"y{p}", source=extra_source, marker="marker", size=8, color="color",
                alpha=0.7, name=f"extras-{p}",
            )  # fmt: skip
            extra_tip = HoverTool(
                renderers=[fig.renderers[-1]],
                tooltips="<div><b>@kind</b> negative of @video_id (@class_name)</div>",
            )
            fig.add_tools(extra_tip)
        fig.add_tools(HoverTool(renderers=[renderer], tooltips=_TOOLTIP))
        fig.add_tools(TapTool(renderers=[renderer]))
        figures.append(fig)
    names = [panel.name for panel in panels]
    k = int(panels[0].neighbours.shape[1])
    source.selected.js_on_change(
        "indices",
        CustomJS(
            args=dict(source=source, div=neighbours, names=names, k=k, hint=hint),
            code=_ON_SELECT,
        ),
    )
    legend = Div(text=legends[color_by], name="legend")
    select = Select(title="colour by", value=color_by, options=list(COLOR_MODES), name="color-by")
    sources = [source] + ([extra_source] if extra_source is not None else [])
    select.js_on_change(
        "value",
        CustomJS(
            args=dict(select=select, sources=sources, legend=legend, legends=legends),
            code=_ON_COLOR,
        ),
    )
    marker_note = ", ".join(f"{m} = {kind}" for kind, m in EXTRA_MARKERS.items() if kind in kinds)
    header = Div(
        text=f"<h2>{html.escape(title)}</h2><div>{n} videos per panel; hover a point to "
        "see the clip, click it for its nearest videos (selection is linked across panels)."
        + (f" Extra points: {marker_note}." if marker_note else "")
        + "</div>",
        name="header",
    )
    grid = [row(*figures[i : i + 3]) for i in range(0, len(figures), 3)]
    return column(header, row(select, legend), *grid, neighbours)


def page_html(layout: Any, title: str = "Embedding explorer") -> str:
    """A standalone page: BokehJS inlined, nothing fetched from the network."""
    from bokeh.embed import file_html
    from bokeh.resources import INLINE

    return file_html(layout, resources=INLINE, title=title)


def check_writable(out: Path) -> None:
    """Raise a one-line ``ValueError`` unless a file can be created at ``out``."""
    out = Path(out)
    folder = out.parent
    if out.is_dir():
        raise ValueError(f"--out {out} is a folder; give a file name, e.g. {out / 'page.html'}")
    if not folder.is_dir():
        raise ValueError(f"cannot write {out}: folder {folder} does not exist; create it first")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=folder)
    except OSError as err:
        raise ValueError(
            f"cannot write {out}: {err.strerror or err}; choose a writable --out path"
        ) from None
    os.close(fd)
    Path(tmp).unlink(missing_ok=True)


def write_page(text: str, out: str | os.PathLike[str]) -> Path:
    """Write the page atomically (temporary file in the same folder, then rename)."""
    out = Path(out)
    check_writable(out)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return out

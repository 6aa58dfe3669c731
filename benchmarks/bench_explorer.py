"""Benchmark: the embedding explorer (``python -m iic_helpers explore``) on 2 CPU cores.

Three parts:

* ``libraries``: Bokeh vs Plotly for the same 500-point scatter with a GIF in every point's
  hover data, both written as standalone HTML with the library's JavaScript inlined: page
  size and load time in headless Chromium (``/usr/bin/chromium``), median of 3 loads.
* ``tiny``: the tiny preset's 500 videos (train + test) with the shipped IIC checkpoint,
  UMAP, extras off: the first run (features, projection, thumbnails) and a second run with
  another colouring (everything read from the cache).
* ``ucf101``: random float32 features of UCF101's shape (13,320 videos x 9216 dims): the
  projection (L2 norm, PCA to 50 dims, UMAP; numba compilation included, as in a fresh
  process) and the page with thumbnails for an even sample of ``--thumbnails`` videos
  (GIFs of the tiny dataset's videos, 48 px, 8 frames, standing in for UCF101 clips) and
  plain points for the rest.

Usage::

    .venv/bin/python benchmarks/bench_explorer.py              # both ISAs, ~3-4 min each
    .venv/bin/python benchmarks/bench_explorer.py --n 2000 --dim 512 --skip-tiny
    .venv/bin/python benchmarks/bench_explorer.py --isa native # native instruction set only

``--isa both`` (the default) runs the benchmark natively, then again in a child process
limited to AVX2 (``--isa avx2``; torch, numpy, OpenBLAS and numba's UMAP code are limited,
Chromium is not): results/explorer.json and results/explorer_avx2.json (see
``benchmarks/_common.py``).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from _common import (
    REPO,
    add_isa_argument,
    command_line,
    format_table,
    machine_info,
    result_name,
    run_isas,
    warn_if_busy,
    write_json,
)

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run", "--disable-sync"]  # fmt: skip
MB = 1e6


def load_seconds(page: Path, ready_js: str, repeats: int = 3) -> float:
    """Median seconds from navigation to ``ready_js`` being true, in headless Chromium."""
    from playwright.sync_api import sync_playwright

    times = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        for _ in range(repeats):
            tab = browser.new_page()
            start = time.perf_counter()
            tab.goto(page.as_uri())
            tab.wait_for_function(ready_js, timeout=120_000)
            times.append(time.perf_counter() - start)
            tab.close()
        browser.close()
    return statistics.median(times)


BOKEH_READY = "window.Bokeh && Bokeh.index.roots.length > 0"
PLOTLY_READY = "document.querySelector('.js-plotly-plot .scatterlayer .point') !== null"


def compare_libraries(thumbs: list[str], folder: Path) -> list[dict[str, Any]]:
    """The same scatter (len(thumbs) points, a GIF per point) in Bokeh and in Plotly."""
    import plotly.graph_objects as go
    from bokeh.embed import file_html
    from bokeh.models import ColumnDataSource, HoverTool
    from bokeh.plotting import figure
    from bokeh.resources import INLINE

    rng = np.random.default_rng(0)
    xy = rng.normal(size=(len(thumbs), 2))
    fig = figure(width=500, height=500)
    source = ColumnDataSource({"x": xy[:, 0], "y": xy[:, 1], "thumb": thumbs})
    fig.scatter("x", "y", source=source)
    fig.add_tools(HoverTool(tooltips='<img src="@thumb">'))
    bokeh_page = folder / "bokeh.html"
    bokeh_page.write_text(file_html(fig, INLINE, "bokeh"))
    # Plotly's hover labels cannot show images: the GIF rides along as customdata, and a
    # page would need its own JavaScript to display it.
    plotly_fig = go.Figure(go.Scatter(x=xy[:, 0], y=xy[:, 1], mode="markers", customdata=thumbs))
    plotly_page = folder / "plotly.html"
    plotly_fig.write_html(plotly_page, include_plotlyjs=True, full_html=True)
    rows = []
    for name, page, ready in (
        ("bokeh", bokeh_page, BOKEH_READY),
        ("plotly", plotly_page, PLOTLY_READY),
    ):
        rows.append({
            "library": name,
            "points": len(thumbs),
            "page_MB": round(page.stat().st_size / MB, 2),
            "library_js_MB": round((page.stat().st_size - sum(map(len, thumbs))) / MB, 2),
            "load_s": round(load_seconds(page, ready), 2),
        })  # fmt: skip
    return rows


def tiny_runs(folder: Path) -> list[dict[str, Any]]:
    """The tiny preset's 500 videos: a first run and a cached re-run with another colouring."""
    from iic_helpers.config import make_config
    from iic_helpers.explorer import explore

    cfg = make_config("tiny")
    ckpt = REPO / "checkpoints" / "tiny-iic-repeat.pt"
    rows = []
    for run, color in (("first", "class"), ("cached, colour by group", "group")):
        start = time.perf_counter()
        out = explore(
            cfg, [ckpt], folder / "tiny.html", split="both", method="umap", color_by=color,
            cache_root=folder / "cache", progress=False,
        )  # fmt: skip
        seconds = time.perf_counter() - start
        rows.append({
            "case": f"tiny, 500 videos, {run}", "seconds": round(seconds, 1),
            "page_MB": round(out.stat().st_size / MB, 2),
            "load_s": round(load_seconds(out, BOKEH_READY, repeats=1), 2),
        })  # fmt: skip
    return rows


def ucf_scale(
    n: int,
    dim: int,
    n_thumbs: int,
    folder: Path,
    data_root: Path = REPO / "data" / "synthetic",
    method: str = "umap",
) -> list[dict[str, Any]]:
    """Projection time and page size for random UCF101-shaped features."""
    from iic_helpers.data import read_split
    from iic_helpers.embed import project
    from iic_helpers.explorer import Panel, VideoTable, thumbnail_sample
    from iic_helpers.explorer.data import add_thumbnails, neighbours_of
    from iic_helpers.explorer.page import build_layout, page_html, write_page

    rng = np.random.default_rng(0)
    feats = rng.random((n, dim), dtype=np.float32)
    start = time.perf_counter()
    project(feats[:300], method, seed=0)  # numba compiles umap-learn on its first call
    compile_s = time.perf_counter() - start
    start = time.perf_counter()
    xy = project(feats, method, seed=0)
    projection_s = time.perf_counter() - start
    start = time.perf_counter()
    nn = neighbours_of(feats, 5)
    neighbours_s = time.perf_counter() - start
    del feats
    records = read_split(data_root, 1, "train") + read_split(data_root, 1, "test")
    sample = thumbnail_sample(n, n_thumbs)
    table = VideoTable(
        video_id=[f"v_Class{i % 101:03d}_g{i % 25 + 1:02d}_c{i % 7 + 1:02d}" for i in range(n)],
        class_name=[f"Class{i % 101:03d}" for i in range(n)],
        label=np.arange(n) % 101,
        group=[f"g{i % 25 + 1:02d}" for i in range(n)],
        split=["train" if i < 9537 else "test" for i in range(n)],
        paths=[str(records[i % len(records)].path) for i in range(n)],
    )
    start = time.perf_counter()
    # thumbnails only for the sample (the other paths are never read)
    sub = VideoTable(**{**table.__dict__, "paths": [table.paths[i] for i in sample]})
    sub.video_id = [table.video_id[i] for i in sample]
    add_thumbnails(sub, folder / "cache", n_thumbnails=len(sample), progress=False)
    table.thumbnails = [""] * n
    for j, i in enumerate(sample):
        table.thumbnails[i] = sub.thumbnails[j]
    thumbs_s = time.perf_counter() - start
    start = time.perf_counter()
    layout = build_layout(table, [Panel("random features", xy, nn)])
    out = write_page(page_html(layout), folder / "ucf.html")
    page_s = time.perf_counter() - start
    return [{
        "case": f"UCF101 shape, {n} x {dim} random features",
        "umap_first_call_s": round(compile_s, 1),
        "projection_s": round(projection_s, 1),
        "neighbours_s": round(neighbours_s, 1),
        "thumbnails": f"{len(sample)} (even sample) in {thumbs_s:.0f} s",
        "page_build_s": round(page_s, 1),
        "page_MB": round(out.stat().st_size / MB, 2),
        "load_s": round(load_seconds(out, BOKEH_READY, repeats=1), 2),
    }]  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=13_320)
    parser.add_argument("--dim", type=int, default=9216)
    parser.add_argument("--thumbnails", type=int, default=600)
    parser.add_argument("--skip-tiny", action="store_true")
    parser.add_argument("--out", type=Path, help="results folder (default benchmarks/results)")
    add_isa_argument(parser)
    args = parser.parse_args(argv)
    return run_isas(args.isa, lambda: run_once(args), __file__, argv)


def run_once(args: argparse.Namespace) -> int:
    """One run of the benchmark in this process (whatever instruction set it is limited to)."""
    torch.set_num_threads(1)
    busy = warn_if_busy()
    from iic_helpers.animation import gif_data_uri
    from iic_helpers.data import read_split, read_video

    records = read_split(REPO / "data" / "synthetic", 1, "test")[:500]
    gifs = [gif_data_uri(read_video(r.path), max_size=48, max_frames=8) for r in records]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        libraries = compare_libraries((gifs * 4)[:500], folder)
        print(format_table(libraries))
        tiny = [] if args.skip_tiny else tiny_runs(folder)
        if tiny:
            print(format_table(tiny))
        ucf = ucf_scale(args.n, args.dim, args.thumbnails, folder)
        print(format_table(ucf))
    payload = {
        "machine": machine_info(),
        "command": command_line(),
        "busy": busy,
        "libraries": libraries,
        "tiny": tiny,
        "ucf101": ucf,
    }
    path = write_json(result_name("explorer"), payload, args.out)
    print(f"wrote {path} (isa {payload['machine']['isa']})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The explorer page in a real browser: headless Chromium driven by Playwright.

Debian's ``chromium`` (``.ci/run`` installs it) at ``/usr/bin/chromium``; Playwright's own
browser download is not used. The page must load from a ``file://`` URL with no console
error and no network request, show every video in every panel, show a thumbnail on hover and
list neighbours on click. A screenshot goes to ``runs/explorer-browser-test/``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import chromium_tab

from iic_helpers.config import make_config
from iic_helpers.explorer import explore

REPO = Path(__file__).resolve().parents[1]
CHECKPOINTS = [REPO / "checkpoints" / "tiny-iic-repeat.pt", REPO / "checkpoints" / "tiny-cmc.pt"]
SHOTS = REPO / "runs" / "explorer-browser-test"

# Screen position of a panel's first point and the counts Bokeh drew, read from BokehJS.
_PANEL_JS = """(p) => {
  const doc = Bokeh.documents[0];
  const fig = doc.get_model_by_name(`panel-${p}`);
  const points = doc.get_model_by_name(`points-${p}`);
  const views = [];
  const walk = (v) => { views.push(v); for (const c of (v.child_views ?? [])) walk(c); };
  for (const root of Bokeh.index.roots) walk(root);
  const plot = views.find((v) => v.model === fig);
  const glyph = plot.renderer_views.get(points).glyph;
  const rect = plot.canvas_view.el.getBoundingClientRect();
  const box = plot.frame.bbox;
  const inside = Array.from(glyph.sx).filter((x, i) =>
    x >= box.left && x <= box.right && glyph.sy[i] >= box.top && glyph.sy[i] <= box.bottom);
  return {source: points.data_source.get_length(), drawn: glyph.sx.length, inside: inside.length,
          x: rect.left + glyph.sx[0], y: rect.top + glyph.sy[0]};
}"""


@pytest.fixture(scope="module")
def page(tiny_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.set_num_threads(1)
    cfg = make_config("tiny", data_root=str(tiny_root), eval_clips=2)
    out = tmp_path_factory.mktemp("explorer") / "explorer.html"
    return explore(
        cfg, CHECKPOINTS, out, split="both", method="pca", extras=["repeat"],
        cache_root=out.parent / "cache", progress=False,
    )  # fmt: skip


def test_page_in_headless_chromium(page: Path) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    with chromium_tab(1300, 1000) as browser:
        tab, errors, requests = browser.page, browser.errors, browser.requests
        tab.goto(page.as_uri())
        tab.wait_for_function("window.Bokeh && Bokeh.index.roots.length > 0", timeout=30_000)
        tab.wait_for_timeout(500)

        panels = [tab.evaluate(_PANEL_JS, p) for p in range(len(CHECKPOINTS))]
        for info in panels:  # tiny_root: 8 train + 28 test videos
            assert info["source"] == info["drawn"] == info["inside"] == 36, info

        tab.mouse.move(panels[0]["x"], panels[0]["y"])
        thumb = tab.locator("img.iic-thumb").first
        thumb.wait_for(state="visible", timeout=5_000)
        assert thumb.get_attribute("src").startswith("data:image/gif;base64,")

        tab.mouse.click(panels[0]["x"], panels[0]["y"])
        items = tab.locator("li.iic-neighbour")
        items.first.wait_for(state="visible", timeout=5_000)
        assert items.count() == 5 * len(CHECKPOINTS), "k = 5 neighbours per panel"
        marks = tab.locator(".iic-neighbours").inner_text()
        assert "same class" in marks or "other class" in marks
        selected = tab.evaluate(
            "() => Bokeh.documents[0].get_model_by_name('videos').selected.indices"
        )
        assert 0 in selected, "the click selected the video in the shared (linked) source"

        tab.mouse.move(5, 5)
        tab.screenshot(path=str(SHOTS / "explorer.png"), full_page=True)
    assert not errors, errors
    assert all(url.startswith(("file:", "data:", "about:")) for url in requests), requests
    assert (SHOTS / "explorer.png").stat().st_size > 10_000

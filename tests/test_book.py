"""The web book (``make book``) in a real browser: headless Debian Chromium via Playwright.

Every page (the README landing page and the six notebooks, reached by following the
book's own navigation) loads from ``file://`` without a console error and without any
network request, every image has loaded (natural width > 0), equations are typeset and
saved widgets are rendered. A screenshot of each page goes to ``runs/book-browser-test/``.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from conftest import chromium_tab

REPO = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("build_book", REPO / "scripts/build_book.py")
build_book = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(build_book)
SHOTS = REPO / "runs" / "book-browser-test"
NOTEBOOKS = [p.stem for p in build_book.notebooks()]

_IMAGES_JS = """async () => {
  const images = Array.from(document.images);
  images.forEach((img) => { img.loading = "eager"; });
  await Promise.all(images.map((img) => img.complete ? null :
      new Promise((done) => { img.onload = done; img.onerror = done; })));
  return {count: images.length,
          broken: images.filter((i) => i.naturalWidth === 0).map((i) => i.src.slice(0, 120))};
}"""


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_book.build(tmp_path_factory.mktemp("book") / "html")


def _has_widgets(stem: str) -> bool:
    nb = json.loads((REPO / "notebooks" / f"{stem}.ipynb").read_text())
    return any(
        "application/vnd.jupyter.widget-view+json" in o.get("data", {})
        for c in nb["cells"]
        for o in c.get("outputs", [])
    )


def test_book_pages_in_headless_chromium(site: Path) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    visited: list[str] = []
    problems: list[str] = []
    with chromium_tab(1280, 900) as browser:
        tab, errors, requests = browser.page, browser.errors, browser.requests
        tab.goto(site.as_uri())
        toc = tab.eval_on_selector_all(
            "nav.bd-links a.reference.internal", "els => els.map(e => e.getAttribute('href'))"
        )
        assert [Path(h).stem for h in toc] == NOTEBOOKS, f"sidebar lists {toc}"
        while True:
            page = Path(tab.url).stem
            visited.append(page)
            tab.wait_for_load_state("load")
            images = tab.evaluate(_IMAGES_JS)
            if images["broken"]:
                problems.append(f"{page}: images not loaded: {images['broken']}")
            if page != "index":
                if images["count"] < 2:
                    problems.append(f"{page}: only {images['count']} images")
                if tab.query_selector(".math") is not None:  # equations typeset by MathJax
                    tab.wait_for_function(
                        "document.querySelector('mjx-container') !== null", timeout=20_000
                    )
                if _has_widgets(page):
                    tab.wait_for_function(
                        "document.querySelector('.jupyter-widgets, .widget-box') !== null",
                        timeout=20_000,
                    )
            tab.screenshot(path=str(SHOTS / f"{page}.png"), full_page=False)
            if errors:
                problems.append(f"{page}: console errors {errors[:3]}")
                errors.clear()
            following = tab.query_selector("a.right-next")
            if following is None:
                break
            following.click()
    external = sorted({u for u in requests if not u.startswith(("file:", "data:", "blob:"))})
    assert visited == ["index", *NOTEBOOKS], f"the next-links visit {visited}"
    assert not problems, "\n".join(problems)
    assert not external, f"the book fetched from the network: {external[:5]}"
    assert len(list(SHOTS.glob("*.png"))) >= len(NOTEBOOKS) + 1

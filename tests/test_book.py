"""The web book (``make book``) in a real browser: headless Debian Chromium via Playwright.

Every page (the README landing page and the six notebooks, reached by following the
book's own navigation) loads from ``file://`` without a console error and without any
network request, every image has loaded (natural width > 0), equations are typeset and
saved widgets are rendered. A screenshot of each page goes to ``runs/book-browser-test/``.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("build_book", REPO / "scripts/build_book.py")
build_book = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(build_book)
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run", "--disable-sync"]  # fmt: skip
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
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), "install Debian's chromium: apt-get install -y chromium"
    SHOTS.mkdir(parents=True, exist_ok=True)
    visited: list[str] = []
    problems: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        tab = browser.new_page(viewport={"width": 1280, "height": 900})
        errors: list[str] = []
        tab.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        tab.on("pageerror", lambda e: errors.append(str(e)))
        requests: list[str] = []
        tab.on("request", lambda r: requests.append(r.url))
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
        browser.close()
    external = sorted({u for u in requests if not u.startswith(("file:", "data:", "blob:"))})
    assert visited == ["index", *NOTEBOOKS], f"the next-links visit {visited}"
    assert not problems, "\n".join(problems)
    assert not external, f"the book fetched from the network: {external[:5]}"
    assert len(list(SHOTS.glob("*.png"))) >= len(NOTEBOOKS) + 1

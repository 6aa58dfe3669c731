"""Build the web book: a static HTML site of the executed notebooks (``make book``).

Sphinx + myst-nb (the engine of Jupyter Book 1) with the sphinx-book-theme: the README is
the landing page, the six notebooks follow in tutorial order with their saved outputs
(figures, GIF animations, saved widget state); nothing is re-executed. The site works
offline: the JavaScript it needs (MathJax 3, RequireJS and the Jupyter widgets' HTML
manager, which Sphinx and myst-nb load from public CDNs by default) is fetched once from the
npm registry (``npm pack``) into ``runs/book/assets/`` and served from the site itself, and
the "Open in Colab" badge image is a local file (the link still goes to Colab).

    python scripts/build_book.py [--out runs/book/html]      # open runs/book/html/index.html

``tests/test_book.py`` builds it and opens every page in headless Chromium.
"""

from __future__ import annotations

import argparse
import fnmatch
import re
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
WORK = REPO / "runs" / "book"
#: npm packages the offline site serves: package@version -> [(file, folder/ or glob, target)].
NPM_ASSETS: dict[str, list[tuple[str, str]]] = {
    "requirejs@2.3.7": [("package/require.js", "require.js")],
    "@jupyter-widgets/html-manager@1.0.6": [
        ("package/dist/embed-amd.js", "embed-amd.js"),
        # its icon fonts, where the manager looks for them: beside the page (html_extra_path)
        ("package/dist/*.woff2", "@jupyter-widgets/html-manager/dist/"),
        ("package/dist/*.woff2", "@jupyter-widgets/"),
    ],
    "mathjax@3.2.2": [  # the TeX-to-HTML component, its fonts and its on-demand parts
        ("package/es5/tex-mml-chtml.js", "mathjax/tex-mml-chtml.js"),
        ("package/es5/output/chtml/fonts/woff-v2/", "mathjax/output/chtml/fonts/woff-v2/"),
        ("package/es5/input/tex/extensions/", "mathjax/input/tex/extensions/"),
        ("package/es5/a11y/", "mathjax/a11y/"),
    ],
}
BADGE_URL = "https://colab.research.google.com/assets/colab-badge.svg"
BADGE_SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" width="117" height="20" role="img" '
    'aria-label="Open In Colab"><rect width="117" height="20" rx="3" fill="#555"/>'
    '<rect x="24" width="93" height="20" rx="3" fill="#f9ab00"/>'
    '<circle cx="12" cy="10" r="6" fill="none" stroke="#f9ab00" stroke-width="3"/>'
    '<text x="70" y="14" fill="#fff" font-family="Verdana,sans-serif" font-size="11" '
    'text-anchor="middle">Open In Colab</text></svg>\n'
)
#: Saved widgets typeset their labels with MathJax 2's ``MathJax.Hub.Queue``; the site loads
#: MathJax 3, so this runs first and gives MathJax 3 that one entry point.
MATHJAX_SHIM = """\
(function () {
  function queue(command) {  // MathJax.Hub.Queue(["Typeset", MathJax.Hub, element])
    var element = Array.isArray(command) ? command[2] : undefined;
    var mj = window.MathJax;
    if (element && mj && mj.startup && mj.startup.promise) {
      mj.startup.promise.then(function () { return mj.typesetPromise([element]); });
    }
  }
  var current = {};
  Object.defineProperty(window, "MathJax", {  // MathJax 3 replaces the object when it loads
    configurable: true,
    get: function () { return current; },
    set: function (value) {
      current = value;
      if (value && !value.Hub) { value.Hub = {Queue: queue}; }
    },
  });
  window.MathJax = {};
})();
"""
CONF = """\
project = "IIC tutorial"
author = "IIC tutorial contributors"
extensions = ["myst_nb"]
nb_execution_mode = "off"  # the committed notebooks are executed already
html_theme = "sphinx_book_theme"
html_title = "IIC: self-supervised video representation learning"
html_static_path = ["_static"]
html_extra_path = ["_extra"]  # copied to the site's root
html_js_files = [("mathjax2-shim.js", {"priority": 100})]  # before MathJax (priority 500)
html_context = {"default_mode": "light"}
mathjax_path = "mathjax/tex-mml-chtml.js"  # relative to _static: served offline
nb_ipywidgets_js = {"require.js": {}, "embed-amd.js": {"data-jupyter-widgets-cdn": "_static/"}}
myst_enable_extensions = ["dollarmath", "amsmath"]
suppress_warnings = ["myst.header", "myst.xref_missing", "misc.highlighting_failure"]
exclude_patterns = ["_build"]
html_copy_source = False  # the .ipynb sources are in the repository
html_theme_options = {"show_navbar_depth": 1}
"""


def fetch_assets(cache: Path = WORK / "assets") -> Path:
    """Unpack :data:`NPM_ASSETS` into ``cache`` (once; ``npm pack`` from the npm registry)."""
    done = cache / ".complete"
    if done.exists():
        return cache
    npm = shutil.which("npm")
    if npm is None:
        raise SystemExit("build_book: npm not found: install it (apt-get install -y npm)")
    tarballs = cache / "tarballs"
    tarballs.mkdir(parents=True, exist_ok=True)
    for spec, files in NPM_ASSETS.items():
        result = subprocess.run(
            [npm, "pack", "--silent", "--pack-destination", str(tarballs), spec],
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            raise SystemExit(f"build_book: npm pack {spec} failed: {result.stderr.strip()[:300]}")
        with tarfile.open(tarballs / result.stdout.strip().splitlines()[-1]) as tar:
            for member in tar.getmembers():
                for source, target in files:
                    if not member.isfile():
                        continue
                    if "*" in source and fnmatch.fnmatch(member.name, source):
                        out = cache / target / Path(member.name).name
                    elif member.name == source or (
                        source.endswith("/") and member.name.startswith(source)
                    ):
                        out = cache / (target + member.name[len(source) :])
                    else:
                        continue
                    out.parent.mkdir(parents=True, exist_ok=True)
                    out.write_bytes(tar.extractfile(member).read())
    shutil.rmtree(tarballs)
    done.touch()
    return cache


def notebooks() -> list[Path]:
    """The executed tutorial notebooks, in order."""
    return sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def _local_badge(text: str) -> str:
    return text.replace(BADGE_URL, "_static/colab-badge.svg")


def stage(src: Path, assets: Path) -> list[str]:
    """Write the Sphinx source folder ``src``; return the page names in order."""
    if src.exists():
        shutil.rmtree(src)
    (src / "_static").mkdir(parents=True)
    shutil.copytree(assets, src / "_static", dirs_exist_ok=True)
    (src / "_static" / ".complete").unlink(missing_ok=True)
    (src / "_extra").mkdir()
    shutil.move(src / "_static" / "@jupyter-widgets", src / "_extra" / "@jupyter-widgets")
    (src / "_static" / "colab-badge.svg").write_text(BADGE_SVG)
    (src / "_static" / "mathjax2-shim.js").write_text(MATHJAX_SHIM)
    (src / "conf.py").write_text(CONF)
    readme = (REPO / "README.md").read_text()
    # images the README shows travel with it; other repository files are linked as text
    for target in re.findall(r"!\[[^\]]*\]\(([^)\s]+)\)", readme):
        if not re.match(r"[a-z]+://", target) and (REPO / target).is_file():
            (src / target).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / target, src / target)
    pages = [p.stem for p in notebooks()]
    toctree = "\n".join(pages)
    (src / "index.md").write_text(
        f"{readme}\n\n```{{toctree}}\n:caption: The tutorial\n:maxdepth: 1\n\n{toctree}\n```\n"
    )
    for path in notebooks():
        (src / path.name).write_text(_local_badge(path.read_text()))
    return ["index", *pages]


def build(out: Path = WORK / "html", quiet: bool = True) -> Path:
    """Build the site into ``out``; return the path of its ``index.html``."""
    assets = fetch_assets()
    src = WORK / "src"
    stage(src, assets)
    if out.exists():
        shutil.rmtree(out)
    cmd = [sys.executable, "-m", "sphinx", "-b", "html", "-j", "1", str(src), str(out)]
    result = subprocess.run([*cmd, "-q"] if quiet else cmd, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"build_book: sphinx failed:\n{result.stderr[-3000:]}")
    if result.stderr.strip():
        print(result.stderr.strip()[-2000:], file=sys.stderr)
    return out / "index.html"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=WORK / "html")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    index = build(args.out.resolve())
    size = sum(p.stat().st_size for p in index.parent.rglob("*") if p.is_file())
    print(
        f"build_book: {index} ({size / 2**20:.1f} MiB, {time.perf_counter() - start:.0f} s); "
        "open it in a browser"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

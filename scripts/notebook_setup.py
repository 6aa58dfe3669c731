"""Make every notebook run from any working directory and on Google Colab (idempotent).

For each ``notebooks/NN_*.ipynb`` this

(a) puts an "Open in Colab" badge link under the title of the header cell (or refreshes it);
(b) inserts, or refreshes, a first code cell tagged ``setup`` (:data:`SETUP_CELL`): on Colab
    (``"google.colab" in sys.modules``) it clones the repository, ``pip install -e``'s it
    and makes the package importable in the running kernel; everywhere it changes to the
    repository root (:data:`iic_helpers.paths.REPO_ROOT`) so that relative paths such as
    ``runs/tutorial`` mean the same folder whatever directory Jupyter was started in;
(c) rewrites notebook-relative paths (``"../runs/tutorial"``, ``Path("../checkpoints")``,
    ``Path("../results/x")``) to their :mod:`iic_helpers.paths` equivalents.

Running it again changes nothing. Code cells change, so the notebooks must then be
re-executed (``python scripts/run_notebooks.py --in-place``).

    python scripts/notebook_setup.py [--repo OWNER/NAME] [--branch main] [--check]
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

import nbformat

REPO = Path(__file__).resolve().parents[1]
#: Where the repository is published (the Colab badge and the clone use it).
GITHUB_REPO = "iic-tutorial/iic-video-ssl"
BRANCH = "main"
SETUP_TAG = "setup"
BADGE_IMAGE = "https://colab.research.google.com/assets/colab-badge.svg"
BADGE = re.compile(r"\[!\[Open In Colab\]\([^)]*\)\]\([^)]*\)\n?")

#: The first code cell. It cannot import the package before the package is installed, so
#: the Colab part is plain Python; ``{repo}``/``{branch}`` are filled in by :func:`setup_cell`.
SETUP_CELL = """\
# Setup (written by scripts/notebook_setup.py): on Google Colab, clone the repository and
# install the package; everywhere, work from the repository root, so that runs/, data/ and
# checkpoints/ are found whatever folder this notebook was opened from.
import os
import subprocess
import sys

if "google.colab" in sys.modules:  # a Colab runtime, CPU or GPU
    COLAB_CLONE = "/content/{name}"
    if not os.path.isdir(os.path.join(COLAB_CLONE, "iic_helpers")):
        subprocess.run(["git", "clone", "--depth", "1", "--branch", "{branch}",
                        "https://github.com/{repo}", COLAB_CLONE], check=True)
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "-e", COLAB_CLONE],
                   check=True)
    if COLAB_CLONE not in sys.path:  # an editable install is seen only by new kernels
        sys.path.insert(0, COLAB_CLONE)

from iic_helpers.paths import CHECKPOINTS, DATA, REPO_ROOT, RESULTS, RUNS  # noqa: E402

os.chdir(REPO_ROOT)"""

#: Notebook-relative paths in code cells: ``Path("../x")``, ``Path("../x/y")``, ``"../x/y"``.
PATH_PATTERNS: tuple[re.Pattern[str], ...] = (
    re.compile(r'Path\(\s*"\.\./(checkpoints|results|data|runs)"\s*\)'),
    re.compile(r'Path\(\s*"\.\./(checkpoints|results|data|runs)/([^"]+)"\s*\)'),
    re.compile(r'"\.\./(runs|data|checkpoints|results)/([^"]*)"'),
)
_NAMES = {"checkpoints": "CHECKPOINTS", "results": "RESULTS", "data": "DATA", "runs": "RUNS"}


def colab_url(notebook: str, repo: str = GITHUB_REPO, branch: str = BRANCH) -> str:
    """The Colab address of ``notebooks/<notebook>`` in the published repository."""
    return f"https://colab.research.google.com/github/{repo}/blob/{branch}/notebooks/{notebook}"


def setup_cell(repo: str = GITHUB_REPO, branch: str = BRANCH) -> str:
    """The source of the first code cell for a repository ``repo`` (``OWNER/NAME``)."""
    return SETUP_CELL.format(repo=repo, branch=branch, name=repo.split("/")[-1])


def rewrite_paths(source: str) -> str:
    """Notebook-relative paths (``../checkpoints`` ...) as :mod:`iic_helpers.paths` names.

    >>> rewrite_paths('SHIPPED = Path("../checkpoints")')
    'SHIPPED = CHECKPOINTS'
    >>> rewrite_paths('A = Path("../results/ablation.json"); R = "../runs/tutorial"')
    'A = RESULTS / "ablation.json"; R = "runs/tutorial"'
    """

    def whole(m: re.Match[str]) -> str:
        return _NAMES[m.group(1)]

    def inside(m: re.Match[str]) -> str:
        return f'{_NAMES[m.group(1)]} / "{m.group(2)}"'

    def literal(m: re.Match[str]) -> str:
        return f'"{m.group(1)}/{m.group(2)}"'

    for pattern, fn in zip(PATH_PATTERNS, (whole, inside, literal), strict=True):
        source = pattern.sub(fn, source)
    return source


def with_badge(header: str, notebook: str, repo: str = GITHUB_REPO, branch: str = BRANCH) -> str:
    """``header`` with one Colab badge line right after its first (title) line."""
    header = BADGE.sub("", header)
    badge = f"[![Open In Colab]({BADGE_IMAGE})]({colab_url(notebook, repo, branch)})\n"
    title, _, rest = header.partition("\n")
    rest = rest.lstrip("\n")
    return f"{title}\n\n{badge}" + (f"\n{rest}" if rest else "")


def set_up(nb: Any, notebook: str, repo: str = GITHUB_REPO, branch: str = BRANCH) -> Any:
    """Apply (a), (b) and (c) of the module docstring to ``nb`` in place; return it."""
    first = nb.cells[0]
    if first.cell_type != "markdown":
        raise ValueError(f"{notebook}: the first cell must be the markdown header")
    first.source = with_badge(first.source, notebook, repo, branch)
    code = [c for c in nb.cells if c.cell_type == "code"]
    source = setup_cell(repo, branch)
    tagged = [c for c in code if SETUP_TAG in c.metadata.get("tags", [])]
    if tagged:
        tagged[0].source = source
    else:
        cell = nbformat.v4.new_code_cell(source, metadata={"tags": [SETUP_TAG]})
        cell.id = f"setup-{notebook[:2]}"
        nb.cells.insert(nb.cells.index(code[0]) if code else 1, cell)
    for cell in nb.cells:
        if cell.cell_type == "code" and SETUP_TAG not in cell.metadata.get("tags", []):
            cell.source = rewrite_paths(cell.source)
    left = [c.source for c in nb.cells if c.cell_type == "code" and '"../' in c.source]
    if left:
        raise ValueError(f"{notebook}: a notebook-relative path is left: {left[0][:200]!r}")
    return nb


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repo", default=GITHUB_REPO, help="GitHub OWNER/NAME (Colab link)")
    parser.add_argument("--branch", default=BRANCH)
    parser.add_argument("--check", action="store_true", help="report notebooks not set up")
    parser.add_argument("notebooks", nargs="*", type=Path)
    args = parser.parse_args(argv)
    paths = args.notebooks or sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    changed = []
    for path in paths:
        before = path.read_text()
        nb = set_up(nbformat.read(path, as_version=4), path.name, args.repo, args.branch)
        after = nbformat.writes(nb) + "\n"
        if after != before:
            changed.append(path)
            if not args.check:
                path.write_text(after)
    for path in changed:
        print(f"notebook_setup: {'needs setup' if args.check else 'updated'} {path}")
    print(f"notebook_setup: {len(changed)} of {len(paths)} notebook(s) changed")
    return 1 if args.check and changed else 0


if __name__ == "__main__":
    sys.exit(main())

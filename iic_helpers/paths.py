"""The repository's folders, found from the package whatever the working directory.

Notebooks, scripts and the command line use these instead of ``../checkpoints`` or
``runs/…`` relative to where they were started, so they work from ``notebooks/``, from the
repository root, from a copy of a notebook elsewhere and on Colab (where the repository is
cloned to ``/content/…``).

The root is, in order: the environment variable ``IIC_REPO`` if set; the folder above the
package when it holds ``pyproject.toml`` (an editable install or a checkout, the normal
case); else the first folder at or above the working directory that holds ``iic_helpers/``
and ``notebooks/``; else the working directory.

    >>> (REPO_ROOT / "iic_helpers" / "paths.py").exists()
    True
    >>> repo_path("data/synthetic") == DATA / "synthetic"
    True
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["CHECKPOINTS", "DATA", "REPO_ROOT", "RESULTS", "RUNS", "find_repo_root", "repo_path"]


def _is_checkout(folder: Path) -> bool:
    return (folder / "iic_helpers").is_dir() and (folder / "notebooks").is_dir()


def find_repo_root(cwd: str | Path | None = None, env: dict[str, str] | None = None) -> Path:
    """The repository root (see the module docstring for the order of the rules).

    Args:
        cwd: where to start the upward search (default: the working directory).
        env: the environment to read ``IIC_REPO`` from (default: ``os.environ``).
    """
    env = os.environ if env is None else env
    if env.get("IIC_REPO"):
        return Path(env["IIC_REPO"]).expanduser().resolve()
    above_package = Path(__file__).resolve().parents[1]
    if (above_package / "pyproject.toml").is_file() and _is_checkout(above_package):
        return above_package
    start = Path.cwd() if cwd is None else Path(cwd)
    for folder in (start.resolve(), *start.resolve().parents):
        if _is_checkout(folder):
            return folder
    return start.resolve()


#: The repository root, resolved once at import.
REPO_ROOT: Path = find_repo_root()
#: Dataset roots (``data/synthetic``, ``data/ucf101``, ...).
DATA: Path = REPO_ROOT / "data"
#: The shipped tiny-preset checkpoints.
CHECKPOINTS: Path = REPO_ROOT / "checkpoints"
#: Every run's artefacts (git-ignored); the tutorial's live in ``RUNS / "tutorial"``.
RUNS: Path = REPO_ROOT / "runs"
#: The ablation tables and diagnoses that the README cites.
RESULTS: Path = REPO_ROOT / "results"


def repo_path(path: str | Path) -> Path:
    """``path`` if absolute, else the same path under the repository root.

    >>> repo_path("/tmp/x") == Path("/tmp/x")
    True
    """
    path = Path(path).expanduser()
    return path if path.is_absolute() else REPO_ROOT / path

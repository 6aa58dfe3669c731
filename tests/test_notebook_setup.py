"""Notebooks from any working directory and on Colab (simulated: no Colab runtime here)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import types
from pathlib import Path

import nbformat
import pytest

from iic_helpers import paths
from iic_helpers.data import resolve_data_root

REPO = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("notebook_setup", REPO / "scripts/notebook_setup.py")
notebook_setup = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(notebook_setup)


def _run_setup_cell(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, colab: bool) -> list:
    """Execute the setup cell as a kernel would, with a fake ``google.colab`` if asked; the
    clone goes to ``tmp_path`` instead of ``/content`` and subprocesses are recorded."""
    calls: list[list[str]] = []

    def fake_run(cmd, check=False, **kwargs):
        calls.append(list(cmd))
        if cmd[:2] == ["git", "clone"]:  # the clone: a checkout with the package in it
            (Path(cmd[-1]) / "iic_helpers").mkdir(parents=True)
        return subprocess.CompletedProcess(cmd, 0)

    monkeypatch.setattr(subprocess, "run", fake_run)
    if colab:
        monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    else:
        monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.chdir(tmp_path)
    source = notebook_setup.setup_cell("someone/iic", "main").replace('"/content/', f'"{tmp_path}/')
    namespace: dict = {}
    exec(compile(source, "setup-cell", "exec"), namespace)  # noqa: S102 (the cell under test)
    assert Path.cwd() == paths.REPO_ROOT, "the cell works from the repository root"
    assert namespace["CHECKPOINTS"] == REPO / "checkpoints"
    return calls


def test_setup_cell_on_colab_clones_installs_and_imports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _run_setup_cell(tmp_path, monkeypatch, colab=True)
    clone = str(tmp_path / "iic")
    assert calls == [
        [
            "git",
            "clone",
            "--depth",
            "1",
            "--branch",
            "main",
            "https://github.com/someone/iic",
            clone,
        ],
        [sys.executable, "-m", "pip", "install", "--quiet", "-e", clone],
    ]
    assert sys.path[0] == clone
    # run again (a second notebook in the same runtime): no second clone
    again = _run_setup_cell(tmp_path, monkeypatch, colab=True)
    assert [c[0] for c in again] == [sys.executable]


def test_setup_cell_elsewhere_installs_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _run_setup_cell(tmp_path, monkeypatch, colab=False) == []


def test_paths_resolve_from_another_working_directory(tmp_path: Path) -> None:
    """A fresh interpreter started in an unrelated folder finds the repository's folders."""
    code = (
        "from iic_helpers import paths; from iic_helpers.data import resolve_data_root;"
        "print(paths.REPO_ROOT); print(resolve_data_root('data/ucf101'));"
        "print(paths.repo_path('runs/tutorial'))"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("IIC_REPO", None)
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    # data/ucf101 (its split lists are tracked) exists in every checkout, unlike the generated
    # data/synthetic, so the answer does not depend on which test ran first
    assert out == [str(REPO), str(REPO / "data" / "ucf101"), str(REPO / "runs" / "tutorial")]


def test_find_repo_root_rules(tmp_path: Path) -> None:
    assert paths.find_repo_root(env={"IIC_REPO": str(tmp_path)}) == tmp_path.resolve()
    assert paths.find_repo_root(env={}) == REPO
    (tmp_path / "data").mkdir()
    assert resolve_data_root(tmp_path / "data") == tmp_path / "data"  # absolute: as given
    # a relative root that is nowhere: the repository's (the caller creates or reports it)
    assert resolve_data_root("no/such/root") == REPO / "no" / "such" / "root"


def test_relative_data_root_prefers_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert resolve_data_root("data/ucf101") == REPO / "data" / "ucf101"  # not in the cwd
    (tmp_path / "data" / "ucf101").mkdir(parents=True)
    assert resolve_data_root("data/ucf101") == Path("data/ucf101")  # in the cwd: as given


def test_default_data_root_from_another_working_directory_is_the_repositorys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """From an unrelated folder the preset's ``data/synthetic`` is the repository's, whether
    or not it has been made yet, and ``make-synthetic`` writes it there, not into the
    working directory."""
    import iic_helpers.data
    from iic_helpers.__main__ import main as cli

    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("IIC_REPO", None)
    code = (
        "from iic_helpers.config import make_config; from iic_helpers.data import"
        " resolve_data_root; print(resolve_data_root(make_config('tiny').data_root))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == [str(REPO / "data" / "synthetic")]

    made: list[Path] = []

    def fake_make(root: Path, **options: object) -> Path:  # records instead of writing videos
        made.append(Path(root))
        return Path(root)

    monkeypatch.setattr(iic_helpers.data, "make_synthetic_dataset", fake_make)
    monkeypatch.chdir(tmp_path)
    assert cli(["make-synthetic", "--preset", "tiny"]) == 0
    assert made == [REPO / "data" / "synthetic"]


def test_notebook_setup_is_idempotent_and_rewrites_relative_paths() -> None:
    nb = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_markdown_cell("# 09 · Title\n\nYou will learn."),
            nbformat.v4.new_code_cell(
                'RUN_ROOT = "../runs/tutorial"', metadata={"tags": ["parameters"]}
            ),
            nbformat.v4.new_code_cell(
                'SHIPPED = Path("../checkpoints")\nA = Path("../results/a.json")'
            ),
        ]
    )
    once = notebook_setup.set_up(nb, "09_x.ipynb")
    text = nbformat.writes(once)
    twice = nbformat.writes(notebook_setup.set_up(nbformat.reads(text, as_version=4), "09_x.ipynb"))
    assert text == twice
    cells = once.cells
    assert cells[0].source.count("colab.research.google.com/github/") == 1
    assert "/blob/main/notebooks/09_x.ipynb" in cells[0].source
    assert (
        cells[1].metadata["tags"] == ["setup"]
        and '"google.colab" in sys.modules' in cells[1].source
    )
    assert cells[2].source == 'RUN_ROOT = "runs/tutorial"'
    assert cells[3].source == 'SHIPPED = CHECKPOINTS\nA = RESULTS / "a.json"'
    bad = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_markdown_cell("# t"), nbformat.v4.new_code_cell('x = "../other/y"')]
    )
    with pytest.raises(ValueError, match="notebook-relative path"):
        notebook_setup.set_up(bad, "09_x.ipynb")


@pytest.mark.parametrize(
    "name", ["00_data_preparation.ipynb", "01_residual_frames_and_intra_negatives.ipynb"]
)
def test_committed_notebooks_are_set_up(name: str) -> None:
    assert notebook_setup.main(["--check", str(REPO / "notebooks" / name)]) == 0

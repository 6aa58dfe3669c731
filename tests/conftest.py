"""Shared test helpers: fixture paths and loaders, small configs, a headless browser."""

from __future__ import annotations

import os
import shutil
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

FIXTURES = Path(__file__).parent / "fixtures"
#: Debian's chromium (``.ci/run`` installs it); Playwright's own browser download is not used.
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--no-first-run", "--disable-sync"]  # fmt: skip


#: The test files that use the session fixture ``quick_tutorial`` (one quick-mode run of every
#: notebook, the suite's longest step): under pytest-xdist they go to one worker, first, so
#: the notebooks run once while the other worker takes the rest of the suite.
NOTEBOOK_TEST_FILES = ("tests/test_notebooks.py", "tests/test_student.py")
#: The next-slowest files (30 s to 3 min each on one thread), handed out right after the
#: notebooks so that short files fill the end of the run; only the order depends on this list.
SLOW_TEST_FILES = (
    "tests/test_paper_real_footage.py",
    "tests/test_shipped_checkpoints.py",
    "tests/test_benchmarks.py",
    "tests/test_distributed.py",
)

#: Intra-op threads per pytest-xdist worker (default 1; a benchmark sets it to compare).
WORKER_THREADS_ENV = "IIC_TEST_WORKER_THREADS"


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist (``make test`` runs ``pytest -n 2``).

    In the controlling process: write the default synthetic dataset (``data/synthetic``)
    once, before any worker starts; many tests and the quick-mode notebooks read it, and two
    workers that found it missing would write it at the same time.

    In each worker: one intra-op thread (``OMP_NUM_THREADS=1``, set before torch is
    imported, and inherited by the notebook kernels and command lines the tests start). Two
    workers with torch's default of one thread per core would put four busy threads on two
    cores, and torch's threads spin while they wait: measured, the whole suite then took
    longer (``benchmarks/bench_test_suite.py --workers 2,2x2``, which sets
    `WORKER_THREADS_ENV`). A test that needs two threads sets them itself.
    """
    if not getattr(config.option, "numprocesses", None) and not hasattr(config, "workerinput"):
        return
    if hasattr(config, "workerinput"):
        os.environ["OMP_NUM_THREADS"] = os.environ.get(WORKER_THREADS_ENV, "1")
        return
    from iic_helpers.config import make_config
    from iic_helpers.data import make_synthetic_dataset, resolve_data_root

    make_synthetic_dataset(resolve_data_root(make_config("tiny").data_root))


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """For ``-n N`` (``--dist load``, xdist's default) and ``--dist loadfile``: one test file
    per work unit (module fixtures are made once), except that the files of
    `NOTEBOOK_TEST_FILES` form one unit; units are handed out in collection order (see
    `pytest_collection_modifyitems`), not xdist's largest-first."""
    if config.getvalue("dist") not in ("load", "loadfile"):
        return None
    from xdist.scheduler import LoadFileScheduling

    config.option.loadscopereorder = False

    class NotebookFilesTogether(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            scope = super()._split_scope(nodeid)
            return "notebooks" if scope in NOTEBOOK_TEST_FILES else scope

    return NotebookFilesTogether(config, log)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """In an xdist worker: the `NOTEBOOK_TEST_FILES` first, then the `SLOW_TEST_FILES`, then
    the rest in their usual order (work units are handed out in collection order; longest
    first keeps both workers busy to the end). The sort is stable and the same in every
    worker, as xdist requires."""
    if not hasattr(config, "workerinput"):
        return
    first = (*NOTEBOOK_TEST_FILES, *SLOW_TEST_FILES)

    def rank(item: pytest.Item) -> int:
        path = item.nodeid.split("::")[0]
        return first.index(path) if path in first else len(first)

    items.sort(key=rank)


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    return FIXTURES


def load_npz(name: str) -> dict[str, np.ndarray]:
    with np.load(FIXTURES / name) as data:
        return {key: data[key] for key in data.files}


def small_config(**extra: Any) -> dict[str, Any]:
    """``make_config`` overrides that shrink a preset to the ``tiny_root`` dataset's size.

    Clips of 8 frames, resized to 18x24 and cropped to 16x16 (the dataset's videos are
    12 frames of 32x32), a width-4 backbone, batches of 4 and 2 evaluation clips per video;
    ``extra`` adds or replaces fields (e.g. ``k=8``, ``ft_epochs=1``).
    """
    return {
        "clip_len": 8,
        "resize": (18, 24),
        "crop": 16,
        "width": 4,
        "batch_size": 4,
        "eval_clips": 2,
        **extra,
    }


def set_flags(values: Mapping[str, Any]) -> list[str]:
    """The CLI's ``--set field=value`` flags for config overrides (tuples joined by commas)."""
    return [
        f"--set={k}={','.join(map(str, v)) if isinstance(v, tuple) else v}"
        for k, v in values.items()
    ]


@pytest.fixture(scope="session")
def tiny_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A very small synthetic dataset root (4 classes, 8 train / 28 test videos of 12x32x32),
    shared read-only by the training, fine-tuning and ablation tests."""
    from iic_helpers.data import make_synthetic_dataset

    return make_synthetic_dataset(
        tmp_path_factory.mktemp("tiny") / "data",
        n_groups=9,
        clips_per_group=1,
        num_frames=12,
        size=32,
        classes=("MoveRight", "MoveLeft", "Grow", "Shrink"),
    )


@pytest.fixture(scope="session")
def quick_tutorial(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One quick-mode run of every solution notebook in order (``run_notebooks.py --quick``),
    shared by the notebook tests and the student-notebook tests (which need its RUN_ROOT)."""
    import subprocess
    import sys

    root = tmp_path_factory.mktemp("tutorial")
    script = Path(__file__).resolve().parents[1] / "scripts" / "run_notebooks.py"
    result = subprocess.run(
        [sys.executable, str(script), "--quick", "--run-root", str(root)],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    for line in result.stdout.splitlines():
        if "HUNG CELL" in line:  # executed again and passed: shown in pytest's warning summary
            warnings.warn(line, stacklevel=1)
    return root


@dataclass
class BrowserTab:
    """A headless Chromium tab with what it reported since it opened.

    ``page`` is Playwright's ``Page``; ``errors`` collects console errors and uncaught page
    exceptions, ``requests`` the URL of every request the tab made.
    """

    page: Any
    errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)


@contextmanager
def chromium_tab(width: int, height: int) -> Iterator[BrowserTab]:
    """One tab of a viewport ``width x height`` px in Debian's headless Chromium via Playwright.

    The browser closes when the ``with`` block ends.
    """
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), "install Debian's chromium: apt-get install -y chromium"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            tab = BrowserTab(browser.new_page(viewport={"width": width, "height": height}))
            tab.page.on(
                "console", lambda m: tab.errors.append(m.text) if m.type == "error" else None
            )
            tab.page.on("pageerror", lambda e: tab.errors.append(str(e)))
            tab.page.on("request", lambda r: tab.requests.append(r.url))
            yield tab
        finally:
            browser.close()


@pytest.fixture(scope="module", autouse=True)
def _restore_torch_threads():
    """A module that sets torch's thread count (e.g. one thread, to match a file made that
    way) gets it back at its end, so later modules run with the default (every core; one
    in a pytest-xdist worker, see `pytest_configure`)."""
    import torch

    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)

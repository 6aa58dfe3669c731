"""Shared test helpers: fixture paths and loaders, small configs, a headless browser."""

from __future__ import annotations

import shutil
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
    way) gets it back at its end, so later modules run with the default (every core)."""
    import torch

    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)

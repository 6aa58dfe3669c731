"""The measured tutorial times: recorded by run_notebooks.py, written by tutorial_times.py."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


tutorial_times = _load("tutorial_times")
run_notebooks = _load("run_notebooks")


def _record(isa_limits: dict, capability: str, seconds: dict) -> dict:
    machine = {
        "cpu_capability": capability,
        "isa_limits": isa_limits,
        "cpu_model": "Test CPU",
        "cores": 2,
        "torch_threads": 2,
    }
    return {
        "date": "2026-12-02 15:00 UTC",
        "command": "python scripts/run_notebooks.py",
        "quick": False,
        "machine": {**machine, "isa": run_notebooks.isa_label(machine)},
        "notebook_seconds": seconds,
        "total_seconds": sum(seconds.values()),
    }


def test_isa_label_tells_emulated_avx2_from_native() -> None:
    assert run_notebooks.isa_label({"cpu_capability": "AVX512", "isa_limits": {}}) == "AVX512"
    assert run_notebooks.isa_label({"cpu_capability": "AVX2", "isa_limits": {}}) == "AVX2"
    limited = {"cpu_capability": "AVX2", "isa_limits": run_notebooks.AVX2_ENV}
    assert run_notebooks.isa_label(limited) == "AVX2 (emulated)"


def test_table_and_header_carry_both_kinds() -> None:
    times = {
        "avx512": _record({}, "AVX512", {"00_a": 49.4, "01_b": 150.0}),
        "avx2": _record(run_notebooks.AVX2_ENV, "AVX2", {"00_a": 61.0, "01_b": 204.0}),
    }
    table = tutorial_times.readme_table(times)
    assert "| `00_a` | 49 s | 61 s |" in table
    assert "| `01_b` | 2.5 min | 3.4 min |" in table
    assert "| **all six** | **3.3 min** | **4.4 min** |" in table
    assert table.splitlines()[0] == "| notebook | AVX-512 | AVX2 (emulated) |"
    line = tutorial_times.header_line("01_b", times)
    assert line.startswith(tutorial_times.HEADER)
    assert "2.5 min with AVX-512, 3.4 min with AVX2 (emulated)" in line


def test_header_is_inserted_once_then_replaced_after_the_badge() -> None:
    badge = "[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](x)"
    for head, expect_head in (
        ("# Title", "# Title"),
        (f"# Title\n\n{badge}", f"# Title\n\n{badge}"),
    ):
        nb = {"cells": [{"cell_type": "markdown", "source": [f"{head}\n\nYou will learn"]}]}
        once = tutorial_times.refreshed_notebook(json.dumps(nb), f"{tutorial_times.HEADER}: 1 s.")
        twice = tutorial_times.refreshed_notebook(once, f"{tutorial_times.HEADER}: 2 s.")
        source = "".join(json.loads(twice)["cells"][0]["source"])
        assert source == f"{expect_head}\n\n{tutorial_times.HEADER}: 2 s.\n\nYou will learn"


def test_quick_mode_timings_are_refused(tmp_path: Path) -> None:
    record = _record({}, "AVX512", {"00_a": 1.0})
    (tmp_path / "avx512.json").write_text(json.dumps({**record, "quick": True}))
    with pytest.raises(SystemExit, match="quick-mode"):
        tutorial_times.load_times(tmp_path)


def test_readme_and_notebook_headers_match_the_committed_timings() -> None:
    """README's table and every notebook header agree with results/tutorial_times/*.json."""
    assert (tutorial_times.TIMES / "avx512.json").exists()
    assert (tutorial_times.TIMES / "avx2.json").exists()
    done = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "tutorial_times.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr

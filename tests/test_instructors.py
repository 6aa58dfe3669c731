"""INSTRUCTORS.md: linked from the README, complete, and its compute-time table fresh."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("table", REPO / "scripts/instructors_table.py")
instructors_table = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(instructors_table)
GUIDE = REPO / "INSTRUCTORS.md"


def test_timing_table_matches_the_committed_notebooks() -> None:
    text = GUIDE.read_text()
    assert instructors_table.refreshed(text, instructors_table.table()) == text, (
        "INSTRUCTORS.md's table is stale: run `python scripts/instructors_table.py`"
    )


def test_table_reads_seconds_and_cpu_from_the_records(tmp_path: Path) -> None:
    nb = {"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    paths = []
    for name, record in (
        ("00_a", {"seconds": 90.0, "quick": False, "machine": {"cpu_capability": "AVX2",
                                                               "cores": 4, "torch_threads": 4}}),
        ("01_b", {"seconds": 30.0, "quick": True}),
        ("02_c", {}),
    ):  # fmt: skip
        path = tmp_path / f"{name}.ipynb"
        path.write_text(json.dumps({**nb, "metadata": {"iic_tutorial": record}}))
        paths.append(path)
    rows = instructors_table.table(paths).splitlines()
    assert rows[2] == "| `00_a` | 1.5 min (90 s) | AVX2 | 4 / 4 | not measured |"
    assert "not recorded" in rows[3], "a quick run is not a class's time"
    assert rows[4].startswith("| `02_c` | not recorded")
    assert rows[-1].startswith("| **all six** | **1.5 min**")
    stale = instructors_table.refreshed(GUIDE.read_text(), "| old |")
    assert instructors_table.refreshed(stale, instructors_table.table()) == GUIDE.read_text()


def test_guide_is_linked_and_covers_every_notebook() -> None:
    assert "INSTRUCTORS.md" in (REPO / "README.md").read_text()
    text = GUIDE.read_text()
    for path in sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        assert f"### {path.name[:2]} ·" in text, f"INSTRUCTORS.md has no section for {path.name}"
    for heading in ("## Common student mistakes", "## Lab plans", "shared GPU", "## On Colab"):
        assert heading in text

"""The tutorial notebooks: committed with clean outputs, and executing headless (quick mode)."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))
_spec = importlib.util.spec_from_file_location("run_notebooks", REPO / "scripts/run_notebooks.py")
run_notebooks = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(run_notebooks)
REFRESH = "refresh with `python scripts/run_notebooks.py --in-place` (about 9 min) and commit"
PARAMETERS = {"PRESET", "DATA_ROOT", "RUN_ROOT", "DEVICE", "SEED", "QUICK"}


def test_notebooks_exist_in_order() -> None:
    names = [p.name[:2] for p in NOTEBOOKS]
    assert names[:2] == ["00", "01"]
    assert names == sorted(names)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_notebook_is_clean(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    intro = nb.cells[0].source.lower()
    assert nb.cells[0].cell_type == "markdown" and ("learn" in intro or "you will" in intro)
    params = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1, "exactly one cell tagged 'parameters'"
    assigned = {line.split("=")[0].strip() for line in params[0].source.splitlines() if "=" in line}
    assert PARAMETERS <= assigned
    last = nb.cells[-1].source.lower()
    assert "summary" in last and "exercises" in last
    code = [c for c in nb.cells if c.cell_type == "code"]
    counts = [c.get("execution_count") for c in code]
    assert counts == list(range(1, len(code) + 1)), (
        f"{path.name}: execution counts {counts}: commit a fresh top-to-bottom run "
        "(python scripts/run_notebooks.py --in-place)"
    )
    for cell in code:
        for output in cell.get("outputs", []):
            assert output["output_type"] != "error", f"error output in {path.name}"
            assert "Traceback" not in json.dumps(output.get("text", ""))
    pngs = sum("image/png" in o.get("data", {}) for c in code for o in c.get("outputs", []))
    assert pngs >= 2, f"{path.name} shows {pngs} PNG figures"
    assert "nn.Module" not in "".join(c.source for c in code), "model code belongs in iic_helpers"


def _png_cells(nb) -> list[int]:
    """Indices (among code cells, injected parameters excluded) of cells that show a PNG."""
    code = [
        c
        for c in nb.cells
        if c.cell_type == "code" and "injected-parameters" not in c.metadata.get("tags", [])
    ]
    return [
        i for i, c in enumerate(code) if any("image/png" in o.get("data", {}) for o in c.outputs)
    ]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_outputs_come_from_the_current_code(path: Path) -> None:
    """The outputs were produced by these cells and this package (full mode, not quick)."""
    nb = nbformat.read(path, as_version=4)
    recorded = nb.metadata.get(run_notebooks.PROVENANCE_KEY)
    assert recorded, f"{path.name} has no execution record: {REFRESH}"
    assert recorded["quick"] is False, f"{path.name} was committed from a quick run: {REFRESH}"
    assert recorded["code_sha256"] == run_notebooks.code_fingerprint(nb), (
        f"{path.name}: a code cell changed after the outputs were made: {REFRESH}"
    )
    assert recorded["package_sha256"] == run_notebooks.package_fingerprint(), (
        f"{path.name}: iic_helpers changed after the outputs were made: {REFRESH}"
    )


def test_fingerprints_see_a_changed_cell_and_a_changed_package(tmp_path: Path) -> None:
    nb = nbformat.read(NOTEBOOKS[0], as_version=4)
    before = run_notebooks.code_fingerprint(nb)
    next(c for c in nb.cells if c.cell_type == "code").source += "\n# edited"
    assert run_notebooks.code_fingerprint(nb) != before
    (tmp_path / "pkg" / "sub").mkdir(parents=True)
    (tmp_path / "pkg" / "sub" / "a.py").write_text("x = 1\n")
    first = run_notebooks.package_fingerprint(tmp_path / "pkg")
    (tmp_path / "pkg" / "sub" / "a.py").write_text("x = 2\n")
    assert run_notebooks.package_fingerprint(tmp_path / "pkg") != first


def test_provenance_records_the_cpu_and_the_timing_table_lists_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in run_notebooks.AVX2_ENV:  # e.g. when the suite itself runs with AVX2 limits
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ATEN_CPU_CAPABILITY", "avx2")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")])
    record = run_notebooks.provenance(nb, quick=True, seconds=12.34)
    assert record["seconds"] == 12.3
    assert record["machine"]["isa_limits"] == {"ATEN_CPU_CAPABILITY": "avx2"}
    assert record["machine"]["cpu_capability"] in {"AVX512", "AVX2", "DEFAULT", "ZVECTOR"}
    paths = []
    for name, seconds in (("00_a.ipynb", 30.0), ("01_b.ipynb", 95.0)):
        nb.metadata[run_notebooks.PROVENANCE_KEY] = {**record, "seconds": seconds}
        nbformat.write(nb, tmp_path / name)
        paths.append(tmp_path / name)
    table = run_notebooks.timing_table(paths).splitlines()
    assert table[2].split()[:2] == ["00_a.ipynb", "30"]
    assert table[3].split()[:2] == ["01_b.ipynb", "95"]
    assert table[-1].split() == ["total", "125"]


def test_notebooks_execute_headless_in_quick_mode(quick_tutorial: Path) -> None:
    """Runs every notebook in order under one RUN_ROOT, as `make test` and `make tutorial`
    (the run itself is the session fixture `quick_tutorial`, shared with tests/test_student.py)."""
    tmp_path = quick_tutorial
    executed = sorted((tmp_path / "notebooks").glob("*.ipynb"))
    assert [p.name for p in executed] == [p.name for p in NOTEBOOKS]
    for path, committed_path in zip(executed, NOTEBOOKS, strict=True):
        nb = nbformat.read(path, as_version=4)
        errors = [o for c in nb.cells for o in c.get("outputs", []) if o["output_type"] == "error"]
        assert not errors, f"{path.name}: {errors[:1]}"
        # the fresh execution ran the committed cells and drew figures in the same cells
        committed = nbformat.read(committed_path, as_version=4)
        assert run_notebooks.code_cells(nb) == run_notebooks.code_cells(committed)
        assert _png_cells(nb) == _png_cells(committed), f"{path.name}: figures moved: {REFRESH}"
        assert (
            nb.metadata[run_notebooks.PROVENANCE_KEY]["package_sha256"]
            == (committed.metadata[run_notebooks.PROVENANCE_KEY]["package_sha256"])
        ), f"{path.name}: committed outputs come from another package version: {REFRESH}"
    assert len(list((tmp_path / "figures").glob("*.png"))) >= 4
    assert _reply_delays(executed) < 20, "the client waited for a reply that had arrived"


def _reply_delays(paths: list[Path]) -> float:
    """The longest time, over every executed cell, from the kernel's ``execute_reply`` (its
    timestamp) to papermill's end of the cell. Without `run_notebooks.sliced_get_msg` it was
    60 s after notebook 03's widget cell (the whole quick-mode limit), on a busy machine."""
    from datetime import datetime

    longest = 0.0
    for path in paths:
        for cell in nbformat.read(path, as_version=4).cells:
            reply = cell.get("metadata", {}).get("execution", {}).get("shell.execute_reply")
            end = cell.get("metadata", {}).get("papermill", {}).get("end_time")
            if reply and end:
                delay = datetime.fromisoformat(end) - datetime.fromisoformat(reply)
                longest = max(longest, delay.total_seconds())
    return longest


def test_the_committed_notebooks_had_no_stalled_cell() -> None:
    """The committed outputs (the README's tutorial-time run) were recorded without a cell
    whose end came long after the kernel's reply (`_reply_delays`)."""
    assert _reply_delays(NOTEBOOKS) < 20


def test_kernel_messages_are_awaited_in_slices_and_keep_their_deadline() -> None:
    """`run_notebooks.sliced_get_msg`: a message that a long wait would miss is found by the
    next slice; with nothing to receive, ``Empty`` comes at the caller's deadline."""
    import asyncio
    import time
    from queue import Empty

    waits: list[float] = []

    async def missed_twice(channel, timeout):  # like a poll that misses the wake-up
        waits.append(timeout)
        if len(waits) <= 2:
            await asyncio.sleep(timeout)
            raise Empty
        return {"msg_type": "execute_reply"}

    wait = run_notebooks.sliced_get_msg(missed_twice, slice_s=0.01)
    assert asyncio.run(wait(None, None)) == {"msg_type": "execute_reply"}
    assert waits == [0.01, 0.01, 0.01]
    assert asyncio.run(wait(None, 60)) == {"msg_type": "execute_reply"}  # first slice

    async def never(channel, timeout):
        await asyncio.sleep(timeout)
        raise Empty

    start = time.monotonic()
    with pytest.raises(Empty):
        asyncio.run(run_notebooks.sliced_get_msg(never, slice_s=0.02)(None, 0.1))
    assert 0.1 <= time.monotonic() - start < 1.0
    from jupyter_client.channels import AsyncZMQSocketChannel

    original = AsyncZMQSocketChannel.get_msg
    with run_notebooks.kernel_messages_polled_in_slices():
        assert AsyncZMQSocketChannel.get_msg is not original
    assert AsyncZMQSocketChannel.get_msg is original


def test_every_test_file_that_uses_the_quick_tutorial_runs_on_the_notebooks_worker() -> None:
    """``make test`` runs pytest on two workers; conftest.py sends the files that use the
    session fixture ``quick_tutorial`` to one worker so that the notebooks run once. A new
    file that uses it must be added to ``NOTEBOOK_TEST_FILES``."""
    from conftest import NOTEBOOK_TEST_FILES

    tests = Path(__file__).parent
    users = {
        f"tests/{p.name}"
        for p in tests.glob("test_*.py")
        if re.search(r"\bquick_tutorial\b", p.read_text())
    }
    assert users == set(NOTEBOOK_TEST_FILES)
    from conftest import SLOW_TEST_FILES

    assert all((tests.parent / path).exists() for path in SLOW_TEST_FILES)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_solutions_are_marked_and_collapsed(path: Path) -> None:
    """Solution code sits between nbgrader's markers; solutions and answers start collapsed."""
    nb = nbformat.read(path, as_version=4)
    for i, cell in enumerate(nb.cells):
        marked = "### BEGIN SOLUTION" in cell.source
        if marked:
            assert cell.cell_type == "code", f"{path.name} cell {i}: markers belong in code"
            assert cell.source.count("### BEGIN SOLUTION") == cell.source.count(
                "### END SOLUTION"
            ), f"{path.name} cell {i}: unbalanced solution markers"
        is_solution = cell.metadata.get("nbgrader", {}).get("solution", False)
        if marked or is_solution:
            assert is_solution, f"{path.name} cell {i}: add nbgrader metadata solution=true"
            assert cell.metadata.get("jupyter", {}).get("source_hidden") is True, (
                f"{path.name} cell {i}: collapse solution cells (jupyter.source_hidden)"
            )
        if is_solution and cell.cell_type == "markdown":
            assert cell.source.startswith("**Answer"), f"{path.name} cell {i}: mark the answer"


def test_a_hung_cell_is_executed_again_at_most_twice(monkeypatch, tmp_path: Path, capsys) -> None:
    """``execute`` executes a notebook whose cell timed out (nbclient#312) again, three times in
    all at most, and says so each time."""
    import papermill
    from nbclient.exceptions import CellTimeoutError

    calls = []

    def fake_execute(*args, **kwargs):
        calls.append(kwargs["timeout_func"])
        if len(calls) <= failures:
            raise CellTimeoutError("A cell timed out")

    monkeypatch.setattr(papermill, "execute_notebook", fake_execute)
    failures = 2
    run_notebooks.execute(tmp_path / "a.ipynb", tmp_path / "b.ipynb", quick=True)
    assert len(calls) == 3
    assert capsys.readouterr().out.count("HUNG CELL") == 2
    calls.clear()
    failures = 3
    with pytest.raises(CellTimeoutError):
        run_notebooks.execute(tmp_path / "a.ipynb", tmp_path / "b.ipynb", quick=True)
    assert len(calls) == 3


def test_widget_cells_have_a_time_limit_in_full_mode_too(monkeypatch, tmp_path: Path) -> None:
    """Full mode (``make tutorial``): training cells may run as long as they need, a cell that
    builds widgets is limited (the nbclient#312 hang was seen there in full mode); quick mode
    limits every cell. The limit reaches nbclient as ``timeout_func`` of the cell."""
    import nbformat
    import papermill

    seen = {}

    def fake_execute(*args, **kwargs):
        seen["timeout_func"] = kwargs["timeout_func"]

    monkeypatch.setattr(papermill, "execute_notebook", fake_execute)
    widget = nbformat.v4.new_code_cell("import ipywidgets as widgets\nwidgets.interact(f)")
    training = nbformat.v4.new_code_cell("pretrain(cfg, RUN_ROOT)")
    run_notebooks.execute(tmp_path / "a.ipynb", tmp_path / "b.ipynb", quick=False)
    timeout = seen["timeout_func"]
    assert timeout(widget) == run_notebooks.WIDGET_CELL_TIMEOUT
    assert timeout(training) is None
    run_notebooks.execute(tmp_path / "a.ipynb", tmp_path / "b.ipynb", quick=True)
    assert seen["timeout_func"](training) == run_notebooks.QUICK_CELL_TIMEOUT
    assert seen["timeout_func"](widget) == run_notebooks.QUICK_WIDGET_CELL_TIMEOUT
    # the notebooks' widget cells are recognised
    sources = [
        c.source
        for path in sorted((REPO / "notebooks").glob("0*.ipynb"))
        for c in nbformat.read(path, as_version=4).cells
        if c.cell_type == "code"
    ]
    assert sum(run_notebooks.cell_timeout(src, False) is not None for src in sources) >= 2

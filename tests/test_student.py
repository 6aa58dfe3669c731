"""Student notebooks: generated from the solutions, fresh, and stopping at their first blank."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("make_student", REPO / "scripts/make_student.py")
make_student = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make_student)
_spec = importlib.util.spec_from_file_location("run_notebooks", REPO / "scripts/run_notebooks.py")
run_notebooks = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(run_notebooks)
SOLUTIONS = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))
STUDENT = [REPO / "student" / p.name for p in SOLUTIONS]


def test_student_copies_are_fresh(tmp_path: Path) -> None:
    assert not make_student.write_student(REPO / "student", check=True), (
        "student/ is stale: run `make student` and commit"
    )
    # generating twice gives identical bytes
    make_student.write_student(tmp_path)
    first = {p.name: p.read_bytes() for p in tmp_path.glob("*.ipynb")}
    assert not make_student.write_student(tmp_path)
    assert first == {p.name: p.read_bytes() for p in tmp_path.glob("*.ipynb")}
    assert sorted(first) == [p.name for p in SOLUTIONS]


def test_a_changed_solution_makes_student_stale(tmp_path: Path) -> None:
    make_student.write_student(tmp_path)
    target = tmp_path / SOLUTIONS[0].name
    target.write_text(target.read_text().replace("Exercise 1", "Exercise one", 1))
    assert make_student.write_student(tmp_path, check=True) == [target]


@pytest.mark.parametrize("path", STUDENT, ids=lambda p: p.name)
def test_student_copy_has_blanks_not_solutions(path: Path) -> None:
    solution = nbformat.read(REPO / "notebooks" / path.name, as_version=4)
    student = nbformat.read(path, as_version=4)
    assert len(student.cells) == len(solution.cells)
    text = json.dumps(student.cells)
    assert "### BEGIN SOLUTION" not in text and "**Answer" not in text
    assert "iic_tutorial" not in student.metadata and "widgets" not in student.metadata
    blanks = 0
    for sol, stu in zip(solution.cells, student.cells, strict=True):
        assert stu.cell_type == sol.cell_type
        if stu.cell_type == "code":
            assert stu.outputs == [] and stu.execution_count is None
        if stu.metadata.get("nbgrader", {}).get("solution"):
            assert "source_hidden" not in stu.metadata.get("jupyter", {})
            if stu.cell_type == "code":
                blanks += 1
                assert re.search(r"raise NotImplementedError\(['\"]Exercise \d+: ", stu.source)
                assert "# Hint:" in stu.source
            else:
                assert stu.source == make_student.ANSWER
        elif stu.cell_type == "code":
            assert stu.source == sol.source, "non-solution code must stay identical"
    assert blanks == sum("### BEGIN SOLUTION" in c.source for c in solution.cells)


def test_blank_keeps_indentation_and_the_authors_hints() -> None:
    source = (
        "def f(x):\n    ### BEGIN SOLUTION\n    # Hint: roll along time\n    y = x\n"
        "    return y\n    ### END SOLUTION\n"
    )
    out = make_student.blank_solution(source, 3, "Write f")
    assert out.splitlines() == [
        "def f(x):",
        "    # Hint: roll along time",
        "    raise NotImplementedError('Exercise 3: Write f')",
    ]
    with pytest.raises(ValueError, match="unbalanced"):
        make_student.blank_solution("### BEGIN SOLUTION\nx = 1\n", 1, "t")


def _first_blank(nb) -> int:
    blanks = [
        i
        for i, c in enumerate(nb.cells)
        if c.cell_type == "code" and "raise NotImplementedError(" in c.source
    ]
    assert blanks, "no coding exercise: mark a solution with ### BEGIN/END SOLUTION"
    return blanks[0]


@pytest.mark.parametrize("path", STUDENT, ids=lambda p: p.name)
def test_student_notebook_stops_at_its_first_blank(path: Path, quick_tutorial: Path) -> None:
    """Executed headless (quick mode, after the solution notebooks made RUN_ROOT's inputs), a
    student notebook runs until its first blank and stops there with the NotImplementedError
    that names the exercise: in the blank cell itself when the blank is top-level code, or in
    the check cell right after it when the blank is a function's body (the checks let a
    blank's error through, see iic_helpers.exercises); never with any other error."""
    from papermill.exceptions import PapermillExecutionError

    student = nbformat.read(path, as_version=4)
    blank = _first_blank(student)
    out = quick_tutorial / "student" / path.name
    out.parent.mkdir(exist_ok=True)
    with pytest.raises(PapermillExecutionError) as stopped:
        run_notebooks.execute(
            path,
            out,
            parameters={"RUN_ROOT": str(quick_tutorial), "QUICK": True},
            quick=True,
            cwd=path.parent,
        )
    executed = nbformat.read(out, as_version=4)
    failed = [
        c
        for c in executed.cells
        if c.cell_type == "code" and any(o.output_type == "error" for o in c.get("outputs", []))
    ]
    assert len(failed) == 1
    error = stopped.value
    assert error.ename == "NotImplementedError", f"{path.name}: {error.ename}: {error.evalue}"
    assert re.match(r"Exercise \d+: ", error.evalue), error.evalue
    allowed = [student.cells[blank].source]
    if blank + 1 < len(student.cells) and "check_" in student.cells[blank + 1].source:
        allowed.append(student.cells[blank + 1].source)
    assert failed[0].source in allowed, f"{path.name} stopped in {failed[0].source[:200]!r}"

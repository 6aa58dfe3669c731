"""Execute the tutorial notebooks in order, headless (used by `make tutorial` and the tests).

Each notebook in ``notebooks/`` (``00_*.ipynb`` ... ``05_*.ipynb``) runs with papermill,
with ``RUN_ROOT`` and ``QUICK`` injected into its cell tagged ``parameters``. Executed copies
go to ``<run-root>/notebooks/``; figures and artefacts go wherever the notebooks write
them under ``RUN_ROOT``. A failing notebook stops the run with its name and the error.

    python scripts/run_notebooks.py --run-root runs/tutorial [--quick] [--only 00 01]
        [--isa native|avx2] [--timing-json results/tutorial_times/NAME.json]

``--isa avx2`` limits oneDNN, ATen and MKL to AVX2 (:data:`AVX2_ENV`, inherited by the
kernels), which is how the AVX2 timings were measured on an AVX-512 machine; ``--timing-json``
writes each notebook's wall time with the machine (:func:`timing_record`), the input of
``scripts/tutorial_times.py``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import hashlib
import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from iic_helpers.isa import AVX2_ENV, avx2_env, cpu_model

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"
PACKAGE = REPO / "iic_helpers"
#: Notebook metadata key recording what produced the outputs (see `provenance`).
PROVENANCE_KEY = "iic_tutorial"


def package_fingerprint(package: Path = PACKAGE) -> str:
    """SHA-256 over every ``iic_helpers/**/*.py`` (relative path and bytes), sorted by path."""
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        digest.update(path.relative_to(package).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def code_cells(nb: Any) -> list[str]:
    """Sources of the code cells, without the cell papermill injects for parameters."""
    return [
        cell.source
        for cell in nb.cells
        if cell.cell_type == "code"
        and "injected-parameters" not in cell.get("metadata", {}).get("tags", [])
    ]


def code_fingerprint(nb: Any) -> str:
    """SHA-256 over a notebook's code-cell sources (see :func:`code_cells`)."""
    return hashlib.sha256("\0".join(code_cells(nb)).encode()).hexdigest()


def machine() -> dict[str, Any]:
    """The CPU a run used: torch's SIMD capability (e.g. ``AVX512``, ``AVX2``), ISA limits
    set in the environment, core and thread counts."""
    import torch

    return {
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "isa_limits": {name: os.environ[name] for name in AVX2_ENV if name in os.environ},
        "cpu_model": cpu_model(),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
    }


def isa_label(record: dict[str, Any]) -> str:
    """``"AVX512"``, ``"AVX2"`` or ``"AVX2 (emulated)"`` for a :func:`machine` record."""
    from iic_helpers.isa import isa_label as label

    return label(str(record.get("cpu_capability", "?")), record.get("isa_limits", {}))


def timing_record(executed: list[Path], quick: bool, seconds: float) -> dict[str, Any]:
    """Each executed notebook's recorded wall time, the total and the machine (JSON-ready)."""
    import nbformat

    times = {}
    for path in executed:
        record = nbformat.read(path, as_version=4).metadata.get(PROVENANCE_KEY, {})
        times[path.stem] = record.get("seconds")
    info = machine()
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": "python " + " ".join([_relative_to_repo(sys.argv[0]), *sys.argv[1:]]),
        "quick": quick,
        "machine": {**info, "isa": isa_label(info)},
        "notebook_seconds": times,
        "total_seconds": round(sum(v for v in times.values() if v is not None), 1),
        "wall_seconds": round(seconds, 1),
    }


def provenance(nb: Any, quick: bool, seconds: float) -> dict[str, Any]:
    """What an executed notebook records: the package and cell fingerprints it ran with,
    its wall time and the machine (:func:`machine`)."""
    return {
        "package_sha256": package_fingerprint(),
        "code_sha256": code_fingerprint(nb),
        "quick": quick,
        "seconds": round(seconds, 1),
        "machine": machine(),
    }


def timing_table(executed: list[Path]) -> str:
    """A plain-text table of each executed notebook's recorded wall time and CPU."""
    import nbformat

    lines = [f"{'notebook':<48} {'seconds':>8}  cpu", "-" * 68]
    total = 0.0
    for path in executed:
        record = nbformat.read(path, as_version=4).metadata.get(PROVENANCE_KEY, {})
        seconds = float(record.get("seconds", float("nan")))
        total += seconds
        cpu = isa_label(record.get("machine", {}))
        lines.append(f"{path.name:<48} {seconds:>8.0f}  {cpu}")
    lines.append(f"{'total':<48} {total:>8.0f}")
    return "\n".join(lines)


def record_provenance(path: Path, quick: bool, seconds: float) -> None:
    """Write :func:`provenance` into the executed notebook's metadata."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    nb.metadata[PROVENANCE_KEY] = provenance(nb, quick, seconds)
    papermill_record = nb.metadata.get("papermill", {})
    for key in ("input_path", "output_path"):  # no absolute path of the executing machine
        if key in papermill_record:
            papermill_record[key] = _relative_to_repo(papermill_record[key])
    nbformat.write(nb, path)


def _relative_to_repo(path: str) -> str:
    """``path`` relative to the repository when inside it, else unchanged."""
    try:
        return Path(path).resolve().relative_to(REPO).as_posix()
    except ValueError:
        return path


def notebooks_in_order(only: list[str] | None = None) -> list[Path]:
    """Numbered notebooks, sorted; ``only`` keeps those whose name starts with a prefix."""
    found = sorted(p for p in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    if only:
        found = [p for p in found if any(p.name.startswith(prefix) for prefix in only)]
    return found


#: Seconds a cell may run in quick mode (the test suite) before it counts as hung; quick
#: cells take seconds. Full-mode cells have no limit (``TRAIN = "full"`` trains for minutes),
#: except cells that build interactive widgets (:data:`WIDGET_CELL_TIMEOUT`).
QUICK_CELL_TIMEOUT = 300
#: Seconds a cell that builds an interactive widget may run in full mode before it counts as
#: hung: such cells take seconds, and it is where jupyter/nbclient#312 was seen, in full
#: mode too, more often on a busy machine.
WIDGET_CELL_TIMEOUT = 300
#: The same in quick mode (the test suite): at most ~5 s was measured for such a cell, on
#: an emulated AVX2 CPU with the test suite's second worker beside it.
QUICK_WIDGET_CELL_TIMEOUT = 60
#: How many times a notebook is executed at most when cells hang (each time from the start,
#: in a fresh kernel); the last hang is an error.
ATTEMPTS = 3
#: Words in a cell's source that mark it as building an interactive widget.
WIDGET_MARKERS = ("ipywidgets", "widgets.", "interact(", "clip_viewer(")


def cell_timeout(source: str, quick: bool) -> int | None:
    """Seconds ``source``'s cell may run before it counts as hung (``None``: no limit).

    >>> cell_timeout("import ipywidgets as widgets", quick=False)
    300
    >>> cell_timeout("import ipywidgets as widgets", quick=True)
    60
    >>> cell_timeout("pretrain(cfg)", quick=False) is None
    True
    """
    if any(marker in source for marker in WIDGET_MARKERS):
        return QUICK_WIDGET_CELL_TIMEOUT if quick else WIDGET_CELL_TIMEOUT
    return QUICK_CELL_TIMEOUT if quick else None


#: Longest single wait, in seconds, for a kernel message (see :func:`sliced_get_msg`).
POLL_SLICE_S = 1.0


def sliced_get_msg(get_msg: Any, slice_s: float = POLL_SLICE_S) -> Any:
    """``get_msg`` (jupyter_client's ``AsyncZMQSocketChannel.get_msg``) waiting in slices of
    at most ``slice_s`` seconds, each of which looks at the socket afresh.

    Why: nbclient waits for a cell's ``execute_reply`` with one ``get_msg(timeout)`` on the
    shell channel. Measured in this project: the kernel sent the reply 0.3 s after the cell
    started, yet the wait ended only when its timeout ran out, 60 s later (a cell with
    ipywidgets, on a busy machine; with no timeout it waits forever: jupyter/nbclient#312,
    where a maintainer says ``get_msg`` should return when the message arrives). The message
    was there all along, so a fresh look every ``slice_s`` seconds finds it. The total wait
    and its ``Empty`` at the deadline are unchanged.
    """
    from queue import Empty

    async def wait(self: Any, timeout: float | None = None) -> dict[str, Any]:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = slice_s if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                return await get_msg(self, min(slice_s, left))
            except Empty:
                if deadline is not None and time.monotonic() >= deadline:
                    raise

    return wait


@contextlib.contextmanager
def kernel_messages_polled_in_slices() -> Iterator[None]:
    """Within the block, every ``AsyncZMQSocketChannel.get_msg`` is :func:`sliced_get_msg`."""
    from jupyter_client.channels import AsyncZMQSocketChannel

    original = AsyncZMQSocketChannel.get_msg
    AsyncZMQSocketChannel.get_msg = sliced_get_msg(original)  # type: ignore[method-assign]
    try:
        yield
    finally:
        AsyncZMQSocketChannel.get_msg = original  # type: ignore[method-assign]


def execute(
    notebook: Path,
    target: Path,
    parameters: dict[str, Any] | None = None,
    quick: bool = False,
    cwd: Path = NOTEBOOKS,
) -> None:
    """Execute ``notebook`` into ``target`` with papermill; execute it again if a cell hangs.

    nbclient could wait for a kernel message long after it had arrived, until its timeout
    or forever (jupyter/nbclient#312, seen after cells with ipywidgets), so messages are
    awaited in slices (:func:`kernel_messages_polled_in_slices`). Should a cell still run
    longer than :func:`cell_timeout` allows, it counts as hung: the notebook is executed
    again, from the start, in a fresh kernel, up to `ATTEMPTS` times in all; the last hang
    is an error. Each hang is reported on standard output with the cell's start.
    """
    import papermill
    from nbclient.exceptions import CellTimeoutError

    for attempt in range(1, ATTEMPTS + 1):
        try:
            with kernel_messages_polled_in_slices():
                papermill.execute_notebook(
                    str(notebook),
                    str(target),
                    parameters=parameters,
                    cwd=str(cwd),
                    kernel_name="python3",
                    progress_bar=False,
                    timeout_func=lambda cell: cell_timeout(cell.source, quick),
                )
            return
        except CellTimeoutError as error:
            if attempt == ATTEMPTS:
                raise
            cell = str(error).split("Here is a preview of the cell contents:")[-1].strip()
            print(
                f"run_notebooks: HUNG CELL: a cell of {notebook.name} ran over its time limit "
                f"(a hung kernel connection, jupyter/nbclient#312?): executing the notebook "
                f"again (attempt {attempt + 1} of {ATTEMPTS}); the cell: {cell[:300]!r}",
                flush=True,
            )


def run_all(
    run_root: Path, quick: bool, only: list[str] | None = None, in_place: bool = False
) -> list[Path]:
    """Execute notebooks in order under ``run_root``; return the executed copies.

    ``in_place`` refreshes the committed notebooks themselves with their own parameters
    (no injected cell), which is how the outputs in ``notebooks/`` are produced. Every
    executed notebook records the package and code-cell fingerprints it ran with
    (metadata ``iic_tutorial``), so a test can tell stale committed outputs.
    """
    notebooks = notebooks_in_order(only)
    if not notebooks:
        print("run_notebooks: no notebooks in notebooks/ yet; nothing to run.")
        return []
    run_root = run_root.resolve()
    out_dir = run_root / "notebooks"
    out_dir.mkdir(parents=True, exist_ok=True)
    executed = []
    for nb in notebooks:
        start = time.perf_counter()
        target = nb if in_place else out_dir / nb.name
        print(f"run_notebooks: executing {nb.relative_to(REPO)} (quick={quick}) ...", flush=True)
        execute(
            nb,
            target,
            parameters=None if in_place else {"RUN_ROOT": str(run_root), "QUICK": quick},
            quick=quick,
        )
        seconds = time.perf_counter() - start
        record_provenance(target, quick, seconds)
        print(f"run_notebooks: {nb.name} done in {seconds:.0f} s -> {target}")
        executed.append(target)
    return executed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-root", type=Path, default=REPO / "runs" / "tutorial")
    parser.add_argument(
        "--quick",
        action="store_true",
        default=os.environ.get("IIC_QUICK", "") == "1",
        help="CI mode: shrink data and epochs (also set by IIC_QUICK=1)",
    )
    parser.add_argument("--only", nargs="*", help="notebook name prefixes, e.g. 00 01")
    parser.add_argument(
        "--in-place",
        action="store_true",
        help="refresh the committed notebooks' outputs (their own default parameters)",
    )
    parser.add_argument(
        "--isa",
        choices=("native", "avx2"),
        default="native",
        help="avx2: limit oneDNN/ATen/MKL to AVX2 (emulates an AVX2-only CPU)",
    )
    parser.add_argument("--timing-json", type=Path, help="write the timings and machine here")
    args = parser.parse_args(argv)
    if args.isa == "avx2" and any(os.environ.get(k) != v for k, v in AVX2_ENV.items()):
        # torch reads the limits when it is imported: start again with them set
        command = [
            sys.executable,
            str(Path(__file__).resolve()),
            *(sys.argv[1:] if argv is None else argv),
        ]
        os.execve(sys.executable, command, avx2_env())
    start = time.perf_counter()
    executed = run_all(args.run_root, args.quick, args.only, args.in_place)
    if executed:
        print("\n" + timing_table(executed) + "\n")
        if args.timing_json is not None:
            record = timing_record(executed, args.quick, time.perf_counter() - start)
            args.timing_json.parent.mkdir(parents=True, exist_ok=True)
            args.timing_json.write_text(json.dumps(record, indent=2) + "\n")
            print(f"run_notebooks: timings ({record['machine']['isa']}) -> {args.timing_json}")
        print(
            f"run_notebooks: {len(executed)} notebooks in {time.perf_counter() - start:.0f} s; "
            f"executed copies in {args.run_root / 'notebooks'}, figures in "
            f"{args.run_root / 'figures'}"
        )
        summary = args.run_root / "summary.csv"
        if summary.exists():
            print(f"\nTutorial summary ({summary}{', QUICK MODE' if args.quick else ''}):")
            print(summary.read_text().replace(",", "\t"))
    return 0


if __name__ == "__main__":
    sys.exit(main())

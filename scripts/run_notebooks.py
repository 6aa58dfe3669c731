"""Execute the tutorial notebooks in order, headless (used by `make tutorial` and the tests).

Each notebook in ``notebooks/`` (``00_*.ipynb`` ... ``05_*.ipynb``) runs with papermill,
with ``RUN_ROOT`` and ``QUICK`` injected into its cell tagged ``parameters``. Executed copies
go to ``<run-root>/notebooks/``; figures and artefacts go wherever the notebooks write
them under ``RUN_ROOT``. A failing notebook stops the run with its name and the error.

    python scripts/run_notebooks.py --run-root runs/tutorial [--quick] [--only 00 01]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import time
from pathlib import Path
from typing import Any

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
        "isa_limits": {
            name: os.environ[name]
            for name in ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA")
            if name in os.environ
        },
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
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
        cpu = record.get("machine", {}).get("cpu_capability", "?")
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


def run_all(
    run_root: Path, quick: bool, only: list[str] | None = None, in_place: bool = False
) -> list[Path]:
    """Execute notebooks in order under ``run_root``; return the executed copies.

    ``in_place`` refreshes the committed notebooks themselves with their own parameters
    (no injected cell), which is how the outputs in ``notebooks/`` are produced. Every
    executed notebook records the package and code-cell fingerprints it ran with
    (metadata ``iic_tutorial``), so a test can tell stale committed outputs.
    """
    import papermill

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
        papermill.execute_notebook(
            str(nb),
            str(target),
            parameters=None if in_place else {"RUN_ROOT": str(run_root), "QUICK": quick},
            cwd=str(NOTEBOOKS),
            kernel_name="python3",
            progress_bar=False,
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
    args = parser.parse_args(argv)
    start = time.perf_counter()
    executed = run_all(args.run_root, args.quick, args.only, args.in_place)
    if executed:
        print("\n" + timing_table(executed) + "\n")
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

"""Execute the tutorial notebooks in order, headless (used by `make tutorial` and the tests).

Each notebook in ``notebooks/`` (``00_*.ipynb`` ... ``05_*.ipynb``) runs with papermill,
with ``RUN_ROOT`` and ``QUICK`` injected into its cell tagged ``parameters``. Executed copies
go to ``<run-root>/notebooks/``; figures and artefacts go wherever the notebooks write
them under ``RUN_ROOT``. A failing notebook stops the run with its name and the error.

    python scripts/run_notebooks.py --run-root runs/tutorial [--quick] [--only 00 01]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"


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
    (no injected cell), which is how the outputs in ``notebooks/`` are produced.
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
        print(f"run_notebooks: {nb.name} done in {time.perf_counter() - start:.0f} s -> {target}")
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

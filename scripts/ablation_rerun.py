"""Compare re-runs of ablation runs with the values of ``results/ablation.json``.

The ablation table keeps only per-seed values. To check that the committed command still
reproduces them, single runs were repeated with the current code, e.g.

    python -m iic_helpers ablation --threads 1 --variants cmc --seeds 1 --out runs/ablation-check

and their small files copied here (``results/ablation-rerun/<variant>-s<seed>/``:
``config.json``, ``history.csv``, ``results.json``, ``finetune/config.json``,
``finetune/history.csv``, ``finetune/results.json``; the "random" rows have no pretraining
files; checkpoints and features are left out). This script writes
``results/ablation-rerun/comparison.md`` from those files (``--check``: only compare; a test
uses it).

    python scripts/ablation_rerun.py [--copy runs/ablation] [--check]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FOLDER = REPO / "results" / "ablation-rerun"
TABLE = REPO / "results" / "ablation.json"
FILES = (
    "config.json",  # pretraining (none for "random", which is not pretrained)
    "history.csv",
    "results.json",
    "finetune/config.json",
    "finetune/history.csv",
    "finetune/results.json",
)
METRICS = ("top1", "top5", "top10", "linear_probe", "finetune")


def measured(results: dict) -> dict[str, float]:
    """The table's metrics (in %) from one run's ``results.json``."""
    out = {
        "top1": 100 * results["retrieval"]["top1"],
        "top5": 100 * results["retrieval"]["top5"],
        "top10": 100 * results["retrieval"]["top10"],
    }
    if "linear_probe" in results:
        out["linear_probe"] = 100 * results["linear_probe"]["accuracy"]
    if "finetune" in results:
        out["finetune"] = 100 * results["finetune"]["test_accuracy"]
    return out


def comparison(folder: Path = FOLDER) -> str:
    """Markdown: per re-run and metric, the re-run's value and the table's value for its seed."""
    table = json.loads(TABLE.read_text())["table"]
    lines = [
        "| run | metric | re-run (%) | `results/ablation.json` (%) | difference (points) |",
        "| --- | --- | --- | --- | --- |",
    ]
    for run in sorted(p for p in folder.iterdir() if (p / "results.json").exists()):
        variant, seed = run.name.rsplit("-s", 1)
        row = table[variant]
        column = row["seeds"].index(int(seed))
        values = measured(json.loads((run / "results.json").read_text()))
        for metric in METRICS:
            if metric not in values:
                continue
            mine, theirs = round(values[metric], 2), row[metric]["values"][column]
            lines.append(
                f"| {run.name} | {metric} | {mine:.2f} | {theirs:.2f} | {mine - theirs:+.2f} |"
            )
    return "\n".join(lines) + "\n"


def copy_runs(source: Path) -> None:
    for run in sorted(p for p in source.iterdir() if (p / "results.json").exists()):
        results = json.loads((run / "results.json").read_text())
        if not all(k in results for k in ("retrieval", "linear_probe", "finetune")):
            continue  # unfinished
        for name in FILES:
            if (run / name).exists():
                (FOLDER / run.name / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(run / name, FOLDER / run.name / name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--copy", type=Path, help="copy finished runs from this folder first")
    parser.add_argument("--check", action="store_true", help="exit 1 if comparison.md is stale")
    args = parser.parse_args(argv)
    if args.copy is not None:
        copy_runs(args.copy)
    text = comparison()
    target = FOLDER / "comparison.md"
    if args.check:
        stale = not target.exists() or target.read_text() != text
        if stale:
            print("ablation_rerun: stale: run `python scripts/ablation_rerun.py`", file=sys.stderr)
        return int(stale)
    target.write_text(text)
    print(f"ablation_rerun: wrote {target.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

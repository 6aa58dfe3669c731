"""Run-directory files shared by every command: ``history.csv`` rows and ``results.json``."""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["adopt_checkpoint", "append_csv_row", "read_csv_rows", "read_results", "update_results"]


def append_csv_row(path: Path, fields: Sequence[str], row: Mapping[str, Any]) -> None:
    """Append one row (writing the header first when the file is new)."""
    new = not path.exists()
    with path.open("a", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(fields))
        if new:
            writer.writeheader()
        writer.writerow({key: row[key] for key in fields})


def read_csv_rows(path: Path) -> list[dict[str, float]]:
    """Rows of a history file as dicts of floats."""
    if not path.exists():
        raise FileNotFoundError(f"no history at {path}: run the training command first")
    with path.open() as handle:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(handle)]


def update_results(run_dir: str | Path, results: Mapping[str, Any]) -> Path:
    """Merge ``results`` into ``<run_dir>/results.json`` (other commands' keys are kept)."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / "results.json"
    merged = json.loads(path.read_text()) if path.exists() else {}
    merged.update(results)
    path.write_text(json.dumps(merged, indent=2) + "\n")
    return path


def read_results(run_dir: str | Path) -> dict[str, Any]:
    path = Path(run_dir) / "results.json"
    if not path.exists():
        raise FileNotFoundError(f"no results at {path}: run retrieve / finetune first")
    return json.loads(path.read_text())


def adopt_checkpoint(source: str | Path, run_dir: str | Path) -> Path:
    """Make ``run_dir`` a run built from a shipped checkpoint file (``checkpoints/*.pt``).

    Copies the checkpoint to ``<run_dir>/checkpoint.pt``, its ``<stem>.history.csv`` (when
    present) to ``history.csv``, and writes ``config.json`` from the checkpoint's config, so
    later notebooks read it exactly like a run trained here.
    """
    import shutil

    from .checkpoint import load_checkpoint

    source, run_dir = Path(source), Path(run_dir)
    state = load_checkpoint(source)
    run_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, run_dir / "checkpoint.pt")
    history = source.with_suffix(".history.csv")
    if history.exists():
        shutil.copyfile(history, run_dir / "history.csv")
    if isinstance(state.get("config"), dict):
        (run_dir / "config.json").write_text(json.dumps(state["config"], indent=2) + "\n")
    return run_dir

"""``results/ablation-rerun/comparison.md`` is what the committed re-run files say."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location(
    "ablation_rerun", REPO / "scripts" / "ablation_rerun.py"
)
ablation_rerun = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ablation_rerun)


def test_comparison_is_generated_from_the_rerun_files() -> None:
    runs = [p for p in ablation_rerun.FOLDER.iterdir() if (p / "results.json").exists()]
    assert len(runs) >= 2
    for run in runs:
        pretrained = not run.name.startswith("random-")
        for name in ablation_rerun.FILES:
            if pretrained or name.startswith("finetune/") or name == "results.json":
                assert (run / name).exists(), (run.name, name)
        config = json.loads((run / "finetune" / "config.json").read_text())
        assert config["seed"] == int(run.name.rsplit("-s", 1)[1]) and config["preset"] == "tiny"
    assert ablation_rerun.main(["--check"]) == 0


def test_comparison_rows_are_the_table_values_for_the_runs_seed() -> None:
    text = ablation_rerun.comparison()
    table = json.loads(ablation_rerun.TABLE.read_text())["table"]
    row = next(line for line in text.splitlines() if "| cmc-s1 | top1 |" in line)
    assert f"| {table['cmc']['top1']['values'][table['cmc']['seeds'].index(1)]:.2f} |" in row

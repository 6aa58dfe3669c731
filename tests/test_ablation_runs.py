"""The ablation table is what its committed per-run files say (``results/ablation-runs/``)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from iic_helpers.ablation import aggregate

REPO = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location(
    "ablation_runs", REPO / "scripts" / "ablation_runs.py"
)
ablation_runs = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ablation_runs)

TABLE = json.loads(ablation_runs.TABLE.read_text())
#: Rows of the table whose runs were not made again (so they have no per-run files), and why.
NOT_RERUN = {
    "iic-repeat-u": "the flow row needs the optical flow computed first and about an hour more "
    "of the 2 cores; not re-run on 2026-12-02 (README, 'Ablation')",
}
RERUN = [variant for variant in TABLE["table"] if variant not in NOT_RERUN]


def test_only_the_listed_rows_lack_run_files() -> None:
    with_files = {p.name.rsplit("-s", 1)[0] for p in ablation_runs.run_folders()}
    assert set(TABLE["table"]) - with_files == set(NOT_RERUN)
    assert with_files <= set(TABLE["table"])
    assert set(TABLE.get("carried_over", {})) == set(NOT_RERUN)


def test_the_table_files_are_what_the_run_files_make() -> None:
    """``ablation.json`` and ``ablation.md`` are ``--table``'s output, carried rows copied."""
    data = ablation_runs.table_from_files()
    assert data == TABLE
    previous = json.loads(ablation_runs.PREVIOUS.read_text())["table"]
    for variant in NOT_RERUN:
        assert TABLE["table"][variant] == previous[variant]
    cfg = ablation_runs.Config.from_dict(TABLE["config"])
    md = ablation_runs.TABLE.with_suffix(".md").read_text()
    assert md == ablation_runs.markdown_table(TABLE["table"], cfg)


def test_every_run_of_the_table_has_its_files() -> None:
    for variant in RERUN:
        for seed in TABLE["table"][variant]["seeds"]:
            run = ablation_runs.FOLDER / f"{variant}-s{seed}"
            for name in ablation_runs.FILES:
                if variant != "random" or name.startswith("finetune/") or name == "results.json":
                    assert (run / name).exists(), f"{run.relative_to(REPO)}/{name} is missing"
            config = json.loads((run / "finetune" / "config.json").read_text())
            assert (config["seed"], config["preset"]) == (seed, "tiny"), run.name
            if variant != "random":
                pretrain = json.loads((run / "config.json").read_text())
                assert pretrain["seed"] == seed and pretrain["epochs"] == TABLE["config"]["epochs"]
                history = (run / "history.csv").read_text().splitlines()
                assert len(history) == 1 + pretrain["epochs"], run.name


def test_the_table_is_the_aggregate_of_the_run_files() -> None:
    """``aggregate()`` over the committed files gives ``results/ablation.json`` exactly."""
    table = {variant: TABLE["table"][variant] for variant in RERUN}
    seeds = sorted({s for row in table.values() for s in row["seeds"]})
    again = aggregate(ablation_runs.FOLDER, list(table), seeds)
    assert list(again) == list(table)
    for variant, row in table.items():
        assert again[variant]["seeds"] == row["seeds"], variant
        for metric, cell in row.items():
            if metric == "seeds":
                continue
            assert again[variant][metric]["values"] == cell["values"], (variant, metric)
            assert again[variant][metric]["mean"] == pytest.approx(cell["mean"], abs=1e-9)
            assert again[variant][metric]["std"] == pytest.approx(cell["std"], abs=1e-9)


def test_comparison_with_the_previous_table_is_current() -> None:
    assert ablation_runs.main(["--check"]) == 0
    previous = json.loads(ablation_runs.PREVIOUS.read_text())["table"]
    row = next(
        line for line in ablation_runs.comparison().splitlines() if "| cmc-s1 | top1 |" in line
    )
    assert f"| {previous['cmc']['top1']['values'][previous['cmc']['seeds'].index(1)]:.2f} |" in row


def test_an_unfinished_run_is_named_not_skipped(tmp_path: Path) -> None:
    run = tmp_path / "source" / "cmc-s7"
    run.mkdir(parents=True)
    (run / "results.json").write_text(json.dumps({"retrieval": {}}))
    with pytest.raises(SystemExit, match=r"cmc-s7 is unfinished \(no linear_probe, finetune"):
        ablation_runs.copy_runs(tmp_path / "source", tmp_path / "copy")

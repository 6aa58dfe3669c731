"""The ablation command on a very small synthetic set: runs, resumes, aggregates."""

from __future__ import annotations

import json

import pytest

from iic_helpers.__main__ import main as cli
from iic_helpers.ablation import aggregate, markdown_table
from iic_helpers.config import make_config


def test_ablation_end_to_end_and_aggregation(tiny_root, tmp_path, capsys) -> None:
    root = tiny_root
    small = [
        "clip_len=8",
        "resize=18,24",
        "crop=16",
        "width=4",
        "k=4",
        "batch_size=4",
        "eval_clips=2",
        "ft_epochs=1",
        "ft_val_fraction=0.25",
    ]
    args = [
        "ablation",
        "--data-root",
        str(root),
        "--run-dir",
        str(tmp_path / "runs"),
        "--out",
        str(tmp_path / "results"),
        "--epochs",
        "1",
        "--variants",
        "random",
        "cmc",
        "--seeds",
        "0",
        "1",
        *[f"--set={s}" for s in small],
    ]
    assert cli(args) == 0
    table = json.loads((tmp_path / "results" / "ablation.json").read_text())["table"]
    assert set(table) == {"random", "cmc"}
    assert table["cmc"]["seeds"] == [0, 1]
    per_seed = [
        json.loads((tmp_path / "runs" / f"cmc-s{seed}" / "results.json").read_text())
        for seed in (0, 1)
    ]
    from_files = {
        "top1": [100 * r["retrieval"]["top1"] for r in per_seed],
        "top5": [100 * r["retrieval"]["top5"] for r in per_seed],
        "top10": [100 * r["retrieval"]["top10"] for r in per_seed],
        "linear_probe": [100 * r["linear_probe"]["accuracy"] for r in per_seed],
        "finetune": [100 * r["finetune"]["test_accuracy"] for r in per_seed],
    }
    for metric, expected in from_files.items():  # the table is its runs' files, rounded
        assert table["cmc"][metric]["values"] == [round(v, 2) for v in expected], metric
        assert table["cmc"][metric]["mean"] == pytest.approx(sum(expected) / 2)
    md = (tmp_path / "results" / "ablation.md").read_text()
    assert "| cmc | 2 |" in md and "26.4" in md  # the paper's CMC row beside ours
    # a second call reuses the finished runs (no new pretraining)
    stamp = (tmp_path / "runs" / "cmc-s0" / "checkpoint.pt").stat().st_mtime_ns
    assert cli(args) == 0
    assert (tmp_path / "runs" / "cmc-s0" / "checkpoint.pt").stat().st_mtime_ns == stamp
    # more epochs continue the pretraining runs exactly and measure them again
    more = [a if a != "1" or args[i - 1] != "--epochs" else "2" for i, a in enumerate(args)]
    assert cli(more) == 0
    assert (
        json.loads((tmp_path / "runs" / "cmc-s0" / "results.json").read_text())["pretrain_epochs"]
        == 2
    )
    history = (tmp_path / "runs" / "cmc-s0" / "history.csv").read_text().splitlines()
    assert [row.split(",")[0] for row in history[1:]] == ["1", "2"]
    capsys.readouterr()
    assert cli(args) == 2  # fewer epochs than the runs have: refused, nothing overwritten
    assert "more than the 1 asked for" in capsys.readouterr().err
    cfg = make_config("tiny")
    again = aggregate(tmp_path / "runs", ["random", "cmc", "iic-repeat"], [0, 1])
    assert "iic-repeat" not in again
    assert markdown_table(again, cfg).count("\n| ") == 4  # header, rule, 2 rows


def test_flow_variant_says_which_command_makes_the_flow(tiny_root, tmp_path) -> None:
    import pytest

    from iic_helpers.ablation import DEFAULT_VARIANTS, run_one

    assert "iic-repeat-u" not in DEFAULT_VARIANTS  # needs flow: only when asked for
    cfg = make_config("tiny", data_root=str(tmp_path / "no-flow-here"))
    (tmp_path / "no-flow-here").mkdir()
    with pytest.raises(FileNotFoundError, match="python -m iic_helpers flow --data-root"):
        run_one(cfg, "iic-repeat-u", 0, tmp_path / "runs")
    assert not (tmp_path / "runs").exists()  # nothing started

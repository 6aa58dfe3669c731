"""Pretraining loop: learning, exact resume, NaN guard, checkpoint format, CLI."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from conftest import set_flags, small_config

from iic_helpers.__main__ import main as cli
from iic_helpers.checkpoint import load_checkpoint
from iic_helpers.config import make_config
from iic_helpers.train import HISTORY_FIELDS, PretrainState, pretrain, read_history

SMALL = small_config(k=8, lr_milestones=(1,), lr_gamma=0.5)


def _cfg(root: Path, **overrides):
    return make_config("tiny", data_root=str(root), **{**SMALL, **overrides})


def test_resume_reaches_the_weights_of_an_uninterrupted_run(tiny_root: Path, tmp_path) -> None:
    straight = pretrain(_cfg(tiny_root, epochs=2), tmp_path / "straight", progress=False)
    pretrain(_cfg(tiny_root, epochs=1), tmp_path / "split", progress=False)
    resumed = pretrain(_cfg(tiny_root, epochs=2), tmp_path / "split", resume=True, progress=False)
    a, b = load_checkpoint(straight / "checkpoint.pt"), load_checkpoint(resumed / "checkpoint.pt")
    assert a["epoch"] == b["epoch"] == 2
    for part in ("model", "contrast", "head"):
        for key, value in a[part].items():
            assert torch.equal(value, b[part][key]), f"{part}.{key} differs after resume"
    assert a["scheduler"] == b["scheduler"]
    rows_a, rows_b = read_history(straight), read_history(resumed)
    assert [r["loss"] for r in rows_a] == [r["loss"] for r in rows_b]
    # the learning rate followed MultiStepLR([1], 0.5) through the resume
    lr = _cfg(tiny_root).lr
    assert [r["lr"] for r in rows_b] == pytest.approx([lr, lr / 2])


def test_checkpoint_layout_and_history(tiny_root: Path, tmp_path) -> None:
    run = pretrain(_cfg(tiny_root, epochs=1), tmp_path / "run", progress=False)
    ckpt = torch.load(run / "checkpoint.pt", weights_only=True)  # safe to load as is
    assert set(ckpt) >= {"model", "contrast", "optimizer", "scheduler", "epoch", "rng", "config"}
    assert "conv1.temporal_spatial_conv.weight" in ckpt["model"]  # original key layout
    assert set(ckpt["contrast"]) >= {"memory_v1", "memory_v2", "memory_neg"}
    assert json.loads((run / "config.json").read_text())["epochs"] == 1
    header = (run / "history.csv").read_text().splitlines()[0].split(",")
    assert tuple(header) == HISTORY_FIELDS
    with pytest.raises(FileExistsError, match="resume"):
        pretrain(_cfg(tiny_root, epochs=1), run, progress=False)


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tiny_root, tmp_path, monkeypatch) -> None:
    run = tmp_path / "nan"
    pretrain(_cfg(tiny_root, epochs=1), run, progress=False)
    good = load_checkpoint(run / "checkpoint.pt")["model"]
    original = PretrainState.encode
    monkeypatch.setattr(PretrainState, "encode", lambda self, x: original(self, x) * math.nan)
    with pytest.raises(FloatingPointError, match="last good checkpoint"):
        pretrain(_cfg(tiny_root, epochs=2), run, resume=True, progress=False)
    after = load_checkpoint(run / "checkpoint.pt")
    assert after["epoch"] == 1
    assert all(torch.equal(good[k], after["model"][k]) for k in good)


@pytest.mark.parametrize("intra", ["repeat", "shuffle", "none"])
def test_variants_run(tiny_root, tmp_path, intra) -> None:
    cfg = _cfg(tiny_root, epochs=1, intra_negative=intra)
    run = pretrain(cfg, tmp_path / intra, progress=False)
    loss = read_history(run)[0]["loss"]
    assert math.isfinite(loss) and loss > 0
    columns = load_checkpoint(run / "checkpoint.pt")["contrast"]
    assert ("memory_neg" in columns) == (intra != "none")


@pytest.mark.parametrize("intra", ["repeat", "none"])
def test_training_steps_lower_the_loss_on_a_fixed_batch(tiny_root, intra) -> None:
    """Repeated pretrain_step calls on one batch, with the memory bank and the random draws
    reset before each, see a falling loss: gradients, optimiser and loss are wired right."""
    from iic_helpers.data.builders import clip_dataset
    from iic_helpers.train import pretrain_step

    cfg = _cfg(tiny_root, epochs=1, lr=0.005, intra_negative=intra, negative_gradient=False)
    dataset = clip_dataset(cfg)
    torch.manual_seed(0)
    state = PretrainState(cfg, len(dataset), torch.device("cpu"))
    batch = torch.stack([dataset[i][0] for i in range(4)])
    index = torch.arange(4)
    memory = {k: v.clone() for k, v in state.contrast.state_dict().items()}
    losses = []
    for _ in range(8):
        state.contrast.load_state_dict(memory)
        torch.manual_seed(1)  # the same memory-bank rows every time
        losses.append(pretrain_step(state, batch, index, torch.Generator().manual_seed(2))["loss"])
    assert losses[-1] < losses[0] - 0.1, losses


def test_cli_pretrain_then_retrieve(tiny_root, tmp_path, capsys) -> None:
    run = tmp_path / "cli"
    common = ["--data-root", str(tiny_root), "--run-dir", str(run)]
    sets = set_flags(SMALL)
    assert cli(["pretrain", *common, "--epochs", "1", *sets]) == 0
    assert cli(["retrieve", *common, "--checkpoint", str(run / "checkpoint.pt"), *sets]) == 0
    results = json.loads((run / "results.json").read_text())
    assert set(results["retrieval"]) == {"top1", "top5", "top10", "top20", "top50"}
    assert set(results["retrieval_variants"]) == {"rgb", "res", "merged"}
    assert results["n_query"] == 7 * 4  # every test video counted
    out = capsys.readouterr().out
    assert "results.json" in out and "checkpoint.pt" in out
    # bad input: one-line reason, non-zero exit
    assert cli(["retrieve", *common, "--checkpoint", str(tmp_path / "missing.pt")]) == 2
    assert "missing.pt" in capsys.readouterr().err
    assert cli(["pretrain", *common, "--set", "nope=1"]) == 2


def test_cpu_bf16_option_autocasts_the_backbone_on_the_cpu(tiny_root, monkeypatch) -> None:
    """``cpu_bf16=True`` runs the convolutions in bfloat16 (off by default: see benchmarks)."""
    from iic_helpers.data.builders import clip_dataset
    from iic_helpers.train import pretrain_step

    seen: dict[bool, list[torch.dtype]] = {}
    for flag in (False, True):
        cfg = _cfg(tiny_root, epochs=1, cpu_bf16=flag)
        dataset = clip_dataset(cfg)
        torch.manual_seed(0)
        state = PretrainState(cfg, len(dataset), torch.device("cpu"))
        dtypes: list[torch.dtype] = []
        state.model.conv1.register_forward_hook(lambda m, i, o, d=dtypes: d.append(o.dtype))
        batch = torch.stack([dataset[i][0] for i in range(4)])
        stats = pretrain_step(state, batch, torch.arange(4), torch.Generator().manual_seed(2))
        assert math.isfinite(stats["loss"])
        seen[flag] = dtypes
    assert make_config("tiny").cpu_bf16 is False
    assert set(seen[False]) == {torch.float32}
    assert set(seen[True]) == {torch.bfloat16}


def test_plateau_diagnosis_script_reports_similarities(tiny_root, tmp_path) -> None:
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "scripts" / "diagnose_plateau.py"
    spec = importlib.util.spec_from_file_location("diagnose_plateau", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    run = pretrain(_cfg(tiny_root, epochs=1), tmp_path / "run", progress=False)
    m = module.similarities(run, n_clips=4)
    for key in ("pos", "inter", "repeat", "shuffle"):
        assert -1.0 <= m[key] <= 1.0
    assert m["epochs"] == 1 and m["uniform_loss"] == pytest.approx(2 * math.log(2 * 8 + 2))


def test_pretrain_accepts_a_users_intra_negative_function(tiny_root, tmp_path) -> None:
    calls = []

    def time_reversal(clips: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        calls.append((tuple(clips.shape), isinstance(generator, torch.Generator)))
        return clips.flip(2)

    cfg = _cfg(tiny_root, epochs=1)
    run = pretrain(cfg, tmp_path / "rev", progress=False, intra_negative_fn=time_reversal)
    saved = json.loads((run / "config.json").read_text())
    assert saved["intra_negative"] == "custom"
    assert saved["intra_negative_fn"] == "time_reversal"
    steps = math.ceil(8 / cfg.batch_size)  # tiny_root has 8 training videos
    assert calls == [((cfg.batch_size, 3, cfg.clip_len, cfg.crop, cfg.crop), True)] * steps
    assert "memory_neg" in load_checkpoint(run / "checkpoint.pt")["contrast"]
    with pytest.raises(ValueError, match="time_reversal"):  # resuming needs the function again
        pretrain(_cfg(tiny_root, epochs=2), run, resume=True, progress=False)
    pretrain(
        _cfg(tiny_root, epochs=2), run, resume=True, progress=False, intra_negative_fn=time_reversal
    )
    assert len(read_history(run)) == 2


def test_a_users_intra_negative_must_keep_the_shape(tiny_root, tmp_path) -> None:
    def first_frame(clips: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return clips[:, :, :1]

    with pytest.raises(ValueError, match="first_frame.*shaped like"):
        pretrain(
            _cfg(tiny_root, epochs=1),
            tmp_path / "bad",
            progress=False,
            intra_negative_fn=first_frame,
        )

"""Data-parallel training on the CPU: gloo backend, 2 processes (issue 13, section 3)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from conftest import set_flags, small_config

from iic_helpers.checkpoint import load_checkpoint
from iic_helpers.config import make_config
from iic_helpers.distributed import DistContext, last_occurrence, per_rank_batch
from iic_helpers.train import PretrainState, pretrain, pretrain_step, wrap_data_parallel

WORLD = 2
N_DATA = 20
STEPS = 3
#: The paper preset at a size a 2-core CPU steps through in milliseconds.
SMALL = small_config(k=8, num_workers=0, device="cpu", retrieval_features="pool")


def _clips(step: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The global batch of a step: 16 clips ``(16, 3, 8, 16, 16)`` and their bank rows."""
    g = torch.Generator().manual_seed(100 + step)
    clips = torch.rand(16, 3, 8, 16, 16, generator=g)
    index = torch.randperm(N_DATA, generator=g)[:16]
    index[5] = index[12]  # a row twice in one global batch (the sampler's padding)
    return clips, index


def _run_steps(ctx: DistContext) -> list[dict[str, torch.Tensor]]:
    """``STEPS`` steps on this rank's slice of each global batch; states after every step."""
    torch.set_num_threads(1)
    cfg = make_config("paper", **{**SMALL, "batch_size": 16}, channels_last=False)
    torch.manual_seed(0)
    state = PretrainState(cfg, N_DATA, torch.device("cpu"))
    if ctx.world_size > 1:
        wrap_data_parallel(state, ctx)
    state.engine.eval()  # BatchNorm with fixed statistics: per-rank batches cannot differ
    generator = torch.Generator().manual_seed(7)
    per_rank = per_rank_batch(16, ctx.world_size)
    lo = ctx.rank * per_rank
    states = []
    for step in range(STEPS):
        clips, index = _clips(step)
        stats = pretrain_step(
            state, clips[lo : lo + per_rank], index[lo : lo + per_rank], generator, ctx
        )
        states.append(
            {
                **{f"bank.{k}": v.clone() for k, v in state.contrast.state_dict().items()},
                **{f"model.{k}": v.clone() for k, v in state.model.state_dict().items()},
                "loss": torch.tensor(stats["loss"]),
            }
        )
    return states


def _init(rank: int, init_file: str) -> DistContext:
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank))  # as torchrun sets them
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD)
    torch.set_num_threads(1)
    return DistContext(rank, WORLD, rank, torch.device("cpu"))


def _step_worker(rank: int, init_file: str, out: str) -> None:
    ctx = _init(rank, init_file)
    try:
        torch.save(_run_steps(ctx), Path(out) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def _pretrain_worker(rank: int, init_file: str, root: str, out: str) -> None:
    import iic_helpers.train as train

    _init(rank, init_file)
    writes = []
    original = train.save_checkpoint
    train.save_checkpoint = lambda state, path: writes.append(path) or original(state, path)
    try:
        cfg = make_config("paper", data_root=root, **SMALL)
        out_dir = Path(out)
        pretrain(cfg.replace(epochs=2), out_dir / "straight", progress=False)
        pretrain(cfg.replace(epochs=1), out_dir / "split", progress=False)
        pretrain(cfg.replace(epochs=2), out_dir / "split", resume=True, progress=False)
        (out_dir / f"writes{rank}.txt").write_text(str(len(writes)))
    finally:
        dist.destroy_process_group()


def _finetune_worker(rank: int, init_file: str, root: str, out: str) -> None:
    import iic_helpers.finetune as ft

    _init(rank, init_file)
    writes = []
    for name in ("save_checkpoint", "update_results", "append_csv_row"):
        original = getattr(ft, name)
        setattr(ft, name, lambda *a, _f=original, **k: writes.append(a) or _f(*a, **k))
    try:
        cfg = make_config("paper", data_root=root, **SMALL, ft_epochs=2)
        run = ft.finetune(cfg, None, Path(out) / "ft", progress=False)
        best = torch.load(run / "best.pt", weights_only=True)["model"]
        torch.save(best, Path(out) / f"best{rank}.pt")  # rank 0's file, read by every rank
        (Path(out) / f"ftwrites{rank}.txt").write_text(str(len(writes)))
    finally:
        dist.destroy_process_group()


def _spawn(fn, *args) -> None:
    mp.spawn(fn, args=args, nprocs=WORLD, join=True)


def test_two_process_steps_equal_one_process_steps_and_banks_agree(tmp_path) -> None:
    _spawn(_step_worker, str(tmp_path / "init"), str(tmp_path))
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(WORLD)]
    single = _run_steps(DistContext(0, 1, 0, torch.device("cpu")))
    for step in range(STEPS):
        a, b, ref = ranks[0][step], ranks[1][step], single[step]
        for key in a:
            if key.startswith("bank."):  # identical on every rank after every step
                assert torch.equal(a[key], b[key]), f"{key} differs between ranks at step {step}"
            # and equal to one process stepping the same 16 clips
            assert torch.allclose(a[key], ref[key], atol=1e-5, rtol=1e-4), (step, key)
        for key in a:
            if key.startswith("model.") and a[key].is_floating_point():
                assert torch.equal(a[key], b[key]), key  # DDP keeps the replicas identical
    # the banks really changed (the comparison is not of untouched buffers)
    first = single[0]["bank.memory_v1"]
    assert not torch.equal(first, make_bank())


def make_bank() -> torch.Tensor:
    cfg = make_config("paper", **{**SMALL, "batch_size": 16}, channels_last=False)
    torch.manual_seed(0)
    return PretrainState(cfg, N_DATA, torch.device("cpu")).contrast.memory_v1


def test_two_process_pretraining_resumes_exactly_and_only_rank0_writes(tiny_root, tmp_path) -> None:
    _spawn(_pretrain_worker, str(tmp_path / "init"), str(tiny_root), str(tmp_path))
    a = load_checkpoint(tmp_path / "straight" / "checkpoint.pt")
    b = load_checkpoint(tmp_path / "split" / "checkpoint.pt")
    assert a["epoch"] == b["epoch"] == 2
    for part in ("model", "contrast"):
        for key, value in a[part].items():
            assert torch.equal(value, b[part][key]), f"{part}.{key} differs after resume"
    assert (tmp_path / "writes0.txt").read_text() == "4"  # 2 + 1 + 1 epochs saved
    assert (tmp_path / "writes1.txt").read_text() == "0"
    rows = (tmp_path / "split" / "history.csv").read_text().splitlines()
    assert len(rows) == 3  # header + one row per epoch, written once


def test_two_process_finetuning_writes_once_and_scores_every_video(tiny_root, tmp_path) -> None:
    import json

    _spawn(_finetune_worker, str(tmp_path / "init"), str(tiny_root), str(tmp_path))
    result = json.loads((tmp_path / "ft" / "results.json").read_text())["finetune"]
    assert result["n_test"] == 28 and result["selection"] == "loss"  # every test video
    assert len((tmp_path / "ft" / "history.csv").read_text().splitlines()) == 1 + 2
    assert int((tmp_path / "ftwrites0.txt").read_text()) >= 4  # history x2, best.pt, results
    assert (tmp_path / "ftwrites1.txt").read_text() == "0"


def test_helpers() -> None:
    assert per_rank_batch(16, 2) == 8 and per_rank_batch(16, 16) == 1
    with pytest.raises(ValueError, match="divisible"):
        per_rank_batch(16, 3)
    index = torch.tensor([4, 1, 4, 2, 1])
    assert sorted(last_occurrence(index).tolist()) == [2, 3, 4]
    # SyncBatchNorm has no CPU kernel: the option says so instead of failing mid-step
    cfg = make_config("paper", **SMALL, sync_batchnorm=True)
    state = PretrainState(cfg, N_DATA, torch.device("cpu"))
    with pytest.raises(ValueError, match="sync_batchnorm=true needs CUDA"):
        wrap_data_parallel(state, DistContext(0, 2, 0, torch.device("cpu")))


def _torchrun(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=os.pathsep.join(sys.path))
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    command += ["--nproc-per-node", str(WORLD), "-m", "iic_helpers", *args]
    return subprocess.run(
        command, capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path
    )


def test_torchrun_command_line_and_a_failing_rank_stops_the_job(tiny_root, tmp_path) -> None:
    import shutil

    run = tmp_path / "run"
    common = ["--preset", "paper", "--data-root", str(tiny_root), "--run-dir", str(run)]
    proc = _torchrun(
        ["pretrain", *common, "--epochs", "1", "--threads", "1", *set_flags(SMALL)], tmp_path
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert load_checkpoint(run / "checkpoint.pt")["epoch"] == 1
    # a video that only one rank reads is broken: the job ends with its error, no hang
    root = tmp_path / "broken"
    shutil.copytree(tiny_root, root)
    from iic_helpers.data import read_split

    victim = read_split(root, 1, "train")[0].path
    victim.write_bytes(b"not a video")
    common = ["--preset", "paper", "--data-root", str(root), "--run-dir", str(tmp_path / "b")]
    proc = _torchrun(
        ["pretrain", *common, "--epochs", "1", "--threads", "1", *set_flags(SMALL)], tmp_path
    )
    assert proc.returncode != 0
    assert victim.name in proc.stdout + proc.stderr

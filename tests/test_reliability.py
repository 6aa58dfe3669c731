"""Runs that cannot be silently wrong: broken weights, run-directory locks, complete resume,
truncated and unreadable videos, config edges, and one-line CLI errors (README, Reliability).

Every test here failed on the code before these guarantees existed.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import set_flags, small_config

from iic_helpers.__main__ import main as cli
from iic_helpers.checkpoint import load_checkpoint, save_checkpoint
from iic_helpers.config import make_config
from iic_helpers.models import build_backbone
from iic_helpers.train import PretrainState, pretrain, read_history

REPO = Path(__file__).resolve().parents[1]

SMALL = small_config(k=8, lr_milestones=(1,), lr_gamma=0.5, ft_epochs=1)
SETS = set_flags(SMALL)


def _cfg(root: Path, **overrides):
    return make_config("tiny", data_root=str(root), **{**SMALL, **overrides})


def _args(root: Path, run: Path | None = None) -> list[str]:
    return ["--data-root", str(root), *(["--run-dir", str(run)] if run else []), *SETS]


def _copy_root(tiny_root: Path, dst: Path) -> Path:
    return Path(shutil.copytree(tiny_root, dst))


def _err_lines(capsys) -> list[str]:
    """stderr lines, progress bars left out."""
    err = capsys.readouterr().err.replace("\r", "\n")
    return [line for line in err.splitlines() if line.strip() and not re.search(r"\d+%\|", line)]


def _weights_checkpoint(tiny_root: Path, path: Path, *, nan: bool = False) -> Path:
    """A checkpoint written by the package holding a (seeded random) tiny backbone."""
    cfg = _cfg(tiny_root)
    torch.manual_seed(0)
    state = build_backbone(cfg.backbone, width=cfg.width).state_dict()
    if nan:
        state["conv1.temporal_spatial_conv.weight"].fill_(math.nan)
    return save_checkpoint({"model": state, "epoch": 1, "config": cfg.to_dict()}, path)


# ----------------------------------------------------------------------------- 1. broken weights


@pytest.mark.parametrize("command", ["retrieve", "linear-probe", "finetune"])
def test_nan_weights_fail_every_evaluation_naming_the_checkpoint(
    tiny_root, tmp_path, capsys, command
) -> None:
    ckpt = _weights_checkpoint(tiny_root, tmp_path / "nan.pt", nan=True)
    run = tmp_path / "eval"
    assert cli([command, *_args(tiny_root, run), "--checkpoint", str(ckpt)]) == 2
    err = _err_lines(capsys)
    assert len(err) == 1 and str(ckpt) in err[0] and "not finite" in err[0], err
    assert not (run / "results.json").exists()


def _flip_tensor_bytes(path: Path) -> None:
    """Flip bytes inside the first tensor's data (the zip CRC is not checked by torch)."""
    with zipfile.ZipFile(path) as archive:
        info = next(i for i in archive.infolist() if i.filename.endswith("/data/0"))
    with path.open("r+b") as handle:
        handle.seek(info.header_offset + 26)
        name_len, extra_len = struct.unpack("<HH", handle.read(4))
        start = info.header_offset + 30 + name_len + extra_len
        handle.seek(start + 8)
        chunk = bytearray(handle.read(4))
        handle.seek(start + 8)
        handle.write(bytes(b ^ 0x01 for b in chunk))  # low mantissa bits: finite values


def test_flipped_bytes_inside_a_tensor_are_reported_as_corruption(
    tiny_root, tmp_path, capsys
) -> None:
    ckpt = _weights_checkpoint(tiny_root, tmp_path / "flipped.pt")
    _flip_tensor_bytes(ckpt)
    torch.load(ckpt, weights_only=True)  # torch itself reads it without complaint
    run = tmp_path / "eval"
    assert cli(["retrieve", *_args(tiny_root, run), "--checkpoint", str(ckpt)]) == 2
    err = _err_lines(capsys)
    assert len(err) == 1 and "corrupt" in err[0] and str(ckpt) in err[0], err
    assert "model/conv1.temporal_spatial_conv.weight" in err[0]
    assert not (run / "results.json").exists()


def test_checkpoint_without_digest_loads_with_a_one_line_note(tmp_path, capsys) -> None:
    from iic_helpers.models import load_weights

    net = build_backbone("r3d", width=4)
    torch.save({"model": net.state_dict()}, tmp_path / "original.pth")  # original layout
    report = load_weights(build_backbone("r3d", width=4), tmp_path / "original.pth")
    assert report.ok
    err = _err_lines(capsys)
    assert len(err) == 1 and "no tensor digest" in err[0] and "original.pth" in err[0], err


def test_package_checkpoints_carry_a_digest_and_normal_permissions(tiny_root, tmp_path) -> None:
    run = pretrain(_cfg(tiny_root, epochs=1), tmp_path / "run", progress=False)
    state = torch.load(run / "checkpoint.pt", weights_only=True)
    assert "model/conv1.temporal_spatial_conv.weight" in state["digest"]
    mode = (run / "checkpoint.pt").stat().st_mode & 0o777
    assert mode == (run / "history.csv").stat().st_mode & 0o777 == (0o666 & ~_umask())


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# ----------------------------------------------------------------------------- 2. one writer


@pytest.fixture
def lock_holder(tmp_path):
    """Start a process holding a run directory's lock; yields (run_dir, process)."""
    procs = []

    def start(run_dir: Path) -> subprocess.Popen:
        code = (
            "import sys, time; from iic_helpers.runs import run_lock\n"
            "with run_lock(sys.argv[1], 'pretrain'):\n"
            "    print('locked', flush=True); time.sleep(120)\n"
        )
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        proc = subprocess.Popen(
            [sys.executable, "-c", code, str(run_dir)], stdout=subprocess.PIPE, env=env, text=True
        )
        procs.append(proc)
        assert proc.stdout.readline().strip() == "locked"
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def test_second_writer_is_refused_and_a_stale_lock_is_reported(
    tiny_root, tmp_path, capsys, lock_holder
) -> None:
    run = tmp_path / "run"
    holder = lock_holder(run)
    for command in (["pretrain", "--epochs", "1"], ["finetune"], ["retrieve"]):
        assert cli([*command[:1], *_args(tiny_root, run), *command[1:]]) == 2, command
        err = _err_lines(capsys)
        assert len(err) == 1 and f"in use by PID {holder.pid}" in err[0], err
    assert not (run / "checkpoint.pt").exists() and not (run / "results.json").exists()
    # ablation: each of its run directories is locked the same way
    root = tmp_path / "ablation"
    lock_holder(root / "random-s0")
    args = ["ablation", *_args(tiny_root, root), "--variants", "random", "--seeds", "0"]
    assert cli([*args, "--out", str(tmp_path / "out")]) == 2
    assert "in use by PID" in _err_lines(capsys)[0]

    holder.send_signal(signal.SIGKILL)  # a killed run leaves its lock file behind
    holder.wait()
    assert cli(["pretrain", *_args(tiny_root, run), "--epochs", "1"]) == 2
    err = _err_lines(capsys)
    assert len(err) == 1 and "stale lock" in err[0] and f"rm {run / 'run.lock'}" in err[0], err
    (run / "run.lock").unlink()
    assert cli(["pretrain", *_args(tiny_root, run), "--epochs", "1"]) == 0
    assert not (run / "run.lock").exists()


def test_retrieve_without_run_dir_never_writes_beside_a_shipped_checkpoint(
    tiny_root, tmp_path, monkeypatch, capsys
) -> None:
    import iic_helpers.runs as runs
    from iic_helpers.paths import RUNS

    assert runs.RUNS_DIR == RUNS  # default runs live in the repository's runs/, whatever the CWD
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(runs, "RUNS_DIR", tmp_path / "runs")  # keep this test's runs here
    shipped = tmp_path / "checkpoints"
    a = _weights_checkpoint(tiny_root, shipped / "a.pt")
    torch.manual_seed(1)
    b = _weights_checkpoint(tiny_root, shipped / "b.pt")
    for ckpt in (a, b):
        assert cli(["retrieve", *_args(tiny_root), "--checkpoint", str(ckpt)]) == 0
    assert cli(["linear-probe", *_args(tiny_root), "--checkpoint", str(a)]) == 0
    assert sorted(p.name for p in shipped.iterdir()) == ["a.pt", "b.pt"]
    results = sorted((tmp_path / "runs").glob("*/results.json"))
    assert len(results) == 3
    assert {json.loads(p.read_text()).get("checkpoint") for p in results} == {str(a), str(b), None}


# ----------------------------------------------------------------------------- 3. resume


def test_history_row_survives_a_kill_between_checkpoint_and_history(
    tiny_root, tmp_path, monkeypatch
) -> None:
    import iic_helpers.train as train

    real_save = train.save_checkpoint

    def save_then_die(state, path):
        real_save(state, path)
        if state["epoch"] == 2:
            raise KeyboardInterrupt  # killed right after the checkpoint replace

    monkeypatch.setattr(train, "save_checkpoint", save_then_die)
    run = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        pretrain(_cfg(tiny_root, epochs=3), run, progress=False)
    monkeypatch.setattr(train, "save_checkpoint", real_save)
    pretrain(_cfg(tiny_root, epochs=3), run, resume=True, progress=False)
    assert [int(r["epoch"]) for r in read_history(run)] == [1, 2, 3]
    assert len(load_checkpoint(run / "checkpoint.pt")["history"]) == 3


def test_orphan_temporary_files_are_removed_on_the_next_run(tiny_root, tmp_path) -> None:
    run = pretrain(_cfg(tiny_root, epochs=1), tmp_path / "run", progress=False)
    orphan = run / ".checkpoint.pt.k1ll3d.tmp"
    orphan.write_bytes(b"half a checkpoint")
    pretrain(_cfg(tiny_root, epochs=2), run, resume=True, progress=False)
    assert not orphan.exists()


def _write_train_list(root: Path, lines: list[str]) -> None:
    (root / "splits" / "trainlist01.txt").write_text("".join(lines))


@pytest.mark.parametrize("change", ["reordered", "shortened", "extended"])
def test_resume_refuses_a_different_train_list(tiny_root, tmp_path, capsys, change) -> None:
    root = _copy_root(tiny_root, tmp_path / "data")
    run = tmp_path / "run"
    assert cli(["pretrain", *_args(root, run), "--epochs", "1"]) == 0
    lines = (root / "splits" / "trainlist01.txt").read_text().splitlines(keepends=True)
    if change == "extended":  # a new video at the end (a copy of the first, under a new name)
        entry, label = lines[0].split()
        extra = entry.replace("_c01", "_c09")
        shutil.copyfile(root / "videos" / entry, root / "videos" / extra)
        lines = [*lines, f"{extra} {label}\n"]
    _write_train_list(
        root,
        lines[::-1] if change == "reordered" else lines[:-1] if change == "shortened" else lines,
    )
    capsys.readouterr()
    assert cli(["pretrain", *_args(root, run), "--epochs", "2", "--resume"]) == 2
    err = _err_lines(capsys)
    assert len(err) == 1 and "training list" in err[0] and "memory bank" in err[0], err
    assert load_checkpoint(run / "checkpoint.pt")["epoch"] == 1


def test_resume_accepts_a_moved_dataset_and_another_device(tiny_root, tmp_path) -> None:
    root = _copy_root(tiny_root, tmp_path / "data")
    run = tmp_path / "run"
    assert cli(["pretrain", *_args(root, run), "--epochs", "1"]) == 0
    moved = root.rename(tmp_path / "moved")
    args = ["pretrain", *_args(moved, run), "--epochs", "2", "--resume", "--device", "cpu"]
    assert cli(args) == 0
    saved = json.loads((run / "config.json").read_text())
    assert saved["data_root"] == str(moved) and saved["device"] == "cpu"
    assert load_checkpoint(run / "checkpoint.pt")["epoch"] == 2


def test_resume_with_fewer_epochs_than_done_is_refused(tiny_root, tmp_path, capsys) -> None:
    run = tmp_path / "run"
    assert cli(["pretrain", *_args(tiny_root, run), "--epochs", "2"]) == 0
    before = (run / "config.json").read_text()
    capsys.readouterr()
    assert cli(["pretrain", *_args(tiny_root, run), "--epochs", "1", "--resume"]) == 2
    err = _err_lines(capsys)
    assert len(err) == 1 and "2 epochs done" in err[0], err
    assert (run / "config.json").read_text() == before


# ----------------------------------------------------------------------------- 4. videos


def _truncated_avi(root: Path) -> Path:
    """Replace the first training video by a 32-frame .avi cut to 85 % (header intact)."""
    from iic_helpers.data.video import write_video

    lines = (root / "splits" / "trainlist01.txt").read_text().splitlines(keepends=True)
    entry, label = lines[0].split()
    entry = entry.rsplit(".", 1)[0] + ".avi"
    path = root / "videos" / entry
    frames = np.random.default_rng(0).integers(0, 255, (32, 32, 32, 3), dtype=np.uint8)
    write_video(path, frames)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 85 // 100])
    _write_train_list(root, [f"{entry} {label}\n", *lines[1:]])
    return path


def test_validate_decodes_to_the_end_and_reports_a_truncated_file(
    tiny_root, tmp_path, capsys
) -> None:
    root = _copy_root(tiny_root, tmp_path / "data")
    bad = _truncated_avi(root)
    assert cli(["validate", "--data-root", str(root), "--set", "clip_len=8"]) == 1
    out = capsys.readouterr().out
    assert f"{bad}: the header says 32 frames but only 27 decode" in out
    assert "PROBLEMS FOUND" in out


@pytest.mark.parametrize("cache", [True, False])
def test_dataset_warns_once_about_a_truncated_video_and_uses_what_decodes(
    tiny_root, tmp_path, cache
) -> None:
    from iic_helpers.data import ClipDataset, read_split

    root = _copy_root(tiny_root, tmp_path / "data")
    bad = _truncated_avi(root)
    records = read_split(root, 1, "train")[:1]
    dataset = ClipDataset(records, clip_len=8, mode="eval", num_clips=3, cache=cache)
    with pytest.warns(UserWarning, match=f"{bad}: the header says 32 frames") as caught:
        clips, _, _ = dataset[0]  # the last clip would end at frame 31: past what decodes
        dataset[0]
    names = [w.category.__name__ for w in caught if "header says" in str(w.message)]
    assert names == ["TruncatedVideoWarning"]
    assert clips.shape[0] == 3 and dataset.truncated_videos == {bad: (32, 27)}


@pytest.mark.parametrize("command", ["pretrain", "retrieve", "linear-probe", "finetune", "flow"])
def test_an_unreadable_video_ends_every_command_in_one_line(
    tiny_root, tmp_path, capsys, command
) -> None:
    root = _copy_root(tiny_root, tmp_path / "data")
    entry = (root / "splits" / "trainlist01.txt").read_text().split()[0]
    bad = root / "videos" / entry
    bad.write_bytes(b"not a video" * 100)
    extra = ["--epochs", "1"] if command == "pretrain" else []
    run, run2 = (None, None) if command == "flow" else (tmp_path / "run", tmp_path / "run2")
    assert cli([command, *_args(root, run), *extra]) == 2
    err = _err_lines(capsys)
    assert len(err) == 1 and f"cannot read video {bad}" in err[0], err
    with pytest.raises(Exception, match="not a readable video"):
        cli([command, *_args(root, run2), *extra, "--debug"])


def test_a_worker_process_error_is_unwrapped_to_its_reason(tiny_root, tmp_path, capsys) -> None:
    root = _copy_root(tiny_root, tmp_path / "data")
    entry = (root / "splits" / "trainlist01.txt").read_text().split()[0]
    (root / "videos" / entry).write_bytes(b"")
    args = ["retrieve", *_args(root, tmp_path / "run"), "--set", "num_workers=1"]
    assert cli(args) == 2
    err = _err_lines(capsys)
    assert len(err) == 1 and err[0].startswith("retrieve: error: cannot read video"), err
    assert "file is empty" in err[0]
    from iic_helpers.__main__ import error_line

    wrapped = RuntimeError(
        "Caught VideoReadError in DataLoader worker process 0.\nOriginal Traceback (most recent"
        " call last):\n  ...\niic_helpers.data.video.VideoReadError: cannot read video x: why"
    )
    assert error_line(wrapped) == "cannot read video x: why"


def test_validate_checks_the_lists_and_uses_the_configs_clip_len(
    tiny_root, tmp_path, capsys
) -> None:
    root = _copy_root(tiny_root, tmp_path / "data")
    assert cli(["validate", "--data-root", str(root), "--set", "clip_len=8"]) == 0
    out = capsys.readouterr().out
    assert "< 8 frames" in out and "Too short" not in out  # 12-frame videos, clip_len 8
    lines = (root / "splits" / "trainlist01.txt").read_text().splitlines(keepends=True)
    test_entry = (root / "splits" / "testlist01.txt").read_text().split()[0]
    label = next(line.split()[1] for line in lines if line.split("/")[0] in test_entry)
    _write_train_list(root, [*lines, lines[0], f"{test_entry} {label}\n"])
    assert cli(["validate", "--data-root", str(root)]) == 1
    out = capsys.readouterr().out
    assert "1 video(s) listed twice in the train list" in out
    assert "1 video(s) in both the train and the test list" in out
    _write_train_list(root, [])
    assert cli(["validate", "--data-root", str(root)]) == 1
    assert "the train list is empty" in capsys.readouterr().out


# ----------------------------------------------------------------------------- 5. config edges


@pytest.mark.parametrize("epochs", ["0", "-1"])
def test_epochs_below_one_are_refused(tiny_root, tmp_path, capsys, epochs) -> None:
    run = tmp_path / "run"
    assert cli(["pretrain", *_args(tiny_root, run), "--epochs", epochs]) == 2
    assert "epochs must be >= 1" in _err_lines(capsys)[0]
    assert not (run / "checkpoint.pt").exists()


def test_save_every_zero_is_refused_before_training(tiny_root, tmp_path, capsys) -> None:
    run = tmp_path / "run"
    args = ["pretrain", *_args(tiny_root, run), "--epochs", "1", "--set", "save_every=0"]
    assert cli(args) == 2
    assert "save_every must be >= 1" in _err_lines(capsys)[0]
    assert not (run / "history.csv").exists()


def test_k_larger_than_the_training_set_warns(tiny_root, tmp_path) -> None:
    with pytest.warns(UserWarning, match=r"k=20 .* 8 training videos: .* with replacement"):
        pretrain(_cfg(tiny_root, epochs=1, k=20), tmp_path / "run", progress=False)


def test_nan_guard_says_when_no_checkpoint_exists(tiny_root, tmp_path, monkeypatch) -> None:
    original = PretrainState.encode
    monkeypatch.setattr(PretrainState, "encode", lambda self, x: original(self, x) * math.nan)
    with pytest.raises(FloatingPointError) as err:
        pretrain(_cfg(tiny_root, epochs=1), tmp_path / "run", progress=False)
    assert "No checkpoint was written yet" in str(err.value)
    assert "epoch 0" not in str(err.value)


@pytest.mark.parametrize("kind", ["empty", "truncated"])
def test_a_broken_checkpoint_file_is_named(tiny_root, tmp_path, capsys, kind) -> None:
    good = _weights_checkpoint(tiny_root, tmp_path / "good.pt")
    bad = tmp_path / f"{kind}.pt"
    data = good.read_bytes()
    bad.write_bytes(b"" if kind == "empty" else data[: len(data) // 2])
    assert cli(["retrieve", *_args(tiny_root, tmp_path / "run"), "--checkpoint", str(bad)]) == 2
    err = _err_lines(capsys)
    assert len(err) == 1 and str(bad) in err[0], err
    assert ("empty (0 bytes)" if kind == "empty" else "truncated") in err[0]


def test_strict_load_failure_reports_every_key(tiny_root, tmp_path, capsys) -> None:
    state = build_backbone("r3d", width=4).state_dict()
    dropped = [k for k in state if k.startswith("conv5")]
    ckpt = tmp_path / "partial.pth"
    torch.save({k: v for k, v in state.items() if k not in dropped}, ckpt)
    assert cli(["retrieve", *_args(tiny_root, tmp_path / "run"), "--checkpoint", str(ckpt)]) == 2
    err = _err_lines(capsys)
    at = next(i for i, line in enumerate(err) if line.startswith("retrieve: error:"))
    assert err[at].startswith("retrieve: error: strict load of")
    assert f"{len(dropped)} missing" in err[at]
    for key in dropped:
        assert any(key in line for line in err[at + 1 :]), key


def test_run_lock_is_reentrant_in_one_process_and_leaves_nothing(tmp_path) -> None:
    from iic_helpers.runs import RunLockedError, run_lock

    run = tmp_path / "fresh" / "run"
    with run_lock(run, "outer"):
        with run_lock(run, "inner"):
            assert (run / "run.lock").exists()
        assert (run / "run.lock").exists()
        info = json.loads((run / "run.lock").read_text())
        assert info["pid"] == os.getpid() and info["command"] == "outer"
    assert not (tmp_path / "fresh").exists()  # nothing written: no empty folders left
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "run.lock").write_text(json.dumps({"pid": 2**22 + 7, "host": "elsewhere"}))
    with pytest.raises(RunLockedError, match="in use by PID"):
        with run_lock(tmp_path / "x"):
            pass


def test_a_failed_save_keeps_the_previous_checkpoint(tiny_root, tmp_path, monkeypatch) -> None:
    """An existing guarantee (held before this file): a save that dies half-way (a full
    disk, a kill) leaves the previous checkpoint loadable and no partial file in its place."""
    import iic_helpers.checkpoint as checkpoint

    ckpt = _weights_checkpoint(tiny_root, tmp_path / "checkpoint.pt")
    before = ckpt.read_bytes()

    def half_then_fail(obj, handle):
        handle.write(b"PK\x03\x04 half a zip")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(checkpoint.torch, "save", half_then_fail)
    with pytest.raises(OSError, match="No space left"):
        save_checkpoint({"model": {}, "epoch": 2}, ckpt)
    assert ckpt.read_bytes() == before and load_checkpoint(ckpt)["epoch"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]

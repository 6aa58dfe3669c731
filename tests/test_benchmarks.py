"""Smoke tests of the benchmark scripts: each core function runs at a tiny size and returns
the expected keys. No timing is asserted (timings belong in benchmarks/RESULTS.md)."""

from __future__ import annotations

import functools
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from iic_helpers.data import make_synthetic_dataset
from iic_helpers.models import build_backbone

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


def load(name: str):
    """Import ``benchmarks/<name>.py`` (the folder is not a package)."""
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(autouse=True)
def _one_thread():
    """One intra-op thread: on a busy 2-core machine, 2 threads stall on OpenMP barriers."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_flop_count_matches_reference() -> None:
    bench = load("bench_train_step")
    flops = bench.count_flops(build_backbone("r3d", width=64), (3, 16, 112, 112))
    assert flops == bench.REFERENCE_R3D_FLOPS == 39_774_715_904


@pytest.mark.parametrize("negative_gradient", [True, False])
def test_train_step_bench_runs_and_variants_agree(negative_gradient: bool) -> None:
    bench = load("bench_train_step")
    variants = ("baseline", "ours", "ours+ncdhw", "concat2", "concat3", "bf16+cl", "ours+t2")
    if not negative_gradient:
        variants += ("nograd", "concat2+nograd")
    result = bench.run(
        ("tiny",),
        {"tiny": variants},
        batch={"tiny": 2},
        warmup={"tiny": 1},
        repeat={"tiny": 1},
        threads=1,
        overrides={
            "tiny": {"width": 4, "k": 8, "crop": 16, "negative_gradient": negative_gradient}
        },
        verbose=False,
    )
    assert set(result) == {"rows", "skipped", "flops", "settings"}
    assert result["skipped"] == []  # only the paper model skips bf16 without bf16 instructions
    settings = result["settings"]["tiny"]
    assert settings["flop_multiple"] == (9 if negative_gradient else 7)
    assert set(settings["relative_error_vs_fp32"]) == {"cl", "bf16", "bf16+cl"}
    rows = {row["variant"]: row for row in result["rows"]}
    assert list(rows) == list(variants)
    assert rows["ours+t2"]["threads"] == 2 and rows["ours"]["threads"] == 1
    for row in rows.values():
        for key in ("ms_per_sample", "speedup", "gflops", "peak_extra_mib", "first_loss"):
            assert key in row
        assert row["ms_per_sample"] > 0
    # same negatives, same numbers: the baseline's loop and ours (and nograd) agree
    assert rows["baseline"]["first_loss"] == pytest.approx(rows["ours"]["first_loss"], rel=1e-6)
    assert rows["ours+ncdhw"]["first_loss"] == pytest.approx(rows["ours"]["first_loss"], rel=1e-5)
    if not negative_gradient:  # both NCDHW: bit for bit
        assert rows["nograd"]["first_loss"] == rows["ours+ncdhw"]["first_loss"]
    with pytest.raises(ValueError, match="unknown variant"):
        bench.parse_variant("ours+fast")


@pytest.mark.parametrize(
    ("nograd", "negative_gradient"), [(False, True), (False, False), (True, False)]
)
def test_custom_step_equals_pretrain_step(nograd: bool, negative_gradient: bool) -> None:
    """The benchmark's step computes what the package's does (also with the negative's
    forward pass under no_grad), memory-bank updates included, step after step."""
    bench = load("bench_train_step")
    overrides = {"width": 4, "k": 8, "crop": 16, "negative_gradient": negative_gradient}
    losses = []
    custom = functools.partial(bench.custom_step, nograd=nograd)
    for step in (bench.pretrain_step, custom, bench.baseline_step):
        state = bench.build_state("tiny", 20, **overrides)
        clips = torch.rand(3, 3, 16, 16, 16, generator=torch.Generator().manual_seed(0))
        generator = torch.Generator().manual_seed(1)
        losses.append([step(state, clips, torch.arange(3), generator)["loss"] for _ in range(3)])
    assert losses[0] == losses[1]
    assert losses[2] == pytest.approx(losses[0], rel=1e-5)


def test_retrieval_bench_runs_with_identical_hits(monkeypatch) -> None:
    """The UCF-sized part runs each method in its own process, as the benchmark does; the
    Kinetics-sized part (a probe, then the full query set) runs the same worker function in
    this process (four fewer processes that each import torch: ~20 s of the test suite)."""
    bench = load("bench_retrieval")
    result = bench.run(nq=40, ng=90, dim=16, classes=5, big_nq=0, ks=(1, 5), verbose=False)
    assert set(result) == {"ucf", "matmul"}

    def in_this_process(method, folder, ks, threads, timeout):
        return bench.worker(method, folder, ks, threads)

    monkeypatch.setattr(bench, "run_in_subprocess", in_this_process)
    result["kinetics"] = bench.run_big(
        30, 200, 8, 400, (1, 5), None, 180.0, 10, say=lambda *args: None
    )
    rows = result["ucf"]["rows"]
    assert [r["method"] for r in rows] == list(bench.METHODS)
    for row in rows:
        for key in ("seconds", "peak_extra_mib", "speedup", "identical_hits", "accuracy"):
            assert key in row
        assert row["identical_hits"], row["differing_queries"]
    assert {"numpy_s", "torch_s", "numpy_speedup_vs_torch"} <= set(result["matmul"][0])
    big = result["kinetics"]
    assert [(r["method"], r["n_query"]) for r in big["runs"]] == [
        ("ours", 10),
        ("unit_copies", 10),
        ("ours", 30),
        ("unit_copies", 30),
    ]
    assert all(r["identical_hits"] for r in big["runs"])
    assert big["full"]["ours"]["full_run"] and big["full"]["unit_copies"]["full_run"]
    # the figure: 20k x 240k distances (float64) + argsort (int64) ~ 77 GB
    paper = bench.original_memory_bytes(20000, 240000, 512, 8)
    assert paper["distances_gb"] + paper["argsort_gb"] == pytest.approx(76.8)


def test_data_loading_bench_runs(tmp_path: Path) -> None:
    bench = load("bench_data_loading")
    root = make_synthetic_dataset(
        tmp_path / "synthetic",
        n_groups=8,
        clips_per_group=1,
        num_frames=20,
        size=32,
        classes=("MoveRight", "Grow"),
    )
    result = bench.run(
        synthetic_root=root,
        synthetic_videos=2,
        ucf_videos=1,
        ucf_frames=20,
        ucf_size=(48, 64),
        min_items=2,
        min_seconds=0.0,
        verbose=False,
    )
    formats = [(r["dataset"], r["format"]) for r in result["rows"]]
    assert formats == [
        ("synthetic", "jpeg"),
        ("synthetic", "pyav"),
        ("synthetic", "pyav_seek96"),
        ("synthetic", "cache"),
        ("ucf_like", "jpeg"),
        ("ucf_like", "pyav"),
        ("ucf_like", "pyav_seek96"),
        ("ucf_like", "pyav_preresized"),
        ("ucf_like", "preresized_h264_avi_gop250"),
        ("ucf_like", "preresized_h264_mp4_gop16"),
        ("ucf_like", "cache"),
    ]
    for row in result["rows"]:
        assert row["clips_per_s"] > 0 and "speedup_vs_jpeg" in row and "storage_mb" in row
    # same seed, same crop: video and JPEG clips differ only by JPEG compression
    assert result["datasets"]["synthetic"]["mean_abs_diff_video_vs_jpeg"] < 0.05


def test_gpu_check_without_cuda_exits_cleanly() -> None:
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="")
    proc = subprocess.run(
        [sys.executable, str(BENCH / "gpu_check.py")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "no CUDA device" in proc.stdout


def test_gpu_check_functions_run_on_cpu(tmp_path: Path) -> None:
    gpu = load("gpu_check")
    rows = gpu.step_rows(
        torch.device("cpu"),
        preset="tiny",
        batch=2,
        warmup=1,
        steps=1,
        n_data=10,
        overrides={"width": 4, "k": 4, "crop": 16},
        verbose=False,
    )
    assert [r["variant"] for r in rows] == [v[0] for v in gpu.STEP_VARIANTS]
    assert all("samples_per_s" in r and "speedup_vs_fp32" in r for r in rows)
    records = gpu.make_videos(tmp_path, n_videos=1, frames=20, size=(48, 64))
    loaders = gpu.loader_rows(
        records, label="small", workers=(0,), batch=2, batches=2, verbose=False
    )
    assert loaders[0]["clips_per_s"] > 0
    assert gpu.workers_needed(100.0, [{"workers": 2, "clips_per_s_per_worker": 30.0}]) == 4
    track = gpu.loss_track(
        torch.device("cpu"),
        records,
        preset="tiny",
        steps=3,
        batch=2,
        workers=0,
        n_data=4,
        overrides={"width": 4, "k": 4, "crop": 16, "resize": (18, 24), "clip_len": 8},
        verbose=False,
    )
    fp32, amp = track["variants"]["fp32"]["losses"], track["variants"]["amp"]["losses"]
    assert len(fp32) == len(amp) == 3
    # on the CPU amp only autocasts on CUDA: both variants are the same fp32 run
    assert fp32 == amp and track["mean_abs_diff"] == 0.0


def test_explorer_bench_runs_at_a_tiny_size(tmp_path: Path) -> None:
    """The UCF101-scale part at 300 x 64 with 3 thumbnails, and its page in Chromium."""
    root = make_synthetic_dataset(
        tmp_path / "data",
        n_groups=9,
        clips_per_group=1,
        num_frames=8,
        size=32,
        classes=("MoveRight", "Grow"),
    )
    bench = load("bench_explorer")
    (row,) = bench.ucf_scale(300, 64, 3, tmp_path, data_root=root, method="pca")
    assert row["thumbnails"].startswith("3 ") and row["page_MB"] > 1.0
    assert row["projection_s"] >= 0 and row["neighbours_s"] >= 0 and row["load_s"] > 0


def test_conv_wgrad_bench_finds_every_conv_and_times_each_part() -> None:
    bench = load("bench_conv_wgrad")
    layers = bench.tiny_conv_layers()
    model = build_backbone("r3d", width=8)
    assert len(layers) == sum(isinstance(m, torch.nn.Conv3d) for m in model.modules())
    stem = layers[0]
    assert stem["input"] == (16, 3, 16, 48, 48) and stem["weight"] == (8, 3, 3, 7, 7)
    assert stem["stride"] == [1, 2, 2] and stem["padding"] == [1, 3, 3]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(2, initializer=bench.one_intra_op_thread) as pool:
        times = bench.time_layer(layers[-1], 2, repeat=1, pool=pool)
    assert set(times) == {"fwd", "dgrad", "wgrad", "wgrad_split"}
    assert all(t > 0 for t in times.values())


def test_conv_wgrad_bench_workers_use_one_thread_each() -> None:
    """The ``split`` workers keep one intra-op thread each even when the caller sets its own
    count after they started (torch sets a new thread's count at its first parallel call from
    the process-wide one, which a bare ``set_num_threads(1)`` initializer does not prevent)."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    bench = load("bench_conv_wgrad")
    barrier = threading.Barrier(2, timeout=30)
    with ThreadPoolExecutor(2, initializer=bench.one_intra_op_thread) as pool:
        for future in [pool.submit(barrier.wait) for _ in range(2)]:
            future.result()  # both workers started
        torch.set_num_threads(2)  # the caller changes its count afterwards
        counts = [f.result() for f in [pool.submit(torch.get_num_threads) for _ in range(4)]]
    assert counts == [1, 1, 1, 1]
    assert torch.get_num_threads() == 2


def test_thread_ratio_bench_alternates_and_profiles() -> None:
    """One process's measurement: the three settings timed, their ratios, the profile rows."""
    bench = load("bench_thread_ratio")
    result = bench.child(rounds=1, with_profile=True)
    assert result["t1_ms_per_sample"] > 0 and result["t2_ms_per_sample"] > 0
    assert result["ratio"] == pytest.approx(
        result["t1_ms_per_sample"] / result["t2_ms_per_sample"], rel=0.01
    )
    assert result["ratio_pb"] == pytest.approx(
        result["t1_ms_per_sample"] / result["t2_pb_ms_per_sample"], rel=0.01
    )
    ops = [row["op"] for row in result["profile"]]
    assert ops[0] == "(all)" and "aten::convolution_backward" in ops
    assert all(row["t1_ms"] > 0 for row in result["profile"][:3])


def test_pretrain_epochs_thread_settings() -> None:
    """``--threads`` takes N (package defaults) or N-plain (no parallel backward)."""
    bench = load("bench_pretrain_epochs")
    assert bench.parse_setting("1") == (1, True)
    assert bench.parse_setting("2-plain") == (2, False)
    for bad in ("two", "2-fast", "0", "-plain"):
        with pytest.raises(ValueError, match="N or N-plain"):
            bench.parse_setting(bad)


def test_test_suite_bench_reads_pytests_report() -> None:
    """bench_test_suite.py runs the whole suite (not here): its command and its parser."""
    bench = load("bench_test_suite")
    assert bench.pytest_command(0)[-3:] == ["pytest", "-q", "--durations=15"]
    assert bench.pytest_command(2)[-2:] == ["-n", "2"]
    text = (
        "....s.... [100%]\n"
        "============ slowest 15 durations ============\n"
        "129.84s setup    tests/test_notebooks.py::test_notebooks_execute_headless_in_quick_mode\n"
        "60.41s call     tests/test_paper_real_footage.py::test_paper_preset[a b]\n"
        "  /x/conftest.py:96: UserWarning: run_notebooks: HUNG CELL: a cell of 03.ipynb ran\n"
        "SKIPPED [1] tests/test_models.py:434: needs CUDA\n"
        "550 passed, 1 skipped, 194 warnings in 632.54s (0:10:32)\n"
    )
    parsed = bench.parse_pytest_output(text)
    assert parsed["counts"] == {"passed": 550, "skipped": 1, "warnings": 194}
    assert parsed["pytest_seconds"] == 632.54
    assert [(d["seconds"], d["phase"], d["test"].split("::")[1]) for d in parsed["slowest"]] == [
        (129.84, "setup", "test_notebooks_execute_headless_in_quick_mode"),
        (60.41, "call", "test_paper_preset[a b]"),
    ]
    assert bench.parse_setting("3x2") == (3, 2)
    for bad in ("two", "2x0", "0x2", "2x", "-1"):
        with pytest.raises(ValueError, match="--workers"):
            bench.parse_setting(bad)
    assert len(parsed["hung_cells"]) == 1
    failed = bench.parse_pytest_output("=== 2 failed, 548 passed in 700.10s (0:11:40) ===\n")
    assert failed["counts"] == {"failed": 2, "passed": 548} and failed["pytest_seconds"] == 700.1

"""The README's result tables and benchmark headlines are regenerated from the committed
result files: a number in the README that no file backs fails here."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest

from iic_helpers.ablation import markdown_table
from iic_helpers.config import Config

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()
BENCH = REPO / "benchmarks" / "results"


@pytest.mark.parametrize("folder", ["results", "results/ablation-30ep"])
def test_ablation_tables_are_their_json_files(folder: str) -> None:
    """``ablation.md`` and the README's copy of it are what ``ablation.json`` makes."""
    data = json.loads((REPO / folder / "ablation.json").read_text())
    table = markdown_table(data["table"], Config.from_dict(data["config"]))
    assert table == (REPO / folder / "ablation.md").read_text()
    rows = [line for line in table.splitlines() if line.startswith("| ")]
    missing = [row for row in rows if row not in README.splitlines()]
    assert not missing, f"README lacks these rows of {folder}/ablation.json: {missing}"


def _rows(name: str) -> list[dict]:
    """The ``rows`` of ``benchmarks/results/<name>.json``."""
    return json.loads((BENCH / f"{name}.json").read_text())["rows"]


def _pick(rows: list[dict], **match: object) -> dict:
    found = [r for r in rows if all(r.get(k) == v for k, v in match.items())]
    assert len(found) == 1, match
    return found[0]


def _step_ratio(name: str, model: str, slow: str, fast: str) -> float:
    """``slow`` variant's ms per sample / ``fast`` variant's, both from ``<name>.json``."""
    rows = {(r["model"], r["variant"]): r["ms_per_sample"] for r in _rows(name)}
    return rows[model, slow] / rows[model, fast]


def _both(native: float, avx2: float, digits: int = 2) -> str:
    """An AVX-512 / AVX2 pair as the README prints it: ``1.36x / 1.58x``."""
    return f"{native:.{digits}f}x / {avx2:.{digits}f}x"


def thread_ratios(avx2: bool, key: str = "ratio") -> list[float]:
    """Every process's two-thread speed-up in ``thread_ratio*.json`` of one ISA (all runs):
    ``ratio`` (one ``loss.backward()``) or ``ratio_pb`` (parallel backward, newer runs)."""
    suffix = "_avx2.json" if avx2 else ".json"
    files = [
        f for f in sorted(BENCH.glob("thread_ratio*.json")) if f.name.endswith("_avx2.json") == avx2
    ]
    ratios = [run[key] for f in files for run in json.loads(f.read_text())["runs"] if key in run]
    assert ratios, f"no {key} in benchmarks/results/thread_ratio*{suffix}"
    return ratios


def benchmark_headlines() -> dict[str, str]:
    """Each headline the README quotes, formatted as it prints there, from the JSON files.

    Pairs are the native (AVX-512) file first, then its ``_avx2`` twin from the same command.
    """
    steps = ("train_step", "train_step_avx2")
    tiny_1t = [_step_ratio(n, "tiny", "baseline+t1", "ours+t1") for n in steps]
    tiny_2t = [_step_ratio(n, "tiny", "baseline", "ours") for n in steps]
    paper = [_step_ratio(n, "paper", "baseline", "ours") for n in steps]
    threads = [_step_ratio(n, "tiny", "ours+t1", "ours") for n in steps]
    epochs = _rows("pretrain_epochs")
    epoch_2t, epoch_pb = (
        [
            _pick(epochs, isa=isa, threads=2, parallel_backward=pb)["speedup_vs_first"]
            for isa in ("native", "avx2")
        ]
        for pb in (False, True)
    )
    bf16_avx2 = _pick(_rows("train_step_avx2"), model="tiny", variant="bf16")["speedup"]
    wgrad = _pick(_rows("conv_wgrad_avx2"), layer="conv2.block1.conv1.temporal_spatial_conv")
    ratios = [thread_ratios(avx2) for avx2 in (False, True)]
    ratios_pb = [thread_ratios(avx2, "ratio_pb") for avx2 in (False, True)]
    compiled = {r["variant"]: r for r in _rows("compile/train_step")}
    compile_gain = compiled["ours"]["ms_per_sample"] / compiled["ours+compile"]["ms_per_sample"]
    compile_s = compiled["ours+compile"]["first_step_s"]
    loads = [_rows(n) for n in ("data_loading", "data_loading_avx2")]

    def vs_jpeg(dataset: str, fmt: str) -> list[float]:
        return [_pick(rows, dataset=dataset, format=fmt)["speedup_vs_jpeg"] for rows in loads]

    resized = vs_jpeg("ucf_like", "pyav_preresized")
    previous = vs_jpeg("ucf_like", "preresized_h264_avi_gop250")
    vs_previous = [a / b for a, b in zip(resized, previous, strict=True)]
    cache = vs_jpeg("synthetic", "cache")
    jpeg = _pick(loads[0], dataset="ucf_like", format="jpeg")
    resized_row = _pick(loads[0], dataset="ucf_like", format="pyav_preresized")
    retrieval = [
        json.loads((BENCH / f"{n}.json").read_text()) for n in ("retrieval", "retrieval_avx2")
    ]
    ours = [_pick(r["ucf"]["rows"], method="ours") for r in retrieval]
    kinetics = [r["kinetics"]["full"]["ours"] for r in retrieval]
    original_gb = retrieval[0]["kinetics"]["original_memory_float64_computed"]["total_gb"]
    explorer = json.loads((BENCH / "explorer.json").read_text())
    bokeh = _pick(explorer["libraries"], library="bokeh")
    plotly = _pick(explorer["libraries"], library="plotly")
    (ucf_explorer,) = explorer["ucf101"]
    suites = [_rows(n) for n in ("test_suite", "test_suite_avx2")]
    one, two = ([_pick(rows, workers=w)["tests_minutes"] for rows in suites] for w in (0, 2))
    zen4 = [_pick(_rows("test_suite_avx2_earlier"), workers=w)["tests_minutes"] for w in (0, 2)]
    per_worker = [_pick(_rows("test_suite_threads_avx2"), worker_threads=t) for t in (1, 2)]
    return {
        "tiny, one thread": f"{_both(*tiny_1t)} for the tiny preset on one thread",
        "tiny, two threads": f"{_both(*tiny_2t)} on two",
        "paper model": f"{_both(*paper)} for the paper model",
        "two threads, step": f"the tiny step {_both(*threads)}",
        "two threads, epoch": f"a whole tiny epoch {_both(*epoch_2t)} with one `loss.backward()`",
        "parallel backward, epoch": f"and a whole tiny epoch {_both(*epoch_pb)}",
        "torch.compile": (
            f"no faster on AVX-512 ({compile_gain:.2f}x, after {compile_s:.0f} s of compiling)"
        ),
        "bf16 on AVX2": f"AVX2 has no bf16 ({bf16_avx2:.2g}x the baseline)",
        "pre-resized": f"**{_both(*resized)}**",
        "vs previous resize": f"{_both(*vs_previous, digits=1)} the previous",
        "disk": f"1/{jpeg['storage_mb'] / resized_row['storage_mb']:.0f} of the disk",
        "originals": f"originals {_both(*vs_jpeg('ucf_like', 'pyav'))}",
        "cache": f"`cache=True` (the tiny preset) {_both(*cache, digits=1)}",
        "retrieval speed": (
            f"**{_both(*(o['speedup'] for o in ours))} faster with "
            f"{_both(*(o['memory_ratio'] for o in ours))} the memory**"
        ),
        "kinetics time": (
            f"{kinetics[0]['seconds']:.1f} s / {kinetics[1]['seconds']:.1f} s within "
            f"{kinetics[0]['peak_extra_mib']:.0f} / {kinetics[1]['peak_extra_mib']:.0f} MiB"
        ),
        "kinetics original": f"would need {original_gb:.0f} GB",
        "two threads, many processes": (
            f"(`bench_thread_ratio.py`, {len(ratios[1])} processes per ISA), the "
            f"two-thread step is {_both(*map(statistics.median, ratios))} in the median "
            f"(AVX2 from {min(ratios[1]):.2f}x to {max(ratios[1]):.2f}x)"
        ),
        "parallel backward, many processes": (
            f"in {len(ratios_pb[1])} processes per ISA the step with it is "
            f"{_both(*map(statistics.median, ratios_pb))} faster than one thread in the median "
            f"(AVX2 from {min(ratios_pb[1]):.2f}x to {max(ratios_pb[1]):.2f}x)"
        ),
        "avx2 weight gradient": (
            f"{wgrad['wgrad_t1_ms']:.1f} ms with one thread, {wgrad['wgrad_t2_ms']:.1f} with two"
        ),
        "explorer javascript": f"{bokeh['library_js_MB']:.2f} vs {plotly['library_js_MB']:.2f} MB of inlined JavaScript",  # noqa: E501
        "explorer load": f"{bokeh['load_s']:.1f} vs {plotly['load_s']:.1f} s to load",
        "test count": (
            f"with `IIC_QUICK=1` ({_pick(suites[0], workers=2)['counts']['passed']} tests and "
            "doctests in the timed runs below, none skipped"
        ),
        "test suite, zen 4": f"emulated AVX2: {zen4[0]:.2f} and {zen4[1]:.2f} min",
        "worker threads": (
            f"two workers with two threads each took {per_worker[1]['tests_minutes']:.2f} min of "
            f"tests against {per_worker[0]['tests_minutes']:.2f} with one thread each, with "
            f"{per_worker[1]['cpu_minutes']:.1f} against {per_worker[0]['cpu_minutes']:.1f} min of "
            "CPU time"
        ),
        "test suite": (
            f"{one[0]:.1f} min in one process and **{two[0]:.1f} min** on two workers on "
            f"AVX-512, {one[1]:.1f} and **{two[1]:.1f} min** on emulated AVX2"
        ),
        "explorer projection": f"projected in {ucf_explorer['projection_s']:.0f} s, page {ucf_explorer['page_MB']:.1f} MB",  # noqa: E501
    }


def test_benchmark_headlines_are_the_result_files() -> None:
    text = " ".join(README.split())  # line breaks inside a sentence do not matter
    wrong = {name: quoted for name, quoted in benchmark_headlines().items() if quoted not in text}
    assert not wrong, f"README's benchmark headlines differ from benchmarks/results: {wrong}"


@pytest.mark.parametrize("name", ["train_step", "data_loading", "retrieval", "test_suite"])
def test_benchmark_pairs_are_native_and_avx2_runs(name: str) -> None:
    """The README's ``AVX-512 / AVX2`` pairs come from a native file and its AVX2 twin."""
    native = json.loads((BENCH / f"{name}.json").read_text())["machine"]
    avx2 = json.loads((BENCH / f"{name}_avx2.json").read_text())["machine"]
    assert (native["isa"], native["torch_cpu_capability"]) == ("native", "AVX512"), (
        f"benchmarks/results/{name}.json is not an AVX-512 run: rerun "
        f"benchmarks/bench_{name}.py --isa both on an AVX-512 machine"
    )
    assert avx2["isa"].startswith("avx2") and avx2["torch_cpu_capability"] == "AVX2", (
        f"benchmarks/results/{name}_avx2.json is not an AVX2 run: rerun "
        f"benchmarks/bench_{name}.py --isa both"
    )


@pytest.mark.parametrize(
    ("name", "skipped"),
    [
        ("test_suite", 0),
        ("test_suite_avx2", 0),
        ("test_suite_threads_avx2", 0),
        ("test_suite_avx2_earlier", 1),  # the CUDA test, skipped without a GPU back then
    ],
)
def test_the_timed_test_suite_runs_passed(name: str, skipped: int) -> None:
    """The README's test-suite times are of green runs: ruff and pytest passed, no test
    failed or was skipped (but where the README says so), and no notebook cell hung."""
    for row in _rows(name):
        counts = row["counts"]
        assert (row["returncode"], row["ruff_returncode"]) == (0, 0), (name, row["workers"])
        assert counts.get("passed", 0) > 500 and not counts.get("failed"), (name, counts)
        assert counts.get("skipped", 0) == skipped and not row["hung_cells"], (name, counts)


def test_pretrain_epochs_has_both_isas() -> None:
    """``pretrain_epochs.json`` holds an AVX-512 and an AVX2 run (the README quotes both)."""
    epochs = {(r["isa"], r["cpu_capability"]) for r in _rows("pretrain_epochs")}
    assert epochs == {("native", "AVX512"), ("avx2", "AVX2")}, (
        f"benchmarks/results/pretrain_epochs.json has {epochs}: rerun "
        "benchmarks/bench_pretrain_epochs.py --isa both on an AVX-512 machine"
    )


def _diagnosis() -> dict[str, dict[str, float]]:
    lines = (REPO / "results" / "plateau_diagnosis.txt").read_text().splitlines()
    header = lines[0].split()[1:]
    return {
        line.split()[0]: dict(zip(header, map(float, line.split()[1:]), strict=True))
        for line in lines[1:]
    }


def _span(rows: dict[str, dict[str, float]], column: str, run_prefix: str) -> str:
    values = [r[column] for name, r in rows.items() if name.startswith(run_prefix)]
    assert values, run_prefix
    return f"{min(values):.2f}–{max(values):.2f}"


def test_diagnosis_ranges_quoted_in_the_readme_are_the_file() -> None:
    rows = _diagnosis()
    text = " ".join(README.split())
    quoted = {
        "repeat copy, IIC repeat (60)": (
            f"is {_span(rows, 'repeat', 'runs/ablation/iic-repeat')} for the IIC repeat"
        ),
        "repeat copy, CMC (60)": f"and {_span(rows, 'repeat', 'runs/ablation/cmc')} for the CMC",
        "shuffle, shuffle-trained (60)": (
            f"(cosine {_span(rows, 'shuffle', 'runs/ablation/iic-shuffle')} after training)"
        ),
        "shuffle, IIC at 30": f"well ({_span(rows, 'shuffle', 'runs/ablation-30ep/iic')};",
    }
    wrong = {name: q for name, q in quoted.items() if q not in text}
    assert not wrong, f"README's similarity ranges differ from plateau_diagnosis.txt: {wrong}"
